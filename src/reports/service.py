"""Report use cases: the day range, the caller's vendor, one read of day buckets (plus names),
through the query cache."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from reports.models import AgentReport, CampaignReport, DailyReport, VendorReport
from reports.repository import Names
from reports.tables import agent_rows, campaign_rows, daily_rows, totals, vendor_rows
from shared.buckets import AGENTS, CAMPAIGNS, TOTALS, VENDORS, DayBuckets
from shared.cache import Namespace, QueryCache
from shared.dates import DayRange
from shared.errors import Forbidden
from shared.security import Principal

# The bucket partitions each report reads (see `shared.buckets`).
PARTITIONS_READ = {
    "daily": (TOTALS, VENDORS),
    "vendors": (TOTALS, VENDORS),
    "campaigns": (TOTALS, CAMPAIGNS, VENDORS),
    "agents": (TOTALS, AGENTS),
}


def report_vendor(principal: Principal, requested: str | None) -> str | None:
    """The vendor a report is about: a vendor's own, whatever it asks; staff choose (or all)."""
    own = principal.lead_scope.vendor_code
    if own is None:
        return requested
    if requested not in (None, own):
        raise Forbidden(f"A vendor reads only its own report ({own})")
    return own


class ReportService:
    def __init__(
        self, buckets: DayBuckets, names: Names, cache: QueryCache, today: Callable[[], date]
    ) -> None:
        self._buckets = buckets
        self._names = names
        self._cache = cache
        self._today = today

    def report(
        self, kind: str, principal: Principal, first: date | None, last: date | None, vendor: str | None
    ) -> dict[str, Any]:
        span = DayRange.of(first, last, self._today())
        vendor = report_vendor(principal, vendor)

        def load() -> dict[str, Any]:
            buckets = self._buckets.between(
                span.first.isoformat(), span.last.isoformat(), PARTITIONS_READ[kind]
            )
            days = span.days
            header = {
                "report": kind,
                "from": span.first.isoformat(),
                "to": span.last.isoformat(),
                "vendor": vendor,
                "totals": totals(buckets, days, vendor),
            }
            if kind == "daily":
                report: Any = DailyReport(**header, rows=daily_rows(buckets, days, vendor))
            elif kind == "vendors":
                report = VendorReport(
                    **header, rows=vendor_rows(buckets, days, vendor, self._names.vendors())
                )
            elif kind == "campaigns":
                report = CampaignReport(**header, rows=campaign_rows(buckets, days, vendor))
            else:
                report = AgentReport(**header, rows=agent_rows(buckets, days, self._names.agents()))
            return dict(report.model_dump(mode="python", by_alias=True))

        params = {"kind": kind, "from": span.first.isoformat(), "to": span.last.isoformat(), "vendor": vendor}
        return self._cache.get_or_load(Namespace.REPORTS, principal.lead_scope.cache_key, params, load)
