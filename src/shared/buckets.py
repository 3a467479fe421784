"""The stats table's day buckets, as every service reads them.

The stats consumer keeps one item per business day (`pk="all"`, `sk=<YYYY-MM-DD>`) of counters:
totals ("leads", "revenue", "conversions", "sales", "quality_sum", "closed_days", "d#<disposition>")
and the same measures per scope, named `<scope>#<key>#<measure>`: "c" campaign, "v" vendor,
"a" agent, "vc" vendor and campaign (key `<vendor>#<campaign>`). Reading a period is one Query of
at most one item per day, whatever the number of leads.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from shared.dynamo import KeyCondition, Table

ALL = "all"
PAGE_SIZE = 1000

Counters = dict[str, Decimal]
Buckets = dict[str, Counters]  # day (YYYY-MM-DD) -> counter name -> value


class DayBuckets:
    """Read access to the day buckets (written only by `stats.store`)."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def between(self, first_day: str, last_day: str) -> Buckets:
        """The day buckets from `first_day` to `last_day` inclusive (days without leads absent)."""
        items = self._table.query_all(
            KeyCondition(
                index=None,
                partition_name="pk",
                partition_value=ALL,
                sort_name="sk",
                sort_from=first_day,
                sort_to=last_day,
                newest_first=False,
            ),
            page_size=PAGE_SIZE,
        )
        found: Buckets = {}
        for item in items:
            counters = {
                name: Decimal(value)
                for name, value in item.items()
                if name not in ("pk", "sk") and Decimal(value) != 0
            }
            if counters:  # a day whose leads all moved away leaves an item of zeros
                found[item["sk"]] = counters
        return found

    def last_days(self, today: date, days: int) -> Buckets:
        return self.between((today - timedelta(days=days - 1)).isoformat(), today.isoformat())


def percent(part: Decimal, whole: Decimal) -> Decimal:
    """part / whole in percent, to one decimal (0.0 when there is no whole)."""
    return (part / whole * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP) if whole else Decimal("0.0")


def days_ending(last: date, count: int) -> list[str]:
    """The `count` days up to and including `last`, oldest first."""
    return [(last - timedelta(days=count - 1 - n)).isoformat() for n in range(count)]


def summed(buckets: Buckets, days: Iterable[str]) -> Counters:
    """Every counter added up over `days`."""
    total: Counters = {}
    for day in days:
        for name, value in buckets.get(day, {}).items():
            total[name] = total.get(name, Decimal(0)) + value
    return total


def grouped(counters: Counters, scope: str) -> dict[str, Counters]:
    """{"tiktok": {"leads": 3, ...}} from counters named "c#tiktok#leads" (scope "c")."""
    groups: dict[str, Counters] = {}
    for name, value in counters.items():
        if name.startswith(f"{scope}#"):
            key, _, measure = name[len(scope) + 1 :].rpartition("#")
            groups.setdefault(key, {})[measure] = value
    return groups


def scoped(counters: Counters, scope: str, key: str) -> Counters:
    """The measures of one scope key: {"leads": 3, ...} of "v#V001#leads" for ("v", "V001")."""
    prefix = f"{scope}#{key}#"
    return {name[len(prefix) :]: value for name, value in counters.items() if name.startswith(prefix)}
