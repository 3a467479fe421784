"""The stats service's collaborators, built from the process-wide objects of
`shared.dependencies`. The routes and the consumer ask for them here; nothing else in the service
constructs a table or a time zone."""

from __future__ import annotations

from functools import cache

from shared import dependencies
from shared.dynamo import Table
from stats.audit_trail import AuditTrail
from stats.repository import AgentRoster
from stats.service import BucketUpdater, StatsService
from stats.store import StatsStore


def stats_service() -> StatsService:
    """Cheap to build: the tables and cache it wraps are the process-wide ones."""
    return StatsService(
        dependencies.day_buckets(),
        AgentRoster(dependencies.users_table()),
        dependencies.query_cache(),
        dependencies.business_zone(),
    )


def audit_trail() -> AuditTrail:
    return AuditTrail(dependencies.audit_table(), dependencies.cursor_codec())


@cache
def stats_store() -> StatsStore:
    """The only writer of the day buckets, with the state table only this service uses."""
    states = Table(dependencies.get_settings().stats_state_table)
    return StatsStore(dependencies.stats_table(), states, dependencies.business_zone())


def bucket_updater() -> BucketUpdater:
    return BucketUpdater(stats_store())
