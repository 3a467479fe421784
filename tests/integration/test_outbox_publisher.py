"""The outbox drain against the local stack (moto over HTTP): what the scheduled outbox publisher
and `crm outbox send` run. A refused event records its attempts and next attempt time, waits for
it, and is sent once the bus accepts it; new events are left to the request path for the grace
period; the publisher's handler reports what it did."""

from __future__ import annotations

import json
import types
from datetime import UTC, datetime, timedelta

import pytest
import redis

from crm.emf import metric_sums
from leads import outbox_publisher
from shared import dependencies
from shared.cache import EPOCH_KEY
from shared.dates import iso_timestamp
from shared.dynamo import Table
from shared.events import EventPublisher
from shared.outbox import OWED_EPOCH_ID, Outbox, OutboxEvent, OwedEpochMarker, RetryPolicy
from tests.integration.local_stack import EVENTS_QUEUE, local_stack

_now = datetime.now(UTC)
NOW = _now.replace(microsecond=_now.microsecond // 1000 * 1000)  # as stored: to the millisecond
METRICS = ("OutboxEventsPublished", "OutboxEventsFailed", "OutboxOldestPendingSeconds", "CacheEpochBumps")
POLICY = RetryPolicy(grace_seconds=30, base_seconds=30, max_seconds=900)


def recorded(table: Table, lead_id: str, created: datetime) -> OutboxEvent:
    """An event in the outbox, as a committed change whose publish the bus refused leaves it."""
    event = OutboxEvent.new("LeadCreated", {"lead_id": lead_id, "version": 1, "before": None, "after": None})
    event = OutboxEvent(event.event_id, event.detail_type, event.detail, iso_timestamp(created))
    table.put(event.to_item())
    return event


def at(moment: datetime) -> types.FunctionType:
    return lambda: moment  # type: ignore[return-value]


def test_a_refused_event_backs_off_and_is_sent_once_the_bus_accepts_it(aws: dict[str, str]) -> None:
    # Given an event two minutes old and one just written, while the bus refuses puts
    stack = local_stack(aws[EVENTS_QUEUE])
    table = Table(dependencies.get_settings().outbox_table)
    old = recorded(table, "L-OLD", NOW - timedelta(minutes=2))
    new = recorded(table, "L-NEW", NOW)
    refusing = Outbox(table, EventPublisher("no-such-bus", attempts=1), POLICY)
    # When the publisher runs
    report = refusing.drain(now=at(NOW))
    # Then it tried the old one only (the new one is the request path's for the grace period)
    assert (report.sent, report.failed, report.waiting) == (0, 1, 1)
    assert report.oldest_pending_seconds == 120
    # And the old one records its attempt and a next attempt 15 to 30 s away
    item = table.get({"event_id": old.event_id}, consistent=True)
    assert item is not None
    assert item["attempts"] == 1
    wait = datetime.fromisoformat(item["next_attempt_at"].replace("Z", "+00:00")) - NOW
    assert timedelta(seconds=15) <= wait <= timedelta(seconds=30)
    # When the publisher runs again before that time
    again = refusing.drain(now=at(NOW + timedelta(seconds=14)))
    # Then it leaves both alone
    assert (again.sent, again.failed, again.waiting) == (0, 0, 2)
    # When the bus accepts puts again and the publisher runs after the back-off and the grace period
    working = Outbox(table, dependencies.event_publisher(), POLICY)
    later = working.drain(now=at(NOW + timedelta(seconds=31)))
    # Then both are sent, each once, and the outbox is empty
    assert (later.sent, later.failed, later.waiting, later.oldest_pending_seconds) == (2, 0, 0, 0)
    events = stack.events()
    assert sorted(event["detail"]["event_id"] for event in events) == sorted([old.event_id, new.event_id])
    assert list(working.pending()) == []


def test_the_operator_sends_every_pending_event_at_once(aws: dict[str, str]) -> None:
    # Given an event backing off after a refusal and one just written
    stack = local_stack(aws[EVENTS_QUEUE])
    table = Table(dependencies.get_settings().outbox_table)
    refused = recorded(table, "L-1", NOW - timedelta(minutes=5))
    Outbox(table, EventPublisher("no-such-bus", attempts=1), POLICY).drain(now=at(NOW))
    fresh = recorded(table, "L-2", NOW)
    # When the operator drains regardless of back-off and grace (`crm outbox send`)
    report = Outbox(table, dependencies.event_publisher(), POLICY).drain(due_only=False, now=at(NOW))
    # Then both went out
    assert (report.sent, report.failed, report.waiting) == (2, 0, 0)
    assert sorted(event["detail"]["event_id"] for event in stack.events()) == sorted(
        [refused.event_id, fresh.event_id]
    )


def test_a_drain_out_of_time_leaves_the_rest_for_the_next_run(aws: dict[str, str]) -> None:
    # Given two due events
    table = Table(dependencies.get_settings().outbox_table)
    recorded(table, "L-1", NOW - timedelta(minutes=3))
    recorded(table, "L-2", NOW - timedelta(minutes=2))
    # When the drain has time for one send only
    budget = iter([1.0, 0.0])
    report = Outbox(table, dependencies.event_publisher(), POLICY).drain(
        time_left=lambda: next(budget), now=at(NOW)
    )
    # Then the oldest went out and the other waits, counted as pending
    assert (report.sent, report.failed, report.waiting) == (1, 0, 1)
    assert report.oldest_pending_seconds == 120


def test_the_publisher_handler_drains_and_reports_what_it_did(
    aws: dict[str, str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given an event the bus refused a while ago, and metrics printed as CloudWatch reads them
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    stack = local_stack(aws[EVENTS_QUEUE])
    table = Table(dependencies.get_settings().outbox_table)
    event = recorded(table, "L-1", datetime.now(UTC) - timedelta(minutes=10))
    context = types.SimpleNamespace(
        function_name="crm-test-outbox-publisher",
        memory_limit_in_mb=512,
        aws_request_id="r-1",
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:crm-test-outbox-publisher",
        get_remaining_time_in_millis=lambda: 30_000,
    )
    # When the schedule invokes the publisher
    summary = outbox_publisher.lambda_handler({"detail-type": "Scheduled Event", "detail": {}}, context)
    # Then it sent the event and nothing is left
    assert summary == {
        "cache_epoch_bumped": False,
        "sent": 1,
        "failed": 0,
        "waiting": 0,
        "oldest_pending_seconds": 0,
    }
    assert [sent["detail"]["event_id"] for sent in stack.events()] == [event.event_id]
    assert list(table.scan_all()) == []
    # And its metrics say so: one published, none failed, nothing left waiting
    printed = capsys.readouterr().out.splitlines()
    assert metric_sums(printed, METRICS) == {
        "OutboxEventsPublished": 1,
        "OutboxEventsFailed": 0,
        "OutboxOldestPendingSeconds": 0,
        "CacheEpochBumps": 0,
    }
    (record,) = [
        json.loads(line) for line in printed if "OutboxOldestPendingSeconds" in line and "_aws" in line
    ]
    assert record["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "LeadCRM"


def publisher_context() -> types.SimpleNamespace:
    return types.SimpleNamespace(
        function_name="crm-test-outbox-publisher",
        memory_limit_in_mb=512,
        aws_request_id="r-2",
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:crm-test-outbox-publisher",
        get_remaining_time_in_millis=lambda: 30_000,
    )


def test_the_owed_epoch_record_is_one_item_and_is_not_an_event(aws: dict[str, str]) -> None:
    # Given two environments that each lost an invalidation, and one lead event in the outbox
    table = Table(dependencies.get_settings().outbox_table)
    marker = OwedEpochMarker(table)
    event = recorded(table, "L-1", NOW - timedelta(minutes=2))
    marker.record(NOW - timedelta(seconds=5))
    marker.record(NOW)
    # Then the table holds one record besides the event, the later one, and it is no event
    owed = marker.find()
    assert owed is not None
    assert owed.owed_since == NOW
    assert sorted(item["event_id"] for item in table.scan_all()) == sorted([event.event_id, OWED_EPOCH_ID])
    outbox = Outbox(table, dependencies.event_publisher(), POLICY)
    assert [pending.event_id for pending in outbox.pending()] == [event.event_id]
    report = outbox.drain(now=at(NOW))
    assert (report.sent, report.failed, report.waiting) == (1, 0, 0)
    # And a record made after it was read is not removed by clearing what was read
    marker.record(NOW)
    assert not marker.clear(owed)
    newer = marker.find()
    assert newer is not None
    assert marker.clear(newer)
    assert marker.find() is None


def test_the_publisher_handler_bumps_a_recorded_epoch_and_reports_it(
    aws: dict[str, str],
    query_cache_in_redis: str,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given an owed epoch bump recorded by an environment (and metrics printed as CloudWatch reads them)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    table = Table(dependencies.get_settings().outbox_table)
    OwedEpochMarker(table).record(NOW)
    client = redis.Redis.from_url(query_cache_in_redis, decode_responses=True)
    # When the schedule invokes the publisher twice
    first = outbox_publisher.lambda_handler(
        {"detail-type": "Scheduled Event", "detail": {}}, publisher_context()
    )
    second = outbox_publisher.lambda_handler(
        {"detail-type": "Scheduled Event", "detail": {}}, publisher_context()
    )
    # Then the first run bumped the epoch once and removed the record; the second had nothing to do
    assert (first["cache_epoch_bumped"], second["cache_epoch_bumped"]) == (True, False)
    assert client.get(EPOCH_KEY) == "1"
    assert list(table.scan_all()) == []
    printed = capsys.readouterr().out.splitlines()
    assert metric_sums(printed, ("CacheEpochBumps",)) == {"CacheEpochBumps": 1}
    client.close()
