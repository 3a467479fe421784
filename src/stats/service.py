"""Stats use cases: the dashboard, from the day buckets and the agent roster, through the cache."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from shared.buckets import AGENTS, CAMPAIGNS, TOTALS, DayBuckets
from shared.cache import Namespace, QueryCache
from shared.dynamo import Table
from shared.records import agents_by_role
from stats.analytics import analytics, first_day
from stats.dashboard import PERIOD_DAYS, AgentRecord, Period, dashboard

STAFF_SCOPE = "all"  # only admins and managers read stats, and they see everything


class AgentRoster:
    def __init__(self, users: Table) -> None:
        self._users = users

    def agents(self) -> list[AgentRecord]:
        """Every active agent (Queries on the users' role index)."""
        return [
            AgentRecord(
                user_id=item["user_id"],
                name=str(item.get("name", item["user_id"])),
                availability=str(item.get("availability", "offline")),
                open_leads=int(item.get("open_leads", 0)),
                capacity=int(item.get("capacity", 0)),
            )
            for item in self._users.query_all(agents_by_role())
            if item.get("status", "active") == "active"
        ]


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
        self._today = today or (lambda: datetime.now(UTC).astimezone(zone).date())

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
