"""The lead function's HTTP layer, in-process: authentication, validation, error mapping, CORS and
the audit record, with the users table, the lead service and the audit table replaced by fakes."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

import leads.routes
import shared.dependencies
from leads.app import lambda_handler
from leads.models import Disposition, LeadFilters
from shared.auth import Authenticator, PoolSettings, TokenSettings
from shared.errors import MAX_BODY_DEPTH, LeadNotFound
from shared.http import _vary_on_origin
from shared.security import Principal, Role
from tests.helpers import (
    ALLOWED_ORIGIN,
    DISALLOWED_ORIGIN,
    SECOND_ORIGIN,
    TEST_AUDIENCE,
    TEST_ISSUER,
    TEST_POOL_CLIENT_ID,
    TEST_POOL_ISSUER,
    TEST_SECRET,
    FakeLambdaContext,
    PoolKeysForTests,
    api_event,
    header,
    make_token,
    response_json,
    staff_token,
    token_for,
)

LEAD_ID = "01HV5Z3C9Q8R7S6T5V4W3X2Y1Z"
ALLOWED_ORIGINS = [ALLOWED_ORIGIN, SECOND_ORIGIN]

USERS: dict[str, dict[str, Any]] = {
    "demo-admin": {"user_id": "demo-admin", "role": "admin", "status": "active"},
    "demo-manager": {"user_id": "demo-manager", "role": "manager", "status": "active"},
    "demo-vendor-1": {
        "user_id": "demo-vendor-1",
        "role": "vendor",
        "status": "active",
        "vendor_code": "V001",
    },
    "demo-agent-1": {"user_id": "demo-agent-1", "role": "agent", "status": "active"},
    "disabled-user": {"user_id": "disabled-user", "role": "admin", "status": "disabled"},
}


def _lead(lead_id: str = LEAD_ID, vendor_code: str = "V001") -> dict[str, Any]:
    return {
        "lead_id": lead_id,
        "vendor_code": vendor_code,
        "email": "john@example.com",
        "disposition": "new",
        "created_at": "2024-01-15T10:00:00.000Z",
        "created_by": "demo-vendor-1",
        "updated_at": "2024-01-15T10:00:00.000Z",
    }


@dataclass
class FakeLeadService:
    """Stands in for `LeadService`: records its calls, answers with dicts or raises `error`."""

    error: Exception | None = None
    list_calls: list[tuple[Principal, LeadFilters, int, str | None]] = field(default_factory=list)
    get_calls: list[tuple[Principal, str]] = field(default_factory=list)

    def list_leads(
        self, principal: Principal, filters: LeadFilters, limit: int, cursor: str | None
    ) -> dict[str, Any]:
        self.list_calls.append((principal, filters, limit, cursor))
        if self.error is not None:
            raise self.error
        return {"data": [_lead()], "pagination": {"cursor": None, "hasMore": False, "count": 1}}

    def get_lead(self, principal: Principal, lead_id: str) -> dict[str, Any]:
        self.get_calls.append((principal, lead_id))
        if self.error is not None:
            raise self.error
        return _lead(lead_id)


@dataclass
class FakeAuditLog:
    records: list[tuple[dict[str, Any], str]] = field(default_factory=list)

    def record(self, record: dict[str, Any], method: str) -> None:
        self.records.append((record, method))


@pytest.fixture
def service(monkeypatch: pytest.MonkeyPatch) -> FakeLeadService:
    fake = FakeLeadService()
    monkeypatch.setattr(leads.routes, "lead_service", lambda: fake)
    return fake


@pytest.fixture
def audit(monkeypatch: pytest.MonkeyPatch) -> FakeAuditLog:
    fake = FakeAuditLog()
    monkeypatch.setattr(shared.dependencies, "audit_log", lambda: fake)
    return fake


@pytest.fixture
def user_lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []

    def load_user(user_id: str) -> dict[str, Any] | None:
        calls.append(user_id)
        return USERS.get(user_id)

    authenticator = Authenticator(
        settings_provider=lambda: TokenSettings(
            secret=TEST_SECRET, issuer=TEST_ISSUER, audience=TEST_AUDIENCE, leeway_seconds=30
        ),
        load_user=load_user,
        pool=PoolSettings(issuer=TEST_POOL_ISSUER, client_id=TEST_POOL_CLIENT_ID),
        pool_keys=PoolKeysForTests(),
        cache_seconds=0,
    )
    monkeypatch.setattr(shared.dependencies, "authenticator", lambda: authenticator)
    return calls


@pytest.fixture(autouse=True)
def _fakes(service: FakeLeadService, audit: FakeAuditLog, user_lookups: list[str]) -> None:
    """Every test runs with DynamoDB out of reach."""


def call(event: dict[str, Any]) -> dict[str, Any]:
    return lambda_handler(event, FakeLambdaContext())


def get_leads(
    token: str | None = None,
    query: dict[str, str] | None = None,
    origin: str | None = ALLOWED_ORIGIN,
) -> dict[str, Any]:
    return call(api_event("GET", "/leads", query=query, token=token, origin=origin))


def get_lead(lead_id: str, token: str | None = None, origin: str | None = ALLOWED_ORIGIN) -> dict[str, Any]:
    return call(
        api_event(
            "GET",
            f"/leads/{lead_id}",
            resource="/leads/{lead_id}",
            path_parameters={"lead_id": lead_id},
            token=token,
            origin=origin,
        )
    )


def error_of(response: dict[str, Any]) -> dict[str, Any]:
    body = response_json(response)
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message", "details"}, body
    return dict(body["error"])


# --- Authentication -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token",
    [
        pytest.param(None, id="no-token"),
        pytest.param("garbage", id="garbage-token"),
        pytest.param(make_token("demo-admin", secret="z" * 40), id="wrong-key"),
        pytest.param(make_token("demo-admin", ttl=-3600), id="expired"),
        pytest.param(make_token("nobody"), id="unknown-user"),
        pytest.param(make_token("disabled-user"), id="disabled-user"),
    ],
)
def test_request_without_a_valid_token_is_401_with_www_authenticate(
    token: str | None, service: FakeLeadService
) -> None:
    # Given
    event = api_event("GET", "/leads", token=token)

    # When
    response = call(event)

    # Then
    assert response["statusCode"] == 401
    assert error_of(response)["code"] == "UNAUTHORIZED"
    assert (header(response, "WWW-Authenticate") or "").startswith("Bearer")
    assert header(response, "Content-Type") == "application/json"
    assert service.list_calls == []


def test_non_bearer_authorization_header_is_401() -> None:
    # Given
    event = api_event("GET", "/leads", headers={"Authorization": "Basic dXNlcjpwYXNz"})

    # When
    response = call(event)

    # Then
    assert response["statusCode"] == 401
    assert error_of(response)["code"] == "UNAUTHORIZED"


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(
            api_event("GET", "/leads/nope", resource="/leads/{lead_id}", path_parameters={"lead_id": "nope"}),
            id="bad-lead-id",
        ),
        pytest.param(api_event("GET", "/leads", query={"limit": "0"}), id="bad-limit"),
    ],
)
def test_anonymous_invalid_request_is_401_before_validation(event: dict[str, Any]) -> None:
    # Given: an invalid parameter as well as no token

    # When
    response = call(event)

    # Then: authentication comes first
    assert response["statusCode"] == 401


@pytest.mark.parametrize(
    ("user_id", "role", "vendor_code"),
    [
        ("demo-admin", Role.ADMIN, None),
        ("demo-manager", Role.MANAGER, None),
        ("demo-vendor-1", Role.VENDOR, "V001"),
        ("demo-agent-1", Role.AGENT, None),
    ],
)
def test_each_role_can_list_leads(
    user_id: str, role: Role, vendor_code: str | None, service: FakeLeadService
) -> None:
    # Given
    token = token_for(user_id)

    # When
    response = get_leads(token)

    # Then
    assert response["statusCode"] == 200
    body = response_json(response)
    assert body["data"][0]["lead_id"] == LEAD_ID
    assert body["pagination"] == {"cursor": None, "hasMore": False, "count": 1}
    [(principal, filters, limit, cursor)] = service.list_calls
    assert principal == Principal(user_id=user_id, role=role, vendor_code=vendor_code)
    assert filters == LeadFilters()
    assert limit == 50
    assert cursor is None


def test_every_list_parameter_reaches_the_service_normalised(service: FakeLeadService) -> None:
    # Given
    query = {
        "limit": "200",
        "cursor": "abc.def",
        "vendor": "V001",
        "disposition": "qualified",
        "campaign": "spring sale",
        "agent": "demo-agent-1",
        "from": "2024-01-01",
        "to": "2024-01-31T12:00:00+02:00",
    }

    # When
    response = get_leads(staff_token("demo-admin"), query=query)

    # Then
    assert response["statusCode"] == 200
    [(_, filters, limit, cursor)] = service.list_calls
    assert limit == 200
    assert cursor == "abc.def"
    assert filters == LeadFilters(
        vendor="V001",
        disposition=Disposition.QUALIFIED,
        campaign="spring sale",
        agent="demo-agent-1",
        created_from="2024-01-01T00:00:00.000Z",
        created_to="2024-01-31T10:00:00.000Z",
    )


def test_list_filters_are_parsed_into_lead_filters(service: FakeLeadService) -> None:
    # Given
    query = {
        "limit": "1",
        "disposition": "qualified",
        "from": "2024-01-01",
        "to": "2024-01-31T12:00:00+02:00",
    }

    # When
    response = get_leads(staff_token("demo-admin"), query=query)

    # Then
    assert response["statusCode"] == 200
    [(_, filters, limit, _)] = service.list_calls
    assert limit == 1
    assert filters.disposition == "qualified"
    assert filters.created_from == "2024-01-01T00:00:00.000Z"
    assert filters.created_to == "2024-01-31T10:00:00.000Z"


def test_from_that_is_no_day_or_time_is_a_422_naming_it() -> None:
    # Given / When
    response = get_leads(staff_token("demo-admin"), query={"from": "yesterday"})

    # Then
    assert response["statusCode"] == 422
    error = error_of(response)
    assert error["code"] == "VALIDATION_ERROR"
    assert [detail["field"] for detail in error["details"]] == ["from"]


def test_from_shaped_like_a_day_but_not_one_is_a_400() -> None:
    # Given / When
    response = get_leads(staff_token("demo-admin"), query={"from": "2026-02-30"})

    # Then
    assert response["statusCode"] == 400
    error = error_of(response)
    assert error["code"] == "BAD_REQUEST"
    assert error["details"] == [{"field": "from", "message": "invalid date or time"}]


def test_get_lead_returns_the_lead(service: FakeLeadService) -> None:
    # Given
    token = make_token("demo-vendor-1")

    # When
    response = get_lead(LEAD_ID, token)

    # Then
    assert response["statusCode"] == 200
    assert response_json(response)["lead_id"] == LEAD_ID
    assert [lead_id for _, lead_id in service.get_calls] == [LEAD_ID]


# --- Validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize("limit", ["0", "201", "abc", "-1", "1.5", ""])
def test_invalid_limit_is_a_422_naming_limit(limit: str, service: FakeLeadService) -> None:
    # Given / When
    response = get_leads(staff_token("demo-admin"), query={"limit": limit})

    # Then
    assert response["statusCode"] == 422
    error = error_of(response)
    assert error["code"] == "VALIDATION_ERROR"
    assert [detail["field"] for detail in error["details"]] == ["limit"]
    assert error["details"][0]["location"] == "query"
    assert service.list_calls == []


@pytest.mark.parametrize(
    ("query", "field_name"),
    [
        ({"disposition": "bogus"}, "disposition"),
        ({"vendor": "V 001"}, "vendor"),
        ({"agent": "a" * 65}, "agent"),
        ({"campaign": "bad\nvalue"}, "campaign"),
        ({"cursor": "c" * 2049}, "cursor"),
        ({"from": "2" * 41}, "from"),
    ],
)
def test_invalid_filter_is_a_422_naming_the_filter(query: dict[str, str], field_name: str) -> None:
    # Given / When
    response = get_leads(staff_token("demo-admin"), query=query)

    # Then
    assert response["statusCode"] == 422
    error = error_of(response)
    assert error["code"] == "VALIDATION_ERROR"
    assert field_name in [detail["field"] for detail in error["details"]]


@pytest.mark.parametrize(
    "lead_id",
    [
        "not-a-ulid",
        LEAD_ID.lower(),
        LEAD_ID[:-1],
        LEAD_ID + "A",
        "01HV5Z3C9Q8R7S6T5V4W3X2Y1I",  # I is not in Crockford base32
        "01HV5Z3C9Q8R7S6T5V4W3X2Y1U",  # nor is U
    ],
)
def test_lead_id_that_is_not_a_ulid_is_a_422(lead_id: str, service: FakeLeadService) -> None:
    # Given / When
    response = get_lead(lead_id, staff_token("demo-admin"))

    # Then
    assert response["statusCode"] == 422
    error = error_of(response)
    assert error["code"] == "VALIDATION_ERROR"
    assert [detail["field"] for detail in error["details"]] == ["lead_id"]
    assert service.get_calls == []


# --- Error mapping ------------------------------------------------------------------------------


def test_lead_not_found_is_a_404(service: FakeLeadService) -> None:
    # Given
    service.error = LeadNotFound(LEAD_ID)

    # When
    response = get_lead(LEAD_ID, staff_token("demo-agent-1"))

    # Then
    assert response["statusCode"] == 404
    error = error_of(response)
    assert error["code"] == "NOT_FOUND"
    assert error["message"] == f"Lead {LEAD_ID} not found"


def test_unexpected_error_is_a_generic_500_without_internals(service: FakeLeadService) -> None:
    # Given
    service.error = RuntimeError("boom: connection to crm-test-leads refused at 10.0.0.7")

    # When
    response = get_leads(staff_token("demo-admin"))

    # Then
    assert response["statusCode"] == 500
    assert response_json(response) == {
        "error": {"code": "INTERNAL_ERROR", "message": "Internal server error", "details": []}
    }
    for leaked in ("Traceback", "RuntimeError", "boom", "crm-test-leads", "10.0.0.7", 'File "'):
        assert leaked not in response["body"]


def test_unknown_route_is_a_404() -> None:
    # Given / When
    response = call(api_event("GET", "/nope", token=staff_token("demo-admin")))

    # Then
    assert response["statusCode"] == 404
    assert error_of(response)["code"] == "NOT_FOUND"


def test_a_method_the_resource_lacks_is_a_405_naming_the_methods_it_has() -> None:
    # Given / When
    response = call(api_event("DELETE", "/leads", token=staff_token("demo-admin")))

    # Then
    assert response["statusCode"] == 405
    assert error_of(response)["code"] == "METHOD_NOT_ALLOWED"
    assert header(response, "Allow") == "GET, OPTIONS, POST"


def test_a_path_no_resource_has_is_a_404() -> None:
    response = call(api_event("GET", "/nowhere", token=staff_token("demo-admin")))
    assert response["statusCode"] == 404
    assert error_of(response)["code"] == "NOT_FOUND"


# --- CORS ---------------------------------------------------------------------------------------


def _ok(origin: str | None, service: FakeLeadService) -> dict[str, Any]:
    return get_leads(staff_token("demo-admin"), origin=origin)


def _unauthorized(origin: str | None, service: FakeLeadService) -> dict[str, Any]:
    return get_leads(None, origin=origin)


def _not_found(origin: str | None, service: FakeLeadService) -> dict[str, Any]:
    service.error = LeadNotFound(LEAD_ID)
    return get_lead(LEAD_ID, staff_token("demo-admin"), origin=origin)


def _unknown_route(origin: str | None, service: FakeLeadService) -> dict[str, Any]:
    return call(api_event("GET", "/nope", token=staff_token("demo-admin"), origin=origin))


def _invalid(origin: str | None, service: FakeLeadService) -> dict[str, Any]:
    return get_leads(staff_token("demo-admin"), query={"limit": "0"}, origin=origin)


def _bad_request(origin: str | None, service: FakeLeadService) -> dict[str, Any]:
    return get_leads(staff_token("demo-admin"), query={"to": "2026-02-30"}, origin=origin)


def _crash(origin: str | None, service: FakeLeadService) -> dict[str, Any]:
    service.error = RuntimeError("boom")
    return get_leads(staff_token("demo-admin"), origin=origin)


RESPONSES = [
    pytest.param(_ok, 200, id="200"),
    pytest.param(_bad_request, 400, id="400"),
    pytest.param(_unauthorized, 401, id="401"),
    pytest.param(_not_found, 404, id="404-lead"),
    pytest.param(_unknown_route, 404, id="404-route"),
    pytest.param(_invalid, 422, id="422"),
    pytest.param(_crash, 500, id="500"),
]


@pytest.mark.parametrize("origin", ALLOWED_ORIGINS)
@pytest.mark.parametrize(("make_response", "status"), RESPONSES)
def test_every_response_to_an_allowed_origin_carries_cors_headers(
    make_response: Any, status: int, origin: str, service: FakeLeadService
) -> None:
    # Given / When
    response = make_response(origin, service)

    # Then
    assert response["statusCode"] == status
    assert header(response, "Access-Control-Allow-Origin") == origin
    exposed = header(response, "Access-Control-Expose-Headers") or ""
    assert "WWW-Authenticate" in exposed
    assert header(response, "Access-Control-Allow-Credentials") is None
    assert header(response, "Vary") == "Origin"


@pytest.mark.parametrize(("make_response", "status"), RESPONSES)
@pytest.mark.parametrize("origin", [DISALLOWED_ORIGIN, None, "null", f"{ALLOWED_ORIGIN}.evil.test"])
def test_response_to_a_disallowed_or_missing_origin_has_no_cors_headers(
    make_response: Any, status: int, origin: str | None, service: FakeLeadService
) -> None:
    # Given / When
    response = make_response(origin, service)

    # Then no CORS header, and the answer still says it depends on the Origin: a shared cache must
    # not give it to an allowed origin (nor an allowed origin's answer to this request)
    assert response["statusCode"] == status
    assert header(response, "Access-Control-Allow-Origin") is None
    assert header(response, "Vary") == "Origin"


@pytest.mark.parametrize("path", ["/leads", f"/leads/{LEAD_ID}"])
@pytest.mark.parametrize("origin", ALLOWED_ORIGINS)
def test_preflight_without_a_token_is_answered_with_cors_headers(
    origin: str, path: str, service: FakeLeadService, user_lookups: list[str]
) -> None:
    # Given
    event = api_event(
        "OPTIONS",
        path,
        origin=origin,
        headers={
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization,content-type,idempotency-key",
        },
    )

    # When
    response = call(event)

    # Then
    assert response["statusCode"] == 204
    assert not response.get("body")
    assert header(response, "Access-Control-Allow-Origin") == origin
    methods = {m.strip() for m in (header(response, "Access-Control-Allow-Methods") or "").split(",")}
    assert "GET" in methods
    allowed_headers = {h.strip() for h in (header(response, "Access-Control-Allow-Headers") or "").split(",")}
    assert {"Authorization", "Content-Type", "Idempotency-Key"} <= allowed_headers
    assert header(response, "Access-Control-Max-Age") == "600"
    assert header(response, "Vary") == "Origin"
    assert user_lookups == []
    assert service.list_calls == []
    assert service.get_calls == []


def test_preflight_from_a_disallowed_origin_gets_no_allow_origin() -> None:
    # Given
    event = api_event(
        "OPTIONS", "/leads", origin=DISALLOWED_ORIGIN, headers={"Access-Control-Request-Method": "GET"}
    )

    # When
    response = call(event)

    # Then
    assert header(response, "Access-Control-Allow-Origin") is None
    assert header(response, "Vary") == "Origin"


def test_vary_keeps_the_fields_a_route_set_and_names_origin_once() -> None:
    # Given an answer whose route set its own Vary
    response: dict[str, Any] = {"statusCode": 200, "multiValueHeaders": {"vary": ["Accept-Encoding"]}}
    # When Origin is added to it twice
    _vary_on_origin(response)
    _vary_on_origin(response)
    # Then
    assert response["multiValueHeaders"] == {"vary": ["Accept-Encoding, Origin"]}


# --- Audit --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make_response", "status", "user", "role"),
    [
        pytest.param(_ok, 200, "demo-admin", "admin", id="200"),
        pytest.param(_bad_request, 400, "demo-admin", "admin", id="400"),
        pytest.param(_unauthorized, 401, None, None, id="401"),
        pytest.param(_not_found, 404, "demo-admin", "admin", id="404-lead"),
        pytest.param(_unknown_route, 404, None, None, id="404-route"),
        pytest.param(
            _invalid,
            422,
            "demo-admin",
            "admin",
            id="422",
        ),
        pytest.param(_crash, 500, "demo-admin", "admin", id="500"),
    ],
)
def test_each_request_is_audited_once_with_its_status_and_user(
    make_response: Any,
    status: int,
    user: str | None,
    role: str | None,
    service: FakeLeadService,
    audit: FakeAuditLog,
) -> None:
    # Given / When
    response = make_response(ALLOWED_ORIGIN, service)

    # Then
    assert response["statusCode"] == status
    [(record, method)] = audit.records
    assert method == "GET"
    assert record["status"] == status
    assert record["user"] == user
    assert record["role"] == role
    assert record["duration_ms"] >= 0


def test_audit_record_names_the_route_and_hides_the_token(audit: FakeAuditLog) -> None:
    # Given
    token = make_token("demo-vendor-1")

    # When
    get_lead(LEAD_ID, token)

    # Then
    [(record, _)] = audit.records
    assert record["action"] == "GET /leads/{lead_id}"
    assert record["user"] == "demo-vendor-1"
    assert record["role"] == "vendor"
    assert token not in json.dumps(record, default=str)


def test_preflight_is_audited_without_a_user(audit: FakeAuditLog) -> None:
    # Given
    event = api_event("OPTIONS", "/leads", headers={"Access-Control-Request-Method": "GET"})

    # When
    call(event)

    # Then
    [(record, method)] = audit.records
    assert method == "OPTIONS"
    assert record["status"] == 204
    assert record["user"] is None


def test_principal_does_not_leak_into_the_next_request(audit: FakeAuditLog) -> None:
    # Given: an authenticated request followed by an anonymous one on the same instance
    get_leads(staff_token("demo-admin"))

    # When
    get_leads(None)

    # Then
    assert [record["user"] for record, _ in audit.records] == ["demo-admin", None]


# -- bodies that are not JSON -----------------------------------------------------------------
PATCH_PATH = f"/leads/{LEAD_ID}"


def patch_event(token: str | None, body: str, content_type: str, base64: bool = False) -> dict[str, Any]:
    event = api_event(
        "PATCH",
        PATCH_PATH,
        resource="/leads/{lead_id}",
        path_parameters={"lead_id": LEAD_ID},
        token=token,
        body=body,
        headers={"Content-Type": content_type},
    )
    event["isBase64Encoded"] = base64
    return event


def test_a_body_that_is_not_json_is_415_not_500() -> None:
    response = call(patch_event(staff_token("demo-admin"), '{"version": 1}', "text/plain"))
    assert response["statusCode"] == 415
    assert response_json(response)["error"]["code"] == "UNSUPPORTED_MEDIA_TYPE"


def test_a_body_that_is_not_utf8_is_400_not_500() -> None:
    import base64

    raw = base64.b64encode(b"\x80\x81{").decode()
    response = call(patch_event(staff_token("demo-admin"), raw, "application/json", base64=True))
    assert response["statusCode"] == 400
    assert response_json(response)["error"]["details"] == [{"field": "body", "message": "not UTF-8 text"}]


@pytest.mark.parametrize("agent", ["", " ", "agent 1", "x" * 65])
def test_an_assigned_agent_that_is_no_user_id_is_422_before_any_write(agent: str) -> None:
    # An empty id once reached the users table's index key (a 500); it is refused by the schema.
    body = json.dumps({"version": 1, "assigned_agent": agent})
    response = call(patch_event(staff_token("demo-admin"), body, "application/json"))
    assert response["statusCode"] == 422
    assert response_json(response)["error"]["details"][0]["field"] == "assigned_agent"


@pytest.mark.parametrize("content_type", ["text/plain", "application/json"])
def test_an_anonymous_caller_learns_nothing_from_a_bad_body(content_type: str) -> None:
    import base64

    raw = base64.b64encode(b"\x80\x81{").decode()
    response = call(patch_event(None, raw, content_type, base64=True))
    assert response["statusCode"] == 401


# -- bodies nested too deep -------------------------------------------------------------------
def nested(depth: int) -> str:
    """`{"a":[[…]]}`, `depth` levels deep (500 levels is about 1 KB)."""
    return '{"a":' + "[" * (depth - 1) + "]" * (depth - 1) + "}"


@pytest.mark.parametrize("base64", [False, True], ids=["text", "base64"])
def test_a_body_nested_past_the_limit_is_400_and_audited_by_size(base64: bool, audit: FakeAuditLog) -> None:
    import base64 as b64

    # Given a body past the depth where Powertools' recursive parser fails (489 levels)
    body = nested(500)
    sent = b64.b64encode(body.encode()).decode() if base64 else body
    # When
    response = call(patch_event(staff_token("demo-admin"), sent, "application/json", base64=base64))
    # Then
    assert response["statusCode"] == 400
    error = error_of(response)
    assert error["code"] == "NESTING_TOO_DEEP"
    assert error["details"][0]["max_depth"] == MAX_BODY_DEPTH
    assert header(response, "Access-Control-Allow-Origin") == ALLOWED_ORIGIN
    [(record, method)] = audit.records
    assert (method, record["status"], record["user"]) == ("PATCH", 400, "demo-admin")
    if not base64:
        assert record["request"]["body"] == f"<{len(body)} bytes, nested deeper than {MAX_BODY_DEPTH} levels>"


def test_an_anonymous_body_nested_past_the_limit_is_400_and_audited(audit: FakeAuditLog) -> None:
    # When
    response = call(patch_event(None, nested(100_000), "application/json"))
    # Then: refused to everyone, before who is asking is known
    assert response["statusCode"] == 400
    assert error_of(response)["code"] == "NESTING_TOO_DEEP"
    [(record, _)] = audit.records
    assert (record["status"], record["user"]) == (400, None)
    assert "nested deeper than" in record["request"]["body"]


def test_a_body_nested_to_the_limit_reaches_validation() -> None:
    response = call(patch_event(staff_token("demo-admin"), nested(MAX_BODY_DEPTH), "application/json"))
    assert response["statusCode"] == 422
    assert error_of(response)["code"] == "VALIDATION_ERROR"


def test_a_lead_posted_nested_past_the_limit_is_400_with_the_error_body(audit: FakeAuditLog) -> None:
    # Given a vendor's post, labelled text/plain as posting systems often do
    event = api_event(
        "POST",
        "/leads",
        token=make_token("demo-vendor-1"),
        body=nested(500),
        headers={"Content-Type": "text/plain"},
    )
    # When
    response = call(event)
    # Then
    assert response["statusCode"] == 400
    body = response_json(response)
    assert "outcome" not in body  # the post was never read
    assert body["error"]["code"] == "NESTING_TOO_DEEP"
    [(record, _)] = audit.records
    assert (record["status"], record["user"]) == (400, "demo-vendor-1")
