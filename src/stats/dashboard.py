"""The executive dashboard (`GET /admin/stats`), computed from day buckets and the agents.

Every rate, ratio and average is the one `shared.measures` defines (docs/stats.md, Definitions):
revenue is lead spend (Σ lead_value of the leads created in the window), credits the spend of those
of them whose return is approved, net spend revenue - credits, sales Σ sale_amount of the leads
closed in it, return on spend sales / net spend, CPA net spend / conversions, and the conversion rate
a cohort rate (of the leads created in the window, the share closed by now), null without leads.
Every `change` compares the window with the one just before it, to the same point when it ends
today (`stats.window`). The forecast is `stats.forecast.forecast` over the daily lead spend of
the `HISTORY_DAYS` complete days up to the window's last complete day, projected over as many
days as the window has.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal

from shared import measures
from shared.buckets import Buckets, Counters, campaign_name, days_ending, grouped, money, summed
from shared.records import Availability
from stats.forecast import HISTORY_DAYS, forecast
from stats.models import (
    Agents,
    CampaignCost,
    Conversion,
    Cpa,
    DashboardStats,
    ForecastRange,
    Funnel,
    Performer,
    PeriodInfo,
    Revenue,
    Sales,
    TrendPoint,
)
from stats.window import Window, summed_to_same_point

ZERO = Decimal(0)
DISPOSITIONS = ("new", "contacted", "qualified", "closed", "lost")
WORKING = (Availability.ONLINE, Availability.BUSY)  # whose open leads count against capacity
TOP_PERFORMERS = 5


@dataclass(frozen=True)
class AgentRecord:
    user_id: str
    name: str
    availability: str
    open_leads: int
    capacity: int


def history_days(window: Window) -> list[str]:
    """The complete days the forecast reads: `HISTORY_DAYS` of them, up to the window's last
    complete day (yesterday when the window ends today), oldest first."""
    return days_ending(window.last_complete_day(), HISTORY_DAYS)


def first_day_read(window: Window) -> str:
    """The first day of totals the dashboard reads: the previous window's or the forecast
    history's, whichever is earlier."""
    history_first = window.last_complete_day() - timedelta(days=HISTORY_DAYS - 1)
    return min(window.previous().first, history_first).isoformat()


def dashboard(buckets: Buckets, window: Window, agents: list[AgentRecord]) -> DashboardStats:
    """The dashboard over `window`, from `buckets` holding at least the days from
    `first_day_read(window)` to the window's last."""
    now = summed(buckets, window.days)
    before = summed_to_same_point(buckets, window.previous())
    return DashboardStats(
        period=PeriodInfo(
            from_=window.first.isoformat(),
            to=window.last.isoformat(),
            days=window.length,
            partial=window.partial,
            elapsed=window.elapsed,
        ),
        revenue=revenue_block(buckets, window, now, before),
        sales=sales_block(now, before),
        cpa=cpa_block(now, before),
        agents=agents_block(now, agents),
        conversion=conversion_block(now, before),
    )


def revenue_block(buckets: Buckets, window: Window, now: Counters, before: Counters) -> Revenue:
    spend = measures.spend(now)
    history = [measures.spend(buckets.get(day, {})) for day in history_days(window)]
    projected = forecast(history, window.length)
    return Revenue(
        total=money(spend),
        change=measures.percent_change(spend, measures.spend(before)),
        trend=[
            TrendPoint(date=day, revenue=money(measures.spend(buckets.get(day, {})))) for day in window.days
        ],
        forecast=money(projected.point),
        forecastRange=ForecastRange(
            low=money(projected.low), high=money(projected.high), method=projected.method
        ),
        returns=measures.returns(now),
        credits=money(measures.credits(now)),
        netSpend=money(measures.net_spend(now)),
    )


def sales_block(now: Counters, before: Counters) -> Sales:
    return_now, return_before = measures.return_on_spend(now), measures.return_on_spend(before)
    return Sales(
        total=money(measures.sales(now)),
        change=measures.percent_change(measures.sales(now), measures.sales(before)),
        returnOnSpend=measures.as_ratio(return_now),
        returnOnSpendChange=measures.percent_change(return_now, return_before),
    )


def cpa_block(now: Counters, before: Counters) -> Cpa:
    cpa = measures.cost_per_acquisition(now)
    return Cpa(
        average=measures.as_money(cpa),
        change=measures.percent_change(cpa, measures.cost_per_acquisition(before)),
        breakdown=campaign_costs(now),
    )


def campaign_costs(now: Counters) -> list[CampaignCost]:
    """Each campaign's leads, spend, conversions, CPA, sales and return on spend, by spend
    (highest first)."""
    breakdown = [
        CampaignCost(
            campaign=campaign_name(name),
            leads=measures.leads(values),
            revenue=money(measures.spend(values)),
            returns=measures.returns(values),
            credits=money(measures.credits(values)),
            netSpend=money(measures.net_spend(values)),
            conversions=measures.conversions(values),
            cpa=measures.as_money(measures.cost_per_acquisition(values)),
            sales=money(measures.sales(values)),
            returnOnSpend=measures.as_ratio(measures.return_on_spend(values)),
            converted=measures.converted(values),
            conversionRate=measures.as_percent(measures.conversion_rate(values)),
        )
        for name, values in grouped(now, "c").items()
    ]
    return sorted(breakdown, key=lambda row: (-row.revenue, row.campaign or ""))


def agents_block(now: Counters, agents: list[AgentRecord]) -> Agents:
    working = [agent for agent in agents if agent.availability in WORKING]
    capacity = sum(agent.capacity for agent in working)
    load = Decimal(sum(agent.open_leads for agent in working))
    return Agents(
        total=len(agents),
        online=sum(1 for agent in agents if agent.availability == Availability.ONLINE),
        utilization=measures.as_percent(load / capacity) if capacity else None,
        topPerformers=top_performers(now, agents),
    )


def top_performers(now: Counters, agents: list[AgentRecord]) -> list[Performer]:
    """The agents who converted in the window, most conversions (then sales) first."""
    names = {agent.user_id: agent.name for agent in agents}
    performers = [
        Performer(
            agent=agent_id,
            name=names.get(agent_id, agent_id),
            conversions=measures.conversions(values),
            sales=money(measures.sales(values)),
            leads=measures.leads(values),
            converted=measures.converted(values),
            conversionRate=measures.as_percent(measures.conversion_rate(values)),
        )
        for agent_id, values in grouped(now, "a").items()
        if measures.conversions(values)
    ]
    performers.sort(key=lambda row: (-row.conversions, -row.sales, row.agent))
    return performers[:TOP_PERFORMERS]


def conversion_block(now: Counters, before: Counters) -> Conversion:
    rate = measures.conversion_rate(now)
    return Conversion(
        leads=measures.leads(now),
        converted=measures.converted(now),
        rate=measures.as_percent(rate),
        change=measures.percent_change(rate, measures.conversion_rate(before)),
        conversions=measures.conversions(now),
        funnel=Funnel(**{name: int(now.get(f"d#{name}", ZERO)) for name in DISPOSITIONS}),
        velocity=measures.as_tenth(measures.velocity(now)),
    )
