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
`BucketItemWrites`, `ConflictsRetried`; see `publish_metrics`), CloudWatch metrics in AWS and
EMF lines on `crm serve`'s stdout locally, which `crm bench --burst` adds up.
"""

from __future__ import annotations

import json
from typing import Any

from aws_lambda_powertools.utilities.batch import BatchProcessor, EventType
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord
from pydantic import BaseModel, ConfigDict, Field

from shared.observability import add_count, logger
from stats.aggregation import LeadView
from stats.dependencies import bucket_updater
from stats.store import BatchResult, LeadChange

LEAD_EVENT_TYPES = frozenset({"LeadCreated", "LeadUpdated", "LeadDeleted"})


class LeadChangeDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    lead_id: str = Field(min_length=1)
    version: int = Field(ge=1)
    after: dict[str, Any] | None = None


class LeadEvent(BaseModel):
    """The EventBridge event a queue record carries."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)

    detail_type: str = Field(alias="detail-type")
    detail: dict[str, Any]


def lead_change(record: SQSRecord) -> LeadChange | None:
    """The change a record carries; None for an event of another type. Raises on a record that
    is no lead event (it is then reported as failed)."""
    event = LeadEvent.model_validate(json.loads(record.body))
    if event.detail_type not in LEAD_EVENT_TYPES:
        logger.warning("ignored event", extra={"detail_type": event.detail_type})
        return None
    detail = LeadChangeDetail.model_validate(event.detail)
    return LeadChange(detail.lead_id, detail.version, LeadView.from_values(detail.after))


def publish_metrics(result: BatchResult) -> None:
    """One invocation's work: one batch, the lead changes it applied (each lead moved to a newer
    version; redelivered or older events apply nothing), the bucket-item writes it committed,
    and the transactions it ran again after a concurrent delivery cancelled them."""
    add_count("StatsBatches", 1)
    add_count("StatsEventsApplied", len(result.applied))
    add_count("BucketItemWrites", result.bucket_item_writes)
    add_count("ConflictsRetried", result.conflicts_retried)


def apply_batch(event: dict[str, Any]) -> dict[str, Any]:
    """Applies an SQS batch of lead events; returns the records to deliver again."""
    changes: dict[str, LeadChange | None] = {}  # record id -> the change it carries, if any

    def read(record: SQSRecord) -> None:
        changes[record.message_id] = lead_change(record)

    processor = BatchProcessor(event_type=EventType.SQS, raise_on_entire_batch_failure=False)
    with processor(event["Records"], read):
        processor.process()
    result = bucket_updater().apply(change for change in changes.values() if change)
    publish_metrics(result)
    failed = [
        record_id for record_id, change in changes.items() if change and change.lead_id in result.failed
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
