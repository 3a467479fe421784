"""The stats service's reads: one Query per partition over days that depend on the window only, and
one cache entry per window, period and vendor (an in-memory cache and bucket store)."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest

from shared.buckets import AGENTS, CAMPAIGNS, TOTALS, VENDORS, Buckets, DayBuckets
from shared.cache import QueryCache
from stats.dashboard import AgentRecord
from stats.forecast import HISTORY_DAYS
from stats.repository import AgentRoster
from stats.service import StatsService
from tests.unit.memory_cache import MemoryBackend

ZONE = ZoneInfo("America/New_York")
NOW = datetime(2026, 12, 1, 0, 30, tzinfo=ZONE)  # half an hour into 1 December, in the business zone
TODAY = NOW.date()


class RecordedBuckets:
    """Day buckets in memory, recording each read as (first, last, partition)."""

    def __init__(self, buckets: Buckets) -> None:
        self.buckets = buckets
        self.reads: list[tuple[str, str, str]] = []

    def between(self, first_day: str, last_day: str, partitions: Any) -> Buckets:
        self.reads.extend((first_day, last_day, partition) for partition in partitions)
        return {day: dict(counters) for day, counters in self.buckets.items() if first_day <= day <= last_day}


class Roster:
    def agents(self) -> list[AgentRecord]:
        return [AgentRecord("agent-1", "Ann", "online", 2, 10)]


def service(buckets: RecordedBuckets) -> StatsService:
    return StatsService(
        cast(DayBuckets, buckets),
        cast(AgentRoster, Roster()),
        QueryCache(MemoryBackend()),
        ZONE,
        now=lambda: NOW,
    )


def days_before(days: int) -> str:
    return (TODAY - timedelta(days=days)).isoformat()


@pytest.mark.parametrize(("period", "days"), [("7d", 7), ("30d", 30), ("90d", 90), ("12m", 365)])
def test_the_dashboard_reads_one_query_per_partition_over_the_window_the_previous_one_and_the_history(
    period: str, days: int
) -> None:
    store = RecordedBuckets({})
    body = service(store).dashboard(period)
    assert (body["period"]["from"], body["period"]["to"]) == (days_before(days - 1), TODAY.isoformat())
    assert body["period"]["partial"] is True
    assert body["period"]["elapsed"] == Decimal("0.0208")
    first_total = min(days_before(2 * days - 1), days_before(HISTORY_DAYS))
    assert sorted(store.reads) == sorted(
        [
            (first_total, TODAY.isoformat(), TOTALS),
            (days_before(2 * days - 1), TODAY.isoformat(), CAMPAIGNS),
            (days_before(2 * days - 1), TODAY.isoformat(), AGENTS),
        ]
    )


def test_analytics_reads_one_partition_totals_or_vendors() -> None:
    store = RecordedBuckets({})
    service(store).analytics("12m")
    service(store).analytics(None, date(2026, 6, 1), date(2026, 11, 30), "V001")
    assert store.reads == [
        (days_before(364), TODAY.isoformat(), TOTALS),  # 2 Dec 2025, before 1 Nov 2026
        ("2026-06-01", "2026-11-30", VENDORS),
    ]


def test_each_window_period_and_vendor_has_its_own_cache_entry() -> None:
    store = RecordedBuckets(
        {
            "2026-11-20": {"leads": Decimal(3), "v#V001#leads": Decimal(1), "v#V002#leads": Decimal(2)},
            "2026-11-29": {"leads": Decimal(1), "v#V001#leads": Decimal(1)},
        }
    )
    stats = service(store)
    november = (date(2026, 11, 1), date(2026, 11, 30))
    answers = [
        stats.analytics(None, *november, "V001"),
        stats.analytics(None, *november, "V002"),
        stats.analytics(None, *november),
        stats.analytics(None, date(2026, 11, 25), date(2026, 11, 30)),
        stats.analytics("30d"),
    ]
    assert [sum(answer["leads"]) for answer in answers] == [2, 2, 4, 1, 4]
    assert [answer["vendor"] for answer in answers] == ["V001", "V002", None, None, None]
    assert len(store.reads) == 5  # each computed once
    again = stats.analytics(None, *november, "V001")
    assert again == answers[0]
    assert len(store.reads) == 5  # and then read from the cache
    stats.dashboard(None, *november)
    stats.dashboard("30d")
    assert len(store.reads) == 5 + 3 + 3
