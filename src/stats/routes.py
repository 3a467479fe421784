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
from shared.security import STAFF, Role
from stats.audit_trail import AuditQuery
from stats.dashboard import PeriodName
from stats.dependencies import audit_trail, stats_service
from stats.models import Analytics, AuditPage, DashboardStats

router = Router()
stats_endpoint = partial(endpoint, router, tags=["stats"])
StatsPeriod = Annotated[PeriodName, Query(description="Period ending today")]
ChartPeriod = Annotated[PeriodName, Query(description="7d and 30d by day, 90d by week, 12m by month")]


@stats_endpoint("GET", "/admin/stats", roles=STAFF, response_model=DashboardStats)
def get_stats(period: StatsPeriod = "30d") -> Response[Any]:
    """Executive dashboard: revenue, cost per acquisition, agents, conversion"""
    return json_response(stats_service().dashboard(period))


@stats_endpoint("GET", "/admin/analytics", roles=STAFF, response_model=Analytics)
def get_analytics(period: ChartPeriod = "30d") -> Response[Any]:
    """Leads, revenue and conversions over time, with insights"""
    return json_response(stats_service().analytics(period))


@stats_endpoint("GET", "/admin/audit", roles=[Role.ADMIN], response_model=AuditPage)
def get_audit(
    user: Annotated[
        str | None, Query(pattern=r"^[A-Za-z0-9_.:@-]{1,64}$", description="Only this user's")
    ] = None,
    first: Annotated[str | None, day_query("from", "First day")] = None,
    last: Annotated[str | None, day_query("to", "Last day (default today)")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
) -> Response[Any]:
    """Audit records of mutating requests, newest first"""
    today = datetime.now(UTC).date()
    query = AuditQuery.of(user, parse_day(first, "from"), parse_day(last, "to"), today)
    return json_response(audit_trail().page(query, limit, cursor))
