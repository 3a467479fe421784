"""Posting a lead: one post, or one post under an `Idempotency-Key` (Powertools idempotency,
set up on first use), each answered with the status and the exact JSON text a retry replays."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any
from zoneinfo import ZoneInfo

from leads.directory import AgentPool, VendorDirectory
from leads.intake import parse_submission
from leads.repository import LeadRepository
from leads.writes import LeadWriter, rejected_for
from shared import dependencies
from shared.buckets import DayBuckets
from shared.dynamo import Table, dynamodb_client
from shared.errors import ApiError
from shared.http import dumps
from shared.outbox import Outbox
from shared.pricing import Pricer
from shared.security import Principal, Role

IDEMPOTENCY_SECONDS = 24 * 3600


def lead_writer(outbox: Outbox | None = None, leads: LeadRepository | None = None) -> LeadWriter:
    """The writer on the process-wide tables (tests may give their own outbox or repository)."""
    settings = dependencies.get_settings()
    return LeadWriter(
        leads=leads or LeadRepository(dependencies.leads_table()),
        directory=VendorDirectory(dependencies.vendors_table(), dependencies.pricing_table()),
        agents=AgentPool(dependencies.users_table()),
        dedupe=Table(settings.dedupe_table),
        usage=Table(settings.usage_table),
        outbox=outbox or dependencies.outbox(),
        cache=dependencies.query_cache(),
        pricer=Pricer(DayBuckets(Table(settings.stats_table)), ZoneInfo(settings.business_timezone)),
        business_timezone=settings.business_timezone,
    )


def post(principal: Principal, raw_body: str | None) -> dict[str, Any]:
    """One lead post: the status and the JSON text the poster receives (what a retry replays)."""
    try:
        submission = parse_submission(raw_body, principal)
    except ApiError as exc:
        response = rejected_for(exc)
    else:
        response = lead_writer().create(principal, submission)
    return {"status": response.status, "body": dumps(response.body())}


@cache
def _idempotent_post() -> tuple[Callable[..., dict[str, Any]], Any]:
    """Powertools idempotency, set up on first use rather than at import."""
    from aws_lambda_powertools.utilities.idempotency import (
        DynamoDBPersistenceLayer,
        IdempotencyConfig,
        idempotent_function,
    )

    config = IdempotencyConfig(
        event_key_jmespath="[caller, key]",
        payload_validation_jmespath="body",
        expires_after_seconds=IDEMPOTENCY_SECONDS,
    )
    persistence = DynamoDBPersistenceLayer(
        table_name=dependencies.get_settings().idempotency_table, boto3_client=dynamodb_client()
    )

    @idempotent_function(data_keyword_argument="request", persistence_store=persistence, config=config)
    def run(request: dict[str, Any]) -> dict[str, Any]:
        caller = Principal(request["caller"], Role(request["role"]), vendor_code=request["vendor_code"])
        return post(caller, request["body"])

    return run, config


def post_with_key(
    principal: Principal, key: str, raw_body: str | None, lambda_context: Any
) -> dict[str, Any]:
    from aws_lambda_powertools.utilities.idempotency.exceptions import (
        IdempotencyAlreadyInProgressError,
        IdempotencyValidationError,
    )

    run, config = _idempotent_post()
    # The in-flight marker expires with the invocation, so a crashed attempt does not block retries.
    config.register_lambda_context(lambda_context)
    try:
        request = {
            "caller": principal.user_id,
            "role": principal.role.value,
            "vendor_code": principal.vendor_code,
            "key": key,
            "body": raw_body or "",
        }
        return run(request=request)
    except IdempotencyValidationError:
        error: ApiError = IdempotencyKeyReused("This Idempotency-Key was used with a different body")
    except IdempotencyAlreadyInProgressError:
        error = IdempotencyInProgress(
            "A request with this Idempotency-Key is still being processed; retry shortly"
        )
    response = rejected_for(error, reason_code=None)
    return {"status": response.status, "body": dumps(response.body())}


class IdempotencyKeyReused(ApiError):
    status = 422
    code = "IDEMPOTENCY_KEY_REUSED"


class IdempotencyInProgress(ApiError):
    status = 409
    code = "IDEMPOTENCY_IN_PROGRESS"
