"""Time series for `GET /admin/analytics`: per bucket of the window (days, ISO weeks or months),
leads, lead spend (`revenue`), conversions, sales and the cohort's converted leads, of every vendor
or one; and insights computed from them.

A bucket is **partial** when it is incomplete: it holds today (not over yet), or the window covers
only part of its week or month. Insights never rank a partial bucket best or weakest nor say it
rose or fell; the bucket holding today gets a like-for-like sentence instead, against the previous
day, week or month up to the same point (its days to the same day of the week or month, that
day prorated by the share of today gone by: `stats.window`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from itertools import pairwise

from shared import measures
from shared.buckets import CENT, NO_CAMPAIGN, Buckets, Counters, grouped, scoped, vendor_campaigns
from stats.models import Analytics
from stats.window import Window, summed_to_same_point

GRANULARITY = {"7d": "day", "30d": "day", "90d": "week", "12m": "month"}
DAYS_BY_DAY = 31  # a from/to range up to this many days is shown by day,
DAYS_BY_WEEK = 180  # up to this many by ISO week, longer ones by month
ZERO = Decimal(0)


def granularity_of(period_name: str | None, window: Window) -> str:
    if period_name is not None:
        return GRANULARITY[period_name]
    if window.length <= DAYS_BY_DAY:
        return "day"
    return "week" if window.length <= DAYS_BY_WEEK else "month"


def unit_start(day: date, unit: str) -> date:
    if unit == "week":
        return day - timedelta(days=day.weekday())
    if unit == "month":
        return day.replace(day=1)
    return day


def unit_end(day: date, unit: str) -> date:
    if unit == "week":
        return unit_start(day, unit) + timedelta(days=6)
    if unit == "month":
        return (day.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    return day


def label_of(day: str, unit: str) -> str:
    moment = date.fromisoformat(day)
    if unit == "week":
        year, week, _ = moment.isocalendar()
        return f"{year}-W{week:02d}"
    if unit == "month":
        return day[:7]
    return day


def counters_of(buckets: Buckets, day: str, vendor: str | None) -> Counters:
    """A day's totals, or one vendor's counters."""
    counters = buckets.get(day, {})
    return scoped(counters, "v", vendor) if vendor is not None else counters


@dataclass
class Stretch:
    """One bucket of the chart: its label, its days in the window, and their counters."""

    label: str
    partial: bool
    days: list[str] = field(default_factory=list)
    counters: Counters = field(default_factory=dict)

    @property
    def leads(self) -> int:
        return measures.leads(self.counters)

    @property
    def revenue(self) -> Decimal:
        return measures.spend(self.counters).quantize(CENT)


def stretches(buckets: Buckets, window: Window, unit: str, vendor: str | None) -> list[Stretch]:
    found: dict[str, Stretch] = {}
    for day in window.days:
        moment = date.fromisoformat(day)
        label = label_of(day, unit)
        if label not in found:
            cut = unit_start(moment, unit) < window.first or unit_end(moment, unit) > window.last
            holds_today = window.partial and unit_end(moment, unit) >= window.last
            found[label] = Stretch(label, partial=cut or holds_today)
        stretch = found[label]
        stretch.days.append(day)
        for name, value in counters_of(buckets, day, vendor).items():
            stretch.counters[name] = stretch.counters.get(name, ZERO) + value
    return list(found.values())


def same_point_before(window: Window, unit: str) -> Window:
    """The day, week or month before the one holding the window's last day, to the same point:
    as many days into it (all of it when it is shorter), the last prorated by `window.elapsed`."""
    start = unit_start(window.last, unit)
    previous_start = unit_start(start - timedelta(days=1), unit)
    previous_end = start - timedelta(days=1)
    point = previous_start + (window.last - start)
    if point > previous_end:
        return Window(previous_start, previous_end)
    return Window(previous_start, point, window.elapsed)


def first_day_read(window: Window, unit: str) -> str:
    """The first day the analytics read: the window's, or the previous unit's when the window
    ends today (for the like-for-like sentence)."""
    if not window.partial:
        return window.first.isoformat()
    return min(window.first, same_point_before(window, unit).first).isoformat()


def _money(value: Decimal) -> str:
    return f"${value.quantize(CENT, rounding=ROUND_HALF_UP):,}"


def _plural(count: int, word: str) -> str:
    return f"{count} {word}{'' if count == 1 else 's'}"


def insights(
    data: list[Stretch], buckets: Buckets, window: Window, unit: str, vendor: str | None
) -> list[str]:
    """Sentences stating what the numbers show: best and weakest complete bucket, the largest
    change between complete buckets, the bucket holding today against the same point of the one
    before, the top campaign and the cohort conversion rate. Nothing is said that the numbers do
    not support."""
    total = summed_counters(data)
    leads = measures.leads(total)
    if leads == 0:
        source = f" from {vendor}" if vendor else ""
        first, last = window.first.isoformat(), window.last.isoformat()
        return [f"No leads were received{source} between {first} and {last}."]
    complete = [stretch for stretch in data if not stretch.partial]
    said = [*ranking(complete, unit), *largest_change(data)]
    if window.partial:
        said.append(so_far(data[-1], buckets, window, unit, vendor))
    said.extend(top_source(buckets, window, vendor, measures.spend(total)))
    rate = measures.as_percent(measures.conversion_rate(total))
    said.append(
        f"{measures.converted(total)} of the {_plural(leads, 'lead')} received closed by now ({rate}%); "
        f"{_plural(measures.conversions(total), 'sale')} closed in the period "
        f"({_money(measures.sales(total))})."
    )
    return said


def ranking(complete: list[Stretch], unit: str) -> list[str]:
    """The best and the weakest complete bucket, by lead spend (then leads)."""
    if not complete:
        return []
    best = max(complete, key=lambda s: (s.revenue, s.leads))
    said = [
        f"Best {unit}: {best.label} with {_money(best.revenue)} revenue from {_plural(best.leads, 'lead')}."
    ]
    worst = min(complete, key=lambda s: (s.revenue, s.leads))
    if len(complete) > 1 and worst is not best:
        said.append(f"Weakest {unit}: {worst.label} with {_money(worst.revenue)} revenue.")
    return said


def largest_change(data: list[Stretch]) -> list[str]:
    """The largest change of lead spend from one complete bucket to the next complete one."""
    changes = [
        (after.revenue - before.revenue, before, after)
        for before, after in pairwise(data)
        if not before.partial and not after.partial and before.revenue
    ]
    if not changes:
        return []
    change, before, after = max(changes, key=lambda item: abs(item[0]))
    if not change:
        return []
    direction = "rose" if change > 0 else "fell"
    percent = (abs(change) / before.revenue * 100).quantize(Decimal("1"))
    return [f"Largest change: revenue {direction} {percent}% from {before.label} to {after.label}."]


def so_far(current: Stretch, buckets: Buckets, window: Window, unit: str, vendor: str | None) -> str:
    """The bucket holding today against the one before up to the same point, without a verdict."""
    earlier = same_point_before(window, unit)
    then = summed_to_same_point({day: counters_of(buckets, day, vendor) for day in earlier.days}, earlier)
    return (
        f"{current.label} so far: {_money(current.revenue)} revenue from {_plural(current.leads, 'lead')}, "
        f"against {_money(measures.spend(then))} by the same point of "
        f"{label_of(earlier.first.isoformat(), unit)}."
    )


def summed_counters(data: list[Stretch]) -> Counters:
    total: Counters = {}
    for stretch in data:
        for name, value in stretch.counters.items():
            total[name] = total.get(name, ZERO) + value
    return total


def top_source(buckets: Buckets, window: Window, vendor: str | None, spend: Decimal) -> list[str]:
    """The campaign with the most lead spend, and its share of it."""
    campaigns: dict[str, Counters] = {}
    for day in window.days:
        counters = buckets.get(day, {})
        by_campaign = vendor_campaigns(counters, vendor) if vendor is not None else grouped(counters, "c")
        for name, values in by_campaign.items():
            campaigns.setdefault(name, {})
            campaigns[name]["revenue"] = campaigns[name].get("revenue", ZERO) + measures.spend(values)
    if not campaigns or not spend:
        return []
    name, values = max(campaigns.items(), key=lambda item: (measures.spend(item[1]), item[0]))
    share = (measures.spend(values) / spend * 100).quantize(Decimal("1"))
    label = "leads without a campaign" if name == NO_CAMPAIGN else f"campaign {name}"
    return [f"Top source: {label} with {_money(measures.spend(values))} revenue ({share}% of the total)."]


def analytics(
    buckets: Buckets, window: Window, period_name: str | None = None, vendor: str | None = None
) -> Analytics:
    """The series and insights of `window`, from `buckets` holding at least the days from
    `first_day_read(window, unit)` to the window's last (the totals partition, or the vendors
    partition for one vendor)."""
    unit = granularity_of(period_name, window)
    data = stretches(buckets, window, unit, vendor)
    return Analytics(
        period=period_name,
        from_=window.first.isoformat(),
        to=window.last.isoformat(),
        vendor=vendor,
        granularity=unit,
        labels=[stretch.label for stretch in data],
        leads=[stretch.leads for stretch in data],
        revenue=[stretch.revenue for stretch in data],
        conversions=[measures.conversions(stretch.counters) for stretch in data],
        sales=[measures.sales(stretch.counters).quantize(CENT) for stretch in data],
        converted=[measures.converted(stretch.counters) for stretch in data],
        partial=[stretch.partial for stretch in data],
        insights=insights(data, buckets, window, unit, vendor),
    )
