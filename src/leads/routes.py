"""Routes of the lead service. Thin: read the input, call the service, return the output."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Path, Query

from leads.models import Disposition, Lead, LeadFilters, LeadPage
from leads.repository import LeadRepository
from leads.service import LeadService, parse_time_bound
from shared import dependencies
from shared.http import endpoint, json_response
from shared.security import ALL_ROLES, current_principal

router = Router()

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
) -> Response[Any]:
    filters = LeadFilters(
        vendor=vendor,
        disposition=disposition,
        campaign=campaign,
        agent=agent,
        created_from=parse_time_bound(created_from, "from", end_of_day=False),
        created_to=parse_time_bound(created_to, "to", end_of_day=True),
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
