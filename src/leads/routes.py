"""Routes of the lead service: /leads* and the suppression list posting checks,
/admin/suppressions*. Thin: read the input, call the service, return the output."""

from __future__ import annotations

from functools import partial
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from leads.dependencies import lead_returns, lead_service, lead_writer, suppression_admin
from leads.models import (
    EXPORT_COLUMNS,
    SUPPRESSION_ENTRY_PATTERN,
    Disposition,
    Lead,
    LeadChanges,
    LeadFilters,
    LeadPage,
    LeadSubmission,
    PostResult,
    SuppressionCreate,
    SuppressionEntry,
    SuppressionPage,
)
from leads.posting import post, post_with_key
from leads.service import parse_time_bound
from leads.suppression import Kind
from shared.csv_export import to_csv
from shared.errors import BadRequest
from shared.http import CSV, JSON, NEXT_CURSOR_HEADER, endpoint, json_response
from shared.params import Body, Path, Query, day_or_time_query
from shared.returns import LeadReturn, ReturnDecision, ReturnRequest
from shared.security import ALL_ROLES, STAFF, STAFF_AND_AGENTS, STAFF_AND_VENDORS, Role, current_principal

router = Router()
leads_endpoint = partial(endpoint, router, tags=["leads"])
suppressions_endpoint = partial(endpoint, router, tags=["suppressions"])
ADMIN = (Role.ADMIN,)

POSTERS = STAFF_AND_VENDORS
WORKERS = STAFF_AND_AGENTS
MAX_IDEMPOTENCY_KEY = 128
MAX_LIMIT = 200
DEFAULT_LIMIT = 50
LEAD_ID_PATTERN = r"^[0-9A-HJKMNP-TV-Z]{26}$"
CODE_PATTERN = r"^[A-Za-z0-9_.:@-]{1,64}$"
TEXT_FILTER = r"^[^\x00-\x1f]{1,128}$"


@leads_endpoint("GET", "/leads", roles=ALL_ROLES, response_model=LeadPage, text_media_types=[CSV])
def list_leads(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=2048, description="From the previous page")] = None,
    vendor: Annotated[str | None, Query(pattern=CODE_PATTERN)] = None,
    disposition: Annotated[Disposition | None, Query()] = None,
    campaign: Annotated[str | None, Query(pattern=TEXT_FILTER)] = None,
    agent: Annotated[str | None, Query(pattern=CODE_PATTERN)] = None,
    created_from: Annotated[
        str | None, day_or_time_query("from", "Created at or after (a day: from its start)")
    ] = None,
    created_to: Annotated[
        str | None, day_or_time_query("to", "Created at or before (a day: to its end)")
    ] = None,
    q: Annotated[
        str | None,
        Query(
            min_length=2,
            max_length=100,
            pattern=TEXT_FILTER,
            description=(
                "Prefix of a name (first, last, or full name either way round: 'jane do', 'doe ja'), "
                "of an email or of a phone number; case and accents are ignored. With an '@' (or a "
                "dot and no space) it is an email; digits and phone punctuation are a phone (a bare "
                "number is taken as US); other text is a name. Name matches come by first name, "
                "then by last name, each lead once; all in the searched value's order, not by time"
            ),
        ),
    ] = None,
    format: Annotated[Literal["json", "csv"] | None, Query(description="json (default) or csv")] = None,
) -> Response[Any]:
    """List leads

    `format=csv` answers the page as CSV (the lead's fields with its consent evidence, one line
    per lead, a header line first), with the next page's cursor in `X-Next-Cursor` while there is
    one."""
    filters = LeadFilters(
        vendor=vendor,
        disposition=disposition,
        campaign=campaign,
        agent=agent,
        created_from=parse_time_bound(created_from, "from", end_of_day=False),
        created_to=parse_time_bound(created_to, "to", end_of_day=True),
        q=" ".join(q.split()) if q else None,
    )
    page = lead_service().list_leads(current_principal(), filters, limit, cursor)
    if format != "csv":
        return json_response(page)
    following = page["pagination"]["cursor"] if page["pagination"]["hasMore"] else None
    return Response(
        status_code=200,
        content_type=f"{CSV}; charset=utf-8",
        body=to_csv(EXPORT_COLUMNS, page["data"]),
        headers={
            "Content-Disposition": 'attachment; filename="leads.csv"',
            **({NEXT_CURSOR_HEADER: following} if following else {}),
        },
    )


@leads_endpoint("GET", "/leads/<lead_id>", roles=ALL_ROLES, response_model=Lead, errors=[404])
def get_lead(lead_id: Annotated[str, Path(pattern=LEAD_ID_PATTERN)]) -> Response[Any]:
    """Get a lead"""
    return json_response(lead_service().get_lead(current_principal(), lead_id))


@leads_endpoint(
    "POST",
    "/leads",
    roles=POSTERS,
    response_model=PostResult,
    status=201,
    request_model=LeadSubmission,
    errors=[403, 409, 413, 429],
)
def post_lead() -> Response[Any]:
    """Post a lead"""
    principal = current_principal()
    key = (router.current_event.headers.get("Idempotency-Key") or "").strip()
    if len(key) > MAX_IDEMPOTENCY_KEY:
        raise BadRequest("Idempotency-Key is too long", details=[{"field": "Idempotency-Key"}])
    body = router.current_event.body
    result = post_with_key(principal, key, body, router.lambda_context) if key else post(principal, body)
    # The body is kept as the exact text first sent, so a replayed retry is byte-for-byte the same.
    return Response(status_code=result["status"], content_type=JSON, body=result["body"])


@leads_endpoint("PATCH", "/leads/<lead_id>", roles=WORKERS, response_model=Lead, errors=[404, 409])
def update_lead(
    lead_id: Annotated[str, Path(pattern=LEAD_ID_PATTERN)], changes: Annotated[LeadChanges, Body()]
) -> Response[Any]:
    """Update a lead: disposition, notes, contact, sale, assignment

    `version` is the version last read (409 `VERSION_CONFLICT` when the lead changed since).
    Moves: new → contacted → qualified → closed, any open state → lost, lost → contacted
    (reopen); any other is 409 `INVALID_TRANSITION` naming the allowed ones. A reopened lead
    stays with its agent and counts against the agent's capacity: 409 `AGENT_AT_CAPACITY` when
    the agent has no room (a manager may reassign the lead, past capacity). `sale_amount` needs
    a closed lead (409 `LEAD_NOT_CLOSED`); the agent who closes its own lead records it. Agents
    change only their own leads (another's is 404) and may not reassign (422)."""
    updated = lead_writer().update(current_principal(), lead_id, changes)
    return json_response(updated.model_dump(mode="python"))


@leads_endpoint(
    "DELETE", "/leads/<lead_id>", roles=[Role.ADMIN], response_model=None, status=204, errors=[404, 409]
)
def delete_lead(lead_id: Annotated[str, Path(pattern=LEAD_ID_PATTERN)]) -> Response[Any]:
    """Delete a lead (soft: kept, hidden, removed from stats)"""
    lead_writer().delete(current_principal(), lead_id)
    return Response(status_code=204, body="")


# -- returns --------------------------------------------------------------------------------------
@leads_endpoint(
    "POST",
    "/leads/<lead_id>/return",
    roles=STAFF_AND_AGENTS,
    response_model=LeadReturn,
    status=201,
    errors=[404, 409],
)
def request_return(
    lead_id: Annotated[str, Path(pattern=LEAD_ID_PATTERN)], body: Annotated[ReturnRequest, Body()]
) -> Response[Any]:
    """Ask for a lead's return

    Inside the vendor's `return_window_days` (from the lead's `created_at`), once per lead: else
    409 `RETURN_NOT_ALLOWED` with the reason. `note` is required for reason `OTHER`. An agent asks
    only for its own leads (another's is 404)."""
    record = lead_returns().request(current_principal(), lead_id, body)
    return json_response(record.shown_to(is_staff=True), status=201)


@leads_endpoint(
    "GET", "/leads/<lead_id>/return", roles=STAFF_AND_VENDORS, response_model=LeadReturn, errors=[404]
)
def get_return(lead_id: Annotated[str, Path(pattern=LEAD_ID_PATTERN)]) -> Response[Any]:
    """Get a lead's return

    The lead's vendor sees it without `requested_by` and `decided_by`; another vendor's is 404."""
    principal = current_principal()
    record = lead_returns().get(principal, lead_id)
    return json_response(record.shown_to(is_staff=principal.role in STAFF))


@leads_endpoint(
    "PATCH", "/leads/<lead_id>/return", roles=[Role.ADMIN], response_model=LeadReturn, errors=[404, 409]
)
def decide_return(
    lead_id: Annotated[str, Path(pattern=LEAD_ID_PATTERN)], body: Annotated[ReturnDecision, Body()]
) -> Response[Any]:
    """Approve or reject a lead's return

    Only a pending return (409 `RETURN_ALREADY_DECIDED` otherwise). Approved credits the vendor
    the lead's price (`lead_value`): the lead carries `return_status` and `credit`, and the stats
    count it on the lead's creation day."""
    record = lead_returns().decide(current_principal(), lead_id, body)
    return json_response(record.shown_to(is_staff=True))


# -- the suppression list -------------------------------------------------------------------------
@suppressions_endpoint("GET", "/admin/suppressions", roles=ADMIN, response_model=SuppressionPage)
def list_suppressions(
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Page size")] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=2048, description="From the previous page")] = None,
    kind: Annotated[Kind | None, Query(description="Only emails, or only phones")] = None,
) -> Response[Any]:
    """List the suppression list's entries

    In no particular order, stable from page to page."""
    return json_response(suppression_admin().page(kind, limit, cursor))


@suppressions_endpoint(
    "POST", "/admin/suppressions", roles=ADMIN, response_model=SuppressionEntry, status=201
)
def add_suppression(body: Annotated[SuppressionCreate, Body()]) -> Response[Any]:
    """Add an email or a phone to the suppression list

    Normalised as posting normalises a lead's (case, phone formats). From the moment this
    answers, every post of a lead with that email or phone is refused with 422 `SUPPRESSED`.
    Adding a value already listed changes nothing and answers its entry."""
    entry, _ = suppression_admin().add(current_principal(), body)
    return json_response(entry, status=201)


@suppressions_endpoint(
    "DELETE",
    "/admin/suppressions/<entry_id>",
    roles=ADMIN,
    response_model=None,
    status=204,
    errors=[404],
)
def remove_suppression(entry_id: Annotated[str, Path(pattern=SUPPRESSION_ENTRY_PATTERN)]) -> Response[Any]:
    """Remove an entry from the suppression list"""
    suppression_admin().remove(entry_id)
    return Response(status_code=204, body="")
