"""The reference dashboard's configuration (config.json) and Content-Security-Policy, made from a
deployed stack's outputs or from the local pool, and what the page's script never does with a
token (no storage, no cookie)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from crm.cli import main
from crm.dashboard import (
    DASHBOARD_DIR,
    DashboardConfig,
    content_security_policy,
    index_html,
    write_dashboard,
)

OUTPUTS = {
    "ApiUrl": "https://a1b2c3.execute-api.eu-west-1.amazonaws.com/dev",
    "UserPoolIssuer": "https://cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbCdEf123",
    "UserPoolClientId": "4example0client0id000000000",
}
LOCAL = DashboardConfig(
    api_url="http://127.0.0.1:3000", cognito_endpoint="http://127.0.0.1:8000/", client_id="local-client"
)


def policy_of(page: str) -> dict[str, list[str]]:
    found = re.search(r'<meta http-equiv="Content-Security-Policy" content="([^"]*)">', page)
    assert found, "no Content-Security-Policy meta element"
    return {name: values for name, *values in (part.split() for part in found.group(1).split("; "))}


def test_a_stacks_outputs_name_the_api_cognitos_endpoint_and_the_client() -> None:
    # When
    config = DashboardConfig.from_stack_outputs(OUTPUTS)
    # Then the endpoint is the issuer's origin: where Cognito's JSON API answers in that region
    assert config == DashboardConfig(
        api_url="https://a1b2c3.execute-api.eu-west-1.amazonaws.com/dev",
        cognito_endpoint="https://cognito-idp.eu-west-1.amazonaws.com/",
        client_id="4example0client0id000000000",
    )
    assert json.loads(config.as_json()) == {
        "api": "https://a1b2c3.execute-api.eu-west-1.amazonaws.com/dev",
        "cognitoEndpoint": "https://cognito-idp.eu-west-1.amazonaws.com/",
        "clientId": "4example0client0id000000000",
    }


def test_a_stack_without_the_pools_outputs_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="UserPoolIssuer, UserPoolClientId"):
        DashboardConfig.from_stack_outputs({"ApiUrl": OUTPUTS["ApiUrl"]})


def test_the_page_may_connect_only_to_itself_the_api_and_cognito() -> None:
    # Given the page as committed: requests to its own origin only
    committed = policy_of((DASHBOARD_DIR / "index.html").read_text(encoding="utf-8"))
    assert committed["connect-src"] == ["'self'"]
    # When it is configured
    policy = policy_of(index_html(DashboardConfig.from_stack_outputs(OUTPUTS)))
    # Then it adds the API's origin and Cognito's, and the rest stays as strict
    assert policy["connect-src"] == [
        "'self'",
        "https://a1b2c3.execute-api.eu-west-1.amazonaws.com",
        "https://cognito-idp.eu-west-1.amazonaws.com",
    ]
    assert {name: values for name, values in policy.items() if name != "connect-src"} == {
        name: values for name, values in committed.items() if name != "connect-src"
    }
    assert policy["default-src"] == ["'none'"]
    assert policy["script-src"] == ["'self'"]
    assert policy["form-action"] == ["'none'"]
    assert "unsafe" not in content_security_policy(LOCAL)


def test_the_page_runs_no_inline_script_and_keeps_no_token() -> None:
    page = (DASHBOARD_DIR / "index.html").read_text(encoding="utf-8")
    script = (DASHBOARD_DIR / "app.js").read_text(encoding="utf-8")
    # Every script is a file of its own origin (the policy allows no other)
    assert re.findall(r"<script[^>]*>", page) == ['<script src="app.js" defer>']
    assert " style=" not in page
    # And the tokens live in the script's memory only
    for kept in ("localStorage", "sessionStorage", "document.cookie", "indexedDB"):
        assert kept not in script
    # And no field asks for a token
    assert not re.search(r"<input[^>]*token", page, re.IGNORECASE)


def test_the_dashboard_is_written_configured_into_a_directory(tmp_path: Path) -> None:
    # When
    written = write_dashboard(LOCAL, tmp_path / "site")
    # Then every file is there, the script and stylesheet as committed
    assert sorted(path.name for path in written) == ["app.js", "config.json", "index.html", "style.css"]
    for name in ("app.js", "style.css"):
        assert (tmp_path / "site" / name).read_bytes() == (DASHBOARD_DIR / name).read_bytes()
    assert json.loads((tmp_path / "site" / "config.json").read_text())["clientId"] == "local-client"
    assert policy_of((tmp_path / "site" / "index.html").read_text())["connect-src"] == [
        "'self'",
        "http://127.0.0.1:3000",
        "http://127.0.0.1:8000",
    ]


TEMPLATE = {
    "Resources": {"Topic": {"Type": "AWS::SNS::Topic"}},
    "Outputs": {name: {"Value": value} for name, value in OUTPUTS.items()},
}


def test_crm_dashboard_writes_the_files_of_a_deployed_stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given a stack with the template's outputs
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        boto3.client("cloudformation").create_stack(StackName="crm-dev", TemplateBody=json.dumps(TEMPLATE))
        # When
        code = main(["dashboard", "--stack", "crm-dev", "--out", str(tmp_path / "site")])
        missing = main(["dashboard", "--stack", "nosuch", "--out", str(tmp_path / "other")])
    # Then its config.json and policy are the stack's
    assert code == 0
    config = json.loads((tmp_path / "site" / "config.json").read_text())
    assert config["cognitoEndpoint"] == "https://cognito-idp.eu-west-1.amazonaws.com/"
    assert (
        "https://cognito-idp.eu-west-1.amazonaws.com"
        in policy_of((tmp_path / "site" / "index.html").read_text())["connect-src"]
    )
    # And a stack that does not exist is said in one line, nothing written
    assert missing == 2
    assert "crm dashboard: stack nosuch" in capsys.readouterr().err
    assert not (tmp_path / "other").exists()
