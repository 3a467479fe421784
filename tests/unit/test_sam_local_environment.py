"""`sam local start-api` and `sam local invoke` give each function an environment it can start
with: resolved by SAM CLI's own code (its stack and function providers, then the environment of a
local invocation, as `sam local` builds them before starting a container), with the parameter
overrides the README documents, against the names `crm serve` creates."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import boto3
import pytest
from samcli.commands.local.lib.local_lambda import LocalLambdaRunner
from samcli.lib.providers.provider import Function
from samcli.lib.providers.sam_function_provider import SamFunctionProvider
from samcli.lib.providers.sam_stack_provider import SamLocalStackProvider

from crm.stack import LOCAL_JWT_SECRET, local_template
from shared.config import Settings

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_FILE = PROJECT_ROOT / "template.yaml"
REGION = "us-east-1"


def readme_overrides() -> dict[str, str]:
    """The `--parameter-overrides` of the README's `sam local` commands (its OVERRIDES line)."""
    readme = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"^OVERRIDES=(.+)$", readme, flags=re.M)
    assert found, "the README's sam local section defines no OVERRIDES"
    (value,) = shlex.split(found.group(1))
    return dict(pair.split("=", 1) for pair in value.split())


def sam_local_environments(overrides: dict[str, str]) -> dict[str, dict[str, str]]:
    """Each function's environment as `sam local` resolves it: function logical id -> variables."""
    stacks, _ = SamLocalStackProvider.get_stacks(
        str(TEMPLATE_FILE), parameter_overrides=overrides, global_parameter_overrides={"AWS::Region": REGION}
    )
    provider = SamFunctionProvider(stacks)
    runner = LocalLambdaRunner(
        local_runtime=None,  # type: ignore[arg-type]  # only the environment is built, no container
        function_provider=provider,
        cwd=str(PROJECT_ROOT),
        real_path=str(PROJECT_ROOT),
        aws_region=REGION,
    )
    functions: list[Function] = list(provider.get_all())
    return {function.name: runner._make_env_vars(function).resolve() for function in functions}


@pytest.fixture(autouse=True)
def clean_shell(monkeypatch: pytest.MonkeyPatch) -> None:
    # `sam local` lets the shell's value of a template variable win over the template's.
    for name in local_template({}).environment():
        monkeypatch.delenv(name, raising=False)


def test_readme_overrides_name_the_local_stage_and_endpoint() -> None:
    overrides = readme_overrides()
    assert overrides["Stage"] == "local"
    assert overrides["LocalJwtSecret"] == LOCAL_JWT_SECRET
    assert overrides["LocalEndpointUrl"].startswith("http://")


def test_every_function_starts_under_sam_local_with_the_readme_overrides() -> None:
    # Given the README's overrides and what `crm serve` creates
    overrides = readme_overrides()
    served = local_template({})
    tables = {table.name for table in served.tables()}
    # When SAM CLI resolves each function's environment
    environments = sam_local_environments(overrides)
    # Then every function gets valid settings naming the tables and the bus of crm serve
    assert set(environments) == set(served.functions())
    for function, env in environments.items():
        settings = Settings.from_env(env)
        named = {getattr(settings, field) for field in Settings.model_fields if field.endswith("_table")}
        assert named == tables, function
        assert [settings.event_bus_name] == served.bus_names(), function
        assert settings.jwt_secret is not None, function
        assert settings.jwt_secret.get_secret_value() == LOCAL_JWT_SECRET
        assert env["AWS_ENDPOINT_URL"] == overrides["LocalEndpointUrl"]


def test_without_the_local_overrides_sam_local_leaves_the_aws_defaults_unset() -> None:
    # Given only a stage, as a deployment sets it
    environments = sam_local_environments({"Stage": "dev"})
    # Then each function still starts: no signing secret of its own, the AWS endpoints
    for function, env in environments.items():
        settings = Settings.from_env(env)
        assert settings.jwt_secret is None, function
        assert settings.leads_table == "crm-dev-leads"
        assert env["AWS_ENDPOINT_URL"] == ""


def test_empty_aws_endpoint_url_leaves_boto3_on_the_aws_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a deployment's environment: the template sets AWS_ENDPOINT_URL (sam local only) to ""
    monkeypatch.setenv("AWS_ENDPOINT_URL", "")
    monkeypatch.delenv("AWS_ENDPOINT_URL_DYNAMODB", raising=False)
    # When
    client = boto3.client(
        "dynamodb", region_name="eu-west-1", aws_access_key_id="k", aws_secret_access_key="s"
    )
    # Then
    assert client.meta.endpoint_url == "https://dynamodb.eu-west-1.amazonaws.com"
