"""The stats table's day buckets, as every service reads them.

The stats consumer keeps counters per business day: totals ("leads", "revenue", "won",
"conversions", "sales", "quality_sum", "closed_days", "d#<disposition>"; their definitions are in
`shared.measures`) and the same measures per scope, named
`<scope>#<key>#<measure>`: "c" campaign, "v" vendor, "a" agent, "vc" vendor and campaign (key
`<vendor>#<campaign>`).

A day's counters are split over four partitions (`pk`), one item per day each (`sk=<YYYY-MM-DD>`):
totals, dispositions and each campaign's leads and revenue (all the analytics chart reads);
campaigns' conversions and sales; agents; vendors (with vendor and campaign). A reader queries only
the partitions it uses, so the executive dashboard never reads the vendor-by-campaign counters that
agency reports need. Reading a period is one Query per partition of at most one item per day,
whatever the number of leads.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from shared.dynamo import KeyCondition, Table

TOTALS = "all"  # totals, the count per disposition, each campaign's leads and revenue
CAMPAIGNS = "c"  # each campaign's conversions and sales
AGENTS = "a"
VENDORS = "v"  # per vendor, and per vendor and campaign
PARTITIONS = (TOTALS, CAMPAIGNS, AGENTS, VENDORS)
PAGE_SIZE = 1000
NO_CAMPAIGN = "(none)"  # the campaign key of leads without a campaign
CENT = Decimal("0.01")
_PARTITION_OF_SCOPE = {"c": CAMPAIGNS, "a": AGENTS, "v": VENDORS, "vc": VENDORS}
_CAMPAIGN_MEASURES_WITH_TOTALS = ("leads", "revenue")

Counters = dict[str, Decimal]
Buckets = dict[str, Counters]  # day (YYYY-MM-DD) -> counter name -> value
BucketKey = tuple[str, str]  # (partition, day): an item's (pk, sk)


def partition_of(counter: str) -> str:
    """The partition holding a counter: "leads", "d#new" and "c#x#leads" -> "all", "c#x#sales" -> "c",
    "a#u1#leads" -> "a", "vc#V001#x#leads" -> "v"."""
    scope, separator, rest = counter.partition("#")
    if not separator or (scope == "c" and rest.rpartition("#")[2] in _CAMPAIGN_MEASURES_WITH_TOTALS):
        return TOTALS
    return _PARTITION_OF_SCOPE.get(scope, TOTALS)


def by_item(buckets: Buckets) -> dict[BucketKey, Counters]:
    """Day buckets as the stored items' counters, keyed by (partition, day)."""
    items: dict[BucketKey, Counters] = {}
    for day, counters in buckets.items():
        for name, value in counters.items():
            items.setdefault((partition_of(name), day), {})[name] = value
    return items


class DayBuckets:
    """Read access to the day buckets (written only by `stats.store`)."""

    def __init__(self, table: Table) -> None:
        self._table = table

    def between(self, first_day: str, last_day: str, partitions: Iterable[str] = PARTITIONS) -> Buckets:
        """The day buckets from `first_day` to `last_day` inclusive (days without leads absent),
        holding the counters of `partitions` only: one Query each."""
        found: Buckets = {}
        for partition in partitions:
            items = self._table.query_all(
                KeyCondition(
                    index=None,
                    partition_name="pk",
                    partition_value=partition,
                    sort_name="sk",
                    sort_from=first_day,
                    sort_to=last_day,
                    newest_first=False,
                ),
                page_size=PAGE_SIZE,
            )
            for item in items:
                counters = {
                    name: Decimal(value)
                    for name, value in item.items()
                    if name not in ("pk", "sk") and Decimal(value) != 0
                }
                if counters:  # a day whose leads all moved away leaves an item of zeros
                    found.setdefault(item["sk"], {}).update(counters)
        return dict(sorted(found.items()))

    def last_days(self, today: date, days: int, partitions: Iterable[str] = PARTITIONS) -> Buckets:
        return self.between((today - timedelta(days=days - 1)).isoformat(), today.isoformat(), partitions)


def percent(part: Decimal, whole: Decimal) -> Decimal:
    """part / whole in percent, to one decimal (0.0 when there is no whole)."""
    return (part / whole * 100).quantize(Decimal("0.1"), rounding=ROUND_HALF_UP) if whole else Decimal("0.0")


def money(value: Decimal) -> Decimal:
    """A sum of money to the cent, half up."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def campaign_name(key: str) -> str | None:
    """A campaign as the API names it: null for the leads without one."""
    return None if key == NO_CAMPAIGN else key


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


def vendor_campaigns(counters: Counters, vendor_code: str) -> dict[str, Counters]:
    """One vendor's campaigns: "vc#V001#tiktok#leads" grouped as {"tiktok": {"leads": ...}}."""
    prefix = f"{vendor_code}#"
    return {
        key[len(prefix) :]: measures
        for key, measures in grouped(counters, "vc").items()
        if key.startswith(prefix)
    }
