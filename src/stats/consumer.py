"""Lambda entry point of the stats consumer (StatsConsumerFunction in template.yaml): it applies
batches of lead events from its queue to the stats day buckets (`stats.batch`, imported by the
first batch: the cold start imports only this module; see `shared.entrypoints`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.observability import logger, metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    from stats.batch import apply_batch

    return apply_batch(event)
