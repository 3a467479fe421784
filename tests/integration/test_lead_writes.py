"""Lead changes through `LeadWriter` against moto over HTTP: race-free dedupe, agent capacity and
vendor caps under concurrent posts, the dedupe window and test-mode namespace, the transactional
outbox and its events, disposition moves with agents' load, and soft deletion."""

from __future__ import annotations

import json
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import partial
from typing import Any, TypeVar

import pytest
from botocore.exceptions import ClientError

from crm.stack import MotoServer
from leads.dependencies import lead_service, lead_writer
from leads.lifecycle import ALLOWED_MOVES, DispositionConflict, is_open
from leads.models import (
    CreateOutcome,
    Disposition,
    Lead,
    LeadChanges,
    LeadFilters,
    LeadSubmission,
    Outcome,
    ReasonCode,
)
from leads.repository import INDEX_KEYS, LeadRepository
from leads.writes import AgentAtCapacity, LeadWriter, VersionConflict
from shared import dependencies
from shared.cache import request_cache_status, start_request_lookups
from shared.dynamo import Table
from shared.errors import Conflict, LeadNotFound, ValidationFailed
from shared.events import EventPublisher
from shared.outbox import Outbox
from shared.security import LeadScope, Principal, Role
from tests.integration.conftest import fresh_stack
from tests.integration.local_stack import EVENTS_QUEUE, Stack, local_stack

ADMIN = Principal("admin-1", Role.ADMIN)
MANAGER = Principal("manager-1", Role.MANAGER)
ALL_LEADS = LeadScope(vendor_code=None, agent_id=None)
DEFAULT_PRICE = Decimal("42.50")
# How a lead reaches each disposition from `new`, through allowed moves only.
WALKS: dict[Disposition, list[Disposition]] = {
    Disposition.NEW: [],
    Disposition.CONTACTED: [Disposition.CONTACTED],
    Disposition.QUALIFIED: [Disposition.CONTACTED, Disposition.QUALIFIED],
    Disposition.CLOSED: [Disposition.CONTACTED, Disposition.QUALIFIED, Disposition.CLOSED],
    Disposition.LOST: [Disposition.LOST],
}

T = TypeVar("T")


def vendor(code: str) -> Principal:
    return Principal(f"vendor-{code}", Role.VENDOR, vendor_code=code)


def person(n: int, vendor_code: str, **overrides: Any) -> LeadSubmission:
    """Person `n`, already normalised: a lower-case email and an E.164 phone, with consent."""
    values: dict[str, Any] = {
        "vendor_code": vendor_code,
        "email": f"person{n}@example.com",
        "phone": f"+1202555{n:04d}",
        "tcpa_consent": True,
        **overrides,
    }
    return LeadSubmission(**values)


def accepted(outcome: CreateOutcome) -> Lead:
    assert outcome.outcome is Outcome.ACCEPTED, outcome
    assert outcome.lead is not None
    return outcome.lead


def concurrently(calls: list[Callable[[], T]]) -> list[T]:
    """Runs every call on its own thread, all released together by a barrier."""
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], T]) -> T:
        barrier.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))


@pytest.fixture
def stack(aws: dict[str, str]) -> Stack:
    """A fresh stack with a default price of 42.50."""
    stack = local_stack(aws[EVENTS_QUEUE])
    stack.pricing.put({"price_key": "SETTINGS", "default_price": DEFAULT_PRICE})
    return stack


MATRIX_VENDOR = "MATRIX"
_matrix_queues: dict[str, str] = {}


@pytest.fixture
def matrix_stack(moto_server: MotoServer) -> Iterator[Stack]:
    """One stack shared by the cases of the disposition matrix (each case has its own lead and
    agent), provisioned again whenever another test has reset moto since."""
    try:
        current = dependencies.vendors_table().get({"vendor_code": MATRIX_VENDOR}) is not None
    except ClientError:
        current = False
    if not current or EVENTS_QUEUE not in _matrix_queues:
        _matrix_queues.update(fresh_stack(moto_server))
        local_stack(_matrix_queues[EVENTS_QUEUE]).add_vendors(MATRIX_VENDOR)
    yield local_stack(_matrix_queues[EVENTS_QUEUE])
    dependencies.reset()


def writer_with(outbox: Outbox | None = None, leads: LeadRepository | None = None) -> LeadWriter:
    return lead_writer(outbox=outbox, leads=leads)


# -- dedupe --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "shared_field",
    [pytest.param("email", id="same-email"), pytest.param("phone", id="same-phone")],
)
def test_concurrent_posts_of_one_person_from_many_vendors_store_exactly_one_lead(
    stack: Stack, shared_field: str
) -> None:
    # Given 20 vendors, each about to post the same person (same email, or same phone)
    codes = [f"V{n:02d}" for n in range(1, 21)]
    stack.add_vendors(*codes)
    shared = {"email": "jane.doe@example.com"} if shared_field == "email" else {"phone": "+12025550143"}
    submissions = [person(n, code, **shared) for n, code in enumerate(codes, start=1)]
    writer = lead_writer()
    # When all 20 post at once
    responses = concurrently(
        [
            partial(writer.create, vendor(code), submission)
            for code, submission in zip(codes, submissions, strict=True)
        ]
    )
    # Then exactly one is accepted and every other one is a duplicate
    assert Counter(response.outcome for response in responses) == {Outcome.ACCEPTED: 1, Outcome.DUPLICATE: 19}
    winner = accepted(next(response for response in responses if response.outcome is Outcome.ACCEPTED))
    for response in responses:
        if response.outcome is Outcome.DUPLICATE:
            assert response.reason_code is ReasonCode.DUPLICATE
            assert response.existing_lead_id is None  # a vendor never learns another vendor's lead
    # And exactly one lead is stored for that person
    value = shared[shared_field]
    stored = [item for item in stack.stored_leads() if item[shared_field] == value]
    assert [item["lead_id"] for item in stored] == [winner.lead_id]
    assert len(stack.stored_leads()) == 1


def test_staff_posting_a_duplicate_learn_the_existing_lead(stack: Stack) -> None:
    # Given a stored lead
    stack.add_vendors("V1", "V2")
    first = accepted(lead_writer().create(vendor("V1"), person(1, "V1")))
    # When an admin posts the same person for another vendor
    response = lead_writer().create(ADMIN, person(1, "V2"))
    # Then
    assert response.outcome is Outcome.DUPLICATE
    assert response.existing_lead_id == first.lead_id


@pytest.mark.parametrize(
    ("window_days", "expected"),
    [
        pytest.param(30, Outcome.ACCEPTED, id="outside-a-30-day-window"),
        pytest.param(60, Outcome.DUPLICATE, id="inside-a-60-day-window"),
    ],
)
def test_an_earlier_lead_blocks_a_post_only_within_the_posting_vendors_window(
    stack: Stack, window_days: int, expected: Outcome
) -> None:
    # Given a lead of the same person stored 40 days ago
    now = datetime.now(UTC)
    stack.add_vendors("OLD")
    stack.add_vendors("NEW", dedupe_window_days=window_days)
    old = accepted(lead_writer().create(vendor("OLD"), person(1, "OLD"), now=now - timedelta(days=40)))
    # When a vendor with a `window_days` window posts that person now
    response = lead_writer().create(vendor("NEW"), person(1, "NEW"), now=now)
    # Then
    assert response.outcome is expected, response
    stored = sorted(item["lead_id"] for item in stack.stored_leads())
    if expected is Outcome.ACCEPTED:
        new = accepted(response)
        assert stored == sorted([old.lead_id, new.lead_id])
        # the uniqueness items now point at the new lead, so its own window starts now
        assert {item["lead_id"] for item in stack.dedupe.scan_all()} == {new.lead_id}
    else:
        assert stored == [old.lead_id]


def test_test_mode_leads_are_unassigned_uncounted_and_dedupe_only_among_themselves(stack: Stack) -> None:
    # Given a test-mode vendor with a daily cap of 1, a real vendor and an online agent
    stack.add_vendors("TEST", test_mode=True, daily_cap=1)
    stack.add_vendors("REAL")
    stack.add_agents("agent-1", capacity=5)
    writer = lead_writer()
    # When the test vendor posts two people (past its cap) and then one of them again
    first = accepted(writer.create(vendor("TEST"), person(1, "TEST")))
    second = accepted(writer.create(vendor("TEST"), person(2, "TEST")))
    again = writer.create(vendor("TEST"), person(1, "TEST"))
    # Then the test leads are stored as tests, never assigned, and never counted
    for lead in (first, second):
        assert lead.is_test is True
        assert lead.assigned_agent is None
        assert stack.stored(lead.lead_id)["is_test"] is True
    assert again.outcome is Outcome.DUPLICATE
    assert stack.open_leads("agent-1") == 0
    assert list(stack.usage.scan_all()) == []
    # And the same person posted for real afterwards is accepted (and assigned)
    real = accepted(writer.create(vendor("REAL"), person(1, "REAL")))
    assert real.is_test is False
    assert real.assigned_agent == "agent-1"


# -- capacity and caps under concurrency ---------------------------------------------------------


def test_concurrent_posts_never_load_an_agent_past_its_capacity(stack: Stack) -> None:
    # Given 3 online agents with capacity 10 each
    agents = ["agent-1", "agent-2", "agent-3"]
    stack.add_vendors("V1")
    stack.add_agents(*agents, capacity=10)
    writer = lead_writer()
    now = datetime.now(UTC)
    # When 100 distinct people are posted at once
    responses = concurrently(
        [partial(writer.create, vendor("V1"), person(n, "V1"), now=now) for n in range(100)]
    )
    # Then every post is accepted
    assert Counter(response.outcome for response in responses) == {Outcome.ACCEPTED: 100}
    # And exactly 30 leads are assigned, 10 per agent, the other 70 unassigned
    stored = stack.stored_leads()
    assert len(stored) == 100
    assignments = Counter(item.get("assigned_agent") for item in stored)
    assert assignments == {"agent-1": 10, "agent-2": 10, "agent-3": 10, None: 70}
    assert {r.lead.lead_id: r.lead.assigned_agent for r in responses if r.lead} == {
        item["lead_id"]: item.get("assigned_agent") for item in stored
    }
    # And each agent's load is exactly its capacity
    assert [stack.open_leads(agent) for agent in agents] == [10, 10, 10]


@pytest.mark.parametrize(
    ("cap_field", "period"),
    [
        pytest.param("daily_cap", "day", id="daily-cap"),
        pytest.param("monthly_cap", "month", id="monthly-cap"),
        pytest.param("hourly_cap", "hour", id="hourly-cap"),
    ],
)
def test_concurrent_posts_stop_exactly_at_the_vendors_cap(stack: Stack, cap_field: str, period: str) -> None:
    # Given a vendor with a cap of 5
    stack.add_vendors("CAPPED", **{cap_field: 5})
    writer = lead_writer()
    now = datetime.now(UTC)
    # When 15 distinct people are posted at once
    responses = concurrently(
        [partial(writer.create, vendor("CAPPED"), person(n, "CAPPED"), now=now) for n in range(15)]
    )
    # Then 5 are accepted and 10 refused as over the cap
    assert Counter(response.outcome for response in responses) == {Outcome.ACCEPTED: 5, Outcome.REJECTED: 10}
    for response in responses:
        if response.outcome is Outcome.REJECTED:
            assert response.reason_code is ReasonCode.OVER_CAP
    assert sorted(item["lead_id"] for item in stack.stored_leads()) == sorted(
        accepted(r).lead_id for r in responses if r.outcome is Outcome.ACCEPTED
    )
    counters = {item["usage_key"].split("#")[1]: item["lead_count"] for item in stack.usage.scan_all()}
    assert counters[period] == 5


# -- events and the outbox -----------------------------------------------------------------------


def test_a_created_lead_is_published_once_and_leaves_no_outbox_item(stack: Stack) -> None:
    # Given
    stack.add_vendors("V1")
    # When
    lead = accepted(lead_writer().create(vendor("V1"), person(1, "V1")))
    # Then the outbox is empty and the rule's queue holds exactly one LeadCreated
    assert list(stack.outbox.scan_all()) == []
    events = stack.events()
    assert [event["detail-type"] for event in events] == ["LeadCreated"]
    event = events[0]
    assert event["source"] == "crm.leads"
    detail = event["detail"]
    assert detail["lead_id"] == lead.lead_id
    assert detail["version"] == 1
    assert detail["before"] is None
    assert detail["after"]["vendor_code"] == "V1"
    assert detail["after"]["disposition"] == "new"
    assert Decimal(detail["after"]["lead_value"]) == DEFAULT_PRICE == lead.lead_value
    assert detail["after"]["deleted"] is False


def test_a_lead_whose_event_cannot_be_published_is_kept_and_its_event_sent_later(stack: Stack) -> None:
    # Given a writer whose publisher targets a bus that does not exist
    stack.add_vendors("V1")
    outbox_table = Table(dependencies.get_settings().outbox_table)
    broken = writer_with(Outbox(outbox_table, EventPublisher("no-such-bus", attempts=1)))
    # When a lead is posted
    lead = accepted(broken.create(vendor("V1"), person(1, "V1")))
    # Then the post is accepted, the lead stored, and its event kept in the outbox
    assert stack.stored(lead.lead_id)["version"] == 1
    pending = list(Outbox(outbox_table, dependencies.event_publisher()).pending())
    assert [(event.detail_type, event.detail["lead_id"]) for event in pending] == [
        ("LeadCreated", lead.lead_id)
    ]
    assert stack.events(seconds=0.3) == []
    # When the event is sent later with a working publisher
    working = Outbox(outbox_table, dependencies.event_publisher())
    assert working.send(pending[0]) is True
    # Then it is delivered once and the outbox is empty
    events = stack.events()
    assert [(event["detail-type"], event["detail"]["lead_id"]) for event in events] == [
        ("LeadCreated", lead.lead_id)
    ]
    assert events[0]["detail"]["event_id"] == pending[0].event_id
    assert list(working.pending()) == []


# -- lifecycle -----------------------------------------------------------------------------------


def assigned_lead(stack: Stack, writer: LeadWriter, n: int = 1) -> Lead:
    """A new lead of vendor V1, assigned to agent-1 (seeded here with capacity 5)."""
    stack.add_vendors("V1")
    stack.add_agents("agent-1", capacity=5)
    submission = person(n, "V1", campaign_source="google-search", first_name="Jo", last_name="Doe")
    lead = accepted(writer.create(vendor("V1"), submission))
    assert lead.assigned_agent == "agent-1"
    assert stack.open_leads("agent-1") == 1
    return lead


def move(writer: LeadWriter, lead: Lead, disposition: Disposition, principal: Principal = MANAGER) -> Lead:
    return writer.update(principal, lead.lead_id, LeadChanges(version=lead.version, disposition=disposition))


MATRIX = [(start, target) for start in Disposition for target in Disposition]


@pytest.mark.parametrize(
    ("start", "target"),
    [pytest.param(start, target, id=f"{start.value}-to-{target.value}") for start, target in MATRIX],
)
def test_a_disposition_move_is_applied_only_when_the_state_machine_allows_it(
    matrix_stack: Stack, start: Disposition, target: Disposition
) -> None:
    # Given a lead of this case's own agent, walked to `start` through allowed moves
    stack = matrix_stack
    agent = f"agent-{start.value}-{target.value}"
    stack.add_agents(agent, capacity=5, online=False)  # only ever assigned by hand
    writer = lead_writer()
    lead = accepted(writer.create(ADMIN, person(1000 + MATRIX.index((start, target)), MATRIX_VENDOR)))
    lead = writer.update(MANAGER, lead.lead_id, LeadChanges(version=lead.version, assigned_agent=agent))
    for step in WALKS[start]:
        lead = move(writer, lead, step)
    assert lead.disposition is start
    assert stack.open_leads(agent) == (1 if is_open(start) else 0)
    # When / Then
    if target is start:
        # repeating the current disposition is a no-op: no new version, no event
        assert move(writer, lead, target) == lead
        assert stack.stored(lead.lead_id)["version"] == lead.version
        later = [
            event["detail"]
            for event in stack.events(seconds=0.3)
            if event["detail"]["lead_id"] == lead.lead_id and event["detail"]["version"] > lead.version
        ]
        assert later == []
    elif target in ALLOWED_MOVES[start]:
        moved = move(writer, lead, target)
        assert moved.disposition is target
        assert moved.version == lead.version + 1
        assert (moved.closed_date is not None) is (target is Disposition.CLOSED)
        assert LeadRepository(stack.leads).get(ALL_LEADS, lead.lead_id, consistent=True) == moved
        # an agent carries exactly its open leads: losing or closing frees it, reopening loads it
        assert stack.open_leads(agent) == (1 if is_open(target) else 0)
    else:
        with pytest.raises(DispositionConflict) as raised:
            move(writer, lead, target)
        assert raised.value.code == "INVALID_TRANSITION"
        assert raised.value.status == 409
        assert raised.value.details[0]["allowed"] == sorted(d.value for d in ALLOWED_MOVES[start])
        assert stack.stored(lead.lead_id)["version"] == lead.version
        assert stack.open_leads(agent) == (1 if is_open(start) else 0)


def test_closing_records_the_closed_date_and_a_sale(stack: Stack) -> None:
    # Given a qualified lead
    writer = lead_writer()
    lead = assigned_lead(stack, writer)
    for step in WALKS[Disposition.QUALIFIED]:
        lead = move(writer, lead, step)
    closed_at = datetime(2026, 11, 2, 15, 30, tzinfo=UTC)
    # When it is closed with a sale
    closed = writer.update(
        MANAGER,
        lead.lead_id,
        LeadChanges(version=lead.version, disposition=Disposition.CLOSED, sale_amount=Decimal("1250.00")),
        now=closed_at,
    )
    # Then
    assert closed.closed_date == "2026-11-02T15:30:00.000Z"
    stored = stack.stored(lead.lead_id)
    assert stored["closed_date"] == "2026-11-02T15:30:00.000Z"
    assert stored["sale_amount"] == Decimal("1250.00")
    assert stored["ix_disposition"] == "closed"


def test_an_update_from_a_stale_version_is_refused(stack: Stack) -> None:
    # Given a lead read at version 1, then changed by someone else
    writer = lead_writer()
    lead = assigned_lead(stack, writer)
    move(writer, lead, Disposition.CONTACTED)
    # When the first reader writes from version 1
    with pytest.raises(VersionConflict) as raised:
        writer.update(MANAGER, lead.lead_id, LeadChanges(version=1, notes="called back"))
    # Then
    assert raised.value.code == "VERSION_CONFLICT"
    assert raised.value.status == 409
    assert raised.value.details == [{"field": "version", "current": 2}]
    stored = stack.stored(lead.lead_id)
    assert stored["version"] == 2
    assert "notes" not in stored


def test_losing_frees_the_agent_reopening_loads_it_and_closing_frees_it(stack: Stack) -> None:
    # Given an assigned lead (agent-1 carries 1)
    writer = lead_writer()
    lead = assigned_lead(stack, writer)
    loads = []
    # When it is lost, reopened, qualified and closed
    for step in (Disposition.LOST, Disposition.CONTACTED, Disposition.QUALIFIED, Disposition.CLOSED):
        lead = move(writer, lead, step)
        loads.append(stack.open_leads("agent-1"))
    # Then
    assert loads == [0, 1, 1, 0]
    assert lead.version == 5


def test_reassignment_moves_the_load_to_the_new_agent(stack: Stack) -> None:
    # Given a lead of agent-1 and a second agent
    writer = lead_writer()
    lead = assigned_lead(stack, writer)
    stack.add_agents("agent-2", capacity=5)
    # When an agent tries to reassign it, then a manager does
    with pytest.raises(ValidationFailed) as refused:
        writer.update(
            Principal("agent-1", Role.AGENT),
            lead.lead_id,
            LeadChanges(version=lead.version, assigned_agent="agent-2"),
        )
    assert refused.value.status == 422
    assert [detail["field"] for detail in refused.value.details] == ["assigned_agent"]
    moved = writer.update(MANAGER, lead.lead_id, LeadChanges(version=lead.version, assigned_agent="agent-2"))
    # Then the lead and its load moved to agent-2
    assert moved.assigned_agent == "agent-2"
    assert stack.stored(lead.lead_id)["ix_agent"] == "agent-2"
    assert (stack.open_leads("agent-1"), stack.open_leads("agent-2")) == (0, 1)
    # And agent-2 now sees it, agent-1 no longer does
    repository = LeadRepository(stack.leads)
    assert repository.get(Principal("agent-2", Role.AGENT).lead_scope, lead.lead_id).lead_id == lead.lead_id
    with pytest.raises(LeadNotFound):
        repository.get(Principal("agent-1", Role.AGENT).lead_scope, lead.lead_id)


def test_concurrent_moves_from_one_version_apply_once_and_free_the_agent_once(stack: Stack) -> None:
    # Given an assigned lead read at version 1 by 10 callers
    writer = lead_writer()
    lead = assigned_lead(stack, writer)

    def lose() -> str:
        try:
            move(writer, lead, Disposition.LOST)
        except VersionConflict:
            return "conflict"
        return "moved"

    # When all of them mark it lost at once
    outcomes = concurrently([lose] * 10)
    # Then one move is applied and the agent's load is released exactly once
    assert Counter(outcomes) == {"moved": 1, "conflict": 9}
    assert stack.stored(lead.lead_id)["version"] == 2
    assert stack.open_leads("agent-1") == 0


def set_user(stack: Stack, user_id: str, **fields: Any) -> None:
    item = stack.users.get({"user_id": user_id}, consistent=True)
    assert item is not None
    stack.users.put({**item, **fields})


def leads_of_agent_1(stack: Stack, writer: LeadWriter, count: int, first: int) -> list[Lead]:
    """`count` new leads of vendor V1, each assigned to agent-1 (the only agent online)."""
    leads = [accepted(writer.create(vendor("V1"), person(first + n, "V1"))) for n in range(count)]
    assert {lead.assigned_agent for lead in leads} == {"agent-1"}
    return leads


def test_concurrent_reopens_never_load_an_agent_past_its_capacity(stack: Stack) -> None:
    # Given agent-1 (capacity 25) with 20 lost leads, and 24 open ones: one short of capacity
    stack.add_vendors("V1")
    stack.add_agents("agent-1", capacity=25)
    writer = lead_writer()
    lost = [move(writer, lead, Disposition.LOST) for lead in leads_of_agent_1(stack, writer, 20, first=0)]
    leads_of_agent_1(stack, writer, 24, first=100)
    assert stack.open_leads("agent-1") == 24
    before = {lead.lead_id: stack.stored(lead.lead_id) for lead in lost}
    agent = Principal("agent-1", Role.AGENT)

    def reopen(lead: Lead) -> Callable[[], tuple[int, str, str]]:
        def run() -> tuple[int, str, str]:
            try:
                move(writer, lead, Disposition.CONTACTED, principal=agent)
            except AgentAtCapacity as refused:
                return refused.status, refused.code, json.dumps(refused.details)
            return 200, "reopened", ""

        return run

    # When the agent moves all 20 back to contacted at once
    outcomes = concurrently([reopen(lead) for lead in lost])
    # Then exactly one reopen is applied, the others are 409 AGENT_AT_CAPACITY
    full = json.dumps([{"field": "disposition", "agent": "agent-1", "open_leads": 25, "capacity": 25}])
    assert Counter(outcomes) == {(200, "reopened", ""): 1, (409, "AGENT_AT_CAPACITY", full): 19}
    # And the agent is at its capacity, not past it
    assert stack.open_leads("agent-1") == 25
    # And no refused reopen changed its lead
    after = {lead_id: stack.stored(lead_id) for lead_id in before}
    changed = [lead_id for lead_id in before if after[lead_id] != before[lead_id]]
    assert len(changed) == 1
    assert after[changed[0]]["disposition"] == "contacted"
    assert after[changed[0]]["version"] == before[changed[0]]["version"] + 1
    assert sum(1 for item in stack.stored_leads() if item.get("disposition") == "lost") == 19


def test_a_manager_may_reopen_a_lead_past_its_agents_capacity_only_by_reassigning_it(stack: Stack) -> None:
    # Given agent-1 at capacity (1 of 1) with a lost lead besides, and agent-2 at capacity too
    writer = lead_writer()
    lost = move(writer, assigned_lead(stack, writer, n=1), Disposition.LOST)
    set_user(stack, "agent-1", capacity=1)
    leads_of_agent_1(stack, writer, 1, first=2)
    stack.add_agents("agent-2", capacity=0, online=False)
    assert (stack.open_leads("agent-1"), stack.open_leads("agent-2")) == (1, 0)
    # When a manager reopens it as it is
    with pytest.raises(AgentAtCapacity) as refused:
        move(writer, lost, Disposition.CONTACTED)
    # Then it stays lost with agent-1, whose load is unchanged
    assert refused.value.code == "AGENT_AT_CAPACITY"
    assert stack.stored(lost.lead_id)["version"] == lost.version
    assert stack.open_leads("agent-1") == 1
    # When the manager reopens it and hands it to agent-2 in the same change
    reopened = writer.update(
        MANAGER,
        lost.lead_id,
        LeadChanges(version=lost.version, disposition=Disposition.CONTACTED, assigned_agent="agent-2"),
    )
    # Then it is reopened with agent-2, loaded past its capacity by the manager's choice
    assert (reopened.disposition, reopened.assigned_agent) == (Disposition.CONTACTED, "agent-2")
    assert (stack.open_leads("agent-1"), stack.open_leads("agent-2")) == (1, 1)


def test_a_reopen_for_an_agent_that_was_removed_is_a_conflict_naming_the_agent(stack: Stack) -> None:
    # Given a lost lead whose agent is no longer an agent
    writer = lead_writer()
    lost = move(writer, assigned_lead(stack, writer), Disposition.LOST)
    set_user(stack, "agent-1", role="manager")
    # When / Then
    with pytest.raises(Conflict) as refused:
        move(writer, lost, Disposition.CONTACTED)
    assert not isinstance(refused.value, AgentAtCapacity)
    assert refused.value.details == [{"field": "assigned_agent"}]
    assert stack.stored(lost.lead_id)["disposition"] == "lost"


def test_a_reassigned_lead_is_fresh_in_both_agents_cached_reads_and_other_agents_stay_cached(
    stack: Stack, query_cache_in_redis: str
) -> None:
    # Given a lead of agent-1, and the cached reads of agent-1, agent-2 and agent-3
    writer = lead_writer()
    lead = assigned_lead(stack, writer)
    stack.add_agents("agent-2", "agent-3", capacity=5)
    service = lead_service()
    agents = {name: Principal(name, Role.AGENT) for name in ("agent-1", "agent-2", "agent-3")}
    filters = LeadFilters()

    def listed() -> dict[str, list[str]]:
        return {
            name: [item["lead_id"] for item in service.list_leads(agent, filters, 10, None)["data"]]
            for name, agent in agents.items()
        }

    assert listed() == {"agent-1": [lead.lead_id], "agent-2": [], "agent-3": []}
    assert service.get_lead(agents["agent-1"], lead.lead_id)["lead_id"] == lead.lead_id
    # When a manager reassigns it to agent-2
    writer.update(MANAGER, lead.lead_id, LeadChanges(version=lead.version, assigned_agent="agent-2"))
    # Then agent-3's list is still served from the cache
    start_request_lookups()
    service.list_leads(agents["agent-3"], filters, 10, None)
    assert request_cache_status() == "hit"
    # And both other agents' reads are fresh: agent-1 no longer sees the lead, agent-2 does
    assert listed() == {"agent-1": [], "agent-2": [lead.lead_id], "agent-3": []}
    with pytest.raises(LeadNotFound):
        service.get_lead(agents["agent-1"], lead.lead_id)


def test_reassigning_to_someone_who_is_not_an_agent_changes_nothing(stack: Stack) -> None:
    # Given an assigned lead and a manager user
    writer = lead_writer()
    lead = assigned_lead(stack, writer)
    stack.users.put({"user_id": "manager-1", "role": "manager", "status": "active", "name": "M"})
    # When / Then
    for someone in ("manager-1", "nobody"):
        with pytest.raises(Conflict) as raised:
            writer.update(MANAGER, lead.lead_id, LeadChanges(version=1, assigned_agent=someone))
        assert raised.value.status == 409
    assert stack.stored(lead.lead_id)["assigned_agent"] == "agent-1"
    assert stack.stored(lead.lead_id)["version"] == 1
    assert stack.open_leads("agent-1") == 1


def test_an_update_publishes_lead_updated_with_before_and_after(stack: Stack) -> None:
    # Given a new lead, its creation event already consumed
    writer = lead_writer()
    lead = assigned_lead(stack, writer)
    assert [event["detail-type"] for event in stack.events()] == ["LeadCreated"]
    # When
    moved = move(writer, lead, Disposition.CONTACTED)
    # Then
    events = stack.events()
    assert [event["detail-type"] for event in events] == ["LeadUpdated"]
    detail = events[0]["detail"]
    assert detail["lead_id"] == lead.lead_id
    assert detail["version"] == moved.version == 2
    assert detail["before"]["disposition"] == "new"
    assert detail["after"]["disposition"] == "contacted"
    assert detail["before"]["assigned_agent"] == detail["after"]["assigned_agent"] == "agent-1"
    assert list(stack.outbox.scan_all()) == []


# -- delete --------------------------------------------------------------------------------------


def listing_filters(lead: Lead) -> list[LeadFilters]:
    """One list query per index of the leads table that holds `lead`."""
    assert lead.email
    assert lead.phone
    assert lead.last_name
    assert lead.first_name
    return [
        LeadFilters(vendor=lead.vendor_code),
        LeadFilters(agent=lead.assigned_agent),
        LeadFilters(campaign=lead.campaign_source),
        LeadFilters(disposition=lead.disposition),
        LeadFilters(),  # the time index
        LeadFilters(q=lead.email),  # the search indexes
        LeadFilters(q=lead.phone),
        LeadFilters(q=lead.last_name),
        LeadFilters(q=lead.first_name),  # first name first
    ]


def listed(repository: LeadRepository, filters: LeadFilters) -> list[str]:
    page = repository.list_page(ALL_LEADS, filters, limit=50, start_key=None)
    return [item["lead_id"] for item in page.items]


def test_delete_hides_the_lead_everywhere_frees_its_agent_and_publishes_lead_deleted(stack: Stack) -> None:
    # Given an assigned lead listed on every index, its creation event consumed
    writer = lead_writer()
    lead = assigned_lead(stack, writer)
    repository = LeadRepository(stack.leads)
    assert all(listed(repository, filters) == [lead.lead_id] for filters in listing_filters(lead))
    stack.events()
    # When an admin deletes it
    writer.delete(ADMIN, lead.lead_id)
    # Then the item is kept, marked deleted, and out of every index
    item = stack.stored(lead.lead_id)
    assert item["deleted_at"]
    assert item["deleted_by"] == ADMIN.user_id
    assert item["version"] == 2
    assert item["update_history"][-1]["action"] == "deleted"
    assert [name for name in item if name in INDEX_KEYS] == []
    assert all(listed(repository, filters) == [] for filters in listing_filters(lead))
    with pytest.raises(LeadNotFound):
        repository.get(ALL_LEADS, lead.lead_id, consistent=True)
    # And the agent's load is freed
    assert stack.open_leads("agent-1") == 0
    # And LeadDeleted is published
    events = stack.events()
    assert [event["detail-type"] for event in events] == ["LeadDeleted"]
    detail = events[0]["detail"]
    assert detail["lead_id"] == lead.lead_id
    assert detail["version"] == 2
    assert detail["before"]["deleted"] is False
    assert detail["after"]["deleted"] is True
    assert list(stack.outbox.scan_all()) == []


def test_a_deleted_lead_cannot_be_deleted_or_updated_again(stack: Stack) -> None:
    # Given a deleted lead
    writer = lead_writer()
    lead = assigned_lead(stack, writer)
    writer.delete(ADMIN, lead.lead_id)
    # When / Then
    with pytest.raises(LeadNotFound):
        writer.delete(ADMIN, lead.lead_id)
    with pytest.raises(LeadNotFound):
        move(writer, lead.model_copy(update={"version": 2}), Disposition.CONTACTED)
    assert stack.stored(lead.lead_id)["version"] == 2
    assert stack.open_leads("agent-1") == 0


def test_concurrent_deletes_delete_once_and_free_the_agent_once(stack: Stack) -> None:
    # Given an assigned lead
    writer = lead_writer()
    lead = assigned_lead(stack, writer)

    def delete() -> str:
        try:
            writer.delete(ADMIN, lead.lead_id)
        except LeadNotFound:
            return "not found"
        return "deleted"

    # When 10 admins delete it at once
    outcomes = concurrently([delete] * 10)
    # Then
    assert Counter(outcomes) == {"deleted": 1, "not found": 9}
    assert stack.stored(lead.lead_id)["version"] == 2
    assert stack.open_leads("agent-1") == 0


class ChangedAfterRead(LeadRepository):
    """A repository whose first read is followed by another caller's change of the lead: the race
    between a read and the conditional write."""

    def __init__(self, table: Table, meanwhile: Callable[[Lead], object]) -> None:
        super().__init__(table)
        self._meanwhile: Callable[[Lead], object] | None = meanwhile

    def get(self, scope: LeadScope, lead_id: str, consistent: bool = False) -> Lead:
        lead = super().get(scope, lead_id, consistent=consistent)
        if self._meanwhile is not None:
            meanwhile, self._meanwhile = self._meanwhile, None
            meanwhile(lead)
        return lead


def test_a_delete_racing_an_update_is_a_version_conflict_and_keeps_the_lead(stack: Stack) -> None:
    # Given an assigned lead that a manager moves on right after the deleting admin read it
    lead = assigned_lead(stack, lead_writer())
    racing = writer_with(
        leads=ChangedAfterRead(stack.leads, lambda read: move(lead_writer(), read, Disposition.CONTACTED))
    )
    # When
    with pytest.raises(VersionConflict):
        racing.delete(ADMIN, lead.lead_id)
    # Then the lead is still there, as the manager left it, and still loads its agent
    item = stack.stored(lead.lead_id)
    assert "deleted_at" not in item
    assert (item["version"], item["disposition"]) == (2, "contacted")
    assert stack.open_leads("agent-1") == 1
    assert list(stack.outbox.scan_all()) == []


def test_a_deleted_lead_keeps_no_index_attribute_at_all(stack: Stack) -> None:
    # Given
    writer = lead_writer()
    lead = assigned_lead(stack, writer)
    # When
    writer.delete(ADMIN, lead.lead_id)
    # Then
    assert sorted(name for name in stack.stored(lead.lead_id) if name.startswith("ix_")) == []


def test_deleting_a_lead_lets_the_same_person_be_posted_again(stack: Stack) -> None:
    # Given a lead, and a second vendor whose post of the same person is a duplicate
    stack.add_vendors("V1", "V2")
    writer = lead_writer()
    lead = accepted(writer.create(vendor("V1"), person(7, "V1")))
    assert writer.create(vendor("V2"), person(7, "V2")).outcome is Outcome.DUPLICATE
    # When an admin deletes the lead
    writer.delete(ADMIN, lead.lead_id)
    # Then the person may be posted again, and the new lead now holds the dedupe keys
    again = accepted(writer.create(vendor("V2"), person(7, "V2")))
    assert again.lead_id != lead.lead_id
    assert writer.create(vendor("V1"), person(7, "V1")).outcome is Outcome.DUPLICATE


def test_deleting_a_lead_whose_dedupe_keys_were_taken_over_keeps_the_new_owners_keys(stack: Stack) -> None:
    # Given an old lead whose window passed and a new lead of the same person that took its keys
    stack.add_vendors("V1")
    writer = lead_writer()
    old = accepted(writer.create(vendor("V1"), person(8, "V1"), now=datetime.now(UTC) - timedelta(days=40)))
    accepted(writer.create(vendor("V1"), person(8, "V1")))
    # When the old lead is deleted
    writer.delete(ADMIN, old.lead_id)
    # Then the new lead still blocks duplicates
    assert writer.create(vendor("V1"), person(8, "V1")).outcome is Outcome.DUPLICATE
