"""The rows of each report, computed from the day buckets of the requested days (`shared.buckets`).

Every report's rows add up to its totals, and without a vendor filter the totals are the
dashboard's for the same days: leads, revenue, returns, credits and `converted` by creation day
(net spend = revenue - credits), conversions and
sales by close day. Campaigns and agents include a row for leads without one (campaign or agent
null). Every rate and average is `shared.measures`' (null without a denominator).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from reports.models import AgentRow, CampaignRow, DailyRow, Totals, VendorRow
from shared import measures as measure
from shared.buckets import (
    Buckets,
    Counters,
    campaign_name,
    grouped,
    money,
    scoped,
    summed,
    vendor_campaigns,
)

ZERO = Decimal(0)
# The counters a row of leads assigned to nobody is the remainder of (totals minus every agent).
UNASSIGNED_MEASURES = ("leads", "revenue", "returns", "credits", "won", "conversions", "sales")


def measured(counters: Counters) -> dict[str, Any]:
    """The fields every row and the totals share, from one scope's counters over the days."""
    return {
        "revenue": money(measure.spend(counters)),
        "returns": measure.returns(counters),
        "credits": money(measure.credits(counters)),
        "net_spend": money(measure.net_spend(counters)),
        "conversions": measure.conversions(counters),
        "converted": measure.converted(counters),
        "conversion_rate": measure.as_percent(measure.conversion_rate(counters)),
        "cpa": measure.as_money(measure.cost_per_acquisition(counters)),
        "sales": money(measure.sales(counters)),
        "return_on_spend": measure.as_ratio(measure.return_on_spend(counters)),
    }


def _quality(counters: Counters) -> Decimal | None:
    return measure.as_tenth(measure.average_quality(counters))


def totals(buckets: Buckets, days: list[str], vendor: str | None) -> Totals:
    window = summed(buckets, days)
    counters = scoped(window, "v", vendor) if vendor else window
    return Totals(leads=measure.leads(counters), **measured(counters))


def daily_rows(buckets: Buckets, days: list[str], vendor: str | None) -> list[DailyRow]:
    """One row per day and vendor that had leads or conversions (the seed's `daily_stats`); the
    day's cohort is the leads created that day."""
    rows = []
    for day in days:
        for code, counters in sorted(grouped(buckets.get(day, {}), "v").items()):
            if vendor and code != vendor:
                continue
            rows.append(
                DailyRow(
                    date=day,
                    vendor_code=code,
                    lead_count=measure.leads(counters),
                    avg_quality=_quality(counters),
                    **measured(counters),
                )
            )
    return rows


def vendor_rows(
    buckets: Buckets, days: list[str], vendor: str | None, names: Mapping[str, str]
) -> list[VendorRow]:
    return [
        VendorRow(
            vendor_code=code,
            name=names.get(code),
            leads=measure.leads(counters),
            avg_quality=_quality(counters),
            **measured(counters),
        )
        for code, counters in sorted(grouped(summed(buckets, days), "v").items())
        if not vendor or code == vendor
    ]


def campaign_rows(buckets: Buckets, days: list[str], vendor: str | None) -> list[CampaignRow]:
    window = summed(buckets, days)
    campaigns = vendor_campaigns(window, vendor) if vendor else grouped(window, "c")
    rows = [
        CampaignRow(campaign=campaign_name(name), leads=measure.leads(counters), **measured(counters))
        for name, counters in campaigns.items()
    ]
    return sorted(rows, key=lambda row: (-row.revenue, row.campaign or ""))


def agent_rows(buckets: Buckets, days: list[str], names: Mapping[str, str]) -> list[AgentRow]:
    window = summed(buckets, days)
    per_agent = grouped(window, "a")
    unassigned: Counters = {
        name: window.get(name, ZERO)
        - sum((counters.get(name, ZERO) for counters in per_agent.values()), ZERO)
        for name in UNASSIGNED_MEASURES
    }
    entries: list[tuple[str | None, Counters]] = sorted(per_agent.items())
    if any(unassigned.values()):
        entries.append((None, unassigned))
    return [
        AgentRow(
            agent=agent,
            name=names.get(agent) if agent else None,
            leads=measure.leads(counters),
            **measured(counters),
        )
        for agent, counters in entries
    ]
