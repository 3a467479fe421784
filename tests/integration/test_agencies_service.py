"""The agencies service in-process against moto over HTTP: the role matrix of every route, own vs
another owner's data, agencies, credentials, pricing and agents, the cache, and the DynamoDB
round trips of `GET /agencies` at 5 and at 50 agencies."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import jwt
import pytest

import agencies.app
import leads.app
from crm.bench_timing import DynamoCounter
from crm.seed import SeedTables, demo_leads, seed_demo_data
from crm.stack import MotoServer
from leads.repository import LeadRepository
from shared import dependencies
from shared.auth import VENDOR_TOKEN_MAX_SECONDS
from shared.dynamo import dynamodb_client
from stats.aggregation import LeadView
from stats.dependencies import stats_store
from stats.rebuild import rebuild
from tests.helpers import FakeLambdaContext, api_event, response_json, token_for
from tests.integration.conftest import forget_user_pool, fresh_stack, fresh_user_pool

ADMIN, MANAGER, AGENT, VENDOR = "demo-admin", "demo-manager", "demo-agent-1", "demo-vendor-1"
OTHER_AGENT = "demo-agent-2"
OWN_CODE, OTHER_CODE = "V001", "V002"  # demo-vendor-1 is V001's integration user
RESOURCES = [
    "/agencies/{code}/credentials/{user_id}",
    "/agencies/{code}/credentials",
    "/agencies/{code}",
    "/agencies",
    "/pricing/settings",
    "/pricing/quote",
    "/pricing/{vendor_code}",
    "/pricing",
    "/agents/{user_id}",
    "/agents",
    "/managers/{user_id}",
    "/managers",
]


def resource_of(path: str) -> tuple[str, dict[str, str] | None]:
    """The template resource a path belongs to, static segments first (as API Gateway matches)."""
    for resource in RESOURCES:
        pattern = "^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", resource) + "$"
        found = re.match(pattern, path)
        if found:
            return resource, found.groupdict() or None
    raise AssertionError(f"no resource for {path}")


def call(
    method: str, path: str, user: str | None = ADMIN, body: Any = None, query: dict[str, str] | None = None
) -> tuple[int, Any]:
    resource, parameters = resource_of(path)
    event = api_event(
        method,
        path,
        resource=resource,
        path_parameters=parameters,
        token=token_for(user) if user else None,
        body=body,
        query=query,
    )
    response = agencies.app.lambda_handler(event, FakeLambdaContext())
    return response["statusCode"], response_json(response)


def post_lead(user: str = VENDOR, **fields: Any) -> dict[str, Any]:
    body = {"email": f"lead-{datetime.now(UTC).timestamp()}-{id(fields)}@example.com", "tcpa_consent": True}
    event = api_event("POST", "/leads", token=token_for(user), body={**body, **fields})
    response = leads.app.lambda_handler(event, FakeLambdaContext())
    result: dict[str, Any] = response_json(response)
    result["status"] = response["statusCode"]
    return result


def seed(lead_count: int = 120) -> None:
    tables = SeedTables.configured()
    seed_demo_data(tables, lead_count=0)
    sample = demo_leads(lead_count)
    LeadRepository(tables.leads).put_many(sample)
    zone = ZoneInfo(dependencies.get_settings().business_timezone)
    rebuild((LeadRepository.to_item(lead) for lead in sample), stats_store(), zone)
    stats_store.cache_clear()


@pytest.fixture
def stack(moto_server: MotoServer) -> Iterator[None]:
    """A freshly seeded stack for each test: these tests change agencies, prices and agents."""
    fresh_stack(moto_server)
    fresh_user_pool(moto_server)
    stats_store.cache_clear()
    seed()
    yield
    stats_store.cache_clear()
    forget_user_pool()


# -- the role matrix ------------------------------------------------------------------------------
ANY_AGENCY = {"vendor_code": "V077", "name": "Matrix Co"}
MATRIX = [
    # (method, path, body, {user: expected status}); None is an anonymous caller
    ("GET", "/agencies", None, {ADMIN: 200, MANAGER: 200, AGENT: 403, VENDOR: 200, None: 401}),
    ("POST", "/agencies", ANY_AGENCY, {ADMIN: 201, MANAGER: 403, AGENT: 403, VENDOR: 403, None: 401}),
    (
        "GET",
        f"/agencies/{OWN_CODE}",
        None,
        {ADMIN: 200, MANAGER: 200, AGENT: 403, VENDOR: 200, None: 401},
    ),
    (
        "GET",
        f"/agencies/{OTHER_CODE}",
        None,
        {ADMIN: 200, MANAGER: 200, AGENT: 403, VENDOR: 404, None: 401},
    ),
    (
        "PATCH",
        f"/agencies/{OWN_CODE}",
        {"monthly_goal": 700},
        {ADMIN: 200, MANAGER: 403, AGENT: 403, VENDOR: 403, None: 401},
    ),
    (
        "POST",
        f"/agencies/{OWN_CODE}/credentials",
        None,
        {ADMIN: 201, MANAGER: 403, AGENT: 403, VENDOR: 403, None: 401},
    ),
    (
        "DELETE",
        f"/agencies/{OTHER_CODE}/credentials/demo-vendor-2",
        None,
        {ADMIN: 204, MANAGER: 403, AGENT: 403, VENDOR: 403, None: 401},
    ),
    ("GET", "/pricing", None, {ADMIN: 200, MANAGER: 200, AGENT: 403, VENDOR: 403, None: 401}),
    (
        "PUT",
        f"/pricing/{OWN_CODE}",
        {"price": 41.5},
        {ADMIN: 200, MANAGER: 403, AGENT: 403, VENDOR: 403, None: 401},
    ),
    (
        "PATCH",
        "/pricing/settings",
        {"default_price": 36},
        {ADMIN: 200, MANAGER: 403, AGENT: 403, VENDOR: 403, None: 401},
    ),
    (
        "POST",
        "/pricing/quote",
        {"vendor_code": OWN_CODE, "quality_score": 7},
        {ADMIN: 200, MANAGER: 200, AGENT: 403, VENDOR: 403, None: 401},
    ),
    ("GET", "/agents", None, {ADMIN: 200, MANAGER: 200, AGENT: 403, VENDOR: 403, None: 401}),
    (
        "POST",
        "/agents",
        {"name": "New Agent", "email": "new.agent@crm.example.com"},
        {ADMIN: 201, MANAGER: 403, AGENT: 403, VENDOR: 403, None: 401},
    ),
    (
        "GET",
        f"/agents/{AGENT}",
        None,
        {ADMIN: 200, MANAGER: 200, AGENT: 200, VENDOR: 403, None: 401},
    ),
    (
        "GET",
        f"/agents/{OTHER_AGENT}",
        None,
        {ADMIN: 200, MANAGER: 200, AGENT: 404, VENDOR: 403, None: 401},
    ),
    (
        "PATCH",
        f"/agents/{AGENT}",
        {"availability": "busy"},
        {ADMIN: 200, MANAGER: 200, AGENT: 200, VENDOR: 403, None: 401},
    ),
    (
        "PATCH",
        f"/agents/{OTHER_AGENT}",
        {"availability": "busy"},
        {ADMIN: 200, MANAGER: 200, AGENT: 404, VENDOR: 403, None: 401},
    ),
    (
        "POST",
        "/managers",
        {"name": "New Manager", "email": "new.manager@crm.example.com"},
        {ADMIN: 201, MANAGER: 403, AGENT: 403, VENDOR: 403, None: 401},
    ),
    (
        "PATCH",
        f"/managers/{MANAGER}",
        {"name": "Demo Manager"},
        {ADMIN: 200, MANAGER: 403, AGENT: 403, VENDOR: 403, None: 401},
    ),
]


@pytest.fixture(scope="module")
def matrix_stack(moto_server: MotoServer) -> Iterator[None]:
    fresh_stack(moto_server)
    fresh_user_pool(moto_server)
    stats_store.cache_clear()
    seed(60)
    yield
    forget_user_pool()


@pytest.mark.parametrize(
    ("method", "path", "body", "user", "expected"),
    [
        pytest.param(method, path, body, user, status, id=f"{method} {path} as {user or 'anonymous'}")
        for method, path, body, statuses in MATRIX
        for user, status in statuses.items()
    ],
)
def test_role_matrix(
    matrix_stack: None, method: str, path: str, body: Any, user: str | None, expected: int
) -> None:
    # Repeated writes stay valid: a created agency gets a fresh code, a revoked credential a fresh user.
    if method == "POST" and path == "/agencies":
        body = {**body, "vendor_code": f"M{abs(hash((user, expected))) % 10**6:06d}"}
    if method == "DELETE":
        users = dependencies.users_table()
        users.put(
            {"user_id": "demo-vendor-2", "role": "vendor", "vendor_code": OTHER_CODE, "status": "active"}
        )
    status, answer = call(method, path, user, body=body)
    assert status == expected, answer
    if status >= 400:
        assert set(answer["error"]) == {"code", "message", "details"}


# -- agencies -------------------------------------------------------------------------------------
def test_a_vendor_lists_only_its_own_agency_and_staff_see_all(stack: None) -> None:
    _, own = call("GET", "/agencies", VENDOR)
    _, everyone = call("GET", "/agencies", MANAGER)
    assert [agency["vendor_code"] for agency in own["data"]] == [OWN_CODE]
    assert [agency["vendor_code"] for agency in everyone["data"]] == ["V001", "V002", "V003", "V004", "V005"]
    assert everyone["pagination"] == {"cursor": None, "hasMore": False, "count": 5}


def test_agencies_page_by_code_with_a_tamper_evident_cursor(stack: None) -> None:
    _, first = call("GET", "/agencies", query={"limit": "2"})
    assert [agency["vendor_code"] for agency in first["data"]] == ["V001", "V002"]
    assert first["pagination"]["hasMore"] is True
    _, rest = call("GET", "/agencies", query={"limit": "10", "cursor": first["pagination"]["cursor"]})
    assert [agency["vendor_code"] for agency in rest["data"]] == ["V003", "V004", "V005"]
    status, error = call("GET", "/agencies", query={"cursor": first["pagination"]["cursor"][:-2] + "xx"})
    assert status == 400
    assert error["error"]["code"] == "INVALID_CURSOR"


def business_day(moment: str) -> str:
    zone = dependencies.business_zone()
    return datetime.fromisoformat(moment.replace("Z", "+00:00")).astimezone(zone).date().isoformat()


def test_performance_matches_the_buckets(stack: None) -> None:
    # Given the seeded leads of V001 in the last 90 days
    _, agency = call("GET", f"/agencies/{OWN_CODE}")
    performance = agency["performance"]
    # Then its measures are the sums over those leads: the cohort (created in the window) for
    # leads, spend and converted; closes in the window for conversions and sales
    today = datetime.now(dependencies.business_zone()).date()
    window = {(today - timedelta(days=n)).isoformat() for n in range(90)}
    own = [
        LeadView.from_values(item)
        for item in dependencies.leads_table().scan_all()
        if item["vendor_code"] == OWN_CODE
    ]
    created = [lead for lead in own if lead and business_day(lead.created_at) in window]
    closed = [lead for lead in own if lead and lead.closed_date and business_day(lead.closed_date) in window]
    spend = sum((lead.lead_value for lead in created), Decimal(0))
    sales = sum((lead.sale_amount or Decimal(0) for lead in closed), Decimal(0))
    converted = sum(1 for lead in created if lead.disposition == "closed")
    assert (performance["leads"], performance["converted"]) == (len(created), converted)
    assert performance["conversionRate"] == pytest.approx(round(100 * converted / len(created), 1))
    assert performance["conversionRate"] <= 100
    assert Decimal(str(performance["revenue"])) == spend
    assert Decimal(str(performance["sales"])) == sales
    assert performance["returnOnSpend"] == pytest.approx(round(float(sales / spend), 2))
    assert performance["avgCPA"] == pytest.approx(round(float(spend / len(closed)), 2))
    # and the block is consistent with itself and the goal
    assert performance["monthlyGoal"] == 600
    assert performance["goalProgress"] == pytest.approx(round(performance["leadsThisMonth"] / 6, 1))
    assert performance["leads"] > 0
    assert performance["grade"] in {"A", "B", "C", "D", "F"}
    assert set(agency["insights"]) == {"strengths", "opportunities", "recommendations"}
    assert agency["insights"]["recommendations"]


DEFAULT_ACCEPTANCE = {
    "require_consent": True,
    "required_fields": [],
    "allowed_states": [],
    "max_lead_age_minutes": None,
    "hours": None,
}
RULES = {
    "require_consent": False,
    "required_fields": ["phone", "zip"],
    "allowed_states": ["TX", "OK"],
    "max_lead_age_minutes": 15,
    "hours": {"time_zone": "America/Chicago", "days": ["mon", "fri"], "from": "22:00", "to": "06:00"},
}


def test_acceptance_rules_and_the_hourly_cap_are_set_shown_and_replaced(stack: None) -> None:
    # Given an agency created with rules and an hourly cap
    status, created = call(
        "POST",
        "/agencies",
        body={"vendor_code": "V012", "name": "Ruled", "hourly_cap": 7, "acceptance": RULES},
    )
    assert status == 201, created
    assert (created["hourly_cap"], created["acceptance"]) == (7, RULES)
    assert (
        call("GET", "/agencies/V012")[1]["acceptance"],
        call("GET", "/agencies/V012")[1]["hourly_cap"],
    ) == (
        RULES,
        7,
    )
    # When a PATCH sets other rules and removes the cap
    status, changed = call(
        "PATCH", "/agencies/V012", body={"acceptance": {"allowed_states": ["CA"]}, "hourly_cap": None}
    )
    # Then the rules are replaced whole (what the PATCH leaves out is back to its default)
    assert status == 200, changed
    _, read = call("GET", "/agencies/V012")
    assert read["acceptance"] == {**DEFAULT_ACCEPTANCE, "allowed_states": ["CA"]}
    assert read["hourly_cap"] is None
    # and the vendor sees its own rules
    assert call("GET", "/agencies", VENDOR)[1]["data"][0]["acceptance"] == DEFAULT_ACCEPTANCE


def test_create_then_change_an_agency(stack: None) -> None:
    status, created = call(
        "POST", "/agencies", body={"vendor_code": "V010", "name": "Tenth", "monthly_cap": 5}
    )
    assert status == 201
    assert created | {"created_at": None, "updated_at": None} == {
        "vendor_code": "V010",
        "name": "Tenth",
        "status": "active",
        "monthly_goal": 600,
        "daily_cap": None,
        "monthly_cap": 5,
        "hourly_cap": None,
        "dedupe_window_days": 30,
        "return_window_days": 7,
        "test_mode": False,
        "acceptance": DEFAULT_ACCEPTANCE,
        "contact_name": None,
        "contact_email": None,
        "contact_phone": None,
        "created_at": None,
        "updated_at": None,
    }
    status, again = call("POST", "/agencies", body={"vendor_code": "V010", "name": "Twice"})
    assert status == 409
    assert again["error"]["code"] == "CONFLICT"
    status, changed = call("PATCH", "/agencies/V010", body={"status": "paused", "monthly_cap": None})
    assert status == 200
    assert changed["status"] == "paused"
    assert changed["monthly_cap"] is None
    _, read = call("GET", "/agencies/V010")
    assert read["status"] == "paused"
    # no leads: no rate, no cost per acquisition, no return on spend; not zeros
    assert {name: read["performance"][name] for name in ("leads", "converted", "sales", "revenue")} == {
        "leads": 0,
        "converted": 0,
        "sales": 0,
        "revenue": 0,
    }
    assert [read["performance"][name] for name in ("conversionRate", "avgCPA", "returnOnSpend", "grade")] == [
        None
    ] * 4


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "field"),
    [
        pytest.param(
            "POST", "/agencies", {"vendor_code": "v-1", "name": "x"}, 422, "vendor_code", id="bad-code"
        ),
        pytest.param("POST", "/agencies", {"vendor_code": "V011"}, 422, "name", id="no-name"),
        pytest.param(
            "POST", "/agencies", {"vendor_code": "V011", "name": "x", "rogue": 1}, 422, "rogue", id="extra"
        ),
        pytest.param("PATCH", "/agencies/V001", {"name": None}, 422, "name", id="null-name"),
        pytest.param("PATCH", "/agencies/V001", {"monthly_goal": 0}, 422, "monthly_goal", id="zero-goal"),
        pytest.param("PATCH", "/agencies/V001", {"status": "closed"}, 422, "status", id="bad-status"),
        pytest.param(
            "PATCH", "/agencies/V001", {"contact_email": "nope"}, 422, "contact_email", id="bad-email"
        ),
        pytest.param("PATCH", "/agencies/V001", {}, 422, "body", id="nothing"),
        pytest.param("PATCH", "/agencies/V001", {"hourly_cap": 0}, 422, "hourly_cap", id="zero-hourly-cap"),
        pytest.param("PATCH", "/agencies/V001", {"acceptance": None}, 422, "acceptance", id="null-rules"),
        pytest.param(
            "PATCH",
            "/agencies/V001",
            {"acceptance": {"required_fields": ["lead_value"]}},
            422,
            None,
            id="not-a-posting-field",
        ),
        pytest.param(
            "PATCH",
            "/agencies/V001",
            {"acceptance": {"allowed_states": ["tx"]}},
            422,
            None,
            id="bad-state",
        ),
        pytest.param(
            "PATCH",
            "/agencies/V001",
            {
                "acceptance": {
                    "hours": {"time_zone": "Nowhere/Else", "days": ["mon"], "from": "09:00", "to": "17:00"}
                }
            },
            422,
            "time_zone",
            id="bad-zone",
        ),
        pytest.param("PATCH", "/agencies/V404", {"name": "x"}, 404, None, id="unknown"),
        pytest.param("PUT", "/pricing/V001", {"price": -1}, 422, "price", id="negative-price"),
        pytest.param("PUT", "/pricing/V001", {"price": 1.005}, 422, "price", id="fraction-of-cent"),
        pytest.param("PUT", "/pricing/V404", {"price": 10}, 404, None, id="price-of-unknown"),
        pytest.param(
            "POST",
            "/pricing/quote",
            {"vendor_code": "V001", "quality_score": 11},
            422,
            "quality_score",
            id="q11",
        ),
        pytest.param(
            "POST",
            "/pricing/quote",
            {"vendor_code": "V404", "quality_score": 5},
            404,
            None,
            id="quote-unknown",
        ),
        pytest.param(
            "POST",
            "/agents",
            {"name": "A", "email": "a@x.com", "capacity": -1},
            422,
            "capacity",
            id="capacity",
        ),
        pytest.param(
            "PATCH", "/agents/demo-agent-1", {"availability": "asleep"}, 422, "availability", id="asleep"
        ),
        pytest.param(
            "PATCH", "/agents/demo-agent-1", {"capacity": None}, 422, "capacity", id="null-capacity"
        ),
        pytest.param("PATCH", "/agents/demo-admin", {"availability": "online"}, 404, None, id="not-an-agent"),
        pytest.param(
            "DELETE", "/agencies/V001/credentials/demo-vendor-2", None, 404, None, id="others-credential"
        ),
        pytest.param(
            "DELETE", "/agencies/V001/credentials/demo-admin", None, 404, None, id="not-a-credential"
        ),
        pytest.param("POST", "/agencies/V404/credentials", None, 404, None, id="credential-of-unknown"),
    ],
)
def test_bad_input_is_a_clear_4xx_and_writes_nothing(
    stack: None, method: str, path: str, body: Any, status: int, field: str | None
) -> None:
    before = {code: call("GET", f"/agencies/{code}")[1] for code in ("V001", "V002")}
    answer_status, answer = call(method, path, body=body)
    assert answer_status == status, answer
    if field is not None:
        assert field in {detail.get("field") for detail in answer["error"]["details"]}, answer
    assert {code: call("GET", f"/agencies/{code}")[1] for code in ("V001", "V002")} == before


def test_a_change_is_seen_by_the_next_read_through_the_cache(stack: None, query_cache_in_redis: str) -> None:
    call("GET", "/agencies")  # cached
    call("PATCH", f"/agencies/{OWN_CODE}", body={"name": "Renamed Partners"})
    _, after = call("GET", "/agencies")
    assert after["data"][0]["name"] == "Renamed Partners"


def test_agencies_cost_the_same_round_trips_for_5_and_50_agencies(stack: None) -> None:
    counter = DynamoCounter()
    client = dynamodb_client()
    client.meta.events.register("before-call.dynamodb", counter.started)
    client.meta.events.register("after-call.dynamodb", counter.finished)
    try:

        def round_trips() -> int:
            dependencies.query_cache.cache_clear()  # a cold cache: every read reaches DynamoDB
            counter.reset()
            status, _body = call("GET", "/agencies", query={"limit": "200"})
            calls, _, _ = counter.reset()
            assert status == 200
            return calls - 1  # minus the caller's user record

        five = round_trips()
        # 45 more agencies, each with leads in two campaigns over the window
        dependencies.vendors_table().batch_put(
            [{"vendor_code": f"X{n:03d}", "name": f"Agency {n}", "status": "active"} for n in range(45)]
        )
        today = datetime.now(UTC)
        for n in range(45):
            for campaign, days_ago in (("search", n % 30), ("social", 30 + n)):
                created = (today - timedelta(days=days_ago)).isoformat().replace("+00:00", "Z")
                view = LeadView(
                    vendor_code=f"X{n:03d}",
                    created_at=created,
                    disposition="new",
                    campaign_source=campaign,
                    assigned_agent=None,
                    quality_score=6,
                    lead_value=Decimal("30.00"),
                )
                stats_store().apply(f"x-{n}-{campaign}", 1, view)
        fifty = round_trips()
        _, listed = call("GET", "/agencies", query={"limit": "200"})
        assert all(agency["performance"]["leads"] == 2 for agency in listed["data"][5:])
    finally:
        client.meta.events.unregister("before-call.dynamodb", counter.started)
        client.meta.events.unregister("after-call.dynamodb", counter.finished)
    print(f"\nGET /agencies DynamoDB round trips: 5 agencies {five}, 50 agencies {fifty}")
    # the vendors (one Scan page) and 90 day buckets: totals and vendors (one Query each)
    assert five == fifty == 3


# -- credentials ----------------------------------------------------------------------------------
def test_issued_credentials_post_as_the_agency_until_revoked(stack: None) -> None:
    status, credential = call("POST", f"/agencies/{OTHER_CODE}/credentials")
    assert status == 201
    assert credential["vendor_code"] == OTHER_CODE
    token = credential["token"]
    event = api_event("GET", "/agencies", resource="/agencies", token=token)
    response = agencies.app.lambda_handler(event, FakeLambdaContext())
    assert [agency["vendor_code"] for agency in response_json(response)["data"]] == [OTHER_CODE]
    status, _ = call("DELETE", f"/agencies/{OTHER_CODE}/credentials/{credential['user_id']}")
    assert status == 204
    response = agencies.app.lambda_handler(event, FakeLambdaContext())
    assert response["statusCode"] == 401


def test_rotating_a_credential_keeps_the_old_one_until_it_is_revoked(stack: None) -> None:
    # Given an agency's credential in use
    def agencies_as(token: str) -> int:
        event = api_event("GET", "/agencies", resource="/agencies", token=token)
        return int(agencies.app.lambda_handler(event, FakeLambdaContext())["statusCode"])

    _, old = call("POST", f"/agencies/{OTHER_CODE}/credentials")
    # When a new one is issued: both work, so the integration can switch at its own pace
    status, new = call("POST", f"/agencies/{OTHER_CODE}/credentials")
    assert status == 201
    assert new["user_id"] != old["user_id"]
    assert (agencies_as(old["token"]), agencies_as(new["token"])) == (200, 200)
    # Then revoking the old one leaves the new one working
    status, _ = call("DELETE", f"/agencies/{OTHER_CODE}/credentials/{old['user_id']}")
    assert status == 204
    assert (agencies_as(old["token"]), agencies_as(new["token"])) == (401, 200)


def test_a_credential_lives_exactly_the_vendor_maximum(stack: None) -> None:
    # When
    _, credential = call("POST", f"/agencies/{OTHER_CODE}/credentials")
    # Then
    claims = jwt.decode(credential["token"], options={"verify_signature": False})
    assert claims["exp"] - claims["iat"] == VENDOR_TOKEN_MAX_SECONDS
    expires_at = datetime.fromisoformat(credential["expires_at"].replace("Z", "+00:00"))
    assert abs(expires_at.timestamp() - claims["exp"]) <= 1


# -- pricing --------------------------------------------------------------------------------------
def test_pricing_reads_and_writes(stack: None) -> None:
    status, price = call("PUT", f"/pricing/{OWN_CODE}", body={"price": 42.5})
    assert status == 200
    assert price == {"vendor_code": OWN_CODE, "price": 42.5}
    status, settings = call(
        "PATCH",
        "/pricing/settings",
        body={
            "default_price": 30,
            "time_of_day_multipliers": [{"from_hour": 9, "to_hour": 17, "multiplier": 1.1}],
        },
    )
    assert status == 200
    assert settings["default_price"] == 30
    assert settings["min_price"] == 10
    _, view = call("GET", "/pricing", MANAGER)
    assert {"vendor_code": OWN_CODE, "price": 42.5} in view["vendors"]
    assert view["settings"] == settings


def test_a_change_that_contradicts_the_stored_settings_is_a_409_and_changes_nothing(stack: None) -> None:
    status, error = call("PATCH", "/pricing/settings", body={"min_price": 200})  # above max 150
    assert status == 409
    assert error["error"]["code"] == "CONFLICT"
    _, view = call("GET", "/pricing")
    assert view["settings"]["min_price"] == 10


@pytest.mark.parametrize(
    "body",
    [
        {"min_price": 90, "max_price": 80},
        {"time_of_day_multipliers": [{"from_hour": 9, "to_hour": 12, "multiplier": 1.2}] * 2},
    ],
    ids=["prices-reversed", "bands-overlap"],
)
def test_a_change_that_contradicts_itself_is_a_422(stack: None, body: dict[str, Any]) -> None:
    status, error = call("PATCH", "/pricing/settings", body=body)
    assert status == 422
    assert error["error"]["code"] == "VALIDATION_ERROR"


def test_a_quote_is_the_vendor_price_with_smart_pricing_off_and_the_formula_with_it_on(stack: None) -> None:
    _, off = call("POST", "/pricing/quote", body={"vendor_code": OWN_CODE, "quality_score": 6})
    assert off["price"] == 40
    assert off["factors"] is None
    assert off["smart_pricing_enabled"] is False
    call("PATCH", "/pricing/settings", body={"smart_pricing_enabled": True})
    _, on = call("POST", "/pricing/quote", body={"vendor_code": OWN_CODE, "quality_score": 6})
    factors = on["factors"]
    expected = Decimal(40)
    for value in factors.values():
        expected *= Decimal(str(value))
    assert on["price"] == pytest.approx(float(min(Decimal(150), max(Decimal(10), expected))), abs=0.01)
    assert factors["quality"] == 0.6


def test_posting_prices_with_the_smart_formula_when_enabled(stack: None) -> None:
    call("PATCH", "/pricing/settings", body={"smart_pricing_enabled": True, "min_price": 1})
    _, quoted = call("POST", "/pricing/quote", body={"vendor_code": OWN_CODE, "quality_score": 5})
    posted = post_lead(first_name="Smart", phone="+12125550188")
    assert posted["status"] == 201
    factors = quoted["factors"]
    base = Decimal(40) * Decimal(str(factors["demand"])) * Decimal(str(factors["vendorPerformance"]))
    expected = base * Decimal(posted["lead"]["quality_score"]) / 10 * Decimal(str(factors["timeOfDay"]))
    assert Decimal(str(posted["price"])) == expected.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP)


# -- agents ---------------------------------------------------------------------------------------
def test_an_agent_sets_its_own_availability_but_nothing_else(stack: None) -> None:
    status, me = call("PATCH", f"/agents/{AGENT}", AGENT, body={"availability": "offline"})
    assert status == 200
    assert me["availability"] == "offline"
    status, error = call("PATCH", f"/agents/{AGENT}", AGENT, body={"capacity": 99})
    assert status == 422
    assert error["error"]["details"][0]["field"] == "capacity"
    status, _ = call("PATCH", f"/agents/{AGENT}", MANAGER, body={"capacity": 99, "status": "disabled"})
    assert status == 200
    _, listed = call("GET", "/agents", MANAGER)
    mine = next(agent for agent in listed["data"] if agent["user_id"] == AGENT)
    assert mine["capacity"] == 99
    assert mine["status"] == "disabled"


def test_an_offline_agent_receives_no_new_leads(stack: None) -> None:
    # Given every agent offline but one
    _, listed = call("GET", "/agents")
    for agent in listed["data"]:
        if agent["user_id"] != OTHER_AGENT:
            assert call("PATCH", f"/agents/{agent['user_id']}", body={"availability": "offline"})[0] == 200
    # When leads are posted, they go to the one online agent
    assert post_lead(first_name="One", phone="+12125550101")["lead"]["assigned_agent"] == OTHER_AGENT
    # And once it goes offline (itself), nobody is offered new leads
    assert call("PATCH", f"/agents/{OTHER_AGENT}", OTHER_AGENT, body={"availability": "offline"})[0] == 200
    assert post_lead(first_name="Two", phone="+12125550102")["lead"]["assigned_agent"] is None
    # And back online, it is offered them again
    assert call("PATCH", f"/agents/{OTHER_AGENT}", OTHER_AGENT, body={"availability": "online"})[0] == 200
    assert post_lead(first_name="Three", phone="+12125550103")["lead"]["assigned_agent"] == OTHER_AGENT


def test_a_disabled_agent_receives_no_new_leads_even_when_online(stack: None) -> None:
    _, listed = call("GET", "/agents")
    for agent in listed["data"]:
        call("PATCH", f"/agents/{agent['user_id']}", body={"availability": "offline"})
    call("PATCH", f"/agents/{OTHER_AGENT}", body={"availability": "online", "status": "disabled"})
    assert post_lead(first_name="Nobody", phone="+12125550104")["lead"]["assigned_agent"] is None


def test_a_created_agent_can_be_put_to_work(stack: None) -> None:
    status, created = call(
        "POST", "/agents", body={"name": "Robin Rep", "email": "Robin@CRM.example.com", "capacity": 3}
    )
    assert status == 201
    assert created["email"] == "robin@crm.example.com"
    assert created["availability"] == "offline"
    assert created["open_leads"] == 0
    assert created["utilization"] == 0
    _, listed = call("GET", "/agents")
    for agent in listed["data"]:
        call("PATCH", f"/agents/{agent['user_id']}", body={"availability": "offline"})
    call("PATCH", f"/agents/{created['user_id']}", body={"availability": "online"})
    assert post_lead(first_name="New", phone="+12125550105")["lead"]["assigned_agent"] == created["user_id"]
    _, me = call("GET", f"/agents/{created['user_id']}", MANAGER)
    assert me["open_leads"] == 1
    assert me["utilization"] == pytest.approx(33.3)


# -- staff sign-in accounts -----------------------------------------------------------------------
def pool_client() -> Any:
    import boto3

    return boto3.client("cognito-idp")


def pool_account(email: str) -> dict[str, Any]:
    client = pool_client()
    pool_id = dependencies.get_settings().user_pool_id
    user: dict[str, Any] = client.admin_get_user(UserPoolId=pool_id, Username=email)
    groups = client.admin_list_groups_for_user(UserPoolId=pool_id, Username=email)["Groups"]
    user["groups"] = [group["GroupName"] for group in groups]
    user["attributes"] = {item["Name"]: item["Value"] for item in user["UserAttributes"]}
    return user


def test_a_created_agent_has_a_pool_account_that_must_set_a_new_password(stack: None) -> None:
    # When
    status, created = call("POST", "/agents", body={"name": "Pat Pool", "email": "Pat@CRM.example.com"})
    # Then
    assert status == 201
    account = pool_account("pat@crm.example.com")
    assert account["groups"] == ["agent"]
    assert account["attributes"]["custom:user_id"] == created["user_id"]
    assert account["attributes"]["name"] == "Pat Pool"
    assert account["attributes"]["email_verified"] == "true"
    assert account["UserStatus"] == "FORCE_CHANGE_PASSWORD"
    challenge = pool_client().initiate_auth(
        ClientId=dependencies.get_settings().user_pool_client_id,
        AuthFlow="USER_PASSWORD_AUTH",
        AuthParameters={"USERNAME": "pat@crm.example.com", "PASSWORD": created["temporary_password"]},
    )
    assert challenge["ChallengeName"] == "NEW_PASSWORD_REQUIRED"


def test_the_temporary_password_is_in_no_stored_record(stack: None) -> None:
    _, created = call("POST", "/agents", body={"name": "Pat Pool", "email": "pat@crm.example.com"})
    password = created["temporary_password"]
    for table in (dependencies.users_table(), dependencies.audit_table()):
        assert all(password not in str(item) for item in table.scan_all())


def test_an_email_with_a_staff_account_is_409_and_creates_no_user(stack: None) -> None:
    # Given
    call("POST", "/agents", body={"name": "Pat Pool", "email": "pat@crm.example.com"})
    before = list(dependencies.users_table().scan_all())
    # When
    status, error = call("POST", "/managers", body={"name": "Pat Again", "email": "PAT@crm.example.com"})
    # Then
    assert status == 409
    assert error["error"]["code"] == "EMAIL_TAKEN"
    assert len(list(dependencies.users_table().scan_all())) == len(before)


def test_an_account_that_cannot_join_its_group_is_removed_and_no_user_is_created(stack: None) -> None:
    # Given a pool without the agent group
    pool_client().delete_group(GroupName="agent", UserPoolId=dependencies.get_settings().user_pool_id)
    before = list(dependencies.users_table().scan_all())
    # When
    status, error = call("POST", "/agents", body={"name": "Pat Pool", "email": "pat@crm.example.com"})
    # Then
    assert status == 503
    assert error["error"]["code"] == "USER_POOL_UNAVAILABLE"
    assert len(list(dependencies.users_table().scan_all())) == len(before)
    with pytest.raises(pool_client().exceptions.UserNotFoundException):
        pool_account("pat@crm.example.com")


@pytest.mark.parametrize(("route", "group"), [("/agents", "agent"), ("/managers", "manager")])
def test_disabling_staff_disables_its_pool_account_and_enabling_enables_it(
    stack: None, route: str, group: str
) -> None:
    # Given
    _, created = call("POST", route, body={"name": "Pat Pool", "email": "pat@crm.example.com"})
    assert pool_account("pat@crm.example.com")["groups"] == [group]
    # When
    status, disabled = call("PATCH", f"{route}/{created['user_id']}", body={"status": "disabled"})
    # Then
    assert (status, disabled["status"]) == (200, "disabled")
    assert pool_account("pat@crm.example.com")["Enabled"] is False
    # When
    status, _ = call("PATCH", f"{route}/{created['user_id']}", body={"status": "active"})
    # Then
    assert status == 200
    assert pool_account("pat@crm.example.com")["Enabled"] is True
