"""The executive dashboard (`GET /admin/stats`), computed from day buckets and the agents.

Definitions (SPEC §3): revenue = Σ lead_value of leads created in the period; conversions = leads
closed in the period; CPA = revenue / conversions; conversion rate = conversions / leads;
velocity = mean days from creation to close of the leads closed in the period; every `change` is
the percent change against the previous period of equal length (null when that period had none).
The forecast is an ordinary least-squares line through the period's daily revenue, summed over the
next period of the same length (never below zero).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from shared.buckets import Buckets, Counters, campaign_name, grouped, money, summed
from shared.dates import DayRange
from shared.records import Availability
from stats.models import (
    Agents,
    CampaignCost,
    Conversion,
    Cpa,
    DashboardStats,
    Funnel,
    Performer,
    PeriodInfo,
    Revenue,
    TrendPoint,
)

TENTH = Decimal("0.1")
ZERO = Decimal(0)
PeriodName = Literal["7d", "30d", "90d", "12m"]
PERIOD_DAYS = {"7d": 7, "30d": 30, "90d": 90, "12m": 365}
DISPOSITIONS = ("new", "contacted", "qualified", "closed", "lost")
WORKING = (Availability.ONLINE, Availability.BUSY)  # whose open leads count against capacity
TOP_PERFORMERS = 5


class Period(DayRange):
    """The days a dashboard covers, compared with as many days just before them."""

    @classmethod
    def ending(cls, last: date, days: int) -> Period:
        return cls(last - timedelta(days=days - 1), last)

    def previous(self) -> Period:
        length = (self.last - self.first).days + 1
        return Period(self.first - timedelta(days=length), self.first - timedelta(days=1))


@dataclass(frozen=True)
class AgentRecord:
    user_id: str
    name: str
    availability: str
    open_leads: int
    capacity: int


def ratio(part: Decimal, whole: Decimal) -> Decimal | None:
    return part / whole if whole else None


def cost_per_acquisition(measures: Counters) -> Decimal | None:
    return ratio(measures.get("revenue", ZERO), measures.get("conversions", ZERO))


def conversion_rate(measures: Counters) -> Decimal | None:
    return ratio(measures.get("conversions", ZERO), measures.get("leads", ZERO))


def percent_change(current: Decimal | None, previous: Decimal | None) -> Decimal | None:
    if current is None or not previous:
        return None
    return ((current - previous) / previous * 100).quantize(TENTH, rounding=ROUND_HALF_UP)


def totals(buckets: Buckets, period: Period) -> Counters:
    return summed(buckets, period.days)


def least_squares_forecast(series: list[Decimal], horizon: int) -> Decimal:
    """Σ of a least-squares line through `series` over the next `horizon` points, at least 0."""
    n = len(series)
    if n == 0:
        return Decimal(0)
    zero = Decimal(0)
    xs = [Decimal(x) for x in range(n)]
    mean_x, mean_y = sum(xs, zero) / n, sum(series, zero) / n
    spread = sum(((x - mean_x) ** 2 for x in xs), zero)
    covariance = sum(((x - mean_x) * (y - mean_y) for x, y in zip(xs, series, strict=True)), zero)
    slope = covariance / spread if spread else zero
    intercept = mean_y - slope * mean_x
    projected = sum((intercept + slope * Decimal(n + step) for step in range(horizon)), zero)
    return money(max(zero, projected))


def dashboard(buckets: Buckets, period: Period, agents: list[AgentRecord]) -> DashboardStats:
    now, before = totals(buckets, period), totals(buckets, period.previous())
    return DashboardStats(
        period=PeriodInfo(from_=period.first.isoformat(), to=period.last.isoformat(), days=len(period.days)),
        revenue=revenue_block(buckets, period, now, before),
        cpa=cpa_block(now, before),
        agents=agents_block(now, agents),
        conversion=conversion_block(now, before),
    )


def revenue_block(buckets: Buckets, period: Period, now: Counters, before: Counters) -> Revenue:
    revenue = now.get("revenue", ZERO)
    daily = [buckets.get(day, {}).get("revenue", ZERO) for day in period.days]
    return Revenue(
        total=money(revenue),
        change=percent_change(revenue, before.get("revenue", ZERO)),
        trend=[
            TrendPoint(date=day, revenue=money(value)) for day, value in zip(period.days, daily, strict=True)
        ],
        forecast=least_squares_forecast(daily, len(period.days)),
    )


def cpa_block(now: Counters, before: Counters) -> Cpa:
    cpa = cost_per_acquisition(now)
    return Cpa(
        average=money(cpa) if cpa is not None else None,
        change=percent_change(cpa, cost_per_acquisition(before)),
        breakdown=campaign_costs(now),
    )


def campaign_costs(now: Counters) -> list[CampaignCost]:
    """Each campaign's leads, revenue, conversions and CPA, by revenue (highest first)."""
    breakdown = []
    for name, values in grouped(now, "c").items():
        cpa = cost_per_acquisition(values)
        breakdown.append(
            CampaignCost(
                campaign=campaign_name(name),
                leads=int(values.get("leads", 0)),
                revenue=money(values.get("revenue", ZERO)),
                conversions=int(values.get("conversions", 0)),
                cpa=money(cpa) if cpa is not None else None,
            )
        )
    return sorted(breakdown, key=lambda row: (-row.revenue, row.campaign or ""))


def agents_block(now: Counters, agents: list[AgentRecord]) -> Agents:
    working = [agent for agent in agents if agent.availability in WORKING]
    capacity = sum(agent.capacity for agent in working)
    load = Decimal(sum(agent.open_leads for agent in working))
    return Agents(
        total=len(agents),
        online=sum(1 for agent in agents if agent.availability == Availability.ONLINE),
        utilization=(load / capacity * 100).quantize(TENTH) if capacity else ZERO,
        topPerformers=top_performers(now, agents),
    )


def top_performers(now: Counters, agents: list[AgentRecord]) -> list[Performer]:
    """The agents who converted in the period, most conversions (then sales) first."""
    names = {agent.user_id: agent.name for agent in agents}
    performers = [
        Performer(
            agent=agent_id,
            name=names.get(agent_id, agent_id),
            conversions=int(values.get("conversions", 0)),
            sales=money(values.get("sales", ZERO)),
            leads=int(values.get("leads", 0)),
        )
        for agent_id, values in grouped(now, "a").items()
        if values.get("conversions")
    ]
    performers.sort(key=lambda row: (-row.conversions, -row.sales, row.agent))
    return performers[:TOP_PERFORMERS]


def conversion_block(now: Counters, before: Counters) -> Conversion:
    leads, conversions = now.get("leads", ZERO), now.get("conversions", ZERO)
    rate = conversion_rate(now)
    velocity = now.get("closed_days")
    return Conversion(
        leads=int(leads),
        conversions=int(conversions),
        rate=(rate * 100).quantize(TENTH) if rate is not None else ZERO,
        change=percent_change(rate, conversion_rate(before)),
        funnel=Funnel(**{name: int(now.get(f"d#{name}", 0)) for name in DISPOSITIONS}),
        velocity=(velocity / conversions).quantize(TENTH) if conversions and velocity is not None else None,
    )
