"""The delivery function's attempts, with the postbacks table and queue in memory and a sender
that answers as told: back-off, dead-lettering, the destination checked again at send time, and
messages that come twice or early."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from agencies.deliveries import Deliverer, Outcome
from agencies.postbacks import DueAttempt
from agencies.webhooks import Destination

SECRET = "whsec_" + "A" * 43 + "="
ENDPOINT = {
    "vendor_code": "V001",
    "url": "https://hooks.example.com/in",
    "events": ["lead.accepted", "lead.status_changed"],
    "secret": SECRET,
}


class MemoryStore:
    """The PostbackStore's methods over dicts, with its conditions."""

    def __init__(self, endpoint: dict[str, Any] | None = None) -> None:
        self.endpoints = {"V001": dict(endpoint or ENDPOINT)}
        self.rows: dict[tuple[str, str], dict[str, Any]] = {}

    def endpoint(self, vendor_code: str) -> dict[str, Any] | None:
        return self.endpoints.get(vendor_code)

    def delivery(self, vendor_code: str, delivery_id: str) -> dict[str, Any] | None:
        found = self.rows.get((vendor_code, delivery_id))
        return copy.deepcopy(found) if found else None

    def add_delivery(self, item: Mapping[str, Any]) -> bool:
        key = (str(item["vendor_code"]), str(item["delivery_id"]))
        if key in self.rows:
            return False
        self.rows[key] = copy.deepcopy(dict(item))
        return True

    def update_delivery(self, delivery: Mapping[str, Any], changes: Mapping[str, Any]) -> bool:
        stored = self.rows[(str(delivery["vendor_code"]), str(delivery["delivery_id"]))]
        if (stored["status"], stored["attempt_count"]) != (delivery["status"], delivery["attempt_count"]):
            return False
        stored.update(changes)
        return True


@dataclass
class MemoryQueue:
    due: list[DueAttempt] = field(default_factory=list)
    dead: list[Mapping[str, Any]] = field(default_factory=list)

    def schedule(self, due: DueAttempt, at: datetime | None = None) -> None:
        self.due.append(due)

    def dead_letter(self, delivery: Mapping[str, Any]) -> None:
        self.dead.append(delivery)


@dataclass
class Receiver:
    """Answers each post with the next of `codes` (then the last one again)."""

    codes: list[int]
    posts: list[tuple[Destination, dict[str, str]]] = field(default_factory=list)

    def __call__(self, destination: Destination, headers: Mapping[str, str], body: str) -> Outcome:
        self.posts.append((destination, dict(headers)))
        code = self.codes[min(len(self.posts), len(self.codes)) - 1]
        return Outcome(200 <= code < 300, "delivered" if code < 300 else "failed", code, 12)


def lead_created(event_id: str = "event-1") -> dict[str, Any]:
    after = {
        "vendor_code": "V001",
        "disposition": "new",
        "lead_value": 25,
        "created_at": "2026-12-02T09:30:00Z",
    }
    return {
        "id": event_id,
        "detail-type": "LeadCreated",
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "detail": {"lead_id": "01JLEAD", "version": 1, "before": None, "after": after},
    }


def deliverer(
    store: MemoryStore, queue: MemoryQueue, receiver: Receiver, addresses: list[list[str]] | None = None
) -> Deliverer:
    answers = iter(addresses or [])

    def resolver(host: str, port: int) -> list[str]:
        return next(answers, ["93.184.216.34"])

    return Deliverer(store, queue, (5, 30), allow_loopback=False, resolver=resolver, sender=receiver)  # type: ignore[arg-type]


def only_delivery(store: MemoryStore) -> dict[str, Any]:
    (delivery,) = store.rows.values()
    return delivery


def test_a_receiver_answering_2xx_gets_one_signed_attempt() -> None:
    store, queue, receiver = MemoryStore(), MemoryQueue(), Receiver([204])
    deliverer(store, queue, receiver).handle(lead_created())
    delivery = only_delivery(store)
    assert (delivery["status"], delivery["attempt_count"], queue.due) == ("delivered", 1, [])
    ((destination, headers),) = receiver.posts
    assert (destination.address, headers["webhook-id"]) == ("93.184.216.34", delivery["delivery_id"])
    assert delivery["attempts"][0]["response_code"] == 204


def test_a_failing_receiver_is_tried_after_the_back_off_then_dead_lettered() -> None:
    store, queue, receiver = MemoryStore(), MemoryQueue(), Receiver([500])
    worker = deliverer(store, queue, receiver)
    worker.handle(lead_created())
    delivery = only_delivery(store)
    assert (delivery["status"], delivery["attempt_count"]) == ("pending", 1)
    (due,) = queue.due
    assert due.attempt == 2
    assert timedelta(seconds=4) < due.not_before - datetime.now(UTC) <= timedelta(seconds=5)
    # When each due attempt comes (on time) and fails again
    for expected in (3, None):
        on_time = DueAttempt(due.vendor_code, due.delivery_id, due.attempt, datetime.now(UTC))
        worker.on_due(on_time)
        if expected:
            due = queue.due[-1]
            assert due.attempt == expected
    # Then after 1 + 2 retries it is failed and dead-lettered
    delivery = only_delivery(store)
    assert (delivery["status"], delivery["attempt_count"], len(receiver.posts)) == ("failed", 3, 3)
    assert [attempt["response_code"] for attempt in delivery["attempts"]] == [500, 500, 500]
    assert [dead["delivery_id"] for dead in queue.dead] == [delivery["delivery_id"]]


def test_a_host_that_resolves_privately_at_send_time_is_refused_and_retried() -> None:
    store, queue, receiver = MemoryStore(), MemoryQueue(), Receiver([200])
    # The host was public when registered; it now answers with the metadata address
    deliverer(store, queue, receiver, addresses=[["169.254.169.254"]]).handle(lead_created())
    delivery = only_delivery(store)
    assert receiver.posts == []
    assert (delivery["status"], delivery["attempts"][0]["outcome"]) == ("pending", "refused")
    assert "non-public" in delivery["attempts"][0]["error"]


def test_an_event_that_comes_twice_makes_one_delivery_and_one_post() -> None:
    store, queue, receiver = MemoryStore(), MemoryQueue(), Receiver([200])
    worker = deliverer(store, queue, receiver)
    worker.handle(lead_created())
    worker.handle(lead_created())
    assert len(store.rows) == 1
    assert len(receiver.posts) == 1


def test_a_due_attempt_that_comes_twice_is_made_once() -> None:
    store, queue, receiver = MemoryStore(), MemoryQueue(), Receiver([500, 200])
    worker = deliverer(store, queue, receiver)
    worker.handle(lead_created())
    (due,) = queue.due
    now = DueAttempt(due.vendor_code, due.delivery_id, due.attempt, datetime.now(UTC))
    worker.on_due(now)
    worker.on_due(now)
    assert len(receiver.posts) == 2
    assert only_delivery(store)["status"] == "delivered"


def test_a_due_attempt_that_comes_early_waits_again() -> None:
    store, queue, receiver = MemoryStore(), MemoryQueue(), Receiver([500])
    worker = deliverer(store, queue, receiver)
    worker.handle(lead_created())
    (due,) = queue.due
    later = DueAttempt(due.vendor_code, due.delivery_id, due.attempt, datetime.now(UTC) + timedelta(hours=2))
    worker.on_due(later)
    assert len(receiver.posts) == 1
    assert queue.due[-1] == later


@pytest.mark.parametrize("events", [["lead.status_changed"], []])
def test_an_event_the_vendor_did_not_ask_for_makes_no_delivery(events: list[str]) -> None:
    store, queue, receiver = MemoryStore({**ENDPOINT, "events": events}), MemoryQueue(), Receiver([200])
    deliverer(store, queue, receiver).handle(lead_created())
    assert (store.rows, receiver.posts) == ({}, [])


def test_a_retry_by_hand_that_fails_is_one_attempt_without_dead_letter() -> None:
    store, queue, receiver = MemoryStore(), MemoryQueue(), Receiver([200, 503])
    worker = deliverer(store, queue, receiver)
    worker.handle(lead_created())
    delivery = only_delivery(store)
    delivery.update(status="pending")  # as the retry route leaves it
    worker.on_due(DueAttempt("V001", delivery["delivery_id"], 2, datetime.now(UTC), manual=True))
    delivery = only_delivery(store)
    assert (delivery["status"], delivery["attempts"][-1]["manual"], queue.dead, queue.due) == (
        "failed",
        True,
        [],
        [],
    )
