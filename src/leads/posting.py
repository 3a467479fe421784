"""Posting a lead over HTTP: the posting contract's answer to each outcome, for one post or one
post under an `Idempotency-Key` (Powertools idempotency, set up on first use), each answered with
the status and the exact JSON text a retry replays."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

from leads.dependencies import lead_writer
from leads.intake import parse_submission
from leads.models import CreateOutcome, Outcome, PostResult, ReasonCode
from shared import dependencies
from shared.dynamo import dynamodb_client
from shared.errors import ApiError, Conflict, ValidationFailed
from shared.http import dumps
from shared.observability import add_count
from shared.responses import ErrorInfo
from shared.security import Principal, Role

IDEMPOTENCY_SECONDS = 24 * 3600
# The status of each outcome that is not an acceptance, by its reason code.
REJECTION_STATUS = {
    ReasonCode.DUPLICATE: 409,
    ReasonCode.DATA_ERROR: 422,
    ReasonCode.VENDOR_PAUSED: 403,
    ReasonCode.OVER_CAP: 429,
    ReasonCode.SUPPRESSED: 422,
    ReasonCode.NO_CONSENT: 422,
    ReasonCode.MISSING_FIELD: 422,
    ReasonCode.STATE_NOT_ALLOWED: 422,
    ReasonCode.LEAD_TOO_OLD: 422,
    ReasonCode.OUTSIDE_HOURS: 422,
}


@dataclass(frozen=True)
class PostResponse:
    status: int
    result: PostResult

    def body(self) -> dict[str, Any]:
        return self.result.model_dump(mode="python")


def answer(outcome: CreateOutcome) -> PostResponse:
    """The posting contract's answer to what creating the lead came to."""
    if outcome.outcome is Outcome.ACCEPTED:
        assert outcome.lead is not None
        accepted = PostResult(
            outcome=Outcome.ACCEPTED,
            reason_code=None,
            reason=None,
            lead_id=outcome.lead.lead_id,
            price=outcome.price,
            lead=outcome.lead,
        )
        return PostResponse(201, accepted)
    assert outcome.reason_code is not None
    assert outcome.reason is not None
    refused = PostResult(
        outcome=outcome.outcome,
        reason_code=outcome.reason_code,
        reason=outcome.reason,
        lead_id=outcome.existing_lead_id,
        price=outcome.price,
        details=outcome.details,
        error=ErrorInfo(code=outcome.reason_code.value, message=outcome.reason, details=outcome.details),
    )
    return PostResponse(REJECTION_STATUS[outcome.reason_code], refused)


def rejected_for(exc: ApiError, reason_code: ReasonCode | None = ReasonCode.DATA_ERROR) -> PostResponse:
    """The posting contract's answer for a request-level error (400, 413, 422, 409 in flight)."""
    return PostResponse(
        exc.status,
        PostResult(
            outcome=Outcome.REJECTED,
            reason_code=reason_code,
            reason=exc.message,
            lead_id=None,
            price=None,
            details=exc.details,
            error=ErrorInfo(code=exc.code, message=exc.message, details=exc.details),
        ),
    )


def post(principal: Principal, raw_body: str | None) -> dict[str, Any]:
    """One lead post: the status and the JSON text the poster receives (what a retry replays)."""
    try:
        submission = parse_submission(raw_body, principal)
    except ApiError as exc:
        response = rejected_for(exc)
    else:
        response = answer(lead_writer().create(principal, submission))
    if response.result.outcome is Outcome.ACCEPTED:
        add_count("LeadsAccepted", 1)  # the dashboard's leads per minute
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


class IdempotencyKeyReused(ValidationFailed):
    code = "IDEMPOTENCY_KEY_REUSED"


class IdempotencyInProgress(Conflict):
    code = "IDEMPOTENCY_IN_PROGRESS"
