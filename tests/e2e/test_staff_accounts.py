"""Staff accounts over HTTP on `crm serve`: an agent or a manager created through the API has its
user pool account on the local AWS endpoint (in its role's group, naming its user record), signs in
with the temporary password and must set a new one; disabling it disables the account and its
refresh tokens, enabling it lets it sign in again."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import LocalServer, eventually, start_server, stop_server
from tests.e2e.test_staff_user_pool import cognito, pool_of
from tests.helpers import staff_token

NEW_PASSWORD = "Chosen-Passw0rd!"
USER_CACHE_SECONDS = 2  # how long the API may still accept a disabled user's token (at most 60)


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    """A server of its own: these tests add staff, which other modules' counts do not expect."""
    local = start_server({"USER_CACHE_SECONDS": str(USER_CACHE_SECONDS)})
    yield local
    stop_server(local)


def unique_email() -> str:
    return f"staff-{uuid.uuid4().hex[:12]}@crm.example.com"


def account(server: LocalServer, email: str) -> dict[str, Any]:
    """The pool account of `email`, with its attributes by name and its groups."""
    pool_id, _ = pool_of(server)
    client = cognito(server)
    user: dict[str, Any] = client.admin_get_user(UserPoolId=pool_id, Username=email)
    user["attributes"] = {item["Name"]: item["Value"] for item in user["UserAttributes"]}
    groups = client.admin_list_groups_for_user(UserPoolId=pool_id, Username=email)["Groups"]
    user["groups"] = [group["GroupName"] for group in groups]
    return user


def first_sign_in(server: LocalServer, email: str, temporary_password: str) -> dict[str, Any]:
    """Signs in with the temporary password, answers the new-password challenge; the tokens."""
    _, client_id = pool_of(server)
    client = cognito(server)
    challenge = client.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": temporary_password},
    )
    assert challenge["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    answered = client.respond_to_auth_challenge(
        ClientId=client_id,
        ChallengeName="NEW_PASSWORD_REQUIRED",
        Session=challenge["Session"],
        ChallengeResponses={"USERNAME": email, "NEW_PASSWORD": NEW_PASSWORD},
    )
    tokens: dict[str, Any] = answered["AuthenticationResult"]
    return tokens


def create(server: LocalServer, route: str, email: str) -> Any:
    response = server.request(
        "POST", route, token=staff_token("demo-admin"), json={"name": "Sam Staff", "email": email}
    )
    assert response.status_code == 201, response.text
    assert response.headers["Cache-Control"] == "no-store"
    return response.json()


def test_a_created_agent_has_a_pool_account_in_group_agent_and_disabling_it_disables_the_account(
    server: LocalServer,
) -> None:
    # Given an agent created through the API
    email = unique_email()
    created = create(server, "/agents", email)
    # Then its account names its record, is in group agent, and waits for a new password
    user = account(server, email)
    assert user["attributes"]["custom:user_id"] == created["user_id"]
    assert user["attributes"]["email"] == email
    assert user["groups"] == ["agent"]
    assert user["Enabled"] is True
    assert user["UserStatus"] == "FORCE_CHANGE_PASSWORD"
    # and the agent signs in with the temporary password, then its own
    tokens = first_sign_in(server, email, created["temporary_password"])
    own_record = f"/agents/{created['user_id']}"
    assert server.get(own_record, tokens["IdToken"]).status_code == 200
    # When it is disabled
    disabled = server.request(
        "PATCH", f"/agents/{created['user_id']}", token=staff_token("demo-admin"), json={"status": "disabled"}
    )
    # Then the API refuses its ID token once the user record's cache expires (USER_CACHE_SECONDS,
    # at most 60), its account is disabled and its refresh token no longer works
    assert disabled.status_code == 200, disabled.text
    assert eventually(lambda: server.get(own_record, tokens["IdToken"]).status_code, 401, seconds=60) == 401
    assert account(server, email)["Enabled"] is False
    _, client_id = pool_of(server)
    client = cognito(server)
    with pytest.raises(client.exceptions.NotAuthorizedException):
        client.initiate_auth(
            ClientId=client_id,
            AuthFlow="REFRESH_TOKEN_AUTH",
            AuthParameters={"REFRESH_TOKEN": tokens["RefreshToken"]},
        )
    # When it is enabled again, it can sign in again
    enabled = server.request(
        "PATCH", f"/agents/{created['user_id']}", token=staff_token("demo-admin"), json={"status": "active"}
    )
    assert enabled.status_code == 200, enabled.text
    assert account(server, email)["Enabled"] is True
    signed_in = client.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": NEW_PASSWORD},
    )
    assert signed_in["AuthenticationResult"]["IdToken"]


def test_a_created_manager_has_a_pool_account_in_group_manager(server: LocalServer) -> None:
    email = unique_email()
    created = create(server, "/managers", email)
    user = account(server, email)
    assert user["groups"] == ["manager"]
    assert user["attributes"]["custom:user_id"] == created["user_id"]
    disabled = server.request(
        "PATCH",
        f"/managers/{created['user_id']}",
        token=staff_token("demo-admin"),
        json={"status": "disabled"},
    )
    assert disabled.status_code == 200, disabled.text
    assert account(server, email)["Enabled"] is False


def test_an_email_with_a_staff_account_is_409_email_taken(server: LocalServer) -> None:
    # Given
    email = unique_email()
    create(server, "/agents", email)
    agents = server.get("/agents", token=staff_token("demo-admin")).json()["data"]
    # When: the demo admin's own email, and the new agent's, in upper case
    taken = [
        server.request(
            "POST", route, token=staff_token("demo-admin"), json={"name": "Twice", "email": address}
        )
        for route, address in (("/managers", "demo-admin@crm.example.com"), ("/agents", email.upper()))
    ]
    # Then
    for response in taken:
        assert response.status_code == 409, response.text
        assert response.json()["error"]["code"] == "EMAIL_TAKEN"
    assert server.get("/agents", token=staff_token("demo-admin")).json()["data"] == agents
