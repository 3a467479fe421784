"""The staff user pool in template.yaml: its settings are the ones the README and the local stack
state, and the local stack can create it as written."""

from __future__ import annotations

import re
from typing import Any

import botocore.session
import pytest
from botocore.validate import ParamValidator

from crm.seed import DEMO_PASSWORDS, STAFF_ROLES, demo_staff
from crm.stack import user_pool_request
from crm.template import Template
from shared.auth import STAFF_TOKEN_MAX_SECONDS
from shared.security import Role

TEMPLATE = Template.load({"Stage": "test"})
POOL = TEMPLATE.user_pool()
HOURS = {"seconds": 1, "minutes": 60, "hours": 3600, "days": 86400}


def the_client() -> dict[str, Any]:
    (client,) = POOL.clients.values()
    return client


def lifetime_seconds(client: dict[str, Any], token: str) -> int:
    """A token's validity as the client states it, in seconds (Cognito's default unit for each)."""
    default_unit = "days" if token == "RefreshToken" else "hours"
    unit = client.get("TokenValidityUnits", {}).get(token, default_unit)
    return int(client[f"{token}Validity"]) * HOURS[unit]


def test_staff_accounts_are_created_by_an_administrator_only_and_sign_in_with_their_email() -> None:
    resource = TEMPLATE.resources[POOL.logical_id]
    properties = POOL.properties
    assert properties["AdminCreateUserConfig"]["AllowAdminCreateUserOnly"] is True
    assert properties["UsernameAttributes"] == ["email"]
    assert properties["AutoVerifiedAttributes"] == ["email"]
    assert properties["AccountRecoverySetting"]["RecoveryMechanisms"] == [
        {"Name": "verified_email", "Priority": 1}
    ]
    assert properties["MfaConfiguration"] == "OPTIONAL"
    assert properties["EnabledMfas"] == ["SOFTWARE_TOKEN_MFA"]
    assert resource["DeletionPolicy"] == resource["UpdateReplacePolicy"] == "Retain"
    assert POOL.name == "crm-test-staff"


def test_the_password_policy_asks_for_twelve_characters_of_every_kind() -> None:
    assert POOL.properties["Policies"]["PasswordPolicy"] == {
        "MinimumLength": 12,
        "RequireUppercase": True,
        "RequireLowercase": True,
        "RequireNumbers": True,
        "RequireSymbols": True,
        "TemporaryPasswordValidityDays": 3,
    }


def test_the_dashboard_client_is_public_and_signs_in_with_a_password_or_srp() -> None:
    client = the_client()
    assert client["GenerateSecret"] is False
    assert client["ExplicitAuthFlows"] == [
        "ALLOW_USER_PASSWORD_AUTH",
        "ALLOW_USER_SRP_AUTH",
        "ALLOW_REFRESH_TOKEN_AUTH",
    ]
    assert client["PreventUserExistenceErrors"] == "ENABLED"
    assert client["ClientName"] == "crm-test-dashboard"


def test_tokens_last_as_long_as_the_api_accepts_and_a_sign_in_a_working_day() -> None:
    client = the_client()
    assert lifetime_seconds(client, "AccessToken") == 3600
    assert lifetime_seconds(client, "IdToken") == 3600 == STAFF_TOKEN_MAX_SECONDS
    assert lifetime_seconds(client, "RefreshToken") == 12 * 3600


def test_there_is_a_group_for_each_staff_role_and_none_for_vendors() -> None:
    names = [group["GroupName"] for group in POOL.groups.values()]
    assert names == list(STAFF_ROLES) == [Role.ADMIN, Role.MANAGER, Role.AGENT]
    assert Role.VENDOR not in names


def test_the_pool_id_client_id_and_issuer_are_stack_outputs() -> None:
    outputs = TEMPLATE.raw["Outputs"]
    assert outputs["UserPoolId"]["Value"] == {"Ref": POOL.logical_id}
    assert outputs["UserPoolClientId"]["Value"] == {"Ref": next(iter(POOL.clients))}
    assert outputs["UserPoolIssuer"]["Value"] == {
        "Fn::Sub": "https://cognito-idp.${AWS::Region}.amazonaws.com/${UserPool}"
    }


@pytest.mark.parametrize(
    ("operation", "request_"),
    [
        ("CreateUserPool", user_pool_request(POOL)),
        ("CreateUserPoolClient", {"UserPoolId": "us-east-1_local", **the_client()}),
        *(("CreateGroup", {"UserPoolId": "us-east-1_local", **group}) for group in POOL.groups.values()),
    ],
)
def test_the_local_stack_makes_valid_cognito_requests_from_the_template(
    operation: str, request_: dict[str, Any]
) -> None:
    # The local stack passes the template's properties on as the API's parameters: one the API
    # does not know would fail only when `crm serve` starts.
    model = botocore.session.get_session().get_service_model("cognito-idp").operation_model(operation)
    report = ParamValidator().validate(request_, model.input_shape)
    assert not report.has_errors(), report.generate_report()


@pytest.mark.parametrize(("user_id", "password"), sorted(DEMO_PASSWORDS.items()))
def test_each_demo_password_meets_the_password_policy(user_id: str, password: str) -> None:
    policy = POOL.properties["Policies"]["PasswordPolicy"]
    assert len(password) >= policy["MinimumLength"]
    assert re.search("[A-Z]", password)
    assert re.search("[a-z]", password)
    assert re.search("[0-9]", password)
    assert re.search(r"[\^$*.\[\]{}()?\"!@#%&/\\,><':;|_~`=+\-]", password)  # Cognito's symbols


def test_every_demo_staff_user_has_a_password_and_a_group() -> None:
    staff = demo_staff()
    assert {user.role for user, _ in staff} == set(STAFF_ROLES)
    assert {user.user_id for user, _ in staff} == set(DEMO_PASSWORDS)
