"""Routes of the stats service: /admin/*."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query

from shared import dependencies
from shared.dynamo import Table
from shared.http import endpoint, json_response
from shared.security import STAFF
from stats.models import DashboardStats
from stats.service import AgentRoster, StatsService
from stats.store import StatsStore

router = Router()


def stats_service() -> StatsService:
    """Cheap to build: the tables and cache it wraps are the process-wide ones."""
    settings = dependencies.get_settings()
    zone = ZoneInfo(settings.business_timezone)
    return StatsService(
        StatsStore(Table(settings.stats_table), zone),
        AgentRoster(dependencies.users_table()),
        dependencies.query_cache(),
        zone,
    )


@endpoint(
    router,
    "GET",
    "/admin/stats",
    roles=STAFF,
    response_model=DashboardStats,
    tags=["stats"],
    summary="Executive dashboard: revenue, cost per acquisition, agents, conversion",
)
def get_stats(
    period: Annotated[Literal["7d", "30d", "90d", "12m"], Query(description="Period ending today")] = "30d",
) -> Response[Any]:
    return json_response(stats_service().dashboard(period))
