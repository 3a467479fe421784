"""Lambda entry point of the postback delivery function (PostbackDeliveryFunction in
template.yaml): signed postbacks to vendors from lead events and due attempts on its queue
(`agencies.deliveries`, imported by the first batch: the cold start imports only this module; see
`shared.entrypoints`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.observability import logger, metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    from agencies.deliveries import handle_batch

    return handle_batch(event)
