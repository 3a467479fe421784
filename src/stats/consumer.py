"""Lambda entry point of the stats consumer (StatsConsumerFunction in template.yaml).

Receives lead change events from the bus (rule `LeadChanges`) and moves the day buckets from the
lead's last applied state to the state the event carries (`stats.store`). A redelivered,
duplicated or out-of-order (older) event changes nothing. A change that moved a counter makes
cached reads of the buckets stale, so their namespaces of the query cache are invalidated.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from shared.observability import logger
from stats.aggregation import LeadView
from stats.dependencies import bucket_updater

LEAD_EVENT_TYPES = frozenset({"LeadCreated", "LeadUpdated", "LeadDeleted"})


class LeadChange(BaseModel):
    model_config = ConfigDict(extra="allow")

    lead_id: str = Field(min_length=1)
    version: int = Field(ge=1)
    after: dict[str, Any] | None = None


@logger.inject_lambda_context(clear_state=True)
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    if event.detail_type not in LEAD_EVENT_TYPES:
        logger.warning("ignored event", extra={"detail_type": event.detail_type})
        return {"applied": False}
    # A malformed event raises: EventBridge retries it and then moves it to the dead-letter queue.
    change = LeadChange.model_validate(event.detail)
    logger.append_keys(lead_id=change.lead_id, detail_type=event.detail_type, event_id=event.get_id)
    applied = bucket_updater().apply(change.lead_id, change.version, LeadView.from_values(change.after))
    logger.info("lead change applied" if applied else "lead change already applied")
    return {"applied": applied, "lead_id": change.lead_id}
