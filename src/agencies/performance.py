"""An agency's performance block, grade and insights, computed from the stats day buckets.

Windows (business days ending today): `leads`, `converted`, `conversionRate`, `revenue`,
`returns`, `credits`, `netSpend` (revenue less credits), `sales`, `returnOnSpend`, `avgCPA`,
`topCampaign` and `campaignROI` cover the last 90 days; `leadsThisMonth` the calendar month so
far; `trend` the last 30 days against the 30 before. Every
agency is computed from the same one read of 90 day buckets. Every rate and average is
`shared.measures`' (the conversion rate is the cohort rate, null without leads). The grade and
insight rules are in docs/agencies.md.
"""

from __future__ import annotations

from calendar import monthrange
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from agencies.models import Insights, Performance, Trend
from shared import measures as measure
from shared.buckets import (
    NO_CAMPAIGN,
    Buckets,
    Counters,
    campaign_name,
    days_ending,
    money,
    scoped,
    summed,
    vendor_campaigns,
)

WINDOW_DAYS = 90
TREND_DAYS = 30
TENTH = Decimal("0.1")
ZERO = Decimal(0)

# Grade: points per signal (docs/agencies.md).
STRONG_CONVERSION = Decimal("1.10")  # the agency's rate against the rate of all agencies
WEAK_CONVERSION = Decimal("0.90")
ON_PACE = Decimal("1.00")  # leads this month against the goal prorated to today
BEHIND_PACE = Decimal("0.75")
HIGH_QUALITY = Decimal(7)
LOW_QUALITY = Decimal(5)
TREND_THRESHOLD = Decimal(10)  # percent change of leads that counts as up or down
GRADES = ((5, "A"), (4, "B"), (3, "C"), (2, "D"), (0, "F"))


@dataclass(frozen=True)
class Window:
    """The days each measure covers, ending `today`."""

    today: date

    @property
    def days(self) -> list[str]:
        return days_ending(self.today, WINDOW_DAYS)

    @property
    def month(self) -> list[str]:
        return days_ending(self.today, self.today.day)

    @property
    def recent(self) -> list[str]:
        return days_ending(self.today, TREND_DAYS)

    @property
    def earlier(self) -> list[str]:
        return self.days[-2 * TREND_DAYS : -TREND_DAYS]

    @property
    def month_elapsed(self) -> Decimal:
        """The share of the month gone by at the end of today."""
        return Decimal(self.today.day) / monthrange(self.today.year, self.today.month)[1]


@dataclass(frozen=True)
class Signals:
    """The numbers the grade and the insights are ruled on."""

    leads: int
    month_leads: int
    conversion_rate: Decimal | None  # cohort rates (converted / leads), fractions, not percent
    overall_rate: Decimal | None
    pace: Decimal | None  # leads this month / prorated goal
    average_quality: Decimal | None
    trend_change: Decimal | None  # percent
    top_campaign: str | None
    top_campaign_roi: Decimal | None  # percent
    weakest_campaign: str | None  # lowest ROI, when it loses money
    weakest_campaign_roi: Decimal | None


def campaign_roi(counters: Counters) -> Decimal | None:
    """(sales - spend) / spend in percent, to one decimal: the return on spend less the spend
    itself, (return_on_spend - 1) * 100. None without spend."""
    returned = measure.return_on_spend(counters)
    if returned is None:
        return None
    return ((returned - 1) * 100).quantize(TENTH, rounding=ROUND_HALF_UP)


def signals(buckets: Buckets, vendor_code: str, monthly_goal: int, window: Window) -> Signals:
    totals = summed(buckets, window.days)
    own = scoped(totals, "v", vendor_code)
    month_leads = measure.leads(scoped(summed(buckets, window.month), "v", vendor_code))
    recent = measure.leads(scoped(summed(buckets, window.recent), "v", vendor_code))
    earlier = measure.leads(scoped(summed(buckets, window.earlier), "v", vendor_code))
    campaigns = vendor_campaigns(totals, vendor_code)
    top = min(campaigns.items(), key=lambda kv: (-kv[1].get("leads", ZERO), kv[0]), default=None)
    losing = [
        (name, roi)
        for name, measures in campaigns.items()
        if (roi := campaign_roi(measures)) is not None and roi < 0
    ]
    weakest = min(losing, key=lambda pair: (pair[1], pair[0]), default=None)
    prorated = Decimal(monthly_goal) * window.month_elapsed
    return Signals(
        leads=measure.leads(own),
        month_leads=month_leads,
        conversion_rate=measure.conversion_rate(own),
        overall_rate=measure.conversion_rate(totals),
        pace=month_leads / prorated if prorated else None,
        average_quality=measure.as_tenth(measure.average_quality(own)),
        trend_change=measure.percent_change(Decimal(recent), Decimal(earlier)),
        top_campaign=campaign_name(top[0]) if top else None,
        top_campaign_roi=campaign_roi(top[1]) if top else None,
        weakest_campaign=campaign_name(weakest[0]) if weakest else None,
        weakest_campaign_roi=weakest[1] if weakest else None,
    )


def grade(found: Signals) -> str | None:
    """Two points each for converting above the average, being on pace for the monthly goal and
    high average quality; one point each for being near them. 5-6 A, 4 B, 3 C, 2 D, else F."""
    if not found.leads:
        return None
    points = 0
    if found.conversion_rate is not None and found.overall_rate:
        relative = found.conversion_rate / found.overall_rate
        points += 2 if relative >= STRONG_CONVERSION else 1 if relative >= WEAK_CONVERSION else 0
    elif not found.overall_rate:
        points += 1  # nobody's leads converted yet: neither better nor worse than the rest
    if found.pace is not None:
        points += 2 if found.pace >= ON_PACE else 1 if found.pace >= BEHIND_PACE else 0
    if found.average_quality is not None:
        points += (
            2 if found.average_quality >= HIGH_QUALITY else 1 if found.average_quality >= LOW_QUALITY else 0
        )
    return next(letter for floor, letter in GRADES if points >= floor)


def _pct(value: Decimal) -> str:
    return f"{(value * 100).quantize(TENTH, rounding=ROUND_HALF_UP)}%"


def insights(found: Signals, vendor_name: str, monthly_goal: int) -> Insights:
    """Sentences ruled on the numbers (docs/agencies.md), never canned."""
    if not found.leads:
        return Insights(
            strengths=[],
            opportunities=[f"No leads from {vendor_name} in the last {WINDOW_DAYS} days."],
            recommendations=[f"Check {vendor_name}'s integration: post a test lead with its credentials."],
        )
    said = Insights(strengths=[], opportunities=[], recommendations=[])
    _on_conversion(found, said)
    _on_pace(found, monthly_goal, said)
    _on_quality(found, said)
    _on_campaigns(found, said)
    _on_trend(found, said)
    if not said.recommendations:
        said.recommendations.append("Keep the current plan: no measure is below its threshold.")
    return said


def _concern(said: Insights, opportunity: str, recommendation: str) -> None:
    """A measure below its threshold: what it shows, and what to do about it."""
    said.opportunities.append(opportunity)
    said.recommendations.append(recommendation)


def _on_conversion(found: Signals, said: Insights) -> None:
    rate, overall = found.conversion_rate, found.overall_rate
    if rate is None or not overall:
        return
    if rate >= overall * STRONG_CONVERSION:
        said.strengths.append(
            f"Converts {_pct(rate)} of its leads, above the {_pct(overall)} of all agencies."
        )
    elif rate < overall * WEAK_CONVERSION:
        start = f", starting with campaign {found.weakest_campaign}" if found.weakest_campaign else ""
        _concern(
            said,
            f"Converts {_pct(rate)} of its leads, below the {_pct(overall)} of all agencies.",
            f"Review lead sources with the agency{start}.",
        )


def _on_pace(found: Signals, monthly_goal: int, said: Insights) -> None:
    pace, so_far = found.pace, f"{found.month_leads} of {monthly_goal} leads"
    if pace is None:
        return
    if pace >= ON_PACE:
        said.strengths.append(f"On pace for its monthly goal: {so_far} so far.")
        if pace >= 2 * ON_PACE:
            said.recommendations.append(f"Raise the monthly goal: it runs at {_pct(pace)} of pace.")
    elif pace < BEHIND_PACE:
        around = f" around its top campaign {found.top_campaign}" if found.top_campaign else ""
        _concern(
            said,
            f"Behind its monthly goal: {so_far}, {_pct(pace)} of pace.",
            f"Agree a volume plan with the agency{around}.",
        )


def _on_quality(found: Signals, said: Insights) -> None:
    quality = found.average_quality
    if quality is None:
        return
    if quality >= HIGH_QUALITY:
        said.strengths.append(f"High lead quality: average score {quality}.")
    elif quality < LOW_QUALITY:
        _concern(
            said,
            f"Low lead quality: average score {quality}.",
            "Require consent evidence (TrustedForm) and complete contact data.",
        )


def _on_campaigns(found: Signals, said: Insights) -> None:
    if found.top_campaign_roi is not None and found.top_campaign_roi > 0:
        top = found.top_campaign or NO_CAMPAIGN
        said.strengths.append(f"Top campaign {top} returns {found.top_campaign_roi}% on lead cost.")
    if found.weakest_campaign is not None and found.weakest_campaign_roi is not None:
        _concern(
            said,
            f"Campaign {found.weakest_campaign} loses money: {found.weakest_campaign_roi}% on lead cost.",
            f"Reprice or pause campaign {found.weakest_campaign}.",
        )


def trend_direction(change: Decimal | None) -> str:
    """Up or down when the leads of the last `TREND_DAYS` days moved by `TREND_THRESHOLD` percent
    or more against the days before; else flat."""
    if change is not None and change >= TREND_THRESHOLD:
        return "up"
    if change is not None and change <= -TREND_THRESHOLD:
        return "down"
    return "flat"


def _on_trend(found: Signals, said: Insights) -> None:
    change = found.trend_change
    if change is None:
        return
    direction = trend_direction(change)
    if direction == "down":
        said.opportunities.append(f"Lead volume fell {-change}% against the previous {TREND_DAYS} days.")
    elif direction == "up":
        said.strengths.append(f"Lead volume grew {change}% against the previous {TREND_DAYS} days.")


def performance(
    buckets: Buckets, vendor_code: str, vendor_name: str, monthly_goal: int, today: date
) -> tuple[Performance, Insights]:
    window = Window(today)
    found = signals(buckets, vendor_code, monthly_goal, window)
    own = scoped(summed(buckets, window.days), "v", vendor_code)
    daily = [int(buckets.get(day, {}).get(f"v#{vendor_code}#leads", ZERO)) for day in window.recent]
    block = Performance(
        leads=found.leads,
        converted=measure.converted(own),
        conversionRate=measure.as_percent(found.conversion_rate),
        leadsThisMonth=found.month_leads,
        monthlyGoal=monthly_goal,
        goalProgress=measure.as_percent(Decimal(found.month_leads) / monthly_goal),
        revenue=money(measure.spend(own)),
        returns=measure.returns(own),
        credits=money(measure.credits(own)),
        netSpend=money(measure.net_spend(own)),
        sales=money(measure.sales(own)),
        returnOnSpend=measure.as_ratio(measure.return_on_spend(own)),
        avgCPA=measure.as_money(measure.cost_per_acquisition(own)),
        topCampaign=found.top_campaign,
        campaignROI=found.top_campaign_roi,
        averageQuality=found.average_quality,
        grade=grade(found),
        trend=Trend(direction=trend_direction(found.trend_change), change=found.trend_change, daily=daily),
    )
    return block, insights(found, vendor_name, monthly_goal)
