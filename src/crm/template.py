"""Reads template.yaml: the routes, tables, bus rules and environment the local stack needs.

Only the intrinsic functions the template uses are resolved (Ref, Sub, Select, Split, Join, If,
Equals, Not), with parameters taken from their defaults or from overrides, and `AWS::*` pseudo
parameters given local values.
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


@dataclass(frozen=True)
class RuleSpec:
    function: str
    handler: str
    name: str
    bus_name: str
    pattern: dict[str, Any]


@dataclass(frozen=True)
class GatewayResponse:
    status: int | None
    headers: dict[str, str]
    body: str | None


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

    def rules(self) -> list[RuleSpec]:
        rules = []
        for logical_id, properties in self.functions().items():
            for event_name, event in properties.get("Events", {}).items():
                if event["Type"] == "EventBridgeRule":
                    rules.append(
                        RuleSpec(
                            function=logical_id,
                            handler=properties["Handler"],
                            name=f"{logical_id}-{event_name}",
                            bus_name=self.resolve(event["Properties"]["EventBusName"]),
                            pattern=event["Properties"]["Pattern"],
                        )
                    )
        return rules

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

    def bus_names(self) -> list[str]:
        return [
            self.resolve(res["Properties"]["Name"]) for res in self.of_type("AWS::Events::EventBus").values()
        ]

    def environment(self) -> dict[str, str]:
        """The functions' environment (Globals), resolved for the local stack."""
        variables = self.raw["Globals"]["Function"]["Environment"]["Variables"]
        resolved = {name: self.resolve(value) for name, value in variables.items()}
        return {name: str(value) for name, value in resolved.items() if value is not NO_VALUE}

    def gateway_responses(self) -> dict[str, GatewayResponse]:
        api = next(iter(self.of_type("AWS::Serverless::Api").values()))["Properties"]
        responses = {}
        for kind, spec in api.get("GatewayResponses", {}).items():
            headers = self.resolve(spec.get("ResponseParameters", {}).get("Headers", {}))
            responses[kind] = GatewayResponse(
                status=int(spec["StatusCode"]) if "StatusCode" in spec else None,
                # Header values are API Gateway literals: quoted strings.
                headers={name: value.strip("'") for name, value in headers.items()},
                body=spec.get("ResponseTemplates", {}).get("application/json"),
            )
        return responses
