"""template.yaml is the single source of truth: these tests fail when a route, table, index,
setting or build target exists on one side (template, code, local stack, packaging) but not the
other, or when the template uses an event, rule or queue setting the local stack would ignore."""

from __future__ import annotations

import copy
import importlib
import re
from pathlib import Path

import pytest
from aws_lambda_powertools.event_handler import APIGatewayRestResolver

from crm.stack import function_environment
from crm.template import (
    SQS_DEFAULT_VISIBILITY_TIMEOUT,
    EventSourceMapping,
    QueueSpec,
    RuleSpec,
    RuleTarget,
    Template,
    rate_seconds,
)
from leads import repository
from shared.config import Settings
from shared.entrypoints import HttpFunction
from shared.http import openapi_schema
from tests.helpers import base_env

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = Template.load({"Stage": "test"})
HTTP_METHODS = ("get", "post", "put", "patch", "delete")


def function_app(handler: str) -> APIGatewayRestResolver | None:
    """The resolver of an API function (built on first use), None for another function."""
    module_name, _, attribute = handler.rpartition(".")
    function = getattr(importlib.import_module(module_name), attribute)
    return function.app if isinstance(function, HttpFunction) else None


def app_routes(handler: str) -> set[tuple[str, str]]:
    app = function_app(handler)
    assert app is not None
    paths = openapi_schema(app).paths or {}
    return {
        (method.upper(), path)
        for path, item in paths.items()
        for method in HTTP_METHODS
        if getattr(item, method, None) is not None
    }


@pytest.mark.parametrize("function", sorted(TEMPLATE.functions()))
def test_template_routes_and_code_routes_are_the_same(function: str) -> None:
    # Given
    properties = TEMPLATE.functions()[function]
    declared = {(route.method, route.path) for route in TEMPLATE.routes() if route.function == function}
    # When / Then
    if function_app(properties["Handler"]) is None:
        assert declared == set(), f"{function} has API events but its handler module has no resolver"
        return
    assert {route for route in declared if route[0] != "ANY"} == app_routes(properties["Handler"])


def test_every_path_routes_its_other_methods_and_preflight_to_the_same_function() -> None:
    owners: dict[str, set[str]] = {}
    other_methods: dict[str, str] = {}
    for route in TEMPLATE.routes():
        if route.method == "ANY":
            other_methods[route.path] = route.function
        else:
            owners.setdefault(route.path, set()).add(route.function)
    assert set(other_methods) == set(owners)
    for path, functions in owners.items():
        assert functions == {other_methods[path]}, path


def test_a_path_is_served_by_one_function_only() -> None:
    seen: dict[tuple[str, str], str] = {}
    for route in TEMPLATE.routes():
        assert (route.method, route.path) not in seen, route
        seen[(route.method, route.path)] = route.function


def test_lead_indexes_in_the_template_are_the_indexes_the_repository_queries() -> None:
    leads_table = next(table for table in TEMPLATE.tables() if table.logical_id == "LeadsTable")
    declared = {index.name: index.keys for index in leads_table.indexes}
    assert set(declared) == {index.name for index in repository.ALL_INDEXES}
    for index in repository.ALL_INDEXES:
        assert declared[index.name] == ((index.key, "HASH"), (index.sort, "RANGE"))
    for attribute in {
        *(index.key for index in repository.ALL_INDEXES),
        *(index.sort for index in repository.ALL_INDEXES),
    }:
        assert leads_table.attributes[attribute] == "S"


def test_every_table_reaches_the_functions_through_a_setting() -> None:
    # The variables spell the names out (sam local resolves a resource's Ref to its logical id):
    # each must be the name its resource sets, and every table and bus must have one.
    env = TEMPLATE.environment()
    tables = {env[name] for name in env if name.endswith("_TABLE")}
    assert tables == {table.name for table in TEMPLATE.tables()}
    assert [env["EVENT_BUS_NAME"]] == TEMPLATE.bus_names()


def test_function_environment_is_exactly_the_settings_model() -> None:
    env = TEMPLATE.raw["Globals"]["Function"]["Environment"]["Variables"]
    own = {name.lower() for name in env if not name.startswith(("POWERTOOLS_", "AWS_"))}
    fields = set(Settings.model_fields)
    assert own <= fields
    required = {name for name, info in Settings.model_fields.items() if info.is_required()}
    assert required <= own


def test_local_function_environment_builds_valid_settings() -> None:
    env = function_environment(TEMPLATE, "http://127.0.0.1:8000", {})
    settings = Settings.from_env(env)
    assert settings.leads_table == "crm-test-leads"
    assert settings.jwt_secret is not None
    assert "JWT_SECRET_ARN" not in env


def test_test_environment_names_the_template_resources() -> None:
    env = TEMPLATE.environment()
    for name in (
        "LEADS_TABLE",
        "USERS_TABLE",
        "VENDORS_TABLE",
        "PRICING_TABLE",
        "AUDIT_TABLE",
        "EVENT_BUS_NAME",
    ):
        assert base_env()[name] == env[name]


def test_every_makefile_built_resource_has_a_build_target() -> None:
    makefile = (PROJECT_ROOT / "src" / "Makefile").read_text()
    targets = set(re.findall(r"^build-([A-Za-z0-9]+):", makefile, flags=re.M))
    built = {
        key
        for key, resource in TEMPLATE.resources.items()
        if resource.get("Metadata", {}).get("BuildMethod") == "makefile"
    }
    assert targets == built


def test_user_indexes_in_the_template_are_the_indexes_the_code_queries() -> None:
    from shared.records import ASSIGNMENT_INDEX, ROLE_INDEX

    users = next(table for table in TEMPLATE.tables() if table.logical_id == "UsersTable")
    assert {index.name for index in users.indexes} == {ASSIGNMENT_INDEX, ROLE_INDEX}


def test_audit_indexes_in_the_template_are_the_indexes_the_code_queries() -> None:
    from stats.audit_trail import USER_INDEX

    audit = next(table for table in TEMPLATE.tables() if table.logical_id == "AuditTable")
    assert {index.name for index in audit.indexes} == {USER_INDEX}


# -- queues, rules and event source mappings ----------------------------------------------------
# What the local stack runs of a function's events, of an SQS event and of a rule; anything else
# in the template would be ignored locally, so these tests fail on it instead.
LOCAL_EVENT_TYPES = {"Api", "SQS", "Schedule"}
LOCAL_SQS_EVENT_PROPERTIES = {"Queue", "BatchSize", "MaximumBatchingWindowInSeconds", "FunctionResponseTypes"}
LOCAL_SCHEDULE_EVENT_PROPERTIES = {"Schedule", "Description", "Enabled"}
LOCAL_RULE_PROPERTIES = {"Name", "EventBusName", "EventPattern", "Targets"}
LOCAL_RULE_TARGET_PROPERTIES = {"Id", "Arn", "RetryPolicy", "DeadLetterConfig"}


def test_every_function_event_is_one_the_local_stack_runs() -> None:
    for function, properties in TEMPLATE.functions().items():
        for name, event in properties.get("Events", {}).items():
            assert event["Type"] in LOCAL_EVENT_TYPES, (
                f"{function}.{name}: {event['Type']} events do not run locally"
            )
            if event["Type"] == "SQS":
                assert set(event["Properties"]) <= LOCAL_SQS_EVENT_PROPERTIES, f"{function}.{name}"
                assert set(event["Properties"].get("FunctionResponseTypes", [])) <= {
                    "ReportBatchItemFailures"
                }
            if event["Type"] == "Schedule":
                assert set(event["Properties"]) <= LOCAL_SCHEDULE_EVENT_PROPERTIES, f"{function}.{name}"


def test_every_schedule_is_a_rate_the_local_stack_runs() -> None:
    schedules = TEMPLATE.schedules()
    assert [(schedule.function, schedule.period_seconds) for schedule in schedules] == [
        ("OutboxPublisherFunction", 60)
    ]
    assert all(schedule.enabled for schedule in schedules)


def test_every_rule_sends_to_a_queue_that_a_function_reads() -> None:
    read = {mapping.queue for mapping in TEMPLATE.event_source_mappings()}
    assert read
    assert read <= {queue.logical_id for queue in TEMPLATE.queues()}
    for logical_id, resource in TEMPLATE.of_type("AWS::Events::Rule").items():
        assert set(resource["Properties"]) <= LOCAL_RULE_PROPERTIES, logical_id
        for target in resource["Properties"]["Targets"]:
            assert set(target) <= LOCAL_RULE_TARGET_PROPERTIES, logical_id
    for rule in TEMPLATE.rules():
        assert rule.bus_name in TEMPLATE.bus_names()
        assert rule.targets
        assert {target.queue for target in rule.targets} <= read, rule.logical_id


def test_a_batch_size_over_ten_comes_with_a_batching_window() -> None:
    # Lambda refuses an SQS event source mapping with BatchSize > 10 and no batching window.
    for mapping in TEMPLATE.event_source_mappings():
        assert mapping.batch_size <= 10 or mapping.batching_window >= 1, mapping.name


SMALL_TEMPLATE = {
    "Resources": {
        "Bus": {"Type": "AWS::Events::EventBus", "Properties": {"Name": {"Fn::Sub": "bus-${Stage}"}}},
        "Work": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "QueueName": {"Fn::Sub": "work-${Stage}"},
                "VisibilityTimeout": 45,
                "RedrivePolicy": {
                    "deadLetterTargetArn": {"Fn::GetAtt": ["Failed", "Arn"]},
                    "maxReceiveCount": 3,
                },
            },
        },
        "Failed": {"Type": "AWS::SQS::Queue"},
        "Changes": {
            "Type": "AWS::Events::Rule",
            "Properties": {
                "EventBusName": {"Ref": "Bus"},
                "EventPattern": {"source": ["app"]},
                "Targets": [
                    {
                        "Id": "work",
                        "Arn": {"Fn::GetAtt": ["Work", "Arn"]},
                        "DeadLetterConfig": {"Arn": {"Fn::GetAtt": ["Failed", "Arn"]}},
                    }
                ],
            },
        },
        "Worker": {
            "Type": "AWS::Serverless::Function",
            "Properties": {
                "Handler": "app.handler",
                "Events": {
                    "Plain": {"Type": "SQS", "Properties": {"Queue": {"Fn::GetAtt": ["Work", "Arn"]}}},
                    "Batched": {
                        "Type": "SQS",
                        "Properties": {
                            "Queue": {"Fn::GetAtt": ["Failed", "Arn"]},
                            "BatchSize": 50,
                            "MaximumBatchingWindowInSeconds": 2,
                            "FunctionResponseTypes": ["ReportBatchItemFailures"],
                        },
                    },
                },
            },
        },
    }
}


def test_queues_rules_and_mappings_are_read_with_the_aws_defaults() -> None:
    template = Template(raw=SMALL_TEMPLATE, parameters={"Stage": "t"})
    assert template.queues() == [
        QueueSpec("Work", "work-t", 45, dead_letter_queue="Failed", max_receive_count=3),
        QueueSpec("Failed", "Failed", SQS_DEFAULT_VISIBILITY_TIMEOUT),
    ]
    assert template.rules() == [
        RuleSpec(
            logical_id="Changes",
            name="Changes",
            bus_name="bus-t",
            pattern={"source": ["app"]},
            targets=(RuleTarget(id="work", queue="Work", dead_letter_queue="Failed"),),
        )
    ]
    assert template.event_source_mappings() == [
        EventSourceMapping("Worker", "app.handler", "Worker-Plain", "Work", batch_size=10, batching_window=0),
        EventSourceMapping(
            "Worker",
            "app.handler",
            "Worker-Batched",
            "Failed",
            50,
            batching_window=2,
            report_batch_item_failures=True,
        ),
    ]


@pytest.mark.parametrize(
    "arn",
    [
        pytest.param("arn:aws:lambda:us-east-1:123456789012:function:f", id="literal-arn"),
        pytest.param({"Fn::GetAtt": ["Worker", "Arn"]}, id="not-a-queue"),
        pytest.param({"Fn::GetAtt": ["Work", "QueueName"]}, id="not-an-arn"),
    ],
)
def test_a_rule_target_other_than_a_template_queue_is_refused(arn: object) -> None:
    raw = copy.deepcopy(SMALL_TEMPLATE)
    raw["Resources"]["Changes"]["Properties"]["Targets"][0]["Arn"] = arn
    with pytest.raises(ValueError, match="reaches queues only"):
        Template(raw=raw, parameters={"Stage": "t"}).rules()


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [("rate(1 minute)", 60), ("rate(5 minutes)", 300), ("rate(1 hour)", 3600), ("rate(2 days)", 172800)],
)
def test_a_rate_expression_is_read_as_its_period(expression: str, seconds: int) -> None:
    assert rate_seconds(expression) == seconds


@pytest.mark.parametrize(
    "expression",
    ["rate(1 minutes)", "rate(2 minute)", "rate(0 minutes)", "rate(5 seconds)", "cron(0 * * * ? *)"],
)
def test_a_schedule_the_local_stack_cannot_run_is_refused(expression: str) -> None:
    with pytest.raises(ValueError, match="rate"):
        rate_seconds(expression)


def test_every_table_the_bus_the_queues_and_the_api_url_are_stack_outputs() -> None:
    # `crm ... --stack NAME` reads every name the functions use from the stack's outputs.
    env = TEMPLATE.environment()
    named = {name for name in env if name.endswith("_TABLE")} | {"EVENT_BUS_NAME", "JWT_SECRET_ARN"}
    assert named <= set(TEMPLATE.outputs_of_variables())
    outputs = TEMPLATE.raw["Outputs"]
    referenced = {spec["Value"].get("Ref") for spec in outputs.values() if isinstance(spec["Value"], dict)}
    assert set(TEMPLATE.of_type("AWS::SQS::Queue")) <= referenced
    assert "ApiUrl" in outputs
