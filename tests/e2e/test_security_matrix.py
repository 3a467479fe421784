"""The API's security contract over real HTTP, on a `crm serve` of its own:

1. role x route x owner: every route of template.yaml, every role and, where the request names an
   owned resource (a lead, an agency, an agent, a vendor's price or report), its own and another
   owner's; one expected status per cell, in one table;
2. the JWT attack matrix against one route of every function, time claims that are not JSON
   numbers included;
3. injection-shaped values in every query and path parameter of every GET operation of the served
   OpenAPI document: a 2xx that leaks nothing, or a 4xx with the error body, never a 5xx;
4. request bodies over the shared limits on every route that takes one: 413 when too large, 400
   when nested too deep, before parsing, and audited;
5. CORS: a function never grants a disallowed origin and echoes an allowed one exactly, on every
   route and every kind of answer (preflight, 2xx, 401, 403, 404, 413), each with `Vary: Origin`;
   API Gateway's own answers echo whichever origin asked (docs/decisions.md);
6. decisions the contract leaves open: an agent records the sale amount of its own lead (and of
   no one else's); a manager changes agents but does not create them; a name search finds
   another owner's lead for staff only (docs/decisions.md).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property
from typing import Any
from urllib.parse import quote

import jwt
import pytest
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from ulid import ULID

from crm.seed import DEMO_PASSWORDS, VENDORS, demo_users
from crm.stack import find_user_pool, local_template
from crm.template import Template
from shared.auth import MAX_TOKEN_BYTES, REQUIRED_CLAIMS
from shared.dynamo import to_item
from shared.errors import MAX_BODY_BYTES, MAX_BODY_DEPTH
from tests.e2e.conftest import LocalServer, pool_sign_in, start_server, stop_server
from tests.helpers import (
    ALLOWED_ORIGIN,
    DISALLOWED_ORIGIN,
    SECOND_ORIGIN,
    TEST_SECRET,
    b64url,
    make_token,
    staff_claims,
    staff_token,
    token_claims,
)

ROUTES = Template.load().routes()
API_ROUTES = sorted({(route.method, route.path) for route in ROUTES if route.method != "ANY"})
PATHS = sorted({route.path for route in ROUTES})

# -- who calls, and whose data ---------------------------------------------------------------------
ROLES = ("anonymous", "admin", "manager", "agent", "vendor")
USERS = {"admin": "demo-admin", "manager": "demo-manager", "agent": "demo-agent-1", "vendor": "demo-vendor-1"}
OWN, OTHER = "own", "other"
OWN_AGENT, OTHER_AGENT = "demo-agent-1", "demo-agent-2"
(OWN_VENDOR, _, OWN_PRICE), (OTHER_VENDOR, _, OTHER_PRICE) = VENDORS[0], VENDORS[1]
DISABLED_USER = "sec-disabled-admin"

Cell = int | tuple[int, int]  # one status for both owners, or (own, other)


def row(*, admin: Cell, manager: Cell, agent: Cell, vendor: Cell, anonymous: Cell = 401) -> dict[str, Cell]:
    return {"anonymous": anonymous, "admin": admin, "manager": manager, "agent": agent, "vendor": vendor}


# Expected status of every route for every role; (own, other) where the request names an owned
# resource: the calling agent's or vendor's own (demo-agent-1, V001) or another's (demo-agent-2,
# V002). Staff get the same answer for both. A route of template.yaml without a row fails.
EXPECTED: dict[tuple[str, str], dict[str, Cell]] = {
    ("GET", "/leads"): row(admin=200, manager=200, agent=200, vendor=200),
    ("POST", "/leads"): row(admin=201, manager=201, agent=403, vendor=(201, 422)),
    ("GET", "/leads/{lead_id}"): row(admin=200, manager=200, agent=(200, 404), vendor=(200, 404)),
    ("PATCH", "/leads/{lead_id}"): row(admin=200, manager=200, agent=(200, 404), vendor=403),
    ("DELETE", "/leads/{lead_id}"): row(admin=204, manager=403, agent=403, vendor=403),
    # Returns: asked for by staff and the lead's agent (another agent's lead does not exist for
    # it), read by staff and the lead's vendor, decided by an admin (docs/vendor-posting.md).
    ("POST", "/leads/{lead_id}/return"): row(admin=201, manager=201, agent=(201, 404), vendor=403),
    ("GET", "/leads/{lead_id}/return"): row(admin=200, manager=200, agent=403, vendor=(200, 404)),
    ("PATCH", "/leads/{lead_id}/return"): row(admin=200, manager=403, agent=403, vendor=403),
    ("GET", "/admin/stats"): row(admin=200, manager=200, agent=403, vendor=403),
    ("GET", "/admin/analytics"): row(admin=200, manager=200, agent=403, vendor=403),
    ("GET", "/admin/audit"): row(admin=200, manager=403, agent=403, vendor=403),
    ("GET", "/admin/suppressions"): row(admin=200, manager=403, agent=403, vendor=403),
    ("POST", "/admin/suppressions"): row(admin=201, manager=403, agent=403, vendor=403),
    ("DELETE", "/admin/suppressions/{entry_id}"): row(admin=204, manager=403, agent=403, vendor=403),
    ("GET", "/agencies"): row(admin=200, manager=200, agent=403, vendor=200),
    ("POST", "/agencies"): row(admin=201, manager=403, agent=403, vendor=403),
    ("GET", "/agencies/{code}"): row(admin=200, manager=200, agent=403, vendor=(200, 404)),
    ("GET", "/agencies/{code}/returns"): row(admin=200, manager=200, agent=403, vendor=(200, 404)),
    ("PATCH", "/agencies/{code}"): row(admin=200, manager=403, agent=403, vendor=403),
    # Postbacks: a vendor manages its own endpoint and deliveries, an admin any vendor's.
    ("GET", "/agencies/{code}/webhook"): row(admin=200, manager=403, agent=403, vendor=(200, 404)),
    ("PUT", "/agencies/{code}/webhook"): row(admin=200, manager=403, agent=403, vendor=(200, 404)),
    ("DELETE", "/agencies/{code}/webhook"): row(admin=204, manager=403, agent=403, vendor=(204, 404)),
    ("GET", "/agencies/{code}/webhook/deliveries"): row(admin=200, manager=403, agent=403, vendor=(200, 404)),
    ("POST", "/agencies/{code}/webhook/deliveries/{delivery_id}/retry"): row(
        admin=202, manager=403, agent=403, vendor=(202, 404)
    ),
    ("POST", "/agencies/{code}/credentials"): row(admin=201, manager=403, agent=403, vendor=403),
    ("DELETE", "/agencies/{code}/credentials/{user_id}"): row(admin=204, manager=403, agent=403, vendor=403),
    ("GET", "/pricing"): row(admin=200, manager=200, agent=403, vendor=403),
    ("PATCH", "/pricing/settings"): row(admin=200, manager=403, agent=403, vendor=403),
    ("POST", "/pricing/quote"): row(admin=200, manager=200, agent=403, vendor=403),
    ("PUT", "/pricing/{vendor_code}"): row(admin=200, manager=403, agent=403, vendor=403),
    ("GET", "/agents"): row(admin=200, manager=200, agent=403, vendor=403),
    # Managers change agents (capacity, status, availability) but do not create users: creating
    # one is user administration, which SPEC section 4 keeps from managers (docs/decisions.md).
    ("POST", "/agents"): row(admin=201, manager=403, agent=403, vendor=403),
    ("GET", "/agents/{user_id}"): row(admin=200, manager=200, agent=(200, 404), vendor=403),
    ("PATCH", "/agents/{user_id}"): row(admin=200, manager=200, agent=(200, 404), vendor=403),
    # Managers are staff accounts as well: only an admin creates, disables or renames one.
    ("POST", "/managers"): row(admin=201, manager=403, agent=403, vendor=403),
    ("PATCH", "/managers/{user_id}"): row(admin=200, manager=403, agent=403, vendor=403),
    ("GET", "/reports/daily"): row(admin=200, manager=200, agent=403, vendor=(200, 403)),
    ("GET", "/reports/vendors"): row(admin=200, manager=200, agent=403, vendor=(200, 403)),
    ("GET", "/reports/agents"): row(admin=200, manager=200, agent=403, vendor=403),
    ("GET", "/reports/campaigns"): row(admin=200, manager=200, agent=403, vendor=403),
}


# -- requests -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Call:
    path: str
    params: dict[str, str] | None = None
    body: Any = None


def unique_email() -> str:
    return f"sec-{uuid.uuid4().hex}@example.com"


def days_ago(days: int) -> str:
    return (datetime.now(UTC).date() - timedelta(days=days)).isoformat()


def vendor_of(owner: str) -> str:
    return OWN_VENDOR if owner == OWN else OTHER_VENDOR


def agent_of(owner: str) -> str:
    return OWN_AGENT if owner == OWN else OTHER_AGENT


class Api:
    """The module's server through one keep-alive session, with the resources the cells use."""

    def __init__(self, server: LocalServer) -> None:
        self.server = server
        self.session = requests.Session()
        self._tokens: dict[str, str] = {}

    def token(self, user: str) -> str:
        """A demo staff user's ID token from the server's user pool (signed in with its password),
        or a vendor's credential."""
        if user not in self._tokens:
            self._tokens[user] = make_token(user) if "vendor" in user else pool_sign_in(self.server, user)
        return self._tokens[user]

    def call(
        self,
        method: str,
        path: str,
        user: str | None = None,
        *,
        params: dict[str, str] | None = None,
        body: Any = None,
        data: bytes | None = None,
        origin: str | None = ALLOWED_ORIGIN,
        authorization: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> requests.Response:
        sent = dict(headers or {})
        if user is not None:
            sent["Authorization"] = f"Bearer {self.token(user)}"
        if authorization is not None:
            sent["Authorization"] = authorization
        if origin is not None:
            sent["Origin"] = origin
        if body is not None:
            data = json.dumps(body).encode()
        if data is not None:
            sent.setdefault("Content-Type", "application/json")
        return self.session.request(
            method, self.server.base_url + path, params=params, data=data, headers=sent, timeout=30
        )

    def send(
        self, method: str, call: Call, role: str, origin: str | None = ALLOWED_ORIGIN
    ) -> requests.Response:
        user = USERS.get(role)
        return self.call(method, call.path, user, params=call.params, body=call.body, origin=origin)

    # -- resources made for the test ----------------------------------------------------------------
    def new_lead(self, owner: str, **fields: str) -> dict[str, Any]:
        """A lead of the owner's vendor, assigned to the owner's agent."""
        posted = self.call(
            "POST",
            "/leads",
            "demo-admin",
            body={"vendor_code": vendor_of(owner), "email": unique_email(), "tcpa_consent": True, **fields},
        )
        assert posted.status_code == 201, posted.text
        lead: dict[str, Any] = posted.json()["lead"]
        if lead["assigned_agent"] != agent_of(owner):
            patched = self.call(
                "PATCH",
                f"/leads/{lead['lead_id']}",
                "demo-admin",
                body={"version": lead["version"], "assigned_agent": agent_of(owner)},
            )
            assert patched.status_code == 200, patched.text
            lead = patched.json()
        return lead

    @cached_property
    def leads(self) -> dict[str, dict[str, Any]]:
        """One lead per owner, read (never changed) by the cells."""
        return {owner: self.new_lead(owner) for owner in (OWN, OTHER)}

    @cached_property
    def namesakes(self) -> dict[str, dict[str, Any]]:
        """One lead per owner, both with the same name no other lead has."""
        first = "Sec" + "".join(chr(ord("a") + int(digit, 16) % 26) for digit in uuid.uuid4().hex[:10])
        return {owner: self.new_lead(owner, first_name=first, last_name="Namesake") for owner in (OWN, OTHER)}

    def new_return(self, owner: str) -> dict[str, Any]:
        """A lead of the owner's with a pending return."""
        lead = self.new_lead(owner)
        asked = self.call("POST", f"/leads/{lead['lead_id']}/return", "demo-admin", body=RETURN_BODY)
        assert asked.status_code == 201, asked.text
        return lead

    @cached_property
    def returned(self) -> dict[str, dict[str, Any]]:
        """One lead per owner with a return, read (never decided) by the cells."""
        return {owner: self.new_return(owner) for owner in (OWN, OTHER)}

    def new_suppression(self) -> str:
        """A fresh entry of the suppression list (an address no lead has), by its id."""
        added = self.call(
            "POST", "/admin/suppressions", "demo-admin", body={"email": unique_email(), "reason": "check"}
        )
        assert added.status_code == 201, added.text
        return str(added.json()["entry_id"])

    def postback_endpoint(self, code: str) -> str:
        """The vendor's postback endpoint, registered (again) by an admin: its path."""
        registered = self.call("PUT", f"/agencies/{code}/webhook", "demo-admin", body=POSTBACK_BODY)
        assert registered.status_code == 200, registered.text
        return f"/agencies/{code}/webhook"

    def failed_delivery(self, code: str) -> str:
        """A postback delivery of the vendor whose attempts are spent, by its id (written to the
        postbacks table as the delivery function leaves one)."""
        from crm.stack import local_template

        self.postback_endpoint(code)
        (table,) = [t.name for t in local_template({}).tables() if t.logical_id == "PostbacksTable"]
        delivery_id = f"msg_{ULID()}"
        body = json.dumps({"type": "lead.accepted", "timestamp": "2026-12-01T00:00:00.000Z", "data": {}})
        attempt = {"attempt": 1, "at": "2026-12-01T00:00:00.000Z", "outcome": "failed", "response_code": 500}
        item = {
            "vendor_code": code,
            "key": f"delivery#{delivery_id}",
            "delivery_id": delivery_id,
            "event": "lead.accepted",
            "body": body,
            "status": "failed",
            "created_at": "2026-12-01T00:00:00.000Z",
            "attempt_count": 1,
            "attempts": [attempt],
        }
        self.server.dynamodb().put_item(TableName=table, Item=to_item(item))  # type: ignore[attr-defined]
        return delivery_id

    def new_credential(self, code: str) -> str:
        issued = self.call("POST", f"/agencies/{code}/credentials", "demo-admin")
        assert issued.status_code == 201, issued.text
        return str(issued.json()["user_id"])


Builder = Callable[[Api, str], Call]
RETURN_BODY = {"reason_code": "BAD_PHONE"}
# Nothing listens there: deliveries to it fail and wait for their retries, out of every cell's way.
POSTBACK_BODY = {"url": "http://127.0.0.1:9/webhook", "events": ["lead.accepted"]}


def change_a_fresh_lead(api: Api, owner: str) -> Call:
    lead = api.new_lead(owner)
    return Call(f"/leads/{lead['lead_id']}", body={"version": lead["version"], "notes": "checked"})


def revoke_a_fresh_credential(api: Api, owner: str) -> Call:
    code = vendor_of(owner)
    return Call(f"/agencies/{code}/credentials/{api.new_credential(code)}")


# How each route is called for an owner (`own` or `other`); routes that name no owned resource
# ignore it. Bodies are valid wherever the role is allowed; destructive calls get fresh resources.
BUILDERS: dict[tuple[str, str], Builder] = {
    ("GET", "/leads"): lambda api, owner: Call("/leads", {"limit": "5"}),
    ("POST", "/leads"): lambda api, owner: Call(
        "/leads", body={"vendor_code": vendor_of(owner), "email": unique_email(), "tcpa_consent": True}
    ),
    ("GET", "/leads/{lead_id}"): lambda api, owner: Call(f"/leads/{api.leads[owner]['lead_id']}"),
    ("PATCH", "/leads/{lead_id}"): change_a_fresh_lead,
    ("DELETE", "/leads/{lead_id}"): lambda api, owner: Call(f"/leads/{api.new_lead(owner)['lead_id']}"),
    ("POST", "/leads/{lead_id}/return"): lambda api, owner: Call(
        f"/leads/{api.new_lead(owner)['lead_id']}/return", body=RETURN_BODY
    ),
    ("GET", "/leads/{lead_id}/return"): lambda api, owner: Call(
        f"/leads/{api.returned[owner]['lead_id']}/return"
    ),
    ("PATCH", "/leads/{lead_id}/return"): lambda api, owner: Call(
        f"/leads/{api.new_return(owner)['lead_id']}/return", body={"status": "approved"}
    ),
    ("GET", "/admin/stats"): lambda api, owner: Call("/admin/stats", {"from": days_ago(6)}),
    # A vendor asking for its own series is refused like any other: /admin/* is staff only.
    ("GET", "/admin/analytics"): lambda api, owner: Call(
        "/admin/analytics", {"period": "7d", "vendor": vendor_of(owner)}
    ),
    ("GET", "/admin/audit"): lambda api, owner: Call("/admin/audit", {"limit": "5"}),
    ("GET", "/admin/suppressions"): lambda api, owner: Call("/admin/suppressions", {"limit": "5"}),
    ("POST", "/admin/suppressions"): lambda api, owner: Call(
        "/admin/suppressions", body={"email": unique_email(), "reason": "security check"}
    ),
    ("DELETE", "/admin/suppressions/{entry_id}"): lambda api, owner: Call(
        f"/admin/suppressions/{api.new_suppression()}"
    ),
    ("GET", "/agencies"): lambda api, owner: Call("/agencies"),
    ("POST", "/agencies"): lambda api, owner: Call(
        "/agencies",
        body={
            "vendor_code": f"S{uuid.uuid4().hex[:10].upper()}",
            "name": "Security Check",
            "hourly_cap": 100,
            "acceptance": {
                "allowed_states": ["TX"],
                "hours": {"time_zone": "UTC", "days": ["mon"], "from": "09:00", "to": "17:00"},
            },
        },
    ),
    ("GET", "/agencies/{code}"): lambda api, owner: Call(f"/agencies/{vendor_of(owner)}"),
    ("GET", "/agencies/{code}/returns"): lambda api, owner: Call(
        f"/agencies/{vendor_of(owner)}/returns", {"status": "pending", "limit": "5"}
    ),
    ("PATCH", "/agencies/{code}"): lambda api, owner: Call(
        f"/agencies/{vendor_of(owner)}",
        body={"contact_name": "Security Check", "hourly_cap": None, "acceptance": {"require_consent": True}},
    ),
    ("POST", "/agencies/{code}/credentials"): lambda api, owner: Call(
        f"/agencies/{vendor_of(owner)}/credentials"
    ),
    ("GET", "/agencies/{code}/webhook"): lambda api, owner: Call(api.postback_endpoint(vendor_of(owner))),
    ("PUT", "/agencies/{code}/webhook"): lambda api, owner: Call(
        f"/agencies/{vendor_of(owner)}/webhook", body=POSTBACK_BODY
    ),
    ("DELETE", "/agencies/{code}/webhook"): lambda api, owner: Call(api.postback_endpoint(vendor_of(owner))),
    ("GET", "/agencies/{code}/webhook/deliveries"): lambda api, owner: Call(
        f"/agencies/{vendor_of(owner)}/webhook/deliveries", {"status": "failed", "limit": "5"}
    ),
    ("POST", "/agencies/{code}/webhook/deliveries/{delivery_id}/retry"): lambda api, owner: Call(
        f"/agencies/{vendor_of(owner)}/webhook/deliveries/{api.failed_delivery(vendor_of(owner))}/retry"
    ),
    ("DELETE", "/agencies/{code}/credentials/{user_id}"): revoke_a_fresh_credential,
    ("GET", "/pricing"): lambda api, owner: Call("/pricing"),
    ("PATCH", "/pricing/settings"): lambda api, owner: Call(
        "/pricing/settings", body={"default_price": 35.00}
    ),
    ("POST", "/pricing/quote"): lambda api, owner: Call(
        "/pricing/quote", body={"vendor_code": OWN_VENDOR, "quality_score": 7}
    ),
    ("PUT", "/pricing/{vendor_code}"): lambda api, owner: Call(
        f"/pricing/{vendor_of(owner)}", body={"price": float(OWN_PRICE if owner == OWN else OTHER_PRICE)}
    ),
    ("GET", "/agents"): lambda api, owner: Call("/agents"),
    ("POST", "/agents"): lambda api, owner: Call(
        "/agents", body={"name": "Security Check", "email": unique_email()}
    ),
    ("GET", "/agents/{user_id}"): lambda api, owner: Call(f"/agents/{agent_of(owner)}"),
    # Demo agents are online: setting it again changes nothing the other cells depend on.
    ("PATCH", "/agents/{user_id}"): lambda api, owner: Call(
        f"/agents/{agent_of(owner)}", body={"availability": "online"}
    ),
    ("POST", "/managers"): lambda api, owner: Call(
        "/managers", body={"name": "Security Check", "email": unique_email()}
    ),
    # The demo manager is active: setting it again changes nothing the other cells depend on.
    ("PATCH", "/managers/{user_id}"): lambda api, owner: Call(
        "/managers/demo-manager", body={"status": "active"}
    ),
    ("GET", "/reports/daily"): lambda api, owner: Call("/reports/daily", {"vendor": vendor_of(owner)}),
    ("GET", "/reports/vendors"): lambda api, owner: Call("/reports/vendors", {"vendor": vendor_of(owner)}),
    ("GET", "/reports/agents"): lambda api, owner: Call("/reports/agents"),
    ("GET", "/reports/campaigns"): lambda api, owner: Call(
        "/reports/campaigns", {"vendor": vendor_of(owner)}
    ),
}
# Routes whose request names an owned resource: every role is tried with its own and another's.
OWNED = {
    ("POST", "/leads"),
    ("GET", "/leads/{lead_id}"),
    ("PATCH", "/leads/{lead_id}"),
    ("DELETE", "/leads/{lead_id}"),
    ("POST", "/leads/{lead_id}/return"),
    ("GET", "/leads/{lead_id}/return"),
    ("PATCH", "/leads/{lead_id}/return"),
    ("GET", "/admin/analytics"),
    ("GET", "/agencies/{code}"),
    ("GET", "/agencies/{code}/returns"),
    ("PATCH", "/agencies/{code}"),
    ("POST", "/agencies/{code}/credentials"),
    ("GET", "/agencies/{code}/webhook"),
    ("PUT", "/agencies/{code}/webhook"),
    ("DELETE", "/agencies/{code}/webhook"),
    ("GET", "/agencies/{code}/webhook/deliveries"),
    ("POST", "/agencies/{code}/webhook/deliveries/{delivery_id}/retry"),
    ("DELETE", "/agencies/{code}/credentials/{user_id}"),
    ("PUT", "/pricing/{vendor_code}"),
    ("GET", "/agents/{user_id}"),
    ("PATCH", "/agents/{user_id}"),
    ("GET", "/reports/daily"),
    ("GET", "/reports/vendors"),
    ("GET", "/reports/campaigns"),
}


def expected_status(route: tuple[str, str], role: str, owner: str) -> int:
    cell = EXPECTED[route][role]
    if isinstance(cell, tuple):
        return cell[0] if owner == OWN else cell[1]
    return cell


def matrix_cells() -> list[Any]:
    """One case per template route, role and owner; a route without a row is a failing case."""
    cases = []
    for route in API_ROUTES:
        if route not in EXPECTED or route not in BUILDERS:
            cases.append(pytest.param(route, "-", OWN, id=f"{route[0]} {route[1]} has no expectation row"))
            continue
        for role in ROLES:
            for owner in (OWN, OTHER) if route in OWNED else (OWN,):
                label = f"{route[0]} {route[1]} {role}" + (f" {owner}" if route in OWNED else "")
                cases.append(pytest.param(route, role, owner, id=label))
    return cases


# -- assertions -----------------------------------------------------------------------------------
def assert_error_body(response: requests.Response) -> dict[str, Any]:
    """The machine-readable error body (POST /leads adds its posting-contract keys around it)."""
    assert response.headers["Content-Type"].startswith("application/json"), response.text
    body: dict[str, Any] = response.json()
    error = body["error"]
    assert isinstance(error["code"], str), body
    assert error["code"], body
    assert isinstance(error["message"], str), body
    assert error["message"], body
    assert isinstance(error["details"], list), body
    if "outcome" not in body:
        assert set(body) == {"error"}, body
    return body


def assert_cors_for(response: requests.Response, origin: str) -> None:
    assert response.headers.get("Vary") == "Origin", (response.status_code, response.headers.get("Vary"))
    granted = response.headers.get("Access-Control-Allow-Origin")
    if origin == DISALLOWED_ORIGIN:
        assert granted in (None, ""), (response.status_code, granted)
        assert "Access-Control-Allow-Credentials" not in response.headers
        assert DISALLOWED_ORIGIN not in json.dumps(dict(response.headers))
    else:
        assert granted == origin, (response.status_code, granted, response.text[:200])


# -- fixtures -------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def api() -> Iterator[Api]:
    server = start_server()
    client = Api(server)
    try:
        yield client
    finally:
        client.session.close()
        stop_server(server)


@pytest.fixture(scope="module")
def openapi(api: Api) -> dict[str, Any]:
    response = api.call("GET", "/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def test_the_demo_users_are_the_roles_the_table_names() -> None:
    users = {user.user_id: user for user in demo_users()}
    for role, user_id in USERS.items():
        assert users[user_id].role == role
    assert users[USERS["vendor"]].vendor_code == OWN_VENDOR
    assert {OWN_AGENT, OTHER_AGENT} <= set(users)
    assert sorted(EXPECTED) == sorted(BUILDERS)
    assert set(EXPECTED) >= OWNED


def test_the_table_has_no_row_for_a_route_template_yaml_does_not_declare() -> None:
    assert sorted(set(EXPECTED) - set(API_ROUTES)) == []
    # Every path answers CORS preflight through its function.
    assert {route.path for route in ROUTES if route.method == "ANY"} == set(PATHS)


# -- 1. role x route x owner ----------------------------------------------------------------------
@pytest.mark.parametrize(("route", "role", "owner"), matrix_cells())
def test_role_route_owner_matrix(api: Api, route: tuple[str, str], role: str, owner: str) -> None:
    assert route in EXPECTED, f"{route} is in template.yaml but has no row in EXPECTED"
    assert route in BUILDERS, f"{route} is in template.yaml but has no request in BUILDERS"
    method, _ = route
    expected = expected_status(route, role, owner)
    # When
    response = api.send(method, BUILDERS[route](api, owner), role)
    # Then
    assert response.status_code == expected, response.text[:500]
    assert_cors_for(response, ALLOWED_ORIGIN)
    if expected >= 400:
        assert_error_body(response)
    if expected == 401:
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_a_credential_is_revoked_only_under_its_own_agency(api: Api) -> None:
    # Given a credential of another agency
    other = api.new_credential(OTHER_VENDOR)
    # When an admin revokes it under the wrong agency, then under its own
    wrong = api.call("DELETE", f"/agencies/{OWN_VENDOR}/credentials/{other}", "demo-admin")
    right = api.call("DELETE", f"/agencies/{OTHER_VENDOR}/credentials/{other}", "demo-admin")
    # Then only the second one revokes it
    assert wrong.status_code == 404, wrong.text
    assert_error_body(wrong)
    assert right.status_code == 204, right.text


# -- 2. JWT attacks -------------------------------------------------------------------------------
def _hs256_by_hand(header: dict[str, Any], claims: dict[str, Any], key: bytes) -> str:
    signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
    return f"{signing_input}.{b64url(hmac.new(key, signing_input.encode(), hashlib.sha256).digest())}"


def _attacks() -> dict[str, str | None]:
    """Authorization header values that must all be refused (None: no header): the vendor
    credential's attacks (the staff pool's are `STAFF_TOKEN_ATTACKS`)."""
    private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = private_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    valid = make_token("demo-vendor-1")
    header, _, signature = valid.split(".")
    tampered_payload = b64url(json.dumps(token_claims("demo-vendor-1")).encode())
    now = int(time.time())
    attacks: dict[str, str | None] = {
        "no header": None,
        "basic scheme": "Basic " + base64.b64encode(b"demo-admin:secret").decode(),
        "empty bearer": "Bearer ",
        "not a jwt": "Bearer not-a-jwt",
        "alg none": "Bearer " + jwt.encode(token_claims("demo-vendor-1"), None, algorithm="none"),
        "alg none keeping a valid signature": "Bearer "
        + ".".join([b64url(b'{"alg":"none","typ":"JWT"}'), valid.split(".")[1], signature]),
        "hs256 keyed with the rsa public key": "Bearer "
        + _hs256_by_hand({"alg": "HS256", "typ": "JWT"}, token_claims("demo-vendor-1"), public_pem),
        "rs256": "Bearer " + jwt.encode(token_claims("demo-vendor-1"), private_key, algorithm="RS256"),
        "wrong key": "Bearer "
        + make_token("demo-vendor-1", secret="another-secret-0123456789abcdef0123456789"),
        "tampered payload": f"Bearer {header}.{tampered_payload}.{signature}",
        "expired": "Bearer " + make_token("demo-vendor-1", ttl=-3600),
        "not valid before (nbf) in an hour": "Bearer " + make_token("demo-vendor-1", nbf=now + 3600),
        "issued (iat) in an hour": "Bearer " + make_token("demo-vendor-1", iat=now + 3600, nbf=now),
        # Correctly signed, but living longer than a vendor credential may (365 days)
        "vendor credential expiring in ten years": "Bearer "
        + make_token("demo-vendor-1", ttl=10 * 365 * 86400),
        "vendor credential expiring in 10^30 s": "Bearer " + make_token("demo-vendor-1", ttl=10**30),
        "wrong issuer": "Bearer " + make_token("demo-vendor-1", iss="someone-else"),
        "wrong audience": "Bearer " + make_token("demo-vendor-1", aud="another-api"),
        "sub not a string": "Bearer " + make_token("demo-vendor-1", sub=12345),
        "unknown user": "Bearer " + make_token("sec-nobody"),
        "disabled user": "Bearer " + make_token(DISABLED_USER),
        "huge (16 KB)": "Bearer " + make_token("demo-vendor-1", padding="x" * 16 * 1024),
    }
    for claim in REQUIRED_CLAIMS:
        attacks[f"no {claim}"] = "Bearer " + make_token("demo-vendor-1", drop=(claim,))
    # RFC 7519 NumericDate is a JSON number; PyJWT alone reads "9999999999" or true as a time.
    numeric_strings = {"exp": "9999999999", "iat": str(now), "nbf": str(now)}
    for claim, as_string in numeric_strings.items():
        attacks[f"{claim} as a numeric string"] = "Bearer " + make_token(
            "demo-vendor-1", **{claim: as_string}
        )
        attacks[f"{claim} as a boolean"] = "Bearer " + make_token("demo-vendor-1", **{claim: claim != "exp"})
    huge = attacks["huge (16 KB)"]
    assert huge is not None
    assert len(huge) > 2 * MAX_TOKEN_BYTES
    return attacks


ATTACKS = _attacks()
# One route of every function: its first GET route without path parameters.
AUTH_ROUTES = sorted(
    {
        route.function: route.path
        for route in reversed(ROUTES)
        if route.method == "GET" and "{" not in route.path
    }.items()
)


# Staff tokens: the server's user pool issued them, or they claim it did. Built once the server
# runs (the pool's issuer and client id are the server's); each must be refused by every function.
STAFF_TOKEN_ATTACKS = (
    "HS256 token with the staff pool's claims",
    "HS256 credential naming a staff user",
    "vendor credential claiming the pool as issuer",
    "pool-signed token naming a vendor user",
    "another pool's ID token",
    "the pool's access token",
    "ID token with token_use access",
    "expired ID token",
    "ID token living ten years",
    "ID token of a disabled user",
    "ID token of an unknown user",
    "ID token without groups",
    "ID token whose group is not the user's role",
    "ID token for another client",
    "ID token without custom:user_id",
    "ID token signed by another key",
    "ID token naming an unknown key id",
    "ID token with alg none",
)


def _another_pools_token(server: LocalServer) -> str:
    """An ID token of a second pool on the same endpoint, for a user naming demo-admin, in group admin."""
    cognito = server.boto("cognito-idp")
    pool_id = cognito.create_user_pool(
        PoolName="sec-other-pool",
        UsernameAttributes=["email"],
        Schema=[{"Name": "user_id", "AttributeDataType": "String", "Mutable": False}],
    )["UserPool"]["Id"]
    client_id = cognito.create_user_pool_client(
        UserPoolId=pool_id, ClientName="other", ExplicitAuthFlows=["ALLOW_USER_PASSWORD_AUTH"]
    )["UserPoolClient"]["ClientId"]
    cognito.create_group(UserPoolId=pool_id, GroupName="admin")
    email, password = "intruder@crm.example.com", "Intruder!1234"
    cognito.admin_create_user(
        UserPoolId=pool_id,
        Username=email,
        UserAttributes=[{"Name": "email", "Value": email}, {"Name": "custom:user_id", "Value": "demo-admin"}],
        MessageAction="SUPPRESS",
    )
    cognito.admin_set_user_password(UserPoolId=pool_id, Username=email, Password=password, Permanent=True)
    cognito.admin_add_user_to_group(UserPoolId=pool_id, Username=email, GroupName="admin")
    answer = cognito.initiate_auth(
        ClientId=client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": email, "PASSWORD": password},
    )
    return str(answer["AuthenticationResult"]["IdToken"])


@pytest.fixture(scope="module")
def staff_token_attacks(api: Api, disabled_user: str) -> dict[str, str]:
    cognito = api.server.boto("cognito-idp")
    pool = find_user_pool(local_template({}), api.server.aws_endpoint)
    signed_in = cognito.initiate_auth(
        ClientId=pool.client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "demo-admin@crm.example.com", "PASSWORD": DEMO_PASSWORDS["demo-admin"]},
    )["AuthenticationResult"]
    now = int(time.time())
    pool_claims = {"iss": pool.issuer, "aud": pool.client_id, "token_use": "id"}
    tokens = {
        "HS256 token with the staff pool's claims": jwt.encode(
            staff_claims("demo-admin"), TEST_SECRET, "HS256"
        ),
        "HS256 credential naming a staff user": make_token("demo-admin"),
        "vendor credential claiming the pool as issuer": make_token("demo-vendor-1", **pool_claims),
        "pool-signed token naming a vendor user": staff_token("demo-vendor-1", role="admin"),
        "another pool's ID token": _another_pools_token(api.server),
        "the pool's access token": signed_in["AccessToken"],
        "ID token with token_use access": staff_token(token_use="access"),
        "expired ID token": staff_token(iat=now - 7200, auth_time=now - 7200, exp=now - 3600),
        "ID token living ten years": staff_token(ttl=10 * 365 * 86400),
        "ID token of a disabled user": staff_token(disabled_user, role="admin"),
        "ID token of an unknown user": staff_token("sec-nobody", role="admin"),
        "ID token without groups": staff_token(drop=("cognito:groups",)),
        "ID token whose group is not the user's role": staff_token("demo-agent-1", role="admin"),
        "ID token for another client": staff_token(aud="another-client"),
        "ID token without custom:user_id": staff_token(drop=("custom:user_id",)),
        "ID token signed by another key": staff_token(
            key=rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ),
        "ID token naming an unknown key id": staff_token(kid="not-a-published-key"),
        "ID token with alg none": jwt.encode(staff_claims(), None, algorithm="none"),
    }
    assert sorted(tokens) == sorted(STAFF_TOKEN_ATTACKS)
    # Each is refused for what it is: the real ID token it imitates is accepted.
    assert api.call("GET", "/leads", authorization=f"Bearer {signed_in['IdToken']}").status_code == 200
    assert api.call("GET", "/leads", authorization=f"Bearer {staff_token()}").status_code == 200
    return tokens


@pytest.mark.parametrize("attack", STAFF_TOKEN_ATTACKS)
@pytest.mark.parametrize(("function", "path"), AUTH_ROUTES, ids=[path for _, path in AUTH_ROUTES])
def test_staff_token_attack_is_401(
    api: Api, staff_token_attacks: dict[str, str], function: str, path: str, attack: str
) -> None:
    # When
    response = api.call("GET", path, authorization=f"Bearer {staff_token_attacks[attack]}")
    # Then
    assert response.status_code == 401, response.text[:500]
    assert assert_error_body(response)["error"]["code"] == "UNAUTHORIZED"
    assert_cors_for(response, ALLOWED_ORIGIN)


@pytest.fixture(scope="module")
def disabled_user(api: Api) -> str:
    api.server.dynamodb().put_item(  # type: ignore[attr-defined]
        TableName="crm-local-users",
        Item={"user_id": {"S": DISABLED_USER}, "role": {"S": "admin"}, "status": {"S": "disabled"}},
    )
    return DISABLED_USER


def test_every_function_is_attacked() -> None:
    functions = {route.function for route in ROUTES}
    assert {function for function, _ in AUTH_ROUTES} == functions


@pytest.mark.parametrize("attack", sorted(ATTACKS))
@pytest.mark.parametrize(("function", "path"), AUTH_ROUTES, ids=[path for _, path in AUTH_ROUTES])
def test_jwt_attack_is_401_with_the_error_body_and_cors(
    api: Api, disabled_user: str, function: str, path: str, attack: str
) -> None:
    # When
    response = api.call("GET", path, authorization=ATTACKS[attack])
    # Then
    assert response.status_code == 401, response.text[:500]
    assert assert_error_body(response)["error"]["code"] == "UNAUTHORIZED"
    assert_cors_for(response, ALLOWED_ORIGIN)
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


# -- 3. injection-shaped input --------------------------------------------------------------------
INJECTIONS = {
    "sql": "' OR 1=1 --",
    "sql-union": "V001' UNION SELECT * FROM users --",
    "nosql": '{"$gt": ""}',
    "dynamodb-expression": "V001 OR attribute_exists(lead_id)",
    "html": "<script>alert(1)</script>",
    "path-traversal": "../../etc/passwd",
    "percent-nul": "%00",
    "nul": "a\x00b",
    "crlf": "a\r\nSet-Cookie: injected=1",
    "template": "${jndi:ldap://x}{{7*7}}",
    "long": "A" * 5000,
    "long-unicode": "é" * 2000,
    "unicode": "Ωμέγα 名前 🙂 \u202egnp.exe",
    "empty": "",
    "first-day": "0001-01-01",
    "last-day": "9999-12-31",
    "extreme-time": "0001-01-01T00:00:00+14:00",
}
JSON_TYPE = "application/json"
# Query parameters that page, bound or shape the answer rather than filter it.
NOT_FILTERS = {"limit", "cursor", "from", "to", "format", "period"}


def get_operations(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    return [(path, item["get"]) for path, item in sorted(document["paths"].items()) if "get" in item]


def fill_path(path: str, api: Api) -> str:
    values = {
        "lead_id": api.leads[OWN]["lead_id"],
        "code": OWN_VENDOR,
        "vendor_code": OWN_VENDOR,
        "user_id": OWN_AGENT,
        "entry_id": "email-" + "0" * 64,  # well formed; no entry needs to exist
        "delivery_id": "msg_" + "0" * 26,  # well formed; no delivery needs to exist
    }
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, f"no value for a path parameter of {path}"
    return path


def unsafe_answer(response: requests.Response) -> str | None:
    """Why an answer to an injection-shaped value is not acceptable, or None."""
    if response.status_code >= 500 or response.status_code < 200 or 300 <= response.status_code < 400:
        return f"{response.status_code} {response.text[:200]}"
    if "injected" in response.headers.get("Set-Cookie", ""):
        return "a header was injected"
    if response.status_code >= 400:
        try:
            assert_error_body(response)
        except (AssertionError, KeyError, TypeError, ValueError):
            return f"{response.status_code} without the error body: {response.text[:200]}"
    return None


def test_every_get_operation_is_probed(openapi: dict[str, Any]) -> None:
    documented = {(path, "GET") for path, _ in get_operations(openapi)}
    assert documented == {(path, method) for method, path in API_ROUTES if method == "GET"}
    assert sum(len(operation.get("parameters", [])) for _, operation in get_operations(openapi)) >= 30
    assert any("vendor" in operation.get("x-roles", []) for _, operation in get_operations(openapi))


def injection_problem(response: requests.Response, role: str, filtering: bool) -> str | None:
    """What is wrong with the answer to an injection-shaped parameter, if anything. `filtering`:
    the parameter filters the rows read."""
    problem = unsafe_answer(response)
    if problem:
        return problem
    if response.status_code != 200 or not response.headers["Content-Type"].startswith(JSON_TYPE):
        return None
    body = response.json()
    rows = body.get("data") if isinstance(body, dict) else None
    if role == "admin" and filtering and rows:
        # Nothing stored matches an injection-shaped filter: it must not widen the query.
        return f"{len(rows)} rows for a filter nothing matches"
    if role == "vendor":
        # However the filter is shaped, a vendor sees only its own vendor's rows.
        leaked = [item for item in rows or [] if item.get("vendor_code") != OWN_VENDOR]
        if leaked or body.get("vendor", OWN_VENDOR) != OWN_VENDOR:
            return "another vendor's data"
    return None


def test_injection_in_every_parameter_of_every_get_route_is_answered_safely(
    api: Api, openapi: dict[str, Any]
) -> None:
    probed, problems = 0, []
    for template_path, operation in get_operations(openapi):
        vendor_reads = "vendor" in operation.get("x-roles", [])
        for parameter in operation.get("parameters", []):
            name, where = parameter["name"], parameter["in"]
            # A vendor also tries every parameter that picks whose data is read.
            roles = ["admin", "vendor"] if vendor_reads and name not in NOT_FILTERS else ["admin"]
            for label, value in INJECTIONS.items():
                if where == "path":
                    path = fill_path(template_path.replace("{" + name + "}", quote(value, safe="")), api)
                    params = None
                else:
                    path, params = fill_path(template_path, api), {name: value}
                filtering = where == "query" and name not in NOT_FILTERS and label != "empty"
                for role in roles:
                    response = api.call("GET", path, USERS[role], params=params)
                    probed += 1
                    problem = injection_problem(response, role, filtering)
                    if problem:
                        problems.append(f"GET {template_path} {where} {name}={label} as {role}: {problem}")
    assert not problems, "\n".join(problems)
    assert probed > 700


# -- 4. request bodies over the limit -------------------------------------------------------------
BODY_ROUTES = [route for route in API_ROUTES if route[0] in {"POST", "PUT", "PATCH"}]


def json_of_size(size: int) -> bytes:
    """A JSON object of exactly `size` bytes."""
    frame = b'{"padding":""}'
    return frame[:-2] + b"x" * (size - len(frame)) + frame[-2:]


def body_route_path(api: Api, route: tuple[str, str]) -> str:
    return fill_path(route[1], api)


@pytest.mark.parametrize("route", BODY_ROUTES, ids=[f"{method} {path}" for method, path in BODY_ROUTES])
def test_body_over_the_limit_is_413_before_parsing(api: Api, route: tuple[str, str]) -> None:
    method, _ = route
    path = body_route_path(api, route)
    over, at_limit = json_of_size(MAX_BODY_BYTES + 1), json_of_size(MAX_BODY_BYTES)
    assert len(over) == MAX_BODY_BYTES + 1
    # When
    too_large = api.call(method, path, "demo-admin", data=over)
    not_json = api.call(method, path, "demo-admin", data=b"\xff" * (MAX_BODY_BYTES + 1))
    anonymous = api.call(method, path, None, data=over)
    largest = api.call(method, path, "demo-admin", data=at_limit)
    # Then
    for response in (too_large, not_json):
        assert response.status_code == 413, response.text[:300]
        assert assert_error_body(response)["error"]["code"] == "PAYLOAD_TOO_LARGE"
        assert_cors_for(response, ALLOWED_ORIGIN)
    assert anonymous.status_code == 401  # who is asking comes first
    assert_error_body(anonymous)
    assert largest.status_code != 413, largest.text[:300]
    assert largest.status_code < 500, largest.text[:300]


def nested_json(depth: int) -> bytes:
    """`{"a":[[…]]}`, `depth` levels of objects and arrays (500 levels is about 1 KB)."""
    return ('{"a":' + "[" * (depth - 1) + "]" * (depth - 1) + "}").encode()


def audit_record(api: Api, probe: str) -> dict[str, Any]:
    """The audit record of the request sent with `?probe=<probe>`, as an admin reads it."""
    page = api.call("GET", "/admin/audit", "demo-admin", params={"limit": "50"})
    assert page.status_code == 200, page.text[:300]
    found = [record for record in page.json()["data"] if record["request"]["query"].get("probe") == probe]
    assert len(found) == 1, f"no audit record of probe {probe}"
    return found[0]


@pytest.mark.parametrize("route", BODY_ROUTES, ids=[f"{method} {path}" for method, path in BODY_ROUTES])
def test_a_body_nested_past_the_limit_is_400_before_parsing_and_audited(
    api: Api, route: tuple[str, str]
) -> None:
    method, _ = route
    path = body_route_path(api, route)
    # Given a 1 KB body nested 500 levels deep (past where recursive parsers used to fail, 489)
    hostile = nested_json(500)
    assert len(hostile) < 1100
    probes = {"admin": uuid.uuid4().hex, "anonymous": uuid.uuid4().hex}
    # When
    nested = api.call(method, path, "demo-admin", data=hostile, params={"probe": probes["admin"]})
    anonymous = api.call(method, path, None, data=hostile, params={"probe": probes["anonymous"]})
    deepest = api.call(method, path, "demo-admin", data=nested_json(MAX_BODY_DEPTH))
    # Then the body is refused unread, with the error body and CORS
    assert nested.status_code == 400, nested.text[:300]
    error = assert_error_body(nested)["error"]
    assert error["code"] == "NESTING_TOO_DEEP"
    assert error["details"][0]["max_depth"] == MAX_BODY_DEPTH
    assert_cors_for(nested, ALLOWED_ORIGIN)
    # And it is refused to an anonymous caller too, before who is asking is known
    assert anonymous.status_code == 400, anonymous.text[:300]
    assert assert_error_body(anonymous)["error"]["code"] == "NESTING_TOO_DEEP"
    # And a body nested to the limit is read (and answered on its merits)
    assert deepest.status_code < 500, deepest.text[:300]
    assert "NESTING_TOO_DEEP" not in deepest.text
    # And both refusals are audited, the body recorded by its size
    summary = f"<{len(hostile)} bytes, nested deeper than {MAX_BODY_DEPTH} levels>"
    for caller, status in (("admin", 400), ("anonymous", 400)):
        record = audit_record(api, probes[caller])
        assert record["status"] == status
        assert record.get("user") == ("demo-admin" if caller == "admin" else None)  # anonymous: none
        assert record["action"] == f"{method} {route[1]}"
        assert record["request"]["body"] == summary


def test_the_published_document_states_the_body_limits_and_the_lead_update_conflicts(
    openapi: dict[str, Any],
) -> None:
    description = openapi["info"]["description"]
    assert f"{MAX_BODY_BYTES // 1024} KB" in description
    assert f"{MAX_BODY_DEPTH} levels" in description
    assert "NESTING_TOO_DEEP" in description
    patch = openapi["paths"]["/leads/{lead_id}"]["patch"]
    for code in ("AGENT_AT_CAPACITY", "VERSION_CONFLICT", "INVALID_TRANSITION", "LEAD_NOT_CLOSED"):
        assert code in patch["description"], code
    assert "409" in patch["responses"]


def test_a_body_over_api_gateways_own_limit_is_its_413(api: Api) -> None:
    response = api.call("POST", "/leads", "demo-admin", data=b"x" * (10 * 1024 * 1024 + 1))
    assert response.status_code == 413
    assert_error_body(response)
    assert response.headers.get("Access-Control-Allow-Origin") == ALLOWED_ORIGIN


@pytest.mark.parametrize("path", PATHS)
def test_a_method_the_path_does_not_declare_is_405_naming_the_ones_it_does(api: Api, path: str) -> None:
    declared = {route.method for route in ROUTES if route.path == path and route.method != "ANY"}
    for method in sorted({"GET", "POST", "PUT", "PATCH", "DELETE", "TRACE"} - declared):
        # When
        response = api.call(method, fill_path(path, api), "demo-admin")
        # Then
        assert response.status_code == 405, (method, path, response.text)
        assert set(response.headers["Allow"].split(", ")) == {*declared, "OPTIONS"}
        assert response.json()["error"]["code"] == "METHOD_NOT_ALLOWED"
        assert response.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN


# -- 5. CORS --------------------------------------------------------------------------------------
ORIGINS = (ALLOWED_ORIGIN, SECOND_ORIGIN, DISALLOWED_ORIGIN)


@pytest.mark.parametrize("path", PATHS)
def test_preflight_grants_exactly_the_allowed_origins(api: Api, path: str) -> None:
    methods = sorted(route.method for route in ROUTES if route.path == path and route.method != "ANY")
    concrete = fill_path(path, api)
    for origin in ORIGINS:
        for method in methods:
            # When
            response = api.call(
                "OPTIONS",
                concrete,
                origin=origin,
                headers={
                    "Access-Control-Request-Method": method,
                    "Access-Control-Request-Headers": "authorization,content-type",
                },
            )
            # Then
            assert 200 <= response.status_code < 300, (origin, method, response.status_code)
            assert_cors_for(response, origin)
            if origin != DISALLOWED_ORIGIN:
                assert method in response.headers["Access-Control-Allow-Methods"]


def cors_samples(route: tuple[str, str]) -> list[tuple[str, str, int]]:
    """One (role, owner) cell of the table for each status the route answers with."""
    samples: dict[int, tuple[str, str, int]] = {}
    for role in ROLES:
        for owner in (OWN, OTHER) if route in OWNED else (OWN,):
            status = expected_status(route, role, owner)
            samples.setdefault(status, (role, owner, status))
    return list(samples.values())


@pytest.mark.parametrize("route", API_ROUTES, ids=[f"{method} {path}" for method, path in API_ROUTES])
def test_every_answer_grants_only_an_allowed_origin(api: Api, route: tuple[str, str]) -> None:
    method, template_path = route
    for origin in (SECOND_ORIGIN, DISALLOWED_ORIGIN):
        for role, owner, status in cors_samples(route):
            response = api.send(method, BUILDERS[route](api, owner), role, origin=origin)
            assert response.status_code == status, (origin, role, owner, response.text[:300])
            assert_cors_for(response, origin)
        if method in {"POST", "PUT", "PATCH"}:
            too_large = api.call(
                method,
                fill_path(template_path, api),
                "demo-admin",
                data=json_of_size(MAX_BODY_BYTES + 1),
                origin=origin,
            )
            assert too_large.status_code == 413
            assert_cors_for(too_large, origin)
        if "{" in template_path:
            missing = api.call(
                method, missing_resource_path(template_path), "demo-admin", origin=origin, body=None
            )
            assert missing.status_code in (404, 422), missing.text[:300]
            assert_cors_for(missing, origin)


def missing_resource_path(path: str) -> str:
    values = {
        "lead_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV",
        "code": "ZZ999",
        "vendor_code": "ZZ999",
        "user_id": "sec-no-such-user",
    }
    for name, value in values.items():
        path = path.replace("{" + name + "}", value)
    return path


@pytest.mark.parametrize("origin", ORIGINS)
def test_api_gateways_own_answers_echo_the_origin_that_asked(api: Api, origin: str) -> None:
    # API Gateway's own responses cannot test the origin: they echo it (template.yaml), never "*",
    # never with credentials, and hold nothing but their fixed error body.
    for response in (
        api.call("GET", "/no-such-route", origin=origin),
        api.call("DELETE", "/agents/x/y", "demo-admin", origin=origin),
    ):
        assert response.status_code == 404
        assert assert_error_body(response)["error"] == {
            "code": "NOT_FOUND",
            "message": "No such route",
            "details": [],
        }
        assert response.headers["Access-Control-Allow-Origin"] == origin
        assert "Access-Control-Allow-Credentials" not in response.headers
        assert response.headers["Vary"] == "Origin"


# -- 6. decisions the contract leaves open ---------------------------------------------------------
def walk(api: Api, lead: dict[str, Any], user: str, *dispositions: str, **extra: Any) -> dict[str, Any]:
    """Moves the lead through `dispositions` as `user`; `extra` goes with the last move."""
    for position, disposition in enumerate(dispositions):
        body = {"version": lead["version"], "disposition": disposition}
        if position == len(dispositions) - 1:
            body.update(extra)
        moved = api.call("PATCH", f"/leads/{lead['lead_id']}", user, body=body)
        assert moved.status_code == 200, moved.text[:300]
        lead = moved.json()
    return lead


@pytest.mark.parametrize(
    ("role", "finds"),
    [("admin", {OWN, OTHER}), ("manager", {OWN, OTHER}), ("agent", {OWN}), ("vendor", {OWN})],
)
def test_a_name_search_finds_another_owners_lead_for_staff_only(api: Api, role: str, finds: set[str]) -> None:
    # Given two leads of one name, the calling agent's and vendor's own and another's
    leads = api.namesakes
    first_name = leads[OWN]["first_name"]
    # When the role searches that name, by first name and by full name either way round
    for q in (first_name.upper(), f"{first_name} names", f"namesake {first_name[:5]}"):
        found = api.call("GET", "/leads", USERS[role], params={"q": q})
        # Then it finds its own, and another owner's only when it is staff
        assert found.status_code == 200, found.text[:300]
        assert_cors_for(found, ALLOWED_ORIGIN)
        assert sorted(lead["lead_id"] for lead in found.json()["data"]) == sorted(
            leads[owner]["lead_id"] for owner in finds
        )


def test_the_published_document_says_what_q_searches(openapi: dict[str, Any]) -> None:
    parameters = openapi["paths"]["/leads"]["get"]["parameters"]
    description = next(parameter for parameter in parameters if parameter["name"] == "q")["description"]
    for words in ("Prefix of a name (first, last, or full name", "of an email or of a phone", "accents"):
        assert words in description


def test_an_agent_records_the_sale_amount_when_it_closes_its_own_lead(api: Api) -> None:
    # Given a lead of the calling agent's own
    lead = api.new_lead(OWN)
    assert lead["assigned_agent"] == USERS["agent"]
    # When the agent works it to a sale and records the amount as it closes it
    closed = walk(api, lead, USERS["agent"], "contacted", "qualified", "closed", sale_amount=1250.00)
    # Then the amount is the lead's, as staff read it too
    assert (closed["disposition"], closed["sale_amount"]) == ("closed", 1250.00)
    read = api.call("GET", f"/leads/{lead['lead_id']}", "demo-manager")
    assert read.json()["sale_amount"] == 1250.00
    assert read.json()["update_history"][-1]["user"] == USERS["agent"]


def test_an_agent_cannot_set_the_sale_amount_of_another_agents_lead(api: Api) -> None:
    # Given another agent's lead, closed with a sale
    lead = walk(
        api, api.new_lead(OTHER), "demo-admin", "contacted", "qualified", "closed", sale_amount=900.00
    )
    # When the calling agent tries to change its amount
    attempt = api.call(
        "PATCH",
        f"/leads/{lead['lead_id']}",
        USERS["agent"],
        body={"version": lead["version"], "sale_amount": 1.00},
    )
    # Then the lead is not the agent's to see (404), and nothing changed
    assert attempt.status_code == 404, attempt.text[:300]
    assert_error_body(attempt)
    read = api.call("GET", f"/leads/{lead['lead_id']}", "demo-admin").json()
    assert (read["sale_amount"], read["version"]) == (900.00, lead["version"])


def test_a_manager_changes_agents_but_does_not_create_them(api: Api) -> None:
    # Given a manager and an agent's current capacity
    capacity = api.call("GET", f"/agents/{OWN_AGENT}", "demo-manager").json()["capacity"]
    email = unique_email()
    # When the manager tries to create an agent, and changes an existing one
    created = api.call("POST", "/agents", "demo-manager", body={"name": "Not Created", "email": email})
    changed = api.call("PATCH", f"/agents/{OWN_AGENT}", "demo-manager", body={"capacity": capacity})
    # Then creating is refused and no such user exists; changing is allowed
    assert created.status_code == 403, created.text[:300]
    assert assert_error_body(created)["error"]["code"] == "FORBIDDEN"
    agents = api.call("GET", "/agents", "demo-admin").json()["data"]
    assert email not in {agent.get("email") for agent in agents}
    assert changed.status_code == 200, changed.text[:300]
    assert changed.json()["capacity"] == capacity
