"""Routes of the lead service. Thin: read the input, call the service, return the output."""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query

from leads.directory import AgentPool, VendorDirectory
from leads.intake import parse_submission
from leads.models import Disposition, Lead, LeadChanges, LeadFilters, LeadPage, LeadSubmission, PostResult
from leads.repository import LeadRepository
from leads.service import LeadService, parse_time_bound
from leads.writes import LeadWriter, rejected_for
from shared import dependencies
from shared.dynamo import Table, dynamodb_client
from shared.errors import ApiError, BadRequest
from shared.http import JSON, dumps, endpoint, json_response
from shared.security import ALL_ROLES, Principal, Role, current_principal

router = Router()

POSTERS = (Role.ADMIN, Role.MANAGER, Role.VENDOR)
WORKERS = (Role.ADMIN, Role.MANAGER, Role.AGENT)
IDEMPOTENCY_SECONDS = 24 * 3600
MAX_IDEMPOTENCY_KEY = 128
MAX_LIMIT = 200
DEFAULT_LIMIT = 50
LEAD_ID_PATTERN = r"^[0-9A-HJKMNP-TV-Z]{26}$"
CODE_PATTERN = r"^[A-Za-z0-9_.:@-]{1,64}$"
TEXT_FILTER = r"^[^\x00-\x1f]{1,128}$"


def lead_service() -> LeadService:
    """Cheap to build: the table, cache and codec it wraps are the process-wide ones."""
    return LeadService(
        LeadRepository(dependencies.leads_table()),
        dependencies.query_cache(),
        dependencies.cursor_codec(),
    )


@endpoint(
    router, "GET", "/leads", roles=ALL_ROLES, response_model=LeadPage, summary="List leads", tags=["leads"]
)
def list_leads(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=2048, description="From the previous page")] = None,
    vendor: Annotated[str | None, Query(pattern=CODE_PATTERN)] = None,
    disposition: Annotated[Disposition | None, Query()] = None,
    campaign: Annotated[str | None, Query(pattern=TEXT_FILTER)] = None,
    agent: Annotated[str | None, Query(pattern=CODE_PATTERN)] = None,
    created_from: Annotated[
        str | None, Query(alias="from", max_length=40, description="Date or ISO time")
    ] = None,
    created_to: Annotated[
        str | None, Query(alias="to", max_length=40, description="Date or ISO time")
    ] = None,
    q: Annotated[
        str | None,
        Query(
            min_length=2,
            max_length=100,
            pattern=TEXT_FILTER,
            description="Prefix of email, phone or last name",
        ),
    ] = None,
) -> Response[Any]:
    filters = LeadFilters(
        vendor=vendor,
        disposition=disposition,
        campaign=campaign,
        agent=agent,
        created_from=parse_time_bound(created_from, "from", end_of_day=False),
        created_to=parse_time_bound(created_to, "to", end_of_day=True),
        q=" ".join(q.split()) if q else None,
    )
    return json_response(lead_service().list_leads(current_principal(), filters, limit, cursor))


@endpoint(
    router,
    "GET",
    "/leads/<lead_id>",
    roles=ALL_ROLES,
    response_model=Lead,
    summary="Get a lead",
    errors=[404],
    tags=["leads"],
)
def get_lead(lead_id: Annotated[str, Path(pattern=LEAD_ID_PATTERN)]) -> Response[Any]:
    return json_response(lead_service().get_lead(current_principal(), lead_id))


def lead_writer() -> LeadWriter:
    settings = dependencies.get_settings()
    return LeadWriter(
        leads=LeadRepository(dependencies.leads_table()),
        directory=VendorDirectory(dependencies.vendors_table(), dependencies.pricing_table()),
        agents=AgentPool(dependencies.users_table()),
        dedupe=Table(settings.dedupe_table),
        usage=Table(settings.usage_table),
        outbox=dependencies.outbox(),
        cache=dependencies.query_cache(),
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


@endpoint(
    router,
    "POST",
    "/leads",
    roles=POSTERS,
    response_model=PostResult,
    status=201,
    request_model=LeadSubmission,
    errors=[403, 409, 413, 429],
    summary="Post a lead",
    tags=["leads"],
)
def post_lead() -> Response[Any]:
    principal = current_principal()
    key = (router.current_event.headers.get("Idempotency-Key") or "").strip()
    if len(key) > MAX_IDEMPOTENCY_KEY:
        raise BadRequest("Idempotency-Key is too long", details=[{"field": "Idempotency-Key"}])
    body = router.current_event.body
    result = post_with_key(principal, key, body, router.lambda_context) if key else post(principal, body)
    # The body is kept as the exact text first sent, so a replayed retry is byte-for-byte the same.
    return Response(status_code=result["status"], content_type=JSON, body=result["body"])


@endpoint(
    router,
    "PATCH",
    "/leads/<lead_id>",
    roles=WORKERS,
    response_model=Lead,
    errors=[404, 409],
    summary="Update a lead: disposition, notes, contact, sale, assignment",
    tags=["leads"],
)
def update_lead(
    lead_id: Annotated[str, Path(pattern=LEAD_ID_PATTERN)], changes: Annotated[LeadChanges, Body()]
) -> Response[Any]:
    updated = lead_writer().update(current_principal(), lead_id, changes)
    return json_response(updated.model_dump(mode="python"))


@endpoint(
    router,
    "DELETE",
    "/leads/<lead_id>",
    roles=[Role.ADMIN],
    response_model=None,
    status=204,
    errors=[404, 409],
    summary="Delete a lead (soft: kept, hidden, removed from stats)",
    tags=["leads"],
)
def delete_lead(lead_id: Annotated[str, Path(pattern=LEAD_ID_PATTERN)]) -> Response[Any]:
    lead_writer().delete(current_principal(), lead_id)
    return Response(status_code=204, body="")
