"""The reports service's collaborators, built from the process-wide objects of
`shared.dependencies`. The routes ask for them here; nothing else in the service constructs a
table or a time zone."""

from __future__ import annotations

from reports.repository import Names
from reports.service import ReportService
from shared import dependencies
from shared.dates import Clock


def report_service() -> ReportService:
    return ReportService(
        dependencies.day_buckets(),
        Names(dependencies.vendors_table(), dependencies.users_table()),
        dependencies.query_cache(),
        Clock(dependencies.business_zone()).today,
    )
