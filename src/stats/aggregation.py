"""What one lead contributes to the stats' day buckets.

A bucket is one day (in the business time zone) of counters. A lead counts on the day it was
created (leads, revenue, quality, its current disposition, per campaign, vendor and agent; `won`
once it is closed, for cohort conversion rates; `returns` and `credits`, its price credited back,
once its return is approved, like the spend they take back) and, once closed, on the day it closed
(conversions, days to close, sale amount). A change of a lead is the
difference between what its new and its old state contribute, so applying states in any order
(keeping the newest) and recomputing from the leads table give the same buckets. Test and deleted
leads contribute nothing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from shared.buckets import NO_CAMPAIGN, Buckets

DAY_SECONDS = Decimal(86400)
DAYS_PRECISION = Decimal("0.001")
APPROVED = "approved"  # the return status that credits a lead's price


@dataclass(frozen=True)
class LeadView:
    """The fields of a lead the stats depend on, at one version."""

    vendor_code: str
    created_at: str
    disposition: str
    campaign_source: str | None
    assigned_agent: str | None
    quality_score: int
    lead_value: Decimal
    closed_date: str | None = None
    sale_amount: Decimal | None = None
    return_status: str | None = None
    credit: Decimal | None = None
    is_test: bool = False
    deleted: bool = False

    @classmethod
    def from_values(cls, values: Mapping[str, Any] | None) -> LeadView | None:
        if not values:
            return None
        sale, credit = values.get("sale_amount"), values.get("credit")
        return cls(
            vendor_code=str(values["vendor_code"]),
            campaign_source=values.get("campaign_source") or None,
            assigned_agent=values.get("assigned_agent") or None,
            disposition=str(values["disposition"]),
            lead_value=Decimal(str(values["lead_value"])),
            quality_score=int(values["quality_score"]),
            created_at=str(values["created_at"]),
            closed_date=values.get("closed_date") or None,
            sale_amount=Decimal(str(sale)) if sale is not None else None,
            return_status=str(values["return_status"]) if values.get("return_status") else None,
            credit=Decimal(str(credit)) if credit is not None else None,
            is_test=bool(values.get("is_test", False)),
            deleted=bool(values.get("deleted", False)),
        )

    def to_values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def _moment(iso: str) -> datetime:
    return datetime.fromisoformat(iso.replace("Z", "+00:00"))


def day_of(iso: str, zone: ZoneInfo) -> str:
    return _moment(iso).astimezone(zone).strftime("%Y-%m-%d")


def contribution(view: LeadView | None, zone: ZoneInfo) -> Buckets:
    if view is None or view.is_test or view.deleted:
        return {}
    buckets: Buckets = defaultdict(lambda: defaultdict(Decimal))
    created = buckets[day_of(view.created_at, zone)]
    campaign = view.campaign_source or NO_CAMPAIGN
    # Totals, then the same counters per campaign, vendor, vendor and campaign, and agent
    # ("c#x#leads", "v#V001#revenue", "vc#V001#x#sales"; see `shared.buckets`).
    scopes = ["", f"c#{campaign}#", f"v#{view.vendor_code}#", f"vc#{view.vendor_code}#{campaign}#"]
    if view.assigned_agent:
        scopes.append(f"a#{view.assigned_agent}#")
    for prefix in scopes:
        created[f"{prefix}leads"] += 1
        created[f"{prefix}revenue"] += view.lead_value
    created["quality_sum"] += view.quality_score
    created[f"v#{view.vendor_code}#quality_sum"] += view.quality_score
    created[f"d#{view.disposition}"] += 1
    if view.return_status == APPROVED:
        for prefix in scopes:
            created[f"{prefix}returns"] += 1  # kept apart from revenue: spend is net of credits
            created[f"{prefix}credits"] += view.credit or Decimal(0)
    if view.disposition == "closed" and view.closed_date:
        for prefix in scopes:
            created[f"{prefix}won"] += 1  # the creation day's cohort: closed by now
        closed = buckets[day_of(view.closed_date, zone)]
        days = Decimal((_moment(view.closed_date) - _moment(view.created_at)).total_seconds()) / DAY_SECONDS
        for prefix in scopes:
            closed[f"{prefix}conversions"] += 1
            closed[f"{prefix}sales"] += view.sale_amount or Decimal(0)
        closed["closed_days"] += days.quantize(DAYS_PRECISION)
    return {day: dict(counters) for day, counters in buckets.items()}


def merge(into: Buckets, other: Buckets, sign: int = 1) -> Buckets:
    """Adds `other` (or subtracts it, with sign -1) into `into`, dropping counters that reach 0."""
    for day, counters in other.items():
        target = into.setdefault(day, {})
        for name, value in counters.items():
            total = target.get(name, Decimal(0)) + sign * value
            if total:
                target[name] = total
            else:
                target.pop(name, None)
        if not target:
            into.pop(day)
    return into


def difference(before: LeadView | None, after: LeadView | None, zone: ZoneInfo) -> Buckets:
    """What moving a lead from `before` to `after` adds to the buckets (negative where it takes)."""
    return merge(merge({}, contribution(after, zone)), contribution(before, zone), sign=-1)
