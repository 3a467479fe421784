"""Reads template.yaml: the routes, tables, queues, bus rules, event source mappings, schedules,
staff user pool and environment the local stack needs.

Only the intrinsic functions the template uses are resolved (Ref, Sub, Select, Split, Join, If,
Equals, Not), with parameters taken from their defaults or from overrides, and `AWS::*` pseudo
parameters given local values. `!GetAtt <Queue>.Arn`, where it names a queue (a rule's target,
a redrive policy, an SQS event), is read as that queue's logical id: the local stack learns the
ARN when it creates the queue. Queue policies are not read (moto does not enforce them).
A user pool's client and groups name their pool with `!Ref <UserPool>`, read as its logical id:
the local stack learns the pool's id when it creates it.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = PROJECT_ROOT / "template.yaml"
LOCAL_PSEUDO = {
    "AWS::Region": "us-east-1",
    "AWS::AccountId": "123456789012",
    "AWS::StackName": "crm-local",
    "AWS::Partition": "aws",
    "AWS::URLSuffix": "amazonaws.com",
}
NO_VALUE = object()


class _CfnLoader(yaml.SafeLoader):
    """YAML loader that turns CloudFormation short-form tags into their long form."""


def _construct_tag(loader: _CfnLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = value.split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        value = loader.construct_mapping(node, deep=True)  # type: ignore[arg-type]
    return {name: value}


_CfnLoader.add_multi_constructor("!", _construct_tag)


def load_raw(path: Path = TEMPLATE_PATH) -> dict[str, Any]:
    with path.open(encoding="utf-8") as handle:
        return yaml.load(handle, Loader=_CfnLoader)  # noqa: S506  # nosec B506  # a SafeLoader subclass


@dataclass(frozen=True)
class Route:
    function: str
    handler: str
    method: str
    path: str  # API Gateway form: /leads/{lead_id}

    @property
    def pattern(self) -> re.Pattern[str]:
        regex = re.sub(r"\\\{([A-Za-z0-9_]+)\\\}", r"(?P<\1>[^/]+)", re.escape(self.path))
        return re.compile(f"^{regex}$")


@dataclass(frozen=True)
class Index:
    name: str
    keys: tuple[tuple[str, str], ...]  # (attribute, HASH|RANGE)


@dataclass(frozen=True)
class TableSpec:
    logical_id: str
    name: str
    attributes: dict[str, str]
    keys: tuple[tuple[str, str], ...]
    indexes: tuple[Index, ...]


# What SQS and Lambda assume when the template does not say.
SQS_DEFAULT_VISIBILITY_TIMEOUT = 30
SQS_EVENT_DEFAULT_BATCH_SIZE = 10


@dataclass(frozen=True)
class QueueSpec:
    """An `AWS::SQS::Queue`. `visibility_timeout` is SQS's default (30 s) when the template states
    none; `dead_letter_queue` is the logical id of its redrive target, if it has one."""

    logical_id: str
    name: str
    visibility_timeout: int
    dead_letter_queue: str | None = None
    max_receive_count: int | None = None


@dataclass(frozen=True)
class RuleTarget:
    """A target of a rule: a queue of the template (logical ids), with the retry policy and the
    dead-letter queue for what EventBridge could not deliver to it."""

    id: str
    queue: str
    dead_letter_queue: str | None = None
    retry_policy: dict[str, Any] | None = None


@dataclass(frozen=True)
class RuleSpec:
    """An `AWS::Events::Rule` on a bus of the template (its `Name`, else its logical id)."""

    logical_id: str
    name: str
    bus_name: str
    pattern: dict[str, Any]
    targets: tuple[RuleTarget, ...]


@dataclass(frozen=True)
class EventSourceMapping:
    """A function's `Type: SQS` event: Lambda polls `queue` (a logical id) and invokes the function
    with up to `batch_size` messages, gathered for at most `batching_window` seconds."""

    function: str
    handler: str
    name: str  # <function logical id>-<event name>
    queue: str
    batch_size: int = SQS_EVENT_DEFAULT_BATCH_SIZE
    batching_window: int = 0
    report_batch_item_failures: bool = False


# `rate(value unit)`, the schedule expressions the local stack runs (EventBridge's syntax).
RATE_EXPRESSION = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
RATE_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> int:
    """The period of an EventBridge `rate(...)` expression, in seconds. Raises ValueError for
    anything else (`cron(...)` schedules do not run locally) and, as EventBridge does, for a value
    of 1 with a plural unit or more than 1 with a singular one."""
    found = RATE_EXPRESSION.match(expression.strip())
    if found is None:
        raise ValueError(f"the local stack runs rate(...) schedules only; got {expression!r}")
    value, unit = int(found.group(1)), found.group(2)
    if value < 1 or (value == 1) == unit.endswith("s"):
        raise ValueError(f"not a valid rate expression: {expression!r}")
    return value * RATE_UNIT_SECONDS[unit.rstrip("s")]


@dataclass(frozen=True)
class ScheduleSpec:
    """A function's `Type: Schedule` event: EventBridge invokes the function every
    `period_seconds` (its `rate(...)` expression) with a scheduled event."""

    function: str
    handler: str
    name: str  # <function logical id>-<event name>
    expression: str
    period_seconds: int
    enabled: bool = True


# A gateway response header's value: a literal in single quotes, or a request header's value.
_STATIC_VALUE = re.compile(r"^'(?P<value>[^']*)'$")
_REQUEST_HEADER = re.compile(r"^method\.request\.header\.(?P<name>[A-Za-z0-9._$-]+)$")


@dataclass(frozen=True)
class HeaderMapping:
    """One header of a gateway response, as API Gateway maps it: a static value (`'text'`) or
    the value of one of the request's headers (`method.request.header.Name`), which is left out
    when the request has no such header. The name is matched exactly as written, the strictest
    reading of API Gateway's mapping: every browser writes `Origin` so over HTTP/1.1."""

    static: str | None = None
    request_header: str | None = None

    @classmethod
    def parse(cls, response: str, header: str, expression: str) -> HeaderMapping:
        if found := _STATIC_VALUE.match(expression):
            return cls(static=found["value"])
        if found := _REQUEST_HEADER.match(expression):
            return cls(request_header=found["name"])
        # Anything else (a query string, a context variable) is an answer the local gateway
        # cannot give as API Gateway would: refused when the template is read, never guessed.
        raise ValueError(f"gateway response {response}, header {header}: cannot map {expression!r}")

    def value(self, request_headers: list[tuple[str, str]]) -> str | None:
        if self.static is not None:
            return self.static
        sent = [value for name, value in request_headers if name == self.request_header]
        return sent[-1] if sent else None  # the last one, as the event's single-value `headers`


@dataclass(frozen=True)
class UserPoolSpec:
    """An `AWS::Cognito::UserPool` with its app clients and groups. Each holds its resolved
    properties, which are the Cognito API's parameters of the same names (`UserPoolName` is
    CreateUserPool's `PoolName`, `EnabledMfas` its MFA configuration), less `UserPoolId`."""

    logical_id: str
    properties: dict[str, Any]
    clients: dict[str, dict[str, Any]]  # logical id -> properties
    groups: dict[str, dict[str, Any]]  # logical id -> properties

    @property
    def name(self) -> str:
        return str(self.properties["UserPoolName"])


@dataclass(frozen=True)
class GatewayResponse:
    status: int | None
    headers: dict[str, HeaderMapping]
    body: str | None

    def headers_for(self, request_headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
        """The response's headers for a request that came with `request_headers`."""
        values = {name: mapping.value(request_headers) for name, mapping in self.headers.items()}
        return [(name, value) for name, value in values.items() if value]


@dataclass
class Template:
    raw: dict[str, Any]
    parameters: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, overrides: dict[str, str] | None = None, path: Path = TEMPLATE_PATH) -> Template:
        raw = load_raw(path)
        parameters: dict[str, Any] = {}
        for name, spec in raw.get("Parameters", {}).items():
            value = (overrides or {}).get(name, spec.get("Default", ""))
            parameters[name] = value.split(",") if spec.get("Type") == "CommaDelimitedList" else value
            if parameters[name] == [""]:
                parameters[name] = []
        return cls(raw=raw, parameters=parameters)

    @property
    def resources(self) -> dict[str, Any]:
        return self.raw["Resources"]

    def of_type(self, resource_type: str) -> dict[str, Any]:
        return {key: res for key, res in self.resources.items() if res["Type"] == resource_type}

    # -- intrinsic functions --------------------------------------------------------------------
    def resolve(self, value: Any) -> Any:
        if isinstance(value, list):
            return [item for item in (self.resolve(v) for v in value) if item is not NO_VALUE]
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            ((key, arg),) = value.items()
            intrinsic = self._intrinsics.get(key)
            if intrinsic is not None:
                return intrinsic(arg)
        return {key: self.resolve(item) for key, item in value.items()}

    @property
    def _intrinsics(self) -> dict[str, Callable[[Any], Any]]:
        """The intrinsic functions the local stack resolves, by name."""
        return {
            "Ref": self._ref,
            "Fn::Sub": self._sub,
            "Fn::Select": self._select,
            "Fn::Split": self._split,
            "Fn::Join": self._join,
            "Fn::If": self._if,
            "Fn::Equals": self._equals,
            "Fn::Not": self._not,
        }

    def _select(self, arg: Any) -> Any:
        index, items = self.resolve(arg)
        return items[int(index)]

    def _split(self, arg: Any) -> list[str]:
        separator, text = self.resolve(arg)
        return list(text.split(separator))

    def _join(self, arg: Any) -> str:
        separator, items = self.resolve(arg)
        return str(separator.join(items))

    def _if(self, arg: Any) -> Any:
        condition, when_true, when_false = arg
        return self.resolve(when_true if self.condition(condition) else when_false)

    def _equals(self, arg: Any) -> bool:
        left, right = self.resolve(arg)
        return bool(left == right)

    def _not(self, arg: Any) -> bool:
        return not self.resolve(arg[0])

    def condition(self, name: str) -> bool:
        return bool(self.resolve(self.raw["Conditions"][name]))

    def _ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return NO_VALUE
        if name in LOCAL_PSEUDO:
            return LOCAL_PSEUDO[name]
        if name in self.parameters:
            return self.parameters[name]
        resource = self.resources[name]
        properties = resource.get("Properties", {})
        for name_property in ("TableName", "Name", "FunctionName", "LayerName"):
            if name_property in properties:
                return self.resolve(properties[name_property])
        return f"local-{name}"

    def _sub(self, arg: Any) -> str:
        text, variables = (arg, {}) if isinstance(arg, str) else (arg[0], self.resolve(arg[1]))

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            return str(variables[name]) if name in variables else str(self._ref(name))

        return re.sub(r"\$\{([A-Za-z0-9_:.]+)\}", replace, text)

    # -- what the local stack needs -------------------------------------------------------------
    def functions(self) -> dict[str, dict[str, Any]]:
        return {key: res["Properties"] for key, res in self.of_type("AWS::Serverless::Function").items()}

    def routes(self) -> list[Route]:
        routes = []
        for logical_id, properties in self.functions().items():
            for event in properties.get("Events", {}).values():
                if event["Type"] == "Api":
                    routes.append(
                        Route(
                            function=logical_id,
                            handler=properties["Handler"],
                            method=event["Properties"]["Method"].upper(),
                            path=event["Properties"]["Path"],
                        )
                    )
        return routes

    def queue_of(self, value: Any) -> str:
        """The logical id of the queue that `!GetAtt <Queue>.Arn` names."""
        reference = value.get("Fn::GetAtt") if isinstance(value, dict) else None
        if (
            not isinstance(reference, list)
            or reference[1:] != ["Arn"]
            or self.resources.get(reference[0], {}).get("Type") != "AWS::SQS::Queue"
        ):
            raise ValueError(f"the local stack reaches queues only, as !GetAtt <Queue>.Arn; got {value!r}")
        return str(reference[0])

    def queues(self) -> list[QueueSpec]:
        queues = []
        for logical_id, resource in self.of_type("AWS::SQS::Queue").items():
            properties = resource.get("Properties", {})
            redrive = properties.get("RedrivePolicy")
            queues.append(
                QueueSpec(
                    logical_id=logical_id,
                    name=str(self.resolve(properties.get("QueueName", logical_id))),
                    visibility_timeout=int(
                        properties.get("VisibilityTimeout", SQS_DEFAULT_VISIBILITY_TIMEOUT)
                    ),
                    dead_letter_queue=self.queue_of(redrive["deadLetterTargetArn"]) if redrive else None,
                    max_receive_count=int(redrive["maxReceiveCount"]) if redrive else None,
                )
            )
        return queues

    def rules(self) -> list[RuleSpec]:
        rules = []
        for logical_id, resource in self.of_type("AWS::Events::Rule").items():
            properties = resource["Properties"]
            rules.append(
                RuleSpec(
                    logical_id=logical_id,
                    name=str(self.resolve(properties.get("Name", logical_id))),
                    bus_name=str(self.resolve(properties.get("EventBusName", "default"))),
                    pattern=self.resolve(properties["EventPattern"]),
                    targets=tuple(self._rule_target(target) for target in properties.get("Targets", [])),
                )
            )
        return rules

    def _rule_target(self, target: dict[str, Any]) -> RuleTarget:
        dead_letters = target.get("DeadLetterConfig", {}).get("Arn")
        return RuleTarget(
            id=str(target["Id"]),
            queue=self.queue_of(target["Arn"]),
            dead_letter_queue=self.queue_of(dead_letters) if dead_letters else None,
            retry_policy=self.resolve(target["RetryPolicy"]) if "RetryPolicy" in target else None,
        )

    def event_source_mappings(self) -> list[EventSourceMapping]:
        """The functions' `Type: SQS` events."""
        mappings = []
        for logical_id, properties in self.functions().items():
            for event_name, event in properties.get("Events", {}).items():
                if event["Type"] != "SQS":
                    continue
                settings = event["Properties"]
                mappings.append(
                    EventSourceMapping(
                        function=logical_id,
                        handler=properties["Handler"],
                        name=f"{logical_id}-{event_name}",
                        queue=self.queue_of(settings["Queue"]),
                        batch_size=int(settings.get("BatchSize", SQS_EVENT_DEFAULT_BATCH_SIZE)),
                        batching_window=int(settings.get("MaximumBatchingWindowInSeconds", 0)),
                        report_batch_item_failures="ReportBatchItemFailures"
                        in settings.get("FunctionResponseTypes", []),
                    )
                )
        return mappings

    def schedules(self) -> list[ScheduleSpec]:
        """The functions' `Type: Schedule` events."""
        schedules = []
        for logical_id, properties in self.functions().items():
            for event_name, event in properties.get("Events", {}).items():
                if event["Type"] != "Schedule":
                    continue
                settings = event["Properties"]
                expression = str(self.resolve(settings["Schedule"]))
                schedules.append(
                    ScheduleSpec(
                        function=logical_id,
                        handler=properties["Handler"],
                        name=f"{logical_id}-{event_name}",
                        expression=expression,
                        period_seconds=rate_seconds(expression),
                        enabled=bool(self.resolve(settings.get("Enabled", True))),
                    )
                )
        return schedules

    def tables(self) -> list[TableSpec]:
        tables = []
        for logical_id, resource in self.of_type("AWS::DynamoDB::Table").items():
            properties = resource["Properties"]
            tables.append(
                TableSpec(
                    logical_id=logical_id,
                    name=self.resolve(properties["TableName"]),
                    attributes={
                        a["AttributeName"]: a["AttributeType"] for a in properties["AttributeDefinitions"]
                    },
                    keys=tuple((k["AttributeName"], k["KeyType"]) for k in properties["KeySchema"]),
                    indexes=tuple(
                        Index(
                            name=index["IndexName"],
                            keys=tuple((k["AttributeName"], k["KeyType"]) for k in index["KeySchema"]),
                        )
                        for index in properties.get("GlobalSecondaryIndexes", [])
                    ),
                )
            )
        return tables

    def user_pool(self) -> UserPoolSpec:
        """The template's one user pool (the staff's), with the clients and groups that name it."""
        ((logical_id, resource),) = self.of_type("AWS::Cognito::UserPool").items()

        def of_pool(resource_type: str) -> dict[str, dict[str, Any]]:
            members = {}
            for member_id, member in self.of_type(resource_type).items():
                properties = dict(member["Properties"])
                if properties.pop("UserPoolId") != {"Ref": logical_id}:
                    raise ValueError(f"{member_id} must name its pool as !Ref {logical_id}")
                members[member_id] = self.resolve(properties)
            return members

        return UserPoolSpec(
            logical_id=logical_id,
            properties=self.resolve(resource["Properties"]),
            clients=of_pool("AWS::Cognito::UserPoolClient"),
            groups=of_pool("AWS::Cognito::UserPoolGroup"),
        )

    def bus_names(self) -> list[str]:
        return [
            self.resolve(res["Properties"]["Name"]) for res in self.of_type("AWS::Events::EventBus").values()
        ]

    def environment(self) -> dict[str, str]:
        """The functions' environment (Globals), resolved for the local stack."""
        variables = self.raw["Globals"]["Function"]["Environment"]["Variables"]
        resolved = {name: self.resolve(value) for name, value in variables.items()}
        return {name: str(value) for name, value in resolved.items() if value is not NO_VALUE}

    def function_environment(self, logical_id: str) -> dict[str, str]:
        """The variables one function sets in its own Environment (over the Globals' ones),
        resolved for the local stack."""
        variables = self.functions()[logical_id].get("Environment", {}).get("Variables", {})
        resolved = {name: self.resolve(value) for name, value in variables.items()}
        return {name: str(value) for name, value in resolved.items() if value is not NO_VALUE}

    def outputs_of_variables(self) -> dict[str, str]:
        """Function variable -> the stack output that holds its value once deployed: each output
        that is the Ref of a table, the bus, the secret or the user pool and its client, paired with
        the variable that names the same resource. `crm ... --stack NAME` reads the names from
        these outputs."""
        named_types = (
            "AWS::DynamoDB::Table",
            "AWS::Events::EventBus",
            "AWS::SecretsManager::Secret",
            "AWS::Cognito::UserPool",
            "AWS::Cognito::UserPoolClient",
        )
        environment = self.environment()
        pairs = {}
        for key, output in self.raw.get("Outputs", {}).items():
            value = output.get("Value")
            target = str(value.get("Ref")) if isinstance(value, dict) else ""
            if self.resources.get(target, {}).get("Type") not in named_types:
                continue
            name = self.resolve(value)
            pairs.update({variable: key for variable, held in environment.items() if held == name})
        return pairs

    def gateway_responses(self) -> dict[str, GatewayResponse]:
        api = next(iter(self.of_type("AWS::Serverless::Api").values()))["Properties"]
        responses = {}
        for kind, spec in api.get("GatewayResponses", {}).items():
            headers = self.resolve(spec.get("ResponseParameters", {}).get("Headers", {}))
            responses[kind] = GatewayResponse(
                status=int(spec["StatusCode"]) if "StatusCode" in spec else None,
                headers={name: HeaderMapping.parse(kind, name, value) for name, value in headers.items()},
                body=spec.get("ResponseTemplates", {}).get("application/json"),
            )
        return responses
