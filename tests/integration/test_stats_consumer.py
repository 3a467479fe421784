"""The stats consumer against moto: buckets kept from lead events equal a rebuild from the leads,
whatever the delivery order, with duplicates; and the rebuild repairs what events missed."""

from __future__ import annotations

import dataclasses
import itertools
import random
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crm.stack import create_table
from leads.lifecycle import ALLOWED_MOVES
from leads.models import Disposition
from shared.buckets import CAMPAIGNS, PARTITIONS, TOTALS, partition_of
from shared.dynamo import Table
from stats.aggregation import LeadView
from stats.rebuild import expected_buckets, rebuild
from stats.store import LeadChange, StatsStore
from tests.helpers import sqs_event
from tests.integration.conftest import test_template

ZONE = ZoneInfo("America/New_York")
START = datetime(2026, 10, 1, 15, 0, tzinfo=UTC)
AGENTS = ["agent-1", "agent-2", "agent-3"]
ACTIONS = ["advance", "lose", "reopen", "reassign", "delete"]


def fresh_store() -> StatsStore:
    """Stats tables of its own (same keys as the template's) for one example."""
    tables = []
    for logical_id in ("StatsTable", "StatsStateTable"):
        spec = next(table for table in test_template().tables() if table.logical_id == logical_id)
        name = f"{logical_id}-{uuid.uuid4().hex[:12]}"
        create_table(boto3.client("dynamodb"), dataclasses.replace(spec, name=name))
        tables.append(Table(name))
    return StatsStore(tables[0], tables[1], ZONE)


def iso(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def history_of(lead_index: int, actions: list[str], rng: random.Random) -> list[tuple[int, dict[str, Any]]]:
    """The versions a lead goes through: (version, lead item) for each, as the lead service would
    store them; invalid moves are skipped like the service refuses them."""
    created = START + timedelta(days=lead_index * 3, hours=rng.randint(0, 20))
    item: dict[str, Any] = {
        "lead_id": f"L{lead_index}",
        "vendor_code": rng.choice(["V001", "V002"]),
        "campaign_source": rng.choice(["google", "tiktok", None]),
        "assigned_agent": rng.choice([*AGENTS, None]),
        "disposition": "new",
        "lead_value": Decimal(rng.choice(["35.00", "40.00", "45.50"])),
        "quality_score": rng.randint(1, 10),
        "created_at": iso(created),
        "version": 1,
        "is_test": rng.random() < 0.15,
    }
    versions = [(1, dict(item))]
    moment = created
    for action in actions:
        if item.get("deleted_at"):
            break
        moment += timedelta(hours=rng.randint(1, 72))
        current = Disposition(item["disposition"])
        if action == "advance":
            following = [
                d
                for d in (Disposition.CONTACTED, Disposition.QUALIFIED, Disposition.CLOSED)
                if d in ALLOWED_MOVES[current]
            ]
            if not following:
                continue
            item["disposition"] = following[0].value
            if following[0] is Disposition.CLOSED:
                item["closed_date"] = iso(moment)
                item["sale_amount"] = Decimal(rng.randint(100, 5000))
        elif action == "lose" and Disposition.LOST in ALLOWED_MOVES[current]:
            item["disposition"] = "lost"
        elif action == "reopen" and current is Disposition.LOST:
            item["disposition"] = "contacted"
        elif action == "reassign":
            item["assigned_agent"] = rng.choice(AGENTS)
        elif action == "delete":
            item["deleted_at"] = iso(moment)
        else:
            continue
        item["version"] += 1
        versions.append((item["version"], dict(item)))
    return versions


def event_view(item: dict[str, Any]) -> LeadView | None:
    return LeadView.from_values({**item, "deleted": bool(item.get("deleted_at"))})


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    plans=st.lists(st.lists(st.sampled_from(ACTIONS), max_size=5), min_size=1, max_size=3),
    seed=st.integers(0, 2**32),
    duplicates=st.integers(0, 6),
)
def test_any_delivery_order_with_duplicates_gives_the_buckets_a_rebuild_gives(
    aws: dict[str, str], plans: list[list[str]], seed: int, duplicates: int
) -> None:
    # Given every version of a few leads, as events delivered in any order with duplicates
    rng = random.Random(seed)
    histories = [history_of(index, actions, rng) for index, actions in enumerate(plans)]
    events = [
        (item["lead_id"], version, event_view(item)) for history in histories for version, item in history
    ]
    events += [rng.choice(events) for _ in range(duplicates)]
    rng.shuffle(events)
    store = fresh_store()
    # When the consumer applies them
    for lead_id, version, view in events:
        store.apply(lead_id, version, view)
    # Then the buckets are what the final leads contribute, and a rebuild finds nothing to change
    final_items = [history[-1][1] for history in histories]
    assert store.buckets("0000-00-00", "9999-12-31") == expected_buckets(final_items, ZONE)
    assert not rebuild(final_items, store, ZONE).changed


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    plans=st.lists(st.lists(st.sampled_from(ACTIONS), max_size=5), min_size=1, max_size=4),
    seed=st.integers(0, 2**32),
    duplicates=st.integers(0, 6),
    batch_sizes=st.lists(st.integers(1, 12), min_size=1, max_size=6),
)
def test_any_batching_of_any_delivery_order_gives_the_buckets_a_rebuild_gives(
    aws: dict[str, str], plans: list[list[str]], seed: int, duplicates: int, batch_sizes: list[int]
) -> None:
    # Given every version of a few leads, as events in any order with duplicates
    rng = random.Random(seed)
    histories = [history_of(index, actions, rng) for index, actions in enumerate(plans)]
    events = [
        LeadChange(item["lead_id"], version, event_view(item))
        for history in histories
        for version, item in history
    ]
    events += [rng.choice(events) for _ in range(duplicates)]
    rng.shuffle(events)
    store = fresh_store()
    # When the consumer applies them in batches of any sizes
    sizes = itertools.cycle(batch_sizes)
    start = 0
    while start < len(events):
        size = next(sizes)
        assert not store.apply_batch(events[start : start + size]).failed
        start += size
    # Then the buckets are what the final leads contribute, and a rebuild finds nothing to change
    final_items = [history[-1][1] for history in histories]
    assert store.buckets("0000-00-00", "9999-12-31") == expected_buckets(final_items, ZONE)
    assert not rebuild(final_items, store, ZONE).changed


def lead_event(detail_type: str, lead_id: str, version: int, after: dict[str, Any] | None) -> dict[str, Any]:
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": detail_type,
        "source": "crm.leads",
        "detail": {"lead_id": lead_id, "version": version, "before": None, "after": after},
    }


def new_lead_view(index: int) -> dict[str, Any]:
    return {
        "vendor_code": "V001",
        "campaign_source": "google",
        "assigned_agent": "agent-1",
        "disposition": "new",
        "lead_value": "40.00",
        "quality_score": 7,
        "created_at": iso(START + timedelta(minutes=index)),
        "closed_date": None,
        "sale_amount": None,
        "is_test": False,
        "deleted": False,
    }


def test_a_batch_of_new_leads_writes_each_bucket_item_once_and_reports_only_unreadable_records(
    aws: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import stats.consumer
    import stats.store
    from stats.dependencies import stats_store
    from tests.helpers import FakeLambdaContext

    # Given 60 new leads of one day, one vendor, one campaign and one agent; a record that is no
    # event at all; and an event of another type
    bodies: list[object] = [lead_event("LeadCreated", f"L{n}", 1, new_lead_view(n)) for n in range(60)]
    bodies += ["not an event", lead_event("VendorPaused", "x", 1, None)]
    transactions: list[list[Any]] = []
    real_transact = stats.store.transact

    def counted(writes: list[Any]) -> None:
        transactions.append(list(writes))
        real_transact(writes)

    monkeypatch.setattr(stats.store, "transact", counted)
    stats_store.cache_clear()
    # When the consumer receives them as one batch
    response = stats.consumer.lambda_handler(sqs_event(bodies), FakeLambdaContext())
    # Then only the unreadable record is reported as failed
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-60"}]}
    # And one transaction moved the 60 states and each bucket item once
    assert len(transactions) == 1
    bucket_writes = [write for write in transactions[0] if write.name != "lead state"]
    assert len(transactions[0]) - len(bucket_writes) == 60
    assert len(bucket_writes) == len({(write.key["pk"], write.key["sk"]) for write in bucket_writes}) <= 4
    day = START.astimezone(ZONE).date().isoformat()
    assert stats_store().buckets(day, day)[day]["leads"] == 60
    # When the same batch is delivered again
    again = stats.consumer.lambda_handler(sqs_event(bodies), FakeLambdaContext())
    # Then nothing changes
    assert again == response
    assert len(transactions) == 1
    assert stats_store().buckets(day, day)[day]["leads"] == 60


def test_a_burst_of_1000_leads_in_batches_of_100_writes_at_most_a_tenth_of_a_bucket_item_per_lead(
    aws: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import stats.store

    # Given a burst of 1,000 new leads of one day, from three vendors to three agents
    store = fresh_store()
    changes = [
        LeadChange(
            f"L{n}",
            1,
            event_view(
                {
                    **new_lead_view(0),
                    "lead_id": f"L{n}",
                    "vendor_code": f"V00{n % 3 + 1}",
                    "assigned_agent": AGENTS[n % 3],
                    "created_at": iso(START + timedelta(seconds=20 * n)),
                }
            ),
        )
        for n in range(1000)
    ]
    bucket_writes = 0
    real_transact = stats.store.transact

    def counted(writes: list[Any]) -> None:
        nonlocal bucket_writes
        bucket_writes += sum(write.name != "lead state" for write in writes)
        real_transact(writes)

    monkeypatch.setattr(stats.store, "transact", counted)
    # When the consumer receives them in batches of 100 (transactions of at most 100 items)
    for start in range(0, 1000, 100):
        assert not store.apply_batch(changes[start : start + 100]).failed
    # Then at most 0.1 bucket-item writes were made per lead, and each lead counted once
    assert bucket_writes <= 100
    day = START.astimezone(ZONE).date().isoformat()
    assert store.buckets(day, day)[day]["leads"] == 1000
    assert len(list(store.state_items())) == 1000


def test_concurrent_batches_of_the_same_leads_apply_each_version_once(aws: dict[str, str]) -> None:
    # Given every version of 12 leads, split into four shuffled batches that share leads and days,
    # as several Lambda pollers would deliver them at once in AWS
    rng = random.Random(11)
    histories = [history_of(index % 4, ["advance", "reassign", "advance"], rng) for index in range(12)]
    histories = [
        [(version, {**item, "lead_id": f"L{index}"}) for version, item in history]
        for index, history in enumerate(histories)
    ]
    events = [
        LeadChange(item["lead_id"], version, event_view(item))
        for history in histories
        for version, item in history
    ]
    rng.shuffle(events)
    batches = [events[start::4] for start in range(4)]
    store = fresh_store()
    barrier = threading.Barrier(len(batches))

    def apply(batch: list[LeadChange]) -> set[str]:
        barrier.wait()
        return store.apply_batch(batch).failed

    # When the four batches are applied at the same time
    with ThreadPoolExecutor(max_workers=len(batches)) as pool:
        failed = list(pool.map(apply, batches))
    # Then no lead failed, and the buckets are what the final leads contribute
    assert failed == [set()] * len(batches)
    final_items = [history[-1][1] for history in histories]
    assert store.buckets("0000-00-00", "9999-12-31") == expected_buckets(final_items, ZONE)
    assert not rebuild(final_items, store, ZONE).changed


def test_a_redelivered_or_older_event_changes_nothing(aws: dict[str, str]) -> None:
    store = fresh_store()
    history = history_of(0, ["advance", "advance", "advance"], random.Random(1))
    for version, item in history:
        assert store.apply("L0", version, event_view(item))
    before = store.buckets("0000", "9999")
    for version, item in history:
        assert not store.apply("L0", version, event_view(item))
    assert store.buckets("0000", "9999") == before


def test_rebuild_repairs_buckets_that_missed_events_and_reports_the_days(aws: dict[str, str]) -> None:
    # Given leads whose events were partly lost
    store = fresh_store()
    rng = random.Random(7)
    histories = [history_of(index, ["advance", "advance", "advance"], rng) for index in range(3)]
    for version, item in histories[0]:
        store.apply(item["lead_id"], version, event_view(item))
    final_items = [history[-1][1] for history in histories]
    # When the stats are rebuilt from the leads
    report = rebuild(final_items, store, ZONE)
    # Then the buckets are right, the repaired days are named, and a second rebuild is a no-op
    assert report.changed
    assert report.days_rewritten
    assert store.buckets("0000", "9999") == expected_buckets(final_items, ZONE)
    assert not rebuild(final_items, store, ZONE).changed
    # And the late events, now older than the rebuilt states, change nothing
    for version, item in histories[1]:
        assert not store.apply(item["lead_id"], version, event_view(item))


def test_each_counter_is_stored_in_its_partition_and_readers_get_only_theirs(aws: dict[str, str]) -> None:
    # Given a closed lead with a campaign, a vendor and an agent
    store = fresh_store()
    history = history_of(0, ["advance"] * 6, random.Random(5))
    item = {**history[-1][1], "campaign_source": "google", "assigned_agent": "agent-1", "is_test": False}
    store.apply("L0", 1, event_view(item))
    # Then its counters are split over the four partitions by scope
    stored = {(row["pk"], name) for row in store.bucket_items() for name in row if name not in ("pk", "sk")}
    assert {partition for partition, _ in stored} == set(PARTITIONS)
    assert all(partition_of(name) == partition for partition, name in stored)
    assert ("v", f"vc#{item['vendor_code']}#google#leads") in stored
    # And a reader of some partitions sees only their counters, all of them
    everything = store.buckets("0000", "9999")
    dashboard = store.buckets("0000", "9999", (TOTALS, CAMPAIGNS))
    assert dashboard == {
        day: kept
        for day, counters in everything.items()
        if (kept := {n: v for n, v in counters.items() if partition_of(n) in (TOTALS, CAMPAIGNS)})
    }
    assert all(
        not name.startswith(("v#", "vc#", "a#")) for counters in dashboard.values() for name in counters
    )


def test_rebuild_removes_bucket_items_no_lead_stands_behind(aws: dict[str, str]) -> None:
    # Given buckets of a lead whose row is gone from the leads table
    store = fresh_store()
    item = {**history_of(0, ["advance"] * 6, random.Random(5))[-1][1], "is_test": False}
    store.apply("L0", 1, event_view(item))
    days = sorted({row["sk"] for row in store.bucket_items()})
    # When the stats are rebuilt from no leads
    report = rebuild([], store, ZONE)
    # Then every item of every partition is gone, and those days are named
    assert report.days_removed == days
    assert list(store.bucket_items()) == []


@pytest.mark.parametrize("window", [("2026-10-01", "2026-10-05"), ("2026-10-06", "2026-12-31")])
def test_rebuild_within_dates_rewrites_only_those_days(aws: dict[str, str], window: tuple[str, str]) -> None:
    store = fresh_store()
    rng = random.Random(3)
    final_items = [history_of(index, ["advance"], rng)[-1][1] for index in range(4)]
    report = rebuild(final_items, store, ZONE, first_day=window[0], last_day=window[1])
    assert report.days_rewritten
    assert all(window[0] <= day <= window[1] for day in report.days_rewritten)
