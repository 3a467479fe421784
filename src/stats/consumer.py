"""Lambda entry point of the stats consumer (StatsConsumerFunction in template.yaml).

Receives lead change events from the bus (rule `LeadChanges`). Every change makes the cached
stats stale, so the stats namespace of the query cache is invalidated.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes import EventBridgeEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import BaseModel, ConfigDict, Field

from shared import dependencies
from shared.observability import logger

STATS_CACHE_NAMESPACE = "stats"
LEAD_EVENT_TYPES = frozenset({"LeadCreated", "LeadUpdated", "LeadDeleted"})


class LeadChange(BaseModel):
    model_config = ConfigDict(extra="allow")

    lead_id: str = Field(min_length=1)
    version: int = Field(ge=1)


@logger.inject_lambda_context(clear_state=True)
@event_source(data_class=EventBridgeEvent)
def lambda_handler(event: EventBridgeEvent, context: LambdaContext) -> dict[str, Any]:
    if event.detail_type not in LEAD_EVENT_TYPES:
        logger.warning("ignored event", extra={"detail_type": event.detail_type})
        return {"applied": False}
    # A malformed event raises: EventBridge retries it and then moves it to the dead-letter queue.
    change = LeadChange.model_validate(event.detail)
    logger.append_keys(lead_id=change.lead_id, detail_type=event.detail_type, event_id=event.get_id)
    dependencies.query_cache().invalidate(STATS_CACHE_NAMESPACE)
    logger.info("lead change applied")
    return {"applied": True, "lead_id": change.lead_id}
