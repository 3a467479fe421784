"""Monitoring as code: every alarm and dashboard widget of template.yaml, listed against the KPI or
failure it watches (docs/monitoring.md), and the parameter rules that refuse a VPC or a created
cache without the network it needs. No network: the template is read as data."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from crm.functions import FunctionRegistry
from crm.template import Template, load_raw

PROJECT_ROOT = Path(__file__).resolve().parents[2]
RAW = load_raw()
RESOURCES: dict[str, Any] = RAW["Resources"]
TOPIC = {"Ref": "AlarmTopic"}
API_DIMENSIONS = [
    {"Name": "ApiName", "Value": {"Fn::Sub": "crm-${Stage}"}},
    {"Name": "Stage", "Value": {"Ref": "Stage"}},
]

# KPI (the seed's, docs/monitoring.md) -> the alarm watching it: namespace, metric, statistic,
# dimensions, comparison and threshold.
KPI_ALARMS: dict[str, tuple[str, dict[str, Any]]] = {
    "API p95 latency < 200 ms": (
        "ApiLatencyAlarm",
        {
            "Namespace": "AWS/ApiGateway",
            "MetricName": "Latency",
            "ExtendedStatistic": "p95",
            "Dimensions": API_DIMENSIONS,
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 200,
        },
    ),
    "data freshness < 1 minute (event age, leaving room for the stats cache)": (
        "StatsFreshnessAlarm",
        {
            "Namespace": "LeadCRM",
            "MetricName": "StatsEventAgeSeconds",
            "Statistic": "Maximum",
            "Dimensions": [{"Name": "service", "Value": "stats-consumer"}],
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 30,
        },
    ),
    "no lead event stuck in the outbox": (
        "OutboxAgeAlarm",
        {
            "Namespace": "LeadCRM",
            "MetricName": "OutboxOldestPendingSeconds",
            "Statistic": "Maximum",
            "Dimensions": [{"Name": "service", "Value": "outbox-publisher"}],
            "ComparisonOperator": "GreaterThanThreshold",
            "Threshold": 300,
            # It reports every minute: silence means it stopped, and the outbox with it.
            "TreatMissingData": "breaching",
        },
    ),
}
ERROR_RATE_ALARM = "ApiErrorRateAlarm"  # error rate < 0.1 %: metric math, checked on its own

# KPI -> the dashboard widget showing it: its title and the metrics it plots.
KPI_WIDGETS: dict[str, tuple[str, set[tuple[str, str]]]] = {
    "p95 latency": ("API p95 latency (ms)", {("AWS/ApiGateway", "Latency")}),
    "error rate": (
        "API error rate (% of requests)",
        {("AWS/ApiGateway", "5XXError"), ("AWS/ApiGateway", "Count")},
    ),
    "cache hit rate": ("Query cache hit rate (%)", {("LeadCRM", "CacheHit"), ("LeadCRM", "CacheMiss")}),
    "freshness": (
        "Data freshness (s)",
        {("LeadCRM", "StatsEventAgeSeconds"), ("LeadCRM", "OutboxOldestPendingSeconds")},
    ),
    "leads per minute": ("Leads per minute", {("LeadCRM", "LeadsAccepted")}),
}


def of_type(resource_type: str) -> dict[str, Any]:
    return {key: res for key, res in RESOURCES.items() if res["Type"] == resource_type}


ALARMS = of_type("AWS::CloudWatch::Alarm")
FUNCTIONS = of_type("AWS::Serverless::Function")


def dead_letter_queues() -> set[str]:
    """Every queue something sends what it could not deliver to: a queue's redrive target, a
    rule target's or a function's dead-letter config."""
    found = set()
    for resource in RESOURCES.values():
        properties = resource.get("Properties", {})
        targets = [properties.get("RedrivePolicy", {}).get("deadLetterTargetArn")]
        targets += [target.get("DeadLetterConfig", {}).get("Arn") for target in properties.get("Targets", [])]
        targets.append(properties.get("DeadLetterQueue", {}).get("TargetArn"))
        for target in targets:
            if isinstance(target, dict) and "Fn::GetAtt" in target:
                found.add(target["Fn::GetAtt"][0])
    return found


def dashboard() -> dict[str, Any]:
    body = RESOURCES["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    return json.loads(re.sub(r"\$\{[^}]+\}", "x", body))  # type: ignore[no-any-return]


def widget_metrics(widget: dict[str, Any]) -> set[tuple[str, str]]:
    return {
        (line[0], line[1])
        for line in widget["properties"].get("metrics", [])
        if isinstance(line[0], str) and len(line) > 1
    }


def emitted_metric_names() -> set[str]:
    """The metric names the functions' code publishes."""
    names = set()
    for path in (PROJECT_ROOT / "src").rglob("*.py"):
        names |= set(
            re.findall(r"add_(?:count|seconds)\(\s*\"([A-Za-z]+)\"", path.read_text(encoding="utf-8"))
        )
    names |= {
        f"Cache{result.capitalize()}" for result in ("hit", "miss", "error")
    }  # add_count(f"Cache{...}")
    return names


# ---------------------------------------------------------------------------------- alarms
@pytest.mark.parametrize("kpi", KPI_ALARMS)
def test_each_kpi_has_its_alarm(kpi: str) -> None:
    logical_id, expected = KPI_ALARMS[kpi]
    properties = ALARMS[logical_id]["Properties"]
    assert {key: properties.get(key) for key in expected} == expected


def test_the_error_rate_alarm_is_5xx_over_requests_above_a_tenth_of_a_percent() -> None:
    properties = ALARMS[ERROR_RATE_ALARM]["Properties"]
    queries = {query["Id"]: query for query in properties["Metrics"]}
    (returned,) = [query for query in queries.values() if query.get("ReturnData", True)]
    assert returned["Expression"] == "IF(requests > 0, 100 * errors / requests, 0)"
    for query_id, metric in (("errors", "5XXError"), ("requests", "Count")):
        stat = queries[query_id]["MetricStat"]
        assert stat["Metric"] == {
            "Namespace": "AWS/ApiGateway",
            "MetricName": metric,
            "Dimensions": API_DIMENSIONS,
        }
        assert stat["Stat"] == "Sum"
    assert (properties["ComparisonOperator"], properties["Threshold"]) == ("GreaterThanThreshold", 0.1)


def test_every_function_has_an_errors_and_a_throttles_alarm() -> None:
    for function in FUNCTIONS:
        for metric in ("Errors", "Throttles"):
            properties = ALARMS[f"{function}{metric}Alarm"]["Properties"]
            assert properties["Namespace"] == "AWS/Lambda"
            assert properties["MetricName"] == metric
            assert properties["Dimensions"] == [{"Name": "FunctionName", "Value": {"Ref": function}}]
            assert (properties["Statistic"], properties["ComparisonOperator"], properties["Threshold"]) == (
                "Sum",
                "GreaterThanThreshold",
                0,
            )


def test_every_dead_letter_queue_alarms_on_its_first_message() -> None:
    queues = dead_letter_queues()
    assert "StatsConsumerDeadLetterQueue" in queues
    watched = {
        properties["Dimensions"][0]["Value"]["Fn::GetAtt"][0]
        for properties in (alarm["Properties"] for alarm in ALARMS.values())
        if properties.get("MetricName") == "ApproximateNumberOfMessagesVisible"
        and properties["Statistic"] == "Maximum"
        and properties["Threshold"] == 0
        and properties["ComparisonOperator"] == "GreaterThanThreshold"
        and properties["Dimensions"][0]["Name"] == "QueueName"
        and properties["Dimensions"][0]["Value"]["Fn::GetAtt"][1] == "QueueName"
    }
    assert queues <= watched


def test_every_alarm_is_listed_here_and_notifies_the_topic_when_it_fires_and_clears() -> None:
    listed = {logical_id for logical_id, _ in KPI_ALARMS.values()} | {ERROR_RATE_ALARM}
    listed |= {f"{function}{metric}Alarm" for function in FUNCTIONS for metric in ("Errors", "Throttles")}
    listed |= {
        logical_id
        for logical_id, alarm in ALARMS.items()
        if alarm["Properties"].get("MetricName") == "ApproximateNumberOfMessagesVisible"
    }
    assert set(ALARMS) == listed
    for logical_id, alarm in ALARMS.items():
        properties = alarm["Properties"]
        assert properties["AlarmActions"] == [TOPIC], logical_id
        assert properties["OKActions"] == [TOPIC], logical_id
        expected = "breaching" if logical_id == "OutboxAgeAlarm" else "notBreaching"
        assert properties["TreatMissingData"] == expected, logical_id
        assert "docs/monitoring.md" in properties["AlarmDescription"], logical_id


def test_the_alarm_topic_is_encrypted_and_mails_the_address_given() -> None:
    topic = RESOURCES["AlarmTopic"]["Properties"]
    assert topic["KmsMasterKeyId"] == {"Ref": "AlarmTopicKey"}
    assert RESOURCES["AlarmTopicKey"]["Properties"]["EnableKeyRotation"] is True
    subscription = RESOURCES["AlarmEmailSubscription"]
    assert subscription["Condition"] == "HasAlarmEmail"
    assert subscription["Properties"] == {
        "TopicArn": TOPIC,
        "Protocol": "email",
        "Endpoint": {"Ref": "AlarmEmail"},
    }
    assert RAW["Parameters"]["AlarmEmail"]["Default"] == ""


def test_the_alarms_watch_metrics_the_code_publishes() -> None:
    namespaced = {
        alarm["Properties"]["MetricName"]
        for alarm in ALARMS.values()
        if alarm["Properties"].get("Namespace") == "LeadCRM"
    }
    widgets = {
        name for widget in dashboard()["widgets"] for ns, name in widget_metrics(widget) if ns == "LeadCRM"
    }
    assert namespaced <= widgets
    unknown = widgets - emitted_metric_names()
    assert unknown == set()


# ---------------------------------------------------------------------------------- dashboard
@pytest.mark.parametrize("kpi", KPI_WIDGETS)
def test_the_dashboard_shows_each_kpi(kpi: str) -> None:
    title, metrics = KPI_WIDGETS[kpi]
    widgets = {widget["properties"].get("title"): widget for widget in dashboard()["widgets"]}
    assert metrics <= widget_metrics(widgets[title])


def test_the_dashboard_cache_hit_rate_counts_every_api_function() -> None:
    (widget,) = [
        w for w in dashboard()["widgets"] if w["properties"].get("title") == "Query cache hit rate (%)"
    ]
    services = {line[3] for line in widget["properties"]["metrics"] if isinstance(line[0], str)}
    api_functions = {
        function["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
        for function in FUNCTIONS.values()
        if any(event["Type"] == "Api" for event in function["Properties"].get("Events", {}).values())
    }
    assert services == api_functions


def test_the_dashboard_lists_every_alarm() -> None:
    body = RESOURCES["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"]
    assert set(re.findall(r"\$\{([A-Za-z]+)\.Arn\}", body)) == set(ALARMS)


# ---------------------------------------------------------------------------------- logs
def test_every_function_has_a_log_group_with_the_retention_parameter() -> None:
    groups = {
        group["Properties"]["LogGroupName"]["Fn::Sub"]: group["Properties"]
        for group in of_type("AWS::Logs::LogGroup").values()
    }
    for function in FUNCTIONS.values():
        name = function["Properties"]["FunctionName"]["Fn::Sub"]
        assert groups[f"/aws/lambda/{name}"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_the_stage_is_throttled_and_writes_json_access_logs() -> None:
    api = RESOURCES["CrmApi"]["Properties"]
    assert api["MethodSettings"] == [
        {
            "ResourcePath": "/*",
            "HttpMethod": "*",
            "ThrottlingRateLimit": {"Ref": "ApiThrottlingRateLimit"},
            "ThrottlingBurstLimit": {"Ref": "ApiThrottlingBurstLimit"},
        }
    ]
    assert api["AccessLogSetting"]["DestinationArn"] == {"Fn::GetAtt": ["ApiAccessLogGroup", "Arn"]}
    line = json.loads(api["AccessLogSetting"]["Format"])
    assert {"requestId", "status", "responseLatency", "path"} <= set(line)
    assert RESOURCES["ApiAccessLogGroup"]["Properties"]["RetentionInDays"] == {"Ref": "LogRetentionDays"}


def test_each_function_logs_under_its_own_service_name_locally_too() -> None:
    names = {
        logical_id: function["Properties"]["Environment"]["Variables"]["POWERTOOLS_SERVICE_NAME"]
        for logical_id, function in FUNCTIONS.items()
    }
    assert len(set(names.values())) == len(names)
    assert names["StatsConsumerFunction"] == "stats-consumer"  # the freshness alarm's dimension
    registry = FunctionRegistry(Template.load({"Stage": "test"}), {"PATH": "/usr/bin"}, concurrency=1)
    try:
        for logical_id, name in names.items():
            assert registry[logical_id].environment["POWERTOOLS_SERVICE_NAME"] == name
    finally:
        registry.stop()


# ---------------------------------------------------------------------------------- cache and VPC
def _rule_value(node: Any, parameters: dict[str, Any]) -> Any:
    """Evaluates the intrinsic functions template Rules use, for given parameter values."""
    if not isinstance(node, dict):
        return node
    ((name, arg),) = node.items()
    if name == "Ref":
        return parameters[arg]
    values = [_rule_value(item, parameters) for item in arg]
    if name == "Fn::Equals":
        return values[0] == values[1]
    if name == "Fn::Not":
        return not values[0]
    if name == "Fn::And":
        return all(values)
    if name == "Fn::Or":
        return any(values)
    if name == "Fn::EachMemberEquals":
        return all(member == values[1] for member in values[0])
    raise AssertionError(f"unexpected function in a rule: {name}")


def refused(**given: str) -> list[str]:
    """The assertion descriptions the template's Rules fail for these parameter values (the
    others at their defaults; CommaDelimitedList values as CloudFormation passes them)."""
    parameters: dict[str, Any] = {}
    for name, spec in RAW["Parameters"].items():
        value = given.get(name, str(spec.get("Default", "")))
        parameters[name] = value.split(",") if spec["Type"] == "CommaDelimitedList" else value
    failures = []
    for rule in RAW["Rules"].values():
        if "RuleCondition" in rule and not _rule_value(rule["RuleCondition"], parameters):
            continue
        failures += [
            a["AssertDescription"] for a in rule["Assertions"] if not _rule_value(a["Assert"], parameters)
        ]
    return failures


NETWORK = {"VpcId": "vpc-0abc1234", "SubnetIds": "subnet-1,subnet-2", "RouteTableIds": "rtb-1,rtb-2"}


def test_the_defaults_and_complete_network_settings_pass_the_rules() -> None:
    assert refused() == []
    assert (
        refused(SubnetIds="subnet-1,subnet-2", SecurityGroupIds="sg-1", CacheEndpoint="c.example:6379") == []
    )
    assert refused(CreateCache="true", **NETWORK) == []


@pytest.mark.parametrize(
    ("given", "complaint"),
    [
        ({"SubnetIds": "subnet-1,subnet-2"}, "SubnetIds and SecurityGroupIds go together"),
        ({"SecurityGroupIds": "sg-1"}, "SubnetIds and SecurityGroupIds go together"),
        ({"CreateCache": "true", **NETWORK, "VpcId": ""}, "CreateCache needs VpcId"),
        ({"CreateCache": "true", **NETWORK, "SubnetIds": ""}, "CreateCache needs SubnetIds"),
        ({"CreateCache": "true", **NETWORK, "RouteTableIds": ""}, "CreateCache needs RouteTableIds"),
        ({"CreateCache": "true", **NETWORK, "SecurityGroupIds": "sg-1"}, "leave SecurityGroupIds empty"),
        ({"CreateCache": "true", **NETWORK, "CacheEndpoint": "c.example:6379"}, "leave CacheEndpoint empty"),
    ],
)
def test_the_rules_refuse_a_network_that_cannot_work(given: dict[str, str], complaint: str) -> None:
    assert any(complaint in failure for failure in refused(**given))


def test_a_created_cache_is_tls_only_and_reached_from_the_functions_only() -> None:
    cache = RESOURCES["Cache"]
    assert cache["Type"] == "AWS::ElastiCache::ServerlessCache"
    assert cache["Properties"]["Engine"] in ("valkey", "redis")
    ingress = RESOURCES["CacheSecurityGroup"]["Properties"]["SecurityGroupIngress"]
    assert [(rule["FromPort"], rule["SourceSecurityGroupId"]) for rule in ingress] == [
        (6379, {"Ref": "FunctionSecurityGroup"})
    ]
    redis_url = RAW["Globals"]["Function"]["Environment"]["Variables"]["REDIS_URL"]
    created = redis_url["Fn::If"][1]["Fn::Sub"]
    assert redis_url["Fn::If"][0] == "CreatesCache"
    assert created == "rediss://${Cache.Endpoint.Address}:${Cache.Endpoint.Port}"


def test_a_created_cache_brings_the_endpoints_the_functions_need() -> None:
    endpoints = {
        res["Properties"]["ServiceName"]["Fn::Sub"].rpartition(".")[2]: res
        for res in of_type("AWS::EC2::VPCEndpoint").values()
    }
    assert set(endpoints) == {"dynamodb", "events", "secretsmanager", "monitoring", "logs"}
    for service, endpoint in endpoints.items():
        assert endpoint["Condition"] == "CreatesCache"
        properties = endpoint["Properties"]
        if service == "dynamodb":
            assert properties["VpcEndpointType"] == "Gateway"
            assert properties["RouteTableIds"] == {"Ref": "RouteTableIds"}
        else:
            assert properties["VpcEndpointType"] == "Interface"
            assert properties["PrivateDnsEnabled"] is True
            assert properties["SecurityGroupIds"] == [{"Ref": "EndpointSecurityGroup"}]
    ingress = RESOURCES["EndpointSecurityGroup"]["Properties"]["SecurityGroupIngress"]
    assert [(rule["FromPort"], rule["SourceSecurityGroupId"]) for rule in ingress] == [
        (443, {"Ref": "FunctionSecurityGroup"})
    ]


def test_the_local_stack_takes_no_cache_from_the_template_by_default() -> None:
    assert Template.load({"Stage": "test"}).environment()["REDIS_URL"] == ""
    with_cache = Template.load({"Stage": "test", "CacheEndpoint": "cache.example:6379"})
    assert with_cache.environment()["REDIS_URL"] == "rediss://cache.example:6379"
