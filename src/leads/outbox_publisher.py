"""Lambda entry point of the outbox publisher (OutboxPublisherFunction in template.yaml).

An EventBridge schedule invokes it every minute. It sends the lead events that are still in the
outbox because the bus refused them after their change was committed (`shared.outbox`): those past
the grace period the request path has to send them itself, and past their back-off after an
earlier refusal. A refused event is tried again later, further off each time; nothing is dropped.
It lives in the lead service because the lead service writes these events.

First it bumps the query cache's epoch if an environment recorded that it owes one (an
invalidation Redis did not take; see `shared.cache`) and Redis answers, so the debt is paid
within a minute of Redis's return even if that environment never runs again.

Each invocation publishes `OutboxEventsPublished`, `OutboxEventsFailed`,
`OutboxOldestPendingSeconds` (the age of the oldest event still pending afterwards, 0 when the
outbox is empty: what an alarm on a stuck outbox watches) and `CacheEpochBumps` (1 when it paid
an owed epoch bump).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from shared.observability import add_count, add_seconds, logger, metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.utilities.typing import LambdaContext

    from shared.outbox import DrainReport

# Sending stops this long before the invocation's timeout; what is left waits for the next run.
TIME_MARGIN_SECONDS = 3.0


def publish_metrics(report: DrainReport, epoch_bumped: bool) -> None:
    add_count("CacheEpochBumps", int(epoch_bumped))
    add_count("OutboxEventsPublished", report.sent)
    add_count("OutboxEventsFailed", report.failed)
    add_seconds("OutboxOldestPendingSeconds", report.oldest_pending_seconds)


@logger.inject_lambda_context(clear_state=True)
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    # Imported by the first run, not the cold start (as the other functions' code: see
    # `shared.entrypoints`).
    from shared.dependencies import outbox, query_cache

    epoch_bumped = query_cache().pay_recorded_epoch()
    report = outbox().drain(
        time_left=lambda: context.get_remaining_time_in_millis() / 1000 - TIME_MARGIN_SECONDS
    )
    publish_metrics(report, epoch_bumped)
    summary = {
        "cache_epoch_bumped": epoch_bumped,
        "sent": report.sent,
        "failed": report.failed,
        "waiting": report.waiting,
        "oldest_pending_seconds": round(report.oldest_pending_seconds, 3),
    }
    logger.info("outbox drained", extra=summary)
    return summary
