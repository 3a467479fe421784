"""Routes of the reports service: /reports/*. Thin: read the input, call the service, answer in
JSON or, with `format=csv`, as a CSV attachment."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal, TypeVar

from aws_lambda_powertools.event_handler import Response
from aws_lambda_powertools.event_handler.api_gateway import Router
from pydantic import BaseModel

from reports.dependencies import report_service
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
from shared.csv_export import to_csv
from shared.dates import parse_day
from shared.http import CSV, endpoint, json_response
from shared.params import Query, day_query
from shared.security import STAFF, STAFF_AND_VENDORS, Role, current_principal

F = TypeVar("F", bound=Callable[..., Any])

router = Router()

VENDOR_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"


@dataclass(frozen=True)
class ReportKind:
    report: type[BaseModel]  # the JSON answer
    row: type[BaseModel]  # one row, and one line of the CSV answer


REPORTS = {
    "daily": ReportKind(DailyReport, DailyRow),
    "vendors": ReportKind(VendorReport, VendorRow),
    "agents": ReportKind(AgentReport, AgentRow),
    "campaigns": ReportKind(CampaignReport, CampaignRow),
}

First = Annotated[str | None, day_query("from", "First day (default: 29 days before 'to')")]
Last = Annotated[str | None, day_query("to", "Last day (default today)")]
Vendor = Annotated[
    str | None, Query(pattern=VENDOR_PATTERN, description="Only this vendor (a vendor: its own)")
]
Format = Annotated[Literal["json", "csv"], Query(description="json (default) or csv")]


def report_endpoint(kind: str, roles: Iterable[Role], errors: Iterable[int] = ()) -> Callable[[F], F]:
    """GET /reports/<kind>, answered in JSON or as CSV text."""
    return endpoint(
        router,
        "GET",
        f"/reports/{kind}",
        roles=roles,
        response_model=REPORTS[kind].report,
        text_media_types=[CSV],
        errors=errors,
        tags=["reports"],
    )


def _answer(kind: str, first: str | None, last: str | None, vendor: str | None, output: str) -> Response[Any]:
    report = report_service().report(
        kind, current_principal(), parse_day(first, "from"), parse_day(last, "to"), vendor
    )
    if output == "json":
        return json_response(report)
    row_model = REPORTS[kind].row
    columns = list(row_model.model_fields)
    text = to_csv(columns, [row_model.model_validate(row) for row in report["rows"]])
    name = f"{kind}-{report['from']}-{report['to']}{'-' + report['vendor'] if report['vendor'] else ''}.csv"
    return Response(
        status_code=200,
        content_type=f"{CSV}; charset=utf-8",
        body=text,
        headers={"Content-Disposition": f'attachment; filename="{name}"'},
    )


@report_endpoint("daily", roles=STAFF_AND_VENDORS, errors=[403])
def daily_report(
    first: First = None, last: Last = None, vendor: Vendor = None, format: Format = "json"
) -> Response[Any]:
    """Per day and vendor: leads, revenue, quality, conversions, sales and their rates"""
    return _answer("daily", first, last, vendor, format)


@report_endpoint("vendors", roles=STAFF_AND_VENDORS, errors=[403])
def vendors_report(
    first: First = None, last: Last = None, vendor: Vendor = None, format: Format = "json"
) -> Response[Any]:
    """Per vendor: leads, revenue, quality, conversions, conversion rate, CPA, sales, return on spend"""
    return _answer("vendors", first, last, vendor, format)


@report_endpoint("agents", roles=STAFF)
def agents_report(first: First = None, last: Last = None, format: Format = "json") -> Response[Any]:
    """Per agent: leads, revenue, conversions, conversion rate, CPA, sales, return on spend"""
    # Agents work every vendor's leads: this report has no vendor filter.
    return _answer("agents", first, last, None, format)


@report_endpoint("campaigns", roles=STAFF)
def campaigns_report(
    first: First = None, last: Last = None, vendor: Vendor = None, format: Format = "json"
) -> Response[Any]:
    """Per campaign: leads, revenue, conversions, conversion rate, CPA, sales, return on spend"""
    return _answer("campaigns", first, last, vendor, format)
