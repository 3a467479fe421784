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

from shared.buckets import Buckets, Counters, grouped, summed
from stats.aggregation import NO_CAMPAIGN
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

CENT = Decimal("0.01")
TENTH = Decimal("0.1")
PERIOD_DAYS = {"7d": 7, "30d": 30, "90d": 90, "12m": 365}
DISPOSITIONS = ("new", "contacted", "qualified", "closed", "lost")
TOP_PERFORMERS = 5


@dataclass(frozen=True)
class Period:
    first: date
    last: date

    @classmethod
    def ending(cls, last: date, days: int) -> Period:
        return cls(last - timedelta(days=days - 1), last)

    @property
    def days(self) -> list[str]:
        return [
            (self.first + timedelta(days=n)).isoformat() for n in range((self.last - self.first).days + 1)
        ]

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


def money(value: Decimal) -> Decimal:
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def ratio(part: Decimal, whole: Decimal) -> Decimal | None:
    return part / whole if whole else None


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
    zero = Decimal(0)
    now, before = totals(buckets, period), totals(buckets, period.previous())
    revenue, previous_revenue = now.get("revenue", zero), before.get("revenue", zero)
    leads, conversions = now.get("leads", zero), now.get("conversions", zero)
    cpa, previous_cpa = ratio(revenue, conversions), ratio(previous_revenue, before.get("conversions", zero))
    rate = ratio(conversions, leads)
    previous_rate = ratio(before.get("conversions", zero), before.get("leads", zero))
    daily = [buckets.get(day, {}).get("revenue", zero) for day in period.days]

    breakdown = []
    for name, values in grouped(now, "c").items():
        campaign_cpa = ratio(values.get("revenue", zero), values.get("conversions", zero))
        breakdown.append(
            CampaignCost(
                campaign=None if name == NO_CAMPAIGN else name,
                leads=int(values.get("leads", 0)),
                revenue=money(values.get("revenue", zero)),
                conversions=int(values.get("conversions", 0)),
                cpa=money(campaign_cpa) if campaign_cpa is not None else None,
            )
        )
    breakdown.sort(key=lambda row: (-row.revenue, row.campaign or ""))

    names = {agent.user_id: agent.name for agent in agents}
    performers = [
        Performer(
            agent=agent_id,
            name=names.get(agent_id, agent_id),
            conversions=int(values.get("conversions", 0)),
            sales=money(values.get("sales", zero)),
            leads=int(values.get("leads", 0)),
        )
        for agent_id, values in grouped(now, "a").items()
        if values.get("conversions")
    ]
    performers.sort(key=lambda row: (-row.conversions, -row.sales, row.agent))

    working = [agent for agent in agents if agent.availability in ("online", "busy")]
    capacity = sum(agent.capacity for agent in working)
    load = Decimal(sum(agent.open_leads for agent in working))
    velocity = now.get("closed_days")
    return DashboardStats(
        period=PeriodInfo(from_=period.first.isoformat(), to=period.last.isoformat(), days=len(period.days)),
        revenue=Revenue(
            total=money(revenue),
            change=percent_change(revenue, previous_revenue),
            trend=[
                TrendPoint(date=day, revenue=money(value))
                for day, value in zip(period.days, daily, strict=True)
            ],
            forecast=least_squares_forecast(daily, len(period.days)),
        ),
        cpa=Cpa(
            average=money(cpa) if cpa is not None else None,
            change=percent_change(cpa, previous_cpa),
            breakdown=breakdown,
        ),
        agents=Agents(
            total=len(agents),
            online=sum(1 for agent in agents if agent.availability == "online"),
            utilization=(load / capacity * 100).quantize(TENTH) if capacity else zero,
            topPerformers=performers[:TOP_PERFORMERS],
        ),
        conversion=Conversion(
            leads=int(leads),
            conversions=int(conversions),
            rate=(rate * 100).quantize(TENTH) if rate is not None else zero,
            change=percent_change(rate, previous_rate),
            funnel=Funnel(**{name: int(now.get(f"d#{name}", 0)) for name in DISPOSITIONS}),
            velocity=(velocity / conversions).quantize(TENTH)
            if conversions and velocity is not None
            else None,
        ),
    )
