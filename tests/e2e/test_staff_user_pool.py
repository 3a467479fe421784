"""The staff user pool of `crm serve`: created on the local AWS endpoint from template.yaml, with
the demo staff (README, "Staff sign-in") able to sign in with their documented passwords."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests

from crm.stack import local_template
from tests.e2e.conftest import LocalServer

PROJECT_ROOT = Path(__file__).resolve().parents[2]
BANNER_POOL = re.compile(r"staff user pool: (?P<pool>\S+)\s+dashboard client: (?P<client>\S+)")
README_ACCOUNT = re.compile(
    r"^\| `(?P<email>[^`]+@crm\.example\.com)` \| `(?P<password>[^`]+)` \| (?P<group>\w+) \|$"
)


def documented_accounts() -> list[tuple[str, str, str]]:
    """(email, password, group) of each demo staff account the README lists."""
    lines = (PROJECT_ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    return [
        found.group("email", "password", "group") for line in lines if (found := README_ACCOUNT.match(line))
    ]


def pool_of(server: LocalServer) -> tuple[str, str]:
    for line in server.banner:
        if found := BANNER_POOL.search(line):
            return found.group("pool"), found.group("client")
    raise AssertionError("no user pool in the banner:\n" + "\n".join(server.banner))


def cognito(server: LocalServer) -> Any:
    return server.boto("cognito-idp")


def sign_in(server: LocalServer, client_id: str, email: str, password: str) -> dict[str, Any]:
    response = cognito(server).initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": password},
    )
    result: dict[str, Any] = response["AuthenticationResult"]
    return result


def test_the_readme_documents_every_demo_staff_account() -> None:
    groups = {email.split("@")[0]: group for email, _, group in documented_accounts()}
    assert groups == {
        "demo-admin": "admin",
        "demo-manager": "manager",
        **{f"demo-agent-{n}": "agent" for n in range(1, 6)},
    }


def test_the_pool_has_the_templates_policy_a_public_client_and_the_role_groups(server: LocalServer) -> None:
    # Given
    pool_id, client_id = pool_of(server)
    spec = local_template({}).user_pool()
    client = cognito(server)
    # When
    pool = client.describe_user_pool(UserPoolId=pool_id)["UserPool"]
    app = client.describe_user_pool_client(UserPoolId=pool_id, ClientId=client_id)["UserPoolClient"]
    groups = client.list_groups(UserPoolId=pool_id)["Groups"]
    # Then
    assert pool["Name"] == spec.name == "crm-local-staff"
    assert pool["Policies"]["PasswordPolicy"] == spec.properties["Policies"]["PasswordPolicy"]
    assert pool["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert pool["MfaConfiguration"] == "OPTIONAL"
    assert pool["UsernameAttributes"] == ["email"]
    assert "ClientSecret" not in app
    assert sorted(app["ExplicitAuthFlows"]) == sorted(
        ["ALLOW_USER_PASSWORD_AUTH", "ALLOW_USER_SRP_AUTH", "ALLOW_REFRESH_TOKEN_AUTH"]
    )
    assert {group["GroupName"] for group in groups} == {"admin", "manager", "agent"}


@pytest.mark.parametrize(("email", "password", "group"), documented_accounts())
def test_each_demo_staff_user_signs_in_with_the_documented_password(
    server: LocalServer, email: str, password: str, group: str
) -> None:
    # Given
    pool_id, client_id = pool_of(server)
    issuer = f"https://cognito-idp.us-east-1.amazonaws.com/{pool_id}"
    keys = requests.get(f"{server.aws_endpoint}/{pool_id}/.well-known/jwks.json", timeout=10).json()
    # When
    tokens = sign_in(server, client_id, email, password)
    # Then: an ID token the pool's keys verify, naming the user and its role's group
    header = jwt.get_unverified_header(tokens["IdToken"])
    key = jwt.PyJWKSet.from_dict(keys)[header["kid"]]
    claims = jwt.decode(
        tokens["IdToken"],
        key.key,
        algorithms=["RS256"],
        audience=client_id,
        issuer=issuer,
        options={"require": ["exp", "iat", "sub"]},
    )
    assert claims["token_use"] == "id"
    assert claims["email"] == email
    assert claims["cognito:groups"] == [group]
    assert claims["exp"] - claims["iat"] == 3600
    # and the user record, still the source of the role, holds the account's sub
    (users,) = [table.name for table in local_template({}).tables() if table.logical_id == "UsersTable"]
    record = server.dynamodb().get_item(  # type: ignore[attr-defined]
        TableName=users, Key={"user_id": {"S": email.split("@")[0]}}, ConsistentRead=True
    )["Item"]
    assert record["role"]["S"] == group
    assert record["email"]["S"] == email
    assert record["cognito_sub"]["S"] == claims["sub"]


def test_a_wrong_password_is_refused(server: LocalServer) -> None:
    # Given
    _, client_id = pool_of(server)
    email, password, _ = documented_accounts()[0]
    client = cognito(server)
    # When / Then
    with pytest.raises(client.exceptions.NotAuthorizedException):
        sign_in(server, client_id, email, password + "x")
