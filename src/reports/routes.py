"""Routes of the reports service: /reports/*. Thin: read the input, call the service, answer in
JSON or, with `format=csv`, as a CSV attachment."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from zoneinfo import ZoneInfo

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from aws_lambda_powertools.event_handler.openapi.params import Query
from pydantic import BaseModel

from reports.csv_export import to_csv
from reports.models import (
    AgentReport,
    AgentRow,
    CampaignReport,
    CampaignRow,
    DailyReport,
    DailyRow,
    VendorReport,
    VendorRow,
)
from reports.service import Names, ReportService
from shared import dependencies
from shared.buckets import DayBuckets
from shared.dates import parse_day
from shared.dynamo import Table
from shared.http import endpoint, json_response
from shared.params import day_query
from shared.security import STAFF, Role, current_principal

router = Router()

CSV = "text/csv"
VENDOR_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"
STAFF_AND_VENDORS = (*STAFF, Role.VENDOR)
ROW_MODELS: dict[str, type[BaseModel]] = {
    "daily": DailyRow,
    "vendors": VendorRow,
    "agents": AgentRow,
    "campaigns": CampaignRow,
}

First = Annotated[str | None, day_query("from", "First day (default: 29 days before 'to')")]
Last = Annotated[str | None, day_query("to", "Last day (default today)")]
Vendor = Annotated[
    str | None, Query(pattern=VENDOR_PATTERN, description="Only this vendor (a vendor: its own)")
]
Format = Annotated[Literal["json", "csv"], Query(description="json (default) or csv")]


def report_service() -> ReportService:
    settings = dependencies.get_settings()
    zone = ZoneInfo(settings.business_timezone)
    return ReportService(
        DayBuckets(Table(settings.stats_table)),
        Names(dependencies.vendors_table(), dependencies.users_table()),
        dependencies.query_cache(),
        lambda: datetime.now(UTC).astimezone(zone).date(),
    )


def _answer(kind: str, first: str | None, last: str | None, vendor: str | None, output: str) -> Response[Any]:
    report = report_service().report(
        kind, current_principal(), parse_day(first, "from"), parse_day(last, "to"), vendor
    )
    if output == "json":
        return json_response(report)
    row_model = ROW_MODELS[kind]
    columns = list(row_model.model_fields)
    text = to_csv(columns, [row_model.model_validate(row) for row in report["rows"]])
    name = f"{kind}-{report['from']}-{report['to']}{'-' + report['vendor'] if report['vendor'] else ''}.csv"
    return Response(
        status_code=200,
        content_type=f"{CSV}; charset=utf-8",
        body=text,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@endpoint(
    router,
    "GET",
    "/reports/daily",
    roles=STAFF_AND_VENDORS,
    response_model=DailyReport,
    text_media_types=[CSV],
    errors=[403],
    summary="Per day and vendor: lead count, revenue, average quality, conversions",
    tags=["reports"],
)
def daily_report(
    first: First = None, last: Last = None, vendor: Vendor = None, format: Format = "json"
) -> Response[Any]:
    return _answer("daily", first, last, vendor, format)


@endpoint(
    router,
    "GET",
    "/reports/vendors",
    roles=STAFF_AND_VENDORS,
    response_model=VendorReport,
    text_media_types=[CSV],
    errors=[403],
    summary="Per vendor: leads, revenue, quality, conversions, CPA",
    tags=["reports"],
)
def vendors_report(
    first: First = None, last: Last = None, vendor: Vendor = None, format: Format = "json"
) -> Response[Any]:
    return _answer("vendors", first, last, vendor, format)


@endpoint(
    router,
    "GET",
    "/reports/agents",
    roles=STAFF,
    response_model=AgentReport,
    text_media_types=[CSV],
    summary="Per agent: leads, revenue, conversions, sales",
    tags=["reports"],
)
def agents_report(first: First = None, last: Last = None, format: Format = "json") -> Response[Any]:
    """Agents work every vendor's leads: this report has no vendor filter."""
    return _answer("agents", first, last, None, format)


@endpoint(
    router,
    "GET",
    "/reports/campaigns",
    roles=STAFF,
    response_model=CampaignReport,
    text_media_types=[CSV],
    summary="Per campaign: leads, revenue, conversions, CPA",
    tags=["reports"],
)
def campaigns_report(
    first: First = None, last: Last = None, vendor: Vendor = None, format: Format = "json"
) -> Response[Any]:
    return _answer("campaigns", first, last, vendor, format)
