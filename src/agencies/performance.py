"""An agency's performance block, grade and insights, computed from the stats day buckets.

Windows (business days ending today): `leads`, `revenue`, `avgCPA`, `conversionRate`,
`topCampaign` and `campaignROI` cover the last 90 days; `leadsThisMonth` the calendar month so
far; `trend` the last 30 days against the 30 before. Every agency is computed from the same one
read of 90 day buckets. The grade and insight rules are in docs/agencies.md.
"""

from __future__ import annotations

from calendar import monthrange
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_HALF_UP, Decimal

from agencies.models import Insights, Performance, Trend
from shared.buckets import Buckets, Counters, days_ending, grouped, percent, scoped, summed

WINDOW_DAYS = 90
TREND_DAYS = 30
TENTH = Decimal("0.1")
CENT = Decimal("0.01")
ZERO = Decimal(0)
NO_CAMPAIGN = "(none)"

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
    conversion_rate: Decimal | None  # fractions, not percent
    overall_rate: Decimal | None
    pace: Decimal | None  # leads this month / prorated goal
    average_quality: Decimal | None
    trend_change: Decimal | None  # percent
    top_campaign: str | None
    top_campaign_roi: Decimal | None  # percent
    weakest_campaign: str | None  # lowest ROI, when it loses money
    weakest_campaign_roi: Decimal | None


def _ratio(part: Decimal | None, whole: Decimal | None) -> Decimal | None:
    return (part or ZERO) / whole if whole else None


def _roi(measures: Counters) -> Decimal | None:
    cost = measures.get("revenue", ZERO)
    if not cost:
        return None
    return ((measures.get("sales", ZERO) - cost) / cost * 100).quantize(TENTH, rounding=ROUND_HALF_UP)


def _campaigns(window: Counters, vendor_code: str) -> dict[str, Counters]:
    """This vendor's campaigns: "vc#V001#tiktok#leads" grouped as {"tiktok": {"leads": ...}}."""
    prefix = f"{vendor_code}#"
    return {
        key[len(prefix) :]: measures
        for key, measures in grouped(window, "vc").items()
        if key.startswith(prefix)
    }


def signals(buckets: Buckets, vendor_code: str, monthly_goal: int, window: Window) -> Signals:
    totals = summed(buckets, window.days)
    own = scoped(totals, "v", vendor_code)
    leads = own.get("leads", ZERO)
    month_leads = scoped(summed(buckets, window.month), "v", vendor_code).get("leads", ZERO)
    recent = scoped(summed(buckets, window.recent), "v", vendor_code).get("leads", ZERO)
    earlier = scoped(summed(buckets, window.earlier), "v", vendor_code).get("leads", ZERO)
    campaigns = _campaigns(totals, vendor_code)
    top = min(campaigns.items(), key=lambda kv: (-kv[1].get("leads", ZERO), kv[0]), default=None)
    losing = [
        (name, roi) for name, measures in campaigns.items() if (roi := _roi(measures)) is not None and roi < 0
    ]
    weakest = min(losing, key=lambda pair: (pair[1], pair[0]), default=None)
    prorated = Decimal(monthly_goal) * window.month_elapsed
    return Signals(
        leads=int(leads),
        month_leads=int(month_leads),
        conversion_rate=_ratio(own.get("conversions"), leads),
        overall_rate=_ratio(totals.get("conversions"), totals.get("leads")),
        pace=month_leads / prorated if prorated else None,
        average_quality=(own.get("quality_sum", ZERO) / leads).quantize(TENTH) if leads else None,
        trend_change=((recent - earlier) / earlier * 100).quantize(TENTH, rounding=ROUND_HALF_UP)
        if earlier
        else None,
        top_campaign=_campaign_name(top[0]) if top else None,
        top_campaign_roi=_roi(top[1]) if top else None,
        weakest_campaign=_campaign_name(weakest[0]) if weakest else None,
        weakest_campaign_roi=weakest[1] if weakest else None,
    )


def _campaign_name(key: str) -> str | None:
    return None if key == NO_CAMPAIGN else key


def grade(found: Signals) -> str | None:
    """Two points each for converting above the average, being on pace for the monthly goal and
    high average quality; one point each for being near them. 5-6 A, 4 B, 3 C, 2 D, else F."""
    if not found.leads:
        return None
    points = 0
    if found.conversion_rate is not None and found.overall_rate:
        relative = found.conversion_rate / found.overall_rate
        points += 2 if relative >= STRONG_CONVERSION else 1 if relative >= WEAK_CONVERSION else 0
    elif found.overall_rate is None:
        points += 1  # nobody converted yet: neither better nor worse than the rest
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
    strengths: list[str] = []
    opportunities: list[str] = []
    recommendations: list[str] = []
    if not found.leads:
        return Insights(
            strengths=[],
            opportunities=[f"No leads from {vendor_name} in the last {WINDOW_DAYS} days."],
            recommendations=[f"Check {vendor_name}'s integration: post a test lead with its credentials."],
        )
    rate, overall, month_leads = found.conversion_rate, found.overall_rate, found.month_leads
    if rate is not None and overall:
        if rate >= overall * STRONG_CONVERSION:
            strengths.append(
                f"Converts {_pct(rate)} of its leads, above the {_pct(overall)} of all agencies."
            )
        elif rate < overall * WEAK_CONVERSION:
            opportunities.append(
                f"Converts {_pct(rate)} of its leads, below the {_pct(overall)} of all agencies."
            )
            recommendations.append(
                "Review lead sources with the agency"
                + (f", starting with campaign {found.weakest_campaign}." if found.weakest_campaign else ".")
            )
    if found.pace is not None:
        if found.pace >= ON_PACE:
            strengths.append(f"On pace for its monthly goal: {month_leads} of {monthly_goal} leads so far.")
            if found.pace >= 2 * ON_PACE:
                recommendations.append(f"Raise the monthly goal: it runs at {_pct(found.pace)} of pace.")
        elif found.pace < BEHIND_PACE:
            opportunities.append(
                f"Behind its monthly goal: {month_leads} of {monthly_goal} leads, {_pct(found.pace)} of pace."
            )
            recommendations.append(
                "Agree a volume plan with the agency"
                + (f" around its top campaign {found.top_campaign}." if found.top_campaign else ".")
            )
    if found.average_quality is not None:
        if found.average_quality >= HIGH_QUALITY:
            strengths.append(f"High lead quality: average score {found.average_quality}.")
        elif found.average_quality < LOW_QUALITY:
            opportunities.append(f"Low lead quality: average score {found.average_quality}.")
            recommendations.append("Require consent evidence (TrustedForm) and complete contact data.")
    if found.top_campaign_roi is not None and found.top_campaign_roi > 0:
        strengths.append(
            f"Top campaign {found.top_campaign or '(none)'} returns {found.top_campaign_roi}% on lead cost."
        )
    if found.weakest_campaign is not None and found.weakest_campaign_roi is not None:
        opportunities.append(
            f"Campaign {found.weakest_campaign} loses money: {found.weakest_campaign_roi}% on lead cost."
        )
        recommendations.append(f"Reprice or pause campaign {found.weakest_campaign}.")
    if found.trend_change is not None and found.trend_change <= -TREND_THRESHOLD:
        opportunities.append(
            f"Lead volume fell {-found.trend_change}% against the previous {TREND_DAYS} days."
        )
    elif found.trend_change is not None and found.trend_change >= TREND_THRESHOLD:
        strengths.append(f"Lead volume grew {found.trend_change}% against the previous {TREND_DAYS} days.")
    if not recommendations:
        recommendations.append("Keep the current plan: no measure is below its threshold.")
    return Insights(strengths=strengths, opportunities=opportunities, recommendations=recommendations)


def performance(
    buckets: Buckets, vendor_code: str, vendor_name: str, monthly_goal: int, today: date
) -> tuple[Performance, Insights]:
    window = Window(today)
    found = signals(buckets, vendor_code, monthly_goal, window)
    own = scoped(summed(buckets, window.days), "v", vendor_code)
    leads = own.get("leads", ZERO)
    conversions = own.get("conversions", ZERO)
    revenue = own.get("revenue", ZERO)
    daily = [int(buckets.get(day, {}).get(f"v#{vendor_code}#leads", ZERO)) for day in window.recent]
    change = found.trend_change
    direction = "flat"
    if change is not None and change >= TREND_THRESHOLD:
        direction = "up"
    elif change is not None and change <= -TREND_THRESHOLD:
        direction = "down"
    block = Performance(
        leads=int(leads),
        leadsThisMonth=found.month_leads,
        monthlyGoal=monthly_goal,
        goalProgress=percent(Decimal(found.month_leads), Decimal(monthly_goal)),
        revenue=revenue.quantize(CENT, rounding=ROUND_HALF_UP),
        avgCPA=(revenue / conversions).quantize(CENT, rounding=ROUND_HALF_UP) if conversions else None,
        topCampaign=found.top_campaign,
        campaignROI=found.top_campaign_roi,
        conversionRate=percent(conversions, leads),
        averageQuality=found.average_quality,
        grade=grade(found),
        trend=Trend(direction=direction, change=change, daily=daily),
    )
    return block, insights(found, vendor_name, monthly_goal)
