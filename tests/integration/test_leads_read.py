"""The lead read routes, in-process against moto over HTTP: row-level security for each role,
filters served by index queries, pagination and cursors, and the query cache."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

import leads.app
from crm.seed import SeedTables, demo_leads, seed_demo_data
from crm.stack import MotoServer
from leads.models import Disposition, Lead, LeadFilters
from leads.repository import LeadRepository
from shared import dependencies
from shared.dynamo import Table
from shared.security import LeadScope
from tests.helpers import FakeLambdaContext, api_event, response_json, staff_token, token_for
from tests.integration.conftest import fresh_stack

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
DEMO = demo_leads(now=NOW)


@pytest.fixture(scope="module")
def seeded(moto_server: MotoServer) -> Iterator[list[Lead]]:
    """One seeded stack for the whole module: these tests only read (or add unrelated users)."""
    fresh_stack(moto_server)
    seed_demo_data(SeedTables.configured(), now=NOW)
    yield DEMO
    dependencies.reset()


@pytest.fixture
def demo(seeded: list[Lead]) -> list[Lead]:
    """The seeded leads, with a cold query cache for each test."""
    dependencies.query_cache.cache_clear()
    return seeded


def call(method: str, path: str, user: str | None = "demo-admin", **kwargs: Any) -> tuple[int, Any]:
    token = token_for(user) if user else None
    if path.startswith("/leads/"):
        kwargs.setdefault("resource", "/leads/{lead_id}")
        kwargs.setdefault("path_parameters", {"lead_id": path.rsplit("/", 1)[1]})
    response = leads.app.lambda_handler(api_event(method, path, token=token, **kwargs), FakeLambdaContext())
    return response["statusCode"], response_json(response)


def all_pages(user: str, query: dict[str, str] | None = None) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    params = {"limit": "70", **(query or {})}
    while True:
        status, body = call("GET", "/leads", user, query=params)
        assert status == 200, body
        items += body["data"]
        assert body["pagination"]["count"] == len(body["data"])
        if not body["pagination"]["hasMore"]:
            assert body["pagination"]["cursor"] is None
            return items
        params = {**params, "cursor": body["pagination"]["cursor"]}


def ids(leads_: list[Any]) -> list[str]:
    return [lead["lead_id"] if isinstance(lead, dict) else lead.lead_id for lead in leads_]


def newest_first(leads_: list[Lead]) -> list[Lead]:
    return sorted(leads_, key=lambda lead: (lead.created_at, lead.lead_id), reverse=True)


@pytest.mark.parametrize("user", ["demo-admin", "demo-manager"])
def test_staff_list_every_lead_newest_first(demo: list[Lead], user: str) -> None:
    # When
    listed = all_pages(user)
    # Then
    assert sorted(ids(listed)) == sorted(ids(demo))
    assert [lead["created_at"] for lead in listed] == sorted((lead.created_at for lead in demo), reverse=True)


def test_vendor_lists_only_its_own_leads(demo: list[Lead]) -> None:
    # Given demo-vendor-1 belongs to V001
    expected = [lead for lead in demo if lead.vendor_code == "V001"]
    # When
    listed = all_pages("demo-vendor-1")
    # Then
    assert expected
    assert sorted(ids(listed)) == sorted(ids(expected))


def test_agent_lists_only_leads_assigned_to_it(demo: list[Lead]) -> None:
    expected = [lead for lead in demo if lead.assigned_agent == "demo-agent-1"]
    listed = all_pages("demo-agent-1")
    assert expected
    assert sorted(ids(listed)) == sorted(ids(expected))


def test_vendor_filtering_on_another_vendor_sees_nothing(demo: list[Lead]) -> None:
    status, body = call("GET", "/leads", "demo-vendor-1", query={"vendor": "V002"})
    assert status == 200
    assert body["data"] == []
    assert body["pagination"] == {"cursor": None, "hasMore": False, "count": 0}


def test_vendor_reading_another_vendors_lead_gets_404(demo: list[Lead]) -> None:
    # Given a lead of V002
    other = next(lead for lead in demo if lead.vendor_code == "V002")
    own = next(lead for lead in demo if lead.vendor_code == "V001")
    # When / Then
    assert call("GET", f"/leads/{other.lead_id}", "demo-vendor-1")[0] == 404
    status, body = call("GET", f"/leads/{own.lead_id}", "demo-vendor-1")
    assert status == 200
    assert body["lead_id"] == own.lead_id


def test_agent_reading_a_lead_not_assigned_to_it_gets_404(demo: list[Lead]) -> None:
    other = next(lead for lead in demo if lead.assigned_agent not in (None, "demo-agent-1"))
    status, body = call("GET", f"/leads/{other.lead_id}", "demo-agent-1")
    assert status == 404
    assert body["error"]["code"] == "NOT_FOUND"


def test_missing_lead_and_other_owners_lead_look_the_same(demo: list[Lead]) -> None:
    other = next(lead for lead in demo if lead.vendor_code == "V002")
    _, hidden = call("GET", f"/leads/{other.lead_id}", "demo-vendor-1")
    _, missing = call("GET", "/leads/01ARZ3NDEKTSV4RRFFQ69G5FAV", "demo-vendor-1")
    assert hidden["error"]["code"] == missing["error"]["code"] == "NOT_FOUND"
    assert hidden["error"]["message"].replace(other.lead_id, "X") == missing["error"]["message"].replace(
        "01ARZ3NDEKTSV4RRFFQ69G5FAV", "X"
    )


def test_lead_shape_matches_the_stored_lead(demo: list[Lead]) -> None:
    # Given
    lead = next(lead for lead in demo if lead.sale_amount is not None)
    event = api_event(
        "GET",
        f"/leads/{lead.lead_id}",
        resource="/leads/{lead_id}",
        path_parameters={"lead_id": lead.lead_id},
        token=staff_token(),
    )
    # When
    response = leads.app.lambda_handler(event, FakeLambdaContext())
    # Then: every field of the lead, and money written with two decimals
    body = response_json(response)
    assert response["statusCode"] == 200
    assert set(body) == set(Lead.model_fields)
    assert Lead.model_validate(body) == lead
    assert f'"lead_value":{lead.lead_value}' in response["body"]
    assert f'"sale_amount":{lead.sale_amount:.2f}' in response["body"]


@pytest.mark.parametrize(
    ("query", "predicate"),
    [
        ({"vendor": "V003"}, lambda lead: lead.vendor_code == "V003"),
        ({"disposition": "closed"}, lambda lead: lead.disposition is Disposition.CLOSED),
        ({"campaign": "tiktok-ads"}, lambda lead: lead.campaign_source == "tiktok-ads"),
        ({"agent": "demo-agent-2"}, lambda lead: lead.assigned_agent == "demo-agent-2"),
        (
            {"vendor": "V001", "disposition": "lost"},
            lambda lead: lead.vendor_code == "V001" and lead.disposition is Disposition.LOST,
        ),
        (
            {"from": "2026-10-01", "to": "2026-10-15"},
            lambda lead: "2026-10-01" <= lead.created_at[:10] <= "2026-10-15",
        ),
    ],
)
def test_filters_return_exactly_the_matching_leads(
    demo: list[Lead], query: dict[str, str], predicate: Any
) -> None:
    expected = [lead for lead in demo if predicate(lead)]
    listed = all_pages("demo-admin", query)
    assert expected
    assert ids(listed) == ids(newest_first(expected))


@pytest.mark.parametrize(
    "filters",
    [
        LeadFilters(),
        LeadFilters(vendor="V002"),
        LeadFilters(disposition=Disposition.QUALIFIED),
        LeadFilters(campaign="google-search"),
        LeadFilters(agent="demo-agent-3"),
        LeadFilters(created_from="2026-09-01T00:00:00.000Z", created_to="2026-09-30T23:59:59.999Z"),
    ],
)
def test_single_filters_read_only_what_they_return(demo: list[Lead], filters: LeadFilters) -> None:
    # Given the repository over the real (moto) table
    repository = LeadRepository(dependencies.leads_table())
    # When
    page = repository.list_page(LeadScope(vendor_code=None, agent_id=None), filters, limit=50, start_key=None)
    # Then: one Query on an index, and every item it read is returned (ScannedCount == Count)
    assert page.items
    assert page.round_trips == 1
    assert page.scanned_count == len(page.items)


def test_tampered_cursor_is_rejected(demo: list[Lead]) -> None:
    _, first = call("GET", "/leads", query={"limit": "5"})
    cursor = first["pagination"]["cursor"]
    tampered = cursor[:-2] + ("A" if cursor[-2] != "A" else "B") + cursor[-1]
    status, body = call("GET", "/leads", query={"limit": "5", "cursor": tampered})
    assert status == 400
    assert body["error"]["code"] == "INVALID_CURSOR"


def test_cursor_of_another_query_is_rejected(demo: list[Lead]) -> None:
    _, first = call("GET", "/leads", query={"limit": "5"})
    status, body = call(
        "GET", "/leads", query={"limit": "5", "vendor": "V001", "cursor": first["pagination"]["cursor"]}
    )
    assert status == 400
    assert body["error"]["code"] == "INVALID_CURSOR"


def test_cursor_of_another_caller_is_rejected(demo: list[Lead]) -> None:
    _, first = call("GET", "/leads", "demo-admin", query={"limit": "5"})
    status, _ = call(
        "GET", "/leads", "demo-vendor-1", query={"limit": "5", "cursor": first["pagination"]["cursor"]}
    )
    assert status == 400


def test_repeated_list_is_served_from_the_cache(
    demo: list[Lead], monkeypatch: pytest.MonkeyPatch, query_cache_in_redis: str
) -> None:
    # Given a spy on the table's queries
    queries: list[Any] = []
    original = Table.query_page

    def spy(self: Table, *args: Any, **kwargs: Any) -> Any:
        queries.append(args)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Table, "query_page", spy)
    # When the same caller lists twice, and another scope lists once
    first = call("GET", "/leads", "demo-admin", query={"limit": "10"})
    second = call("GET", "/leads", "demo-admin", query={"limit": "10"})
    vendor = call("GET", "/leads", "demo-vendor-1", query={"limit": "10"})
    # Then
    assert first == second
    assert len(queries) == 2
    assert {lead["vendor_code"] for lead in vendor[1]["data"]} == {"V001"}


def test_unknown_and_disabled_users_are_rejected(demo: list[Lead]) -> None:
    dependencies.users_table().put({"user_id": "gone", "role": "admin", "status": "disabled", "name": "Gone"})
    for user in ("ghost", "gone"):
        status, body = call("GET", "/leads", user)
        assert status == 401
        assert body["error"]["code"] == "UNAUTHORIZED"


@pytest.mark.parametrize(
    ("q", "predicate"),
    [
        ("james.", lambda lead: lead.email.startswith("james.")),
        ("JAMES.", lambda lead: lead.email.startswith("james.")),
        ("smi", lambda lead: (lead.last_name or "").lower().startswith("smi")),
        ("(212) 555", lambda lead: lead.phone.startswith("+1212555")),
        ("+1305", lambda lead: lead.phone.startswith("+1305")),
    ],
)
def test_q_finds_leads_by_email_phone_or_last_name_prefix(demo: list[Lead], q: str, predicate: Any) -> None:
    # Given
    expected = [lead for lead in demo if predicate(lead)]
    # When
    listed = all_pages("demo-admin", {"q": q})
    # Then
    assert expected
    assert sorted(ids(listed)) == sorted(ids(expected))


def test_q_reads_only_the_matching_prefix(demo: list[Lead]) -> None:
    repository = LeadRepository(dependencies.leads_table())
    page = repository.list_page(LeadScope(vendor_code=None, agent_id=None), LeadFilters(q="smi"), 200, None)
    assert page.items
    assert page.scanned_count == len(page.items)


def test_q_keeps_to_the_callers_scope(demo: list[Lead]) -> None:
    # Given a prefix that matches leads of several vendors
    matching = [lead for lead in demo if (lead.last_name or "").lower().startswith("smi")]
    assert {lead.vendor_code for lead in matching} > {"V001"}
    # When a vendor searches
    listed = all_pages("demo-vendor-1", {"q": "smi"})
    # Then it finds only its own
    assert sorted(ids(listed)) == sorted(ids(lead for lead in matching if lead.vendor_code == "V001"))
