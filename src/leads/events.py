"""The events a lead change publishes (through the outbox): the lead's stats fields before and
after the change, which is all the stats consumer needs to move its day buckets, and the id of
the API request that made the change (`correlation_id`), which the consumer logs with it."""

from __future__ import annotations

from typing import Any

from leads.models import Lead
from shared.observability import correlation_id
from shared.outbox import OutboxEvent

# The fields the stats depend on; events carry their values before and after each change.
STATS_FIELDS = (
    "vendor_code",
    "campaign_source",
    "assigned_agent",
    "disposition",
    "lead_value",
    "quality_score",
    "created_at",
    "closed_date",
    "sale_amount",
    "return_status",
    "credit",
    "is_test",
)


def stats_view(lead: Lead | None, deleted: bool = False) -> dict[str, Any] | None:
    if lead is None:
        return None
    values = lead.model_dump(mode="python", include=set(STATS_FIELDS))
    return {**values, "deleted": deleted}


def lead_event(detail_type: str, lead: Lead, before: Lead | None, deleted: bool = False) -> OutboxEvent:
    return OutboxEvent.new(
        detail_type,
        {
            "lead_id": lead.lead_id,
            "version": lead.version,
            "before": stats_view(before),
            "after": stats_view(lead, deleted=deleted),
            "correlation_id": correlation_id(),
        },
    )
