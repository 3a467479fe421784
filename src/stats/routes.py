"""Routes of the stats service: /admin/*."""

from __future__ import annotations

from datetime import UTC, datetime
from functools import partial
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router

from shared.dates import parse_day
from shared.http import endpoint, json_response
from shared.params import Query, day_query
from shared.records import USER_ID_PATTERN
from shared.security import STAFF, Role
from stats.audit_trail import AuditQuery
from stats.dependencies import audit_trail, stats_service
from stats.models import Analytics, AuditPage, DashboardStats
from stats.window import PeriodName

router = Router()
stats_endpoint = partial(endpoint, router, tags=["stats"])
VENDOR_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"  # a vendor code, as the reports take it
StatsPeriod = Annotated[
    PeriodName | None, Query(description="Period ending today (default 30d); not with from/to")
]
ChartPeriod = Annotated[
    PeriodName | None,
    Query(description="7d and 30d by day, 90d by week, 12m by month (default 30d); not with from/to"),
]
First = Annotated[str | None, day_query("from", "First day (default: 29 days before 'to'); not with period")]
Last = Annotated[
    str | None, day_query("to", "Last day, at most 400 days after 'from' and not after today (default today)")
]
Vendor = Annotated[
    str | None,
    Query(pattern=VENDOR_PATTERN, description="Only this vendor's series (an unknown vendor has none)"),
]


@stats_endpoint("GET", "/admin/stats", roles=STAFF, response_model=DashboardStats)
def get_stats(period: StatsPeriod = None, first: First = None, last: Last = None) -> Response[Any]:
    """Executive dashboard: lead spend, sales and return on spend, cost per acquisition, agents, conversion

    Definitions in docs/stats.md: every rate over a zero denominator is null; changes compare
    like for like when the period ends today."""
    return json_response(stats_service().dashboard(period, parse_day(first, "from"), parse_day(last, "to")))


@stats_endpoint("GET", "/admin/analytics", roles=STAFF, response_model=Analytics)
def get_analytics(
    period: ChartPeriod = None, first: First = None, last: Last = None, vendor: Vendor = None
) -> Response[Any]:
    """Leads, lead spend, conversions and sales over time, with insights

    A from/to range up to 31 days is shown by day, up to 180 by ISO week, longer by month."""
    return json_response(
        stats_service().analytics(period, parse_day(first, "from"), parse_day(last, "to"), vendor)
    )


@stats_endpoint("GET", "/admin/audit", roles=[Role.ADMIN], response_model=AuditPage)
def get_audit(
    user: Annotated[str | None, Query(pattern=USER_ID_PATTERN, description="Only this user's")] = None,
    first: Annotated[str | None, day_query("from", "First day")] = None,
    last: Annotated[str | None, day_query("to", "Last day (default today)")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> Response[Any]:
    """Audit records of mutating requests, newest first"""
    today = datetime.now(UTC).date()
    query = AuditQuery.of(user, parse_day(first, "from"), parse_day(last, "to"), today)
    return json_response(audit_trail().page(query, limit, cursor))
