"""The reports service's collaborators, built from the process-wide objects of
`shared.dependencies`. The routes ask for them here; nothing else in the service constructs a
table or a time zone."""

from __future__ import annotations

from datetime import UTC, datetime

from reports.repository import Names
from reports.service import ReportService
from shared import dependencies


def report_service() -> ReportService:
    zone = dependencies.business_zone()
    return ReportService(
        dependencies.day_buckets(),
        Names(dependencies.vendors_table(), dependencies.users_table()),
        dependencies.query_cache(),
        lambda: datetime.now(UTC).astimezone(zone).date(),
    )
