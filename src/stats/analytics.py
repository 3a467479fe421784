"""Time series for `GET /admin/analytics`: leads, revenue and conversions per bucket of the period
(days for 7d and 30d, ISO weeks for 90d, months for 12m), and insights computed from them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from shared.buckets import CENT, NO_CAMPAIGN, Buckets, grouped
from stats.dashboard import Period, totals
from stats.models import Analytics

GRANULARITY = {"7d": ("day", 7), "30d": ("day", 30), "90d": ("week", 90), "12m": ("month", 365)}


def label_of(day: str, unit: str) -> str:
    moment = date.fromisoformat(day)
    if unit == "week":
        year, week, _ = moment.isocalendar()
        return f"{year}-W{week:02d}"
    if unit == "month":
        return day[:7]
    return day


@dataclass
class Series:
    labels: list[str]
    leads: list[int]
    revenue: list[Decimal]
    conversions: list[int]


def series(buckets: Buckets, period: Period, unit: str) -> Series:
    labels: list[str] = []
    index: dict[str, int] = {}
    for day in period.days:
        label = label_of(day, unit)
        if label not in index:
            index[label] = len(labels)
            labels.append(label)
    leads, revenue, conversions = [0] * len(labels), [Decimal(0)] * len(labels), [0] * len(labels)
    for day in period.days:
        position = index[label_of(day, unit)]
        counters = buckets.get(day, {})
        leads[position] += int(counters.get("leads", 0))
        revenue[position] += counters.get("revenue", Decimal(0))
        conversions[position] += int(counters.get("conversions", 0))
    return Series(labels, leads, [value.quantize(CENT) for value in revenue], conversions)


def _money(value: Decimal) -> str:
    return f"${value.quantize(CENT, rounding=ROUND_HALF_UP):,}"


def insights(data: Series, buckets: Buckets, period: Period, unit: str) -> list[str]:
    """Sentences stating what the numbers show: best and weakest bucket, the largest change,
    the top campaign and the conversion rate. Nothing is said that the numbers do not support."""
    total_leads, total_revenue = sum(data.leads), sum(data.revenue, Decimal(0))
    if total_leads == 0:
        return [f"No leads were received between {period.first.isoformat()} and {period.last.isoformat()}."]
    said = []
    best = max(range(len(data.labels)), key=lambda i: (data.revenue[i], data.leads[i]))
    said.append(
        f"Best {unit}: {data.labels[best]} with {_money(data.revenue[best])} revenue from "
        f"{data.leads[best]} lead{'s' if data.leads[best] != 1 else ''}."
    )
    if len(data.labels) > 1:
        worst = min(range(len(data.labels)), key=lambda i: (data.revenue[i], data.leads[i]))
        if worst != best:
            said.append(f"Weakest {unit}: {data.labels[worst]} with {_money(data.revenue[worst])} revenue.")
        changes = [
            (data.revenue[i] - data.revenue[i - 1], i)
            for i in range(1, len(data.labels))
            if data.revenue[i - 1]
        ]
        if changes:
            change, i = max(changes, key=lambda item: abs(item[0]))
            if change:
                direction = "rose" if change > 0 else "fell"
                percent = (abs(change) / data.revenue[i - 1] * 100).quantize(Decimal("1"))
                said.append(
                    f"Largest change: revenue {direction} {percent}% from {data.labels[i - 1]} "
                    f"to {data.labels[i]}."
                )
    campaigns = grouped(totals(buckets, period), "c")
    if campaigns and total_revenue:
        name, values = max(campaigns.items(), key=lambda item: (item[1].get("revenue", Decimal(0)), item[0]))
        share = (values.get("revenue", Decimal(0)) / total_revenue * 100).quantize(Decimal("1"))
        label = "leads without a campaign" if name == NO_CAMPAIGN else f"campaign {name}"
        earned = _money(values.get("revenue", Decimal(0)))
        said.append(f"Top source: {label} with {earned} revenue ({share}% of the total).")
    conversions = sum(data.conversions)
    rate = (Decimal(conversions) / total_leads * 100).quantize(Decimal("0.1"))
    said.append(
        f"{conversions} sale{'s' if conversions != 1 else ''} closed against {total_leads} leads received "
        f"({rate}%)."
    )
    return said


def analytics(buckets: Buckets, period_name: str, today: date) -> Analytics:
    unit, days = GRANULARITY[period_name]
    period = Period.ending(today, days)
    data = series(buckets, period, unit)
    return Analytics(
        period=period_name,
        granularity=unit,
        labels=data.labels,
        leads=data.leads,
        revenue=data.revenue,
        conversions=data.conversions,
        insights=insights(data, buckets, period, unit),
    )


def first_day(period_name: str, today: date) -> date:
    return today - timedelta(days=GRANULARITY[period_name][1] - 1)
