"""The transactional outbox for domain events.

A change and its event are written in one DynamoDB transaction (`Outbox.write`); the event is
then put on the bus and its outbox item removed (`Outbox.send`). If the bus is down the item
stays, so no change is ever lost to a failed publish: `pending` lists what still has to go and
`send` is safe to call again: consumers are idempotent by event id, so an event sent twice (its
item could not be removed after sending) changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import simplejson
from ulid import ULID

from shared.dates import now_timestamp
from shared.dynamo import Table, Write
from shared.events import LEAD_SOURCE, EventPublisher, PublishFailed
from shared.observability import logger


@dataclass(frozen=True)
class OutboxEvent:
    event_id: str
    detail_type: str
    detail: dict[str, Any]
    created_at: str
    source: str = LEAD_SOURCE

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
        )


class Outbox:
    ITEM = "outbox event"  # the name of its transaction items

    def __init__(self, table: Table, publisher: EventPublisher) -> None:
        self._table = table
        self._publisher = publisher

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
        """Events recorded but not yet accepted by the bus (operator tooling: a full read)."""
        for item in self._table.scan_all():
            yield OutboxEvent.from_item(item)
