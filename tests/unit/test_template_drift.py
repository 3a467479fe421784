"""template.yaml is the single source of truth: these tests fail when a route, table, index,
setting or build target exists on one side (template, code, local stack, packaging) but not the
other."""

from __future__ import annotations

import importlib
import re
import tomllib
from pathlib import Path

import pytest

from crm.stack import function_environment
from crm.template import Template
from leads import repository
from shared.config import Settings
from tests.helpers import base_env

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = Template.load({"Stage": "test"})
HTTP_METHODS = ("get", "post", "put", "patch", "delete")


def app_routes(handler: str) -> set[tuple[str, str]]:
    app = importlib.import_module(handler.rpartition(".")[0]).app
    paths = app.get_openapi_schema().paths or {}
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
    module = importlib.import_module(properties["Handler"].rpartition(".")[0])
    # When / Then
    if not hasattr(module, "app"):
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
    env = TEMPLATE.raw["Globals"]["Function"]["Environment"]["Variables"]
    referenced = {value["Ref"] for value in env.values() if isinstance(value, dict) and "Ref" in value}
    assert {table.logical_id for table in TEMPLATE.tables()} <= referenced
    assert set(TEMPLATE.of_type("AWS::Events::EventBus")) <= referenced


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


def test_layer_requirements_match_the_project_dependencies() -> None:
    def names(lines: list[str]) -> set[str]:
        return {re.split(r"[<>=\[ ;]", line.strip(), maxsplit=1)[0].lower() for line in lines if line.strip()}

    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    layer = (PROJECT_ROOT / "src" / "shared" / "requirements.txt").read_text().splitlines()
    assert names(layer) == names(project)


def test_user_indexes_in_the_template_are_the_indexes_the_code_queries() -> None:
    from shared.records import ASSIGNMENT_INDEX, ROLE_INDEX

    users = next(table for table in TEMPLATE.tables() if table.logical_id == "UsersTable")
    assert {index.name for index in users.indexes} == {ASSIGNMENT_INDEX, ROLE_INDEX}


def test_audit_indexes_in_the_template_are_the_indexes_the_code_queries() -> None:
    from stats.audit_trail import USER_INDEX

    audit = next(table for table in TEMPLATE.tables() if table.logical_id == "AuditTable")
    assert {index.name for index in audit.indexes} == {USER_INDEX}
