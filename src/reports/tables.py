"""The rows of each report, computed from the day buckets of the requested days (`shared.buckets`).

Every report's rows add up to its totals, and without a vendor filter the totals are the
dashboard's for the same days: revenue and leads by creation day, conversions and sales by close
day. Campaigns and agents include a row for leads without one (campaign or agent null).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import ROUND_HALF_UP, Decimal

from reports.models import AgentRow, CampaignRow, DailyRow, Totals, VendorRow
from shared.buckets import (
    Buckets,
    Counters,
    campaign_name,
    grouped,
    money,
    percent,
    scoped,
    summed,
    vendor_campaigns,
)

TENTH = Decimal("0.1")
ZERO = Decimal(0)


def _cpa(measures: Counters) -> Decimal | None:
    conversions = measures.get("conversions", ZERO)
    return money(measures.get("revenue", ZERO) / conversions) if conversions else None


def _quality(measures: Counters) -> Decimal | None:
    leads = measures.get("leads", ZERO)
    return (
        (measures.get("quality_sum", ZERO) / leads).quantize(TENTH, rounding=ROUND_HALF_UP) if leads else None
    )


def totals(buckets: Buckets, days: list[str], vendor: str | None) -> Totals:
    window = summed(buckets, days)
    measures = scoped(window, "v", vendor) if vendor else window
    return Totals(
        leads=int(measures.get("leads", ZERO)),
        revenue=money(measures.get("revenue", ZERO)),
        conversions=int(measures.get("conversions", ZERO)),
        sales=money(measures.get("sales", ZERO)),
    )


def daily_rows(buckets: Buckets, days: list[str], vendor: str | None) -> list[DailyRow]:
    """One row per day and vendor that had leads or conversions (the seed's `daily_stats`)."""
    rows = []
    for day in days:
        for code, measures in sorted(grouped(buckets.get(day, {}), "v").items()):
            if vendor and code != vendor:
                continue
            rows.append(
                DailyRow(
                    date=day,
                    vendor_code=code,
                    lead_count=int(measures.get("leads", ZERO)),
                    revenue=money(measures.get("revenue", ZERO)),
                    avg_quality=_quality(measures),
                    conversions=int(measures.get("conversions", ZERO)),
                    sales=money(measures.get("sales", ZERO)),
                )
            )
    return rows


def vendor_rows(
    buckets: Buckets, days: list[str], vendor: str | None, names: Mapping[str, str]
) -> list[VendorRow]:
    rows = []
    for code, measures in sorted(grouped(summed(buckets, days), "v").items()):
        if vendor and code != vendor:
            continue
        leads = measures.get("leads", ZERO)
        rows.append(
            VendorRow(
                vendor_code=code,
                name=names.get(code),
                leads=int(leads),
                revenue=money(measures.get("revenue", ZERO)),
                avg_quality=_quality(measures),
                conversions=int(measures.get("conversions", ZERO)),
                conversion_rate=percent(measures.get("conversions", ZERO), leads),
                cpa=_cpa(measures),
                sales=money(measures.get("sales", ZERO)),
            )
        )
    return rows


def campaign_rows(buckets: Buckets, days: list[str], vendor: str | None) -> list[CampaignRow]:
    window = summed(buckets, days)
    campaigns = vendor_campaigns(window, vendor) if vendor else grouped(window, "c")
    rows = [
        CampaignRow(
            campaign=campaign_name(name),
            leads=int(measures.get("leads", ZERO)),
            revenue=money(measures.get("revenue", ZERO)),
            conversions=int(measures.get("conversions", ZERO)),
            conversion_rate=percent(measures.get("conversions", ZERO), measures.get("leads", ZERO)),
            cpa=_cpa(measures),
            sales=money(measures.get("sales", ZERO)),
        )
        for name, measures in campaigns.items()
    ]
    return sorted(rows, key=lambda row: (-row.revenue, row.campaign or ""))


def agent_rows(buckets: Buckets, days: list[str], names: Mapping[str, str]) -> list[AgentRow]:
    window = summed(buckets, days)
    per_agent = grouped(window, "a")
    unassigned: Counters = {
        name: window.get(name, ZERO)
        - sum((measures.get(name, ZERO) for measures in per_agent.values()), ZERO)
        for name in ("leads", "revenue", "conversions", "sales")
    }
    entries: list[tuple[str | None, Counters]] = sorted(per_agent.items())
    if any(unassigned.values()):
        entries.append((None, unassigned))
    return [
        AgentRow(
            agent=agent,
            name=names.get(agent) if agent else None,
            leads=int(measures.get("leads", ZERO)),
            revenue=money(measures.get("revenue", ZERO)),
            conversions=int(measures.get("conversions", ZERO)),
            conversion_rate=percent(measures.get("conversions", ZERO), measures.get("leads", ZERO)),
            sales=money(measures.get("sales", ZERO)),
        )
        for agent, measures in entries
    ]
