"""What the stats consumer (`stats.consumer`) does with a batch of queue records.

Lead change events reach it from the bus in batches, through a queue (rule `LeadChangesRule`,
queue `StatsEventsQueue`). It moves the day buckets from each lead's last applied state to the
newest state the batch carries (`stats.store`), summing the batch so each bucket item is written
once per batch. A redelivered, duplicated or out-of-order (older) event changes nothing. Records
it cannot read, and those of leads it could not apply, are reported as batch item failures:
the queue delivers them again, alone, and after five receipts moves them to the dead-letter
queue (`crm stats rebuild` reconciles the stats after that). Cached reads of the buckets are
not invalidated here: they expire within the stats freshness interval (see `shared.config`).

Each invocation publishes what it did as metrics (`StatsBatches` 1, `StatsEventsApplied`,
`BucketItemWrites`, `ConflictsRetried`, and `StatsEventAgeSeconds`, how long after its change
was committed the oldest event the batch applied was applied: the stats' freshness; see
`publish_metrics`), CloudWatch metrics in AWS and EMF lines on `crm serve`'s stdout locally,
which `crm bench --burst` adds up. It logs one line per event with the event's correlation id
(the id of the API request that made the change), so a request can be followed into the stats.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import BaseModel, ConfigDict, Field
from ulid import ULID

from shared.observability import add_count, add_seconds, logger
from stats.aggregation import LeadView
from stats.dependencies import bucket_updater
from stats.store import BatchResult, LeadChange

LEAD_EVENT_TYPES = frozenset({"LeadCreated", "LeadUpdated", "LeadDeleted"})


class LeadChangeDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    lead_id: str = Field(min_length=1)
    version: int = Field(ge=1)
    after: dict[str, Any] | None = None
    event_id: str | None = None
    correlation_id: str | None = None


class LeadEvent(BaseModel):
    """The EventBridge event a queue record carries."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    detail_type: str = Field(alias="detail-type")
    detail: dict[str, Any]
    time: datetime | None = None  # when the bus accepted it


@dataclass(frozen=True)
class ReceivedChange:
    """A lead change as a record delivered it, with what the logs and metrics say of it."""

    change: LeadChange
    detail_type: str
    event_id: str | None
    correlation_id: str | None
    committed_at: float | None  # epoch seconds


def clock() -> float:
    return time.time()


def committed_at(detail: LeadChangeDetail, event: LeadEvent) -> float | None:
    """When the change was committed: the time in its event id (a ULID, made in the change's
    transaction), else when the bus accepted the event."""
    if detail.event_id:
        try:
            return ULID.from_str(detail.event_id).timestamp
        except ValueError:
            pass
    return event.time.timestamp() if event.time else None


def lead_change(record: SQSRecord) -> ReceivedChange | None:
    """The change a record carries; None for an event of another type. Raises on a record that
    is no lead event (it is then reported as failed)."""
    event = LeadEvent.model_validate(json.loads(record.body))
    if event.detail_type not in LEAD_EVENT_TYPES:
        logger.warning("ignored event", extra={"detail_type": event.detail_type})
        return None
    detail = LeadChangeDetail.model_validate(event.detail)
    return ReceivedChange(
        change=LeadChange(detail.lead_id, detail.version, LeadView.from_values(detail.after)),
        detail_type=event.detail_type,
        event_id=detail.event_id,
        correlation_id=detail.correlation_id,
        committed_at=committed_at(detail, event),
    )


def publish_metrics(result: BatchResult, event_age_seconds: float | None) -> None:
    """One invocation's work: one batch, the lead changes it applied (each lead moved to a newer
    version; redelivered or older events apply nothing), the bucket-item writes it committed,
    the transactions it ran again after a concurrent delivery cancelled them, and the age of the
    oldest change it applied (none when it applied nothing)."""
    add_count("StatsBatches", 1)
    add_count("StatsEventsApplied", len(result.applied))
    add_count("BucketItemWrites", result.bucket_item_writes)
    add_count("ConflictsRetried", result.conflicts_retried)
    if event_age_seconds is not None:
        add_seconds("StatsEventAgeSeconds", event_age_seconds)


def log_changes(received: list[ReceivedChange], result: BatchResult, now: float) -> float | None:
    """Logs each change under its own correlation id, with what became of it; returns the age of
    the oldest change applied."""
    ages = []
    for item in received:
        lead_id = item.change.lead_id
        outcome = (
            "failed" if lead_id in result.failed else "applied" if lead_id in result.applied else "unchanged"
        )
        age = max(0.0, now - item.committed_at) if item.committed_at is not None else None
        if outcome == "applied" and age is not None:
            ages.append(age)
        if item.correlation_id:
            logger.set_correlation_id(item.correlation_id)
        (logger.warning if outcome == "failed" else logger.info)(
            "lead change " + outcome,
            extra={
                "lead_id": lead_id,
                "version": item.change.version,
                "detail_type": item.detail_type,
                "event_id": item.event_id,
                "event_age_seconds": None if age is None else round(age, 3),
            },
        )
        logger.remove_keys(["correlation_id"])
    return max(ages) if ages else None


def apply_batch(event: dict[str, Any]) -> dict[str, Any]:
    """Applies an SQS batch of lead events; returns the records to deliver again."""
    changes: dict[str, ReceivedChange | None] = {}  # record id -> the change it carries, if any

    def read(record: SQSRecord) -> None:
        changes[record.message_id] = lead_change(record)

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    with processor(event["Records"], read):
        processor.process()
    received = [item for item in changes.values() if item]
    result = bucket_updater().apply(item.change for item in received)
    publish_metrics(result, log_changes(received, result, clock()))
    failed = [
        record_id for record_id, item in changes.items() if item and item.change.lead_id in result.failed
    ]
    unreadable = processor.response()["batchItemFailures"]
    failures = [*unreadable, *({"itemIdentifier": record_id} for record_id in failed)]
    logger.info(
        "lead changes applied",
        extra={
            "records": len(event["Records"]),
            "leads_applied": len(result.applied),
            "unreadable": len(unreadable),
            "not_applied": len(failed),
            "bucket_item_writes": result.bucket_item_writes,
            "conflicts_retried": result.conflicts_retried,
        },
    )
    return {"batchItemFailures": failures}
