"""Lambda entry point of the outbox publisher (OutboxPublisherFunction in template.yaml).

An EventBridge schedule invokes it every minute. It sends the lead events that are still in the
outbox because the bus refused them after their change was committed (`shared.outbox`): those past
the grace period the request path has to send them itself, and past their back-off after an
earlier refusal. A refused event is tried again later, further off each time; nothing is dropped.
It lives in the lead service because the lead service writes these events.

Each invocation publishes `OutboxEventsPublished`, `OutboxEventsFailed` and
`OutboxOldestPendingSeconds` (the age of the oldest event still pending afterwards, 0 when the
outbox is empty: what an alarm on a stuck outbox watches).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext

from shared.dependencies import outbox
from shared.observability import add_count, add_seconds, logger, metrics
from shared.outbox import DrainReport

# Sending stops this long before the invocation's timeout; what is left waits for the next run.
TIME_MARGIN_SECONDS = 3.0


def publish_metrics(report: DrainReport) -> None:
    add_count("OutboxEventsPublished", report.sent)
    add_count("OutboxEventsFailed", report.failed)
    add_seconds("OutboxOldestPendingSeconds", report.oldest_pending_seconds)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = outbox().drain(
        time_left=lambda: context.get_remaining_time_in_millis() / 1000 - TIME_MARGIN_SECONDS
    )
    publish_metrics(report)
    summary = {
        "sent": report.sent,
        "failed": report.failed,
        "waiting": report.waiting,
        "oldest_pending_seconds": round(report.oldest_pending_seconds, 3),
    }
    logger.info("outbox drained", extra=summary)
    return summary
