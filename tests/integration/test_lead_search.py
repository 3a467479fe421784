"""Searching leads with `q`, in-process against moto over HTTP: a prefix of a first name, a last
name or a full name (either way round), case and accents aside, as well as of an email or a phone;
each read served by the search indexes, in the caller's scope, and paged across the indexes."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from ulid import ULID

import leads.app
from crm.seed import SeedTables, demo_leads, seed_demo_data
from crm.stack import MotoServer
from leads.models import Lead, LeadFilters
from leads.normalize import search_form
from leads.repository import LeadRepository, index_attributes
from shared import dependencies
from shared.security import LeadScope
from tests.helpers import FakeLambdaContext, api_event, response_json, token_for
from tests.integration.conftest import fresh_stack

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
EVERYONE = LeadScope(vendor_code=None, agent_id=None)
# Names the demo data lacks: accents, a shared first name across owners, first and last names
# that share a prefix ("Janet Janeway" is found by "jane" both ways round, and listed once).
NAMED = [
    ("Jane", "Doe", "V001", "demo-agent-1"),
    ("Jane", "Dodd", "V002", "demo-agent-2"),
    ("Janet", "Janeway", "V001", "demo-agent-2"),
    ("Doe", "Jane", "V003", None),
    ("José", "Álvarez", "V001", "demo-agent-1"),
    ("JOSE", "Alvarado", "V002", None),
    ("Zoë", "Ångström", "V004", "demo-agent-3"),
]


def named_leads(template: Lead) -> list[Lead]:
    made = []
    for position, (first, last, vendor, agent) in enumerate(NAMED):
        lead_id = str(ULID.from_timestamp(NOW.timestamp() - 3600 * (position + 1)))
        made.append(
            template.model_copy(
                update={
                    "lead_id": lead_id,
                    "first_name": first,
                    "last_name": last,
                    "vendor_code": vendor,
                    "assigned_agent": agent,
                    "email": f"person{position}@example.org",
                    "phone": f"+1415555{position:04d}",
                    "created_at": template.created_at,
                }
            )
        )
    return made


@pytest.fixture(scope="module")
def stored(moto_server: MotoServer) -> Iterator[list[Lead]]:
    """One seeded stack for the module: the demo leads and the named ones; the tests only read
    (the reindex test writes a lead of its own that no other search finds)."""
    fresh_stack(moto_server)
    seed_demo_data(SeedTables.configured(), now=NOW)
    demo = demo_leads(now=NOW)
    named = named_leads(demo[0])
    LeadRepository(dependencies.leads_table()).put_many(named)
    yield demo + named
    dependencies.reset()


@pytest.fixture
def everything(stored: list[Lead]) -> list[Lead]:
    dependencies.query_cache.cache_clear()
    return stored


def call(user: str, query: dict[str, str]) -> tuple[int, Any]:
    event = api_event("GET", "/leads", token=token_for(user), query=query)
    response = leads.app.lambda_handler(event, FakeLambdaContext())
    return response["statusCode"], response_json(response)


def all_pages(user: str, query: dict[str, str], limit: int = 70) -> list[str]:
    """The ids of every page, in order; fails on a page that breaks the pagination contract."""
    found: list[str] = []
    params = {"limit": str(limit), **query}
    while True:
        status, body = call(user, params)
        assert status == 200, body
        assert len(body["data"]) <= limit
        found += [lead["lead_id"] for lead in body["data"]]
        if not body["pagination"]["hasMore"]:
            assert body["pagination"]["cursor"] is None
            return found
        params = {**params, "cursor": body["pagination"]["cursor"]}


def keys(lead: Lead) -> tuple[str, str]:
    """The lead's names as the search indexes hold them: first name first, last name first."""
    first, last = search_form(lead.first_name or ""), search_form(lead.last_name or "")
    return f"{first} {last}".strip(), f"{last} {first}".strip()


def ranks(leads_: list[Lead], q: str) -> dict[str, tuple[int, str]]:
    """Where a name search lists each lead it finds: the first-name matches by their key, then the
    leads only the last name matches by theirs (the order of leads with equal keys is the index's)."""
    prefix = search_form(q)
    found: dict[str, tuple[int, str]] = {}
    for source in (0, 1):
        for lead in leads_:
            if keys(lead)[source].startswith(prefix):
                found.setdefault(lead.lead_id, (source, keys(lead)[source]))
    return found


def assert_listed(found: list[str], expected: dict[str, tuple[int, str]]) -> None:
    """`found` is every expected lead, each once, in the expected order."""
    assert len(found) == len(set(found))
    assert set(found) == set(expected)
    assert [expected[lead_id] for lead_id in found] == sorted(expected.values())


@pytest.mark.parametrize(
    ("q", "names"),
    [
        pytest.param("jane", {"Jane Doe", "Jane Dodd", "Janet Janeway", "Doe Jane"}, id="first-name"),
        pytest.param("doe", {"Jane Doe", "Doe Jane"}, id="last-name"),
        pytest.param("jane do", {"Jane Doe", "Jane Dodd", "Doe Jane"}, id="full-name"),
        pytest.param("jane dod", {"Jane Dodd"}, id="full-name-longer"),
        pytest.param("doe ja", {"Jane Doe", "Doe Jane"}, id="full-name-last-first"),
        pytest.param("JaNeT", {"Janet Janeway"}, id="mixed-case"),
        pytest.param("jose", {"José Álvarez", "JOSE Alvarado"}, id="accent-in-the-lead"),
        pytest.param("JOSÉ ÁLV", {"José Álvarez", "JOSE Alvarado"}, id="accent-in-the-term"),
        pytest.param("angstrom zo", {"Zoë Ångström"}, id="accents-both-names"),
    ],
)
def test_q_finds_leads_by_a_prefix_of_their_name(everything: list[Lead], q: str, names: set[str]) -> None:
    # When an admin searches
    found = all_pages("demo-admin", {"q": q})
    # Then it finds exactly the named leads (none of the demo leads), first names first
    by_id = {lead.lead_id: f"{lead.first_name} {lead.last_name}" for lead in everything}
    assert {by_id[lead_id] for lead_id in found} == names
    assert_listed(found, ranks(everything, q))


@pytest.mark.parametrize("q", ["ma", "Smi", "li", "da", "DAVID MI", "davis d"])
def test_q_finds_demo_leads_by_name_each_once(everything: list[Lead], q: str) -> None:
    found = all_pages("demo-admin", {"q": q})
    assert found
    assert_listed(found, ranks(everything, q))


@pytest.mark.parametrize(
    ("q", "predicate"),
    [
        ("james.", lambda lead: lead.email.startswith("james.")),
        ("Maria.M", lambda lead: lead.email.startswith("maria.m")),
        ("(415) 555", lambda lead: lead.phone.startswith("+1415555")),
        ("+1305", lambda lead: lead.phone.startswith("+1305")),
    ],
)
def test_q_still_finds_leads_by_email_or_phone_prefix(everything: list[Lead], q: str, predicate: Any) -> None:
    expected = [lead.lead_id for lead in everything if predicate(lead)]
    assert expected
    assert sorted(all_pages("demo-admin", {"q": q})) == sorted(expected)


@pytest.mark.parametrize("q", ["jane", "ma", "da", "doe ja", "james.", "+1305"])
def test_a_search_reads_only_what_matches(everything: list[Lead], q: str) -> None:
    # Given the repository over the real (moto) table
    repository = LeadRepository(dependencies.leads_table())
    # When a whole search fits one page
    page = repository.list_page(EVERYONE, LeadFilters(q=q), 200, None)
    # Then every item read is listed, but for a lead whose first and last names both start with
    # the term: each name index holds it, so it is read twice and listed once
    prefix = search_form(q)
    both_ways = [lead for lead in everything if all(key.startswith(prefix) for key in keys(lead))]
    assert page.items
    assert page.last_key is None
    assert page.scanned_count == len(page.items) + len(both_ways)


def test_name_search_reads_only_what_it_lists_when_no_name_matches_both_ways(everything: list[Lead]) -> None:
    repository = LeadRepository(dependencies.leads_table())
    page = repository.list_page(EVERYONE, LeadFilters(q="jose"), 200, None)
    assert len(page.items) == 2
    assert page.scanned_count == page.round_trips == 2


def test_a_scoped_search_reads_the_matches_of_every_owner_and_lists_its_own(everything: list[Lead]) -> None:
    # Given a vendor's scope: a filter on the prefix matches, not a key of the search indexes
    repository = LeadRepository(dependencies.leads_table())
    vendor = LeadScope(vendor_code="V001", agent_id=None)
    # When it searches
    page = repository.list_page(vendor, LeadFilters(q="jane"), 200, None)
    # Then it lists its own matches, having read the matches of every vendor (the documented bound)
    matches = ranks(everything, "jane")
    owners = {lead.lead_id: lead.vendor_code for lead in everything}
    assert sorted(item["lead_id"] for item in page.items) == sorted(m for m in matches if owners[m] == "V001")
    assert page.scanned_count == len(matches) + 1  # "Janet Janeway" is read by both name indexes


@pytest.mark.parametrize(
    ("user", "owns"),
    [
        ("demo-vendor-1", lambda lead: lead.vendor_code == "V001"),
        ("demo-vendor-2", lambda lead: lead.vendor_code == "V002"),
        ("demo-agent-1", lambda lead: lead.assigned_agent == "demo-agent-1"),
        ("demo-agent-2", lambda lead: lead.assigned_agent == "demo-agent-2"),
        ("demo-manager", lambda lead: True),
    ],
)
@pytest.mark.parametrize("q", ["jane", "ma", "jose"])
def test_a_search_keeps_to_the_callers_own_leads(
    everything: list[Lead], user: str, owns: Any, q: str
) -> None:
    # Given matches that belong to several owners
    everyone = ranks(everything, q)
    owners = {lead.lead_id: lead for lead in everything}
    assert len({owners[lead_id].vendor_code for lead_id in everyone}) > 1
    # When a scoped caller searches
    found = all_pages(user, {"q": q})
    # Then it finds its own matches, and only those, in order
    assert_listed(found, {lead_id: rank for lead_id, rank in everyone.items() if owns(owners[lead_id])})


def test_a_vendor_searching_another_vendors_leads_finds_nothing(everything: list[Lead]) -> None:
    status, body = call("demo-vendor-1", {"q": "jane", "vendor": "V002"})
    assert status == 200
    assert body["data"] == []
    assert body["pagination"]["hasMore"] is False


@pytest.mark.parametrize("limit", [1, 2, 3, 5, 7])
def test_pages_of_a_name_search_list_each_match_once_in_order(everything: list[Lead], limit: int) -> None:
    # Given a term matched by first names and by last names, "Janet Janeway" by both
    expected = ranks(everything, "jane")
    assert sorted({source for source, _ in expected.values()}) == [0, 1]
    # When it is read a few leads at a time
    found = all_pages("demo-admin", {"q": "jane"}, limit=limit)
    # Then the pages together are the whole result, each lead once, across both indexes
    assert_listed(found, expected)


def test_pages_of_a_large_name_search_match_the_single_page(everything: list[Lead]) -> None:
    expected = ranks(everything, "ma")
    assert len(expected) > 20
    assert_listed(all_pages("demo-admin", {"q": "ma"}, limit=9), expected)


def test_a_search_cursor_is_bound_to_its_query(everything: list[Lead]) -> None:
    _, first = call("demo-admin", {"q": "jane", "limit": "1"})
    cursor = first["pagination"]["cursor"]
    status, body = call("demo-admin", {"q": "jose", "limit": "1", "cursor": cursor})
    assert status == 400
    assert body["error"]["code"] == "INVALID_CURSOR"


def test_reindex_makes_a_lead_stored_before_name_search_findable(everything: list[Lead]) -> None:
    # Given a lead stored as before first names were searchable: a lower-case last name key only
    table = dependencies.leads_table()
    repository = LeadRepository(table)
    lead = everything[0].model_copy(
        update={
            "lead_id": str(ULID.from_timestamp(NOW.timestamp() - 86400)),
            "first_name": "Ödön",
            "last_name": "Quixotë",
            "email": "older@example.org",
            "phone": "+16175550999",
        }
    )
    old_keys = {key: value for key, value in index_attributes(lead).items() if key != "ix_first_name"}
    table.put({**lead.model_dump(mode="python"), **old_keys, "ix_name": "quixotë"})
    assert all_pages("demo-admin", {"q": "odon"}) == []
    # When the operator reindexes every lead
    rewritten = sum(repository.refresh_index_keys(item) for item in table.scan_all())
    dependencies.query_cache.cache_clear()
    # Then that lead, and only it, was rewritten; it is found both ways; a second pass does nothing
    assert rewritten == 1
    assert all_pages("demo-admin", {"q": "odon qu"}) == [lead.lead_id]
    assert all_pages("demo-admin", {"q": "quixote o"}) == [lead.lead_id]
    assert sum(repository.refresh_index_keys(item) for item in table.scan_all()) == 0
