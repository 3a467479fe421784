"""The transactional outbox for domain events.

A change and its event are written in one DynamoDB transaction (`Outbox.write`); the event is
then put on the bus and its outbox item removed (`Outbox.send`). If the bus is down the item
stays, so no change is ever lost to a failed publish. `Outbox.drain` sends what is left: the
scheduled outbox publisher (`leads.outbox_publisher`) runs it every minute, and `crm outbox send`
runs it on demand. A refused event records its attempts and when to try it next, further off after
each refusal (`RetryPolicy`). Sending twice is harmless: consumers are idempotent by event id and
lead version, so an event sent twice (its item could not be removed after sending, or the request
path and the publisher both sent it) changes nothing.

The table also holds at most one item that is not an event: the record that a query cache epoch
bump is owed (`OwedEpochMarker`, key `OWED_EPOCH_ID`), which the scheduled publisher reads on
each run; `Outbox.pending` skips it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import simplejson
from ulid import ULID

from shared.cache import OwedEpoch
from shared.dates import iso_timestamp, now_timestamp
from shared.dynamo import Table, Write, to_item
from shared.events import LEAD_SOURCE, EventPublisher, PublishFailed
from shared.observability import logger

# The key of the owed-epoch record: event ids are ULIDs, so no event can have it.
OWED_EPOCH_ID = "cache-epoch-owed"


@dataclass(frozen=True)
class OutboxEvent:
    event_id: str
    detail_type: str
    detail: dict[str, Any]
    created_at: str
    source: str = LEAD_SOURCE
    attempts: int = 0  # sends the bus refused after the request path's own
    next_attempt_at: str | None = None  # not tried again before this time (None: once due)

    @classmethod
    def new(cls, detail_type: str, detail: dict[str, Any], source: str = LEAD_SOURCE) -> OutboxEvent:
        event_id = str(ULID())
        now = now_timestamp()
        return cls(event_id, detail_type, {**detail, "event_id": event_id}, now, source)

    def to_item(self) -> dict[str, Any]:
        return {
            "event_id": self.event_id,
            "detail_type": self.detail_type,
            "source": self.source,
            "detail": simplejson.dumps(self.detail, use_decimal=True),
            "created_at": self.created_at,
        }

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> OutboxEvent:
        return cls(
            event_id=item["event_id"],
            detail_type=item["detail_type"],
            detail=simplejson.loads(item["detail"], use_decimal=True),
            created_at=item["created_at"],
            source=item.get("source", LEAD_SOURCE),
            attempts=int(item.get("attempts", 0)),
            next_attempt_at=item.get("next_attempt_at"),
        )

    def age_seconds(self, now: datetime) -> float:
        return max(0.0, (now - _parse(self.created_at)).total_seconds())

    def is_due(self, now: datetime, policy: RetryPolicy) -> bool:
        """Whether the publisher sends it now: past the grace period the request path has to send
        it itself, and past its back-off after a refusal."""
        if self.next_attempt_at is not None:
            return _parse(self.next_attempt_at) <= now
        return self.age_seconds(now) >= policy.grace_seconds


def _parse(timestamp: str) -> datetime:
    return datetime.fromisoformat(timestamp.replace("Z", "+00:00"))


@dataclass(frozen=True)
class RetryPolicy:
    """When the outbox publisher tries a pending event.

    A new event is left alone for `grace_seconds` (the request path that wrote it sends it right
    after its commit; the publisher would only send it a second time). After the n-th refusal the
    next attempt waits an exponential back-off with equal jitter: half of
    min(max_seconds, base_seconds * 2**(n-1)) plus a random part up to the other half, so retries
    of events refused together spread out and no wait exceeds `max_seconds`."""

    grace_seconds: float = 30.0
    base_seconds: float = 30.0
    max_seconds: float = 900.0

    def delay_seconds(
        self, attempts: int, uniform: Callable[[float, float], float] = random.uniform
    ) -> float:
        """The wait after the `attempts`-th refusal (1 for the first)."""
        ceiling = min(self.max_seconds, self.base_seconds * 2.0 ** min(max(attempts, 1) - 1, 62))
        return ceiling / 2 + uniform(0.0, ceiling / 2)


@dataclass
class DrainReport:
    """What one drain did: events `sent`, `failed` (refused; tried again after their back-off),
    and `waiting` (pending but not due yet, or left because the time ran out); the age of the
    oldest event still in the outbox afterwards (0 when it is empty)."""

    sent: int = 0
    failed: int = 0
    waiting: int = 0
    oldest_pending_seconds: float = 0.0


class Outbox:
    ITEM = "outbox event"  # the name of its transaction items

    def __init__(self, table: Table, publisher: EventPublisher, retry: RetryPolicy | None = None) -> None:
        self._table = table
        self._publisher = publisher
        self.retry = retry or RetryPolicy()

    def write(self, event: OutboxEvent) -> Write:
        """The transaction item that records `event` together with the change it describes."""
        return Write(
            "Put",
            self._table.name,
            item=event.to_item(),
            condition="attribute_not_exists(event_id)",
            name=self.ITEM,
        )

    def send(self, event: OutboxEvent) -> bool:
        """Publishes a recorded event and clears it. False (and the event kept) if the bus refused."""
        try:
            self._publisher.publish(event.detail_type, event.detail, source=event.source)
        except PublishFailed as exc:
            logger.error(
                "event kept in the outbox for reconciliation",
                extra={"event_id": event.event_id, "detail_type": event.detail_type, "reason": str(exc)},
            )
            return False
        try:
            self._table.client.delete_item(
                TableName=self._table.name, Key={"event_id": {"S": event.event_id}}
            )
        except Exception:  # the change and its event are out; a leftover item is only re-sent later
            logger.exception("sent event left in the outbox", extra={"event_id": event.event_id})
        return True

    def pending(self) -> Iterator[OutboxEvent]:
        """Events recorded but not yet accepted by the bus (a full read: the outbox holds only
        what the bus refused, and what the request path is about to send)."""
        for item in self._table.scan_all():
            if item["event_id"] != OWED_EPOCH_ID:
                yield OutboxEvent.from_item(item)

    def drain(
        self,
        due_only: bool = True,
        time_left: Callable[[], float] | None = None,
        now: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> DrainReport:
        """Sends the pending events, oldest first: those due (`RetryPolicy`), or every one when
        not `due_only` (an operator asking for it now). A refused event records one more attempt
        and its next time. Stops sending once `time_left()` (seconds) is not positive; what is
        left waits for the next drain."""
        report = DrainReport()
        still_pending: list[OutboxEvent] = []
        for event in sorted(self.pending(), key=lambda pending: pending.created_at):
            out_of_time = time_left is not None and time_left() <= 0
            if out_of_time or (due_only and not event.is_due(now(), self.retry)):
                report.waiting += 1
                still_pending.append(event)
            elif self.send(event):
                report.sent += 1
            else:
                report.failed += 1
                still_pending.append(event)
                self._record_refusal(event, now())
        if still_pending:
            report.oldest_pending_seconds = max(event.age_seconds(now()) for event in still_pending)
        return report

    def _record_refusal(self, event: OutboxEvent, at: datetime) -> None:
        """One more attempt on the event's item, and when to try it next; nothing if the item is
        gone (the request path sent it meanwhile)."""
        attempts = event.attempts + 1
        next_attempt = at + timedelta(seconds=self.retry.delay_seconds(attempts))
        client = self._table.client
        try:
            client.update_item(
                TableName=self._table.name,
                Key={"event_id": {"S": event.event_id}},
                UpdateExpression="SET attempts = :attempts, next_attempt_at = :next",
                ConditionExpression="attribute_exists(event_id)",
                ExpressionAttributeValues=to_item(
                    {":attempts": attempts, ":next": iso_timestamp(next_attempt)}
                ),
            )
        except client.exceptions.ConditionalCheckFailedException:
            return
        logger.warning(
            "outbox event refused again",
            extra={
                "event_id": event.event_id,
                "attempts": attempts,
                "next_attempt_at": iso_timestamp(next_attempt),
            },
        )


class OwedEpochMarker:
    """The record that a query cache epoch bump is owed (`shared.cache.OwedEpochRecord`): one item
    in the outbox table, which every environment can write while Redis is away and the scheduled
    publisher reads each minute. Each recording is a plain PutItem that replaces the item with a
    new `record_id`; the publisher removes it only if `record_id` is still the one it read, so a
    debt recorded while it was bumping the epoch stays for its next run."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def record(self, owed_since: datetime) -> None:
        try:
            self._table.put(
                {
                    "event_id": OWED_EPOCH_ID,
                    "record_id": str(ULID()),
                    "owed_since": iso_timestamp(owed_since),
                    "recorded_at": now_timestamp(),
                }
            )
        except Exception:  # the write is committed; its process still owes the bump in memory
            logger.exception("owed cache epoch not recorded")

    def find(self) -> OwedEpoch | None:
        item = self._table.get({"event_id": OWED_EPOCH_ID}, consistent=True)
        if item is None:
            return None
        return OwedEpoch(item["record_id"], _parse(item["owed_since"]))

    def clear(self, owed: OwedEpoch) -> bool:
        client = self._table.client
        try:
            client.delete_item(
                TableName=self._table.name,
                Key={"event_id": {"S": OWED_EPOCH_ID}},
                ConditionExpression="record_id = :record_id",
                ExpressionAttributeValues={":record_id": {"S": owed.record_id}},
            )
        except client.exceptions.ConditionalCheckFailedException:
            return False
        return True
