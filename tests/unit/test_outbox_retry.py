"""When the outbox publisher tries a pending event: the grace period left to the request path,
and the capped exponential back-off with jitter after each refusal."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from shared.dates import iso_timestamp
from shared.outbox import OutboxEvent, RetryPolicy

POLICY = RetryPolicy(grace_seconds=30, base_seconds=30, max_seconds=900)
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def lowest(low: float, high: float) -> float:
    return low


def highest(low: float, high: float) -> float:
    return high


def event(created_seconds_ago: float, next_attempt_in: float | None = None, attempts: int = 0) -> OutboxEvent:
    next_attempt = None
    if next_attempt_in is not None:
        next_attempt = iso_timestamp(NOW + timedelta(seconds=next_attempt_in))
    return OutboxEvent(
        event_id="01ARZ3NDEKTSV4RRFFQ69G5FAV",
        detail_type="LeadCreated",
        detail={"lead_id": "L1", "version": 1},
        created_at=iso_timestamp(NOW - timedelta(seconds=created_seconds_ago)),
        attempts=attempts,
        next_attempt_at=next_attempt,
    )


@pytest.mark.parametrize(
    ("attempts", "nominal"),
    [(1, 30), (2, 60), (3, 120), (4, 240), (5, 480), (6, 900), (7, 900), (40, 900), (10_000, 900)],
)
def test_the_wait_doubles_with_each_refusal_up_to_the_cap(attempts: int, nominal: float) -> None:
    # When / Then: between half the nominal wait and all of it, never past the cap
    assert POLICY.delay_seconds(attempts, uniform=lowest) == nominal / 2
    assert POLICY.delay_seconds(attempts, uniform=highest) == nominal


def test_the_jitter_spreads_waits_within_their_bounds() -> None:
    # When the wait after a third refusal is drawn many times with the real random source
    waits = [POLICY.delay_seconds(3) for _ in range(500)]
    # Then every wait lies in [60, 120] s and they are not all the same
    assert all(60 <= wait <= 120 for wait in waits)
    assert len({round(wait, 6) for wait in waits}) > 100


def test_a_new_event_is_left_to_the_request_path_for_the_grace_period() -> None:
    assert not event(created_seconds_ago=0).is_due(NOW, POLICY)
    assert not event(created_seconds_ago=29.9).is_due(NOW, POLICY)
    assert event(created_seconds_ago=30).is_due(NOW, POLICY)


def test_a_refused_event_waits_for_its_next_attempt_time_whatever_its_age() -> None:
    assert not event(created_seconds_ago=3600, next_attempt_in=1, attempts=2).is_due(NOW, POLICY)
    assert event(created_seconds_ago=3600, next_attempt_in=0, attempts=2).is_due(NOW, POLICY)
    assert event(created_seconds_ago=3600, next_attempt_in=-5, attempts=2).is_due(NOW, POLICY)


def test_an_event_reads_back_its_attempts_from_its_item() -> None:
    # Given the item of an event refused twice
    refused = event(created_seconds_ago=100, next_attempt_in=60, attempts=2)
    item = {**refused.to_item(), "attempts": 2, "next_attempt_at": refused.next_attempt_at}
    # When / Then
    assert OutboxEvent.from_item(item) == refused
    # And a new event's item has neither
    assert {"attempts", "next_attempt_at"}.isdisjoint(event(0).to_item())


def test_the_age_of_an_event_is_counted_from_its_creation() -> None:
    assert event(created_seconds_ago=75).age_seconds(NOW) == 75
    assert event(created_seconds_ago=-5).age_seconds(NOW) == 0
