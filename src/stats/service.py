"""Stats use cases: the dashboard and analytics, from the day buckets and the agent roster, through
the cache; and applying a lead change to the buckets, which makes those cached reads stale."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from shared.buckets import AGENTS, CAMPAIGNS, TOTALS, DayBuckets
from shared.cache import Namespace, QueryCache
from shared.dates import Clock
from stats.analytics import analytics, first_day
from stats.dashboard import PERIOD_DAYS, Period, dashboard
from stats.repository import AgentRoster
from stats.store import BatchResult, LeadChange, StatsStore

STAFF_SCOPE = "all"  # only admins and managers read stats, and they see everything


class StatsService:
    def __init__(
        self,
        buckets: DayBuckets,
        roster: AgentRoster,
        cache: QueryCache,
        zone: ZoneInfo,
        today: Callable[[], date] | None = None,
    ) -> None:
        self._buckets = buckets
        self._roster = roster
        self._cache = cache
        self._zone = zone
        self._today = today or Clock(zone).today

    def dashboard(self, period_name: str) -> dict[str, Any]:
        period = Period.ending(self._today(), PERIOD_DAYS[period_name])

        def load() -> dict[str, Any]:
            buckets = self._buckets.between(
                period.previous().first.isoformat(), period.last.isoformat(), (TOTALS, CAMPAIGNS, AGENTS)
            )
            return dashboard(buckets, period, self._roster.agents()).model_dump(mode="python", by_alias=True)

        params = {"view": "dashboard", "period": period_name, "to": period.last.isoformat()}
        return self._cache.get_or_load(Namespace.STATS, STAFF_SCOPE, params, load)

    def analytics(self, period_name: str) -> dict[str, Any]:
        today = self._today()

        def load() -> dict[str, Any]:
            buckets = self._buckets.between(
                first_day(period_name, today).isoformat(), today.isoformat(), (TOTALS,)
            )
            return analytics(buckets, period_name, today).model_dump(mode="python")

        params = {"view": "analytics", "period": period_name, "to": today.isoformat()}
        return self._cache.get_or_load(Namespace.STATS, STAFF_SCOPE, params, load)


class BucketUpdater:
    def __init__(self, store: StatsStore) -> None:
        self._store = store

    def apply(self, changes: Iterable[LeadChange]) -> BatchResult:
        """Moves the buckets to each lead's newest `changes` (leads whose version, or a newer one,
        was applied already are left as they are). Cached reads of the buckets are not
        invalidated: they expire within the stats freshness interval (`STATS_FRESHNESS_SECONDS`),
        so a burst of events costs one recomputation per entry and interval, not one per batch."""
        return self._store.apply_batch(changes)
