"""Stats use cases: the dashboard and analytics, from the day buckets and the agent roster, through
the cache; and applying a lead change to the buckets, which makes those cached reads stale."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from shared.buckets import AGENTS, CAMPAIGNS, TOTALS, VENDORS, DayBuckets
from shared.cache import Namespace, QueryCache
from shared.dates import Clock
from stats import analytics as charts
from stats.dashboard import dashboard, first_day_read
from stats.repository import AgentRoster
from stats.store import BatchResult, LeadChange, StatsStore
from stats.window import DEFAULT_PERIOD, Window, window_of

STAFF_SCOPE = "all"  # only admins and managers read stats, and they see everything


class StatsService:
    def __init__(
        self,
        buckets: DayBuckets,
        roster: AgentRoster,
        cache: QueryCache,
        zone: ZoneInfo,
        now: Callable[[], datetime] | None = None,
    ) -> None:
        self._buckets = buckets
        self._roster = roster
        self._cache = cache
        self._zone = zone
        self._clock = Clock(zone, now) if now is not None else Clock(zone)

    def now(self) -> datetime:
        """The current time in the business zone."""
        return self._clock.now().astimezone(self._zone)

    def dashboard(
        self, period: str | None = None, first: date | None = None, last: date | None = None
    ) -> dict[str, Any]:
        window = window_of(period, first, last, self.now())

        def load() -> dict[str, Any]:
            # One Query per partition: totals back to the forecast's history, the campaigns' and
            # agents' counters over this window and the previous one.
            last_day = window.last.isoformat()
            buckets = self._buckets.between(first_day_read(window), last_day, (TOTALS,))
            for day, counters in self._buckets.between(
                window.previous().first.isoformat(), last_day, (CAMPAIGNS, AGENTS)
            ).items():
                buckets.setdefault(day, {}).update(counters)
            return dashboard(buckets, window, self._roster.agents()).model_dump(mode="python", by_alias=True)

        return self._cache.get_or_load(Namespace.STATS, STAFF_SCOPE, cache_params("dashboard", window), load)

    def analytics(
        self,
        period: str | None = None,
        first: date | None = None,
        last: date | None = None,
        vendor: str | None = None,
    ) -> dict[str, Any]:
        window = window_of(period, first, last, self.now())
        period_name = (period or DEFAULT_PERIOD) if first is None and last is None else None
        unit = charts.granularity_of(period_name, window)

        def load() -> dict[str, Any]:
            partition = VENDORS if vendor is not None else TOTALS
            buckets = self._buckets.between(
                charts.first_day_read(window, unit), window.last.isoformat(), (partition,)
            )
            return charts.analytics(buckets, window, period_name, vendor).model_dump(
                mode="python", by_alias=True
            )

        params = {**cache_params("analytics", window), "period": period_name, "vendor": vendor}
        return self._cache.get_or_load(Namespace.STATS, STAFF_SCOPE, params, load)


def cache_params(view: str, window: Window) -> dict[str, Any]:
    """What a cached answer depends on: its view and days. Whether the last day is partial is
    part of it (a window ending today differs from the same days read tomorrow); the share of
    today gone by is not: it moves within the freshness interval like the counters do."""
    return {
        "view": view,
        "from": window.first.isoformat(),
        "to": window.last.isoformat(),
        "partial": window.partial,
    }


class BucketUpdater:
    def __init__(self, store: StatsStore) -> None:
        self._store = store

    def apply(self, changes: Iterable[LeadChange]) -> BatchResult:
        """Moves the buckets to each lead's newest `changes` (leads whose version, or a newer one,
        was applied already are left as they are). Cached reads of the buckets are not
        invalidated: they expire within the stats freshness interval (`STATS_FRESHNESS_SECONDS`),
        so a burst of events costs one recomputation per entry and interval, not one per batch."""
        return self._store.apply_batch(changes)
