"""The process-wide objects that more than one service uses, built lazily once per cold start
from `Settings`. Each service builds its own collaborators from these in its `dependencies`
module (`leads.dependencies`, ...); nothing else constructs them."""

from __future__ import annotations

from functools import cache
from zoneinfo import ZoneInfo

from shared.audit import AuditLog
from shared.auth import Authenticator, PoolSettings, PublishedKeys, TokenSettings
from shared.buckets import DayBuckets
from shared.cache import BUCKET_NAMESPACES, CacheBackend, DisabledBackend, QueryCache, RedisBackend
from shared.config import get_settings
from shared.dynamo import Table
from shared.events import EventPublisher
from shared.observability import add_count
from shared.outbox import Outbox, OwedEpochMarker, RetryPolicy
from shared.pagination import CursorCodec
from shared.pricing import Pricer

SECRET_MAX_AGE_SECONDS = 300


def jwt_secret() -> str:
    settings = get_settings()
    if settings.jwt_secret is not None:
        return settings.jwt_secret.get_secret_value()
    from aws_lambda_powertools.utilities.parameters import get_secret  # only in AWS

    assert settings.jwt_secret_arn is not None
    return str(get_secret(settings.jwt_secret_arn, max_age=SECRET_MAX_AGE_SECONDS))


def token_settings() -> TokenSettings:
    settings = get_settings()
    return TokenSettings(
        secret=jwt_secret(),
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        leeway_seconds=settings.jwt_leeway_seconds,
    )


@cache
def users_table() -> Table:
    return Table(get_settings().users_table)


@cache
def leads_table() -> Table:
    return Table(get_settings().leads_table)


@cache
def vendors_table() -> Table:
    return Table(get_settings().vendors_table)


@cache
def pricing_table() -> Table:
    return Table(get_settings().pricing_table)


@cache
def returns_table() -> Table:
    return Table(get_settings().returns_table)


@cache
def postbacks_table() -> Table:
    return Table(get_settings().postbacks_table)


@cache
def audit_table() -> Table:
    return Table(get_settings().audit_table)


@cache
def audit_log() -> AuditLog:
    return AuditLog(audit_table())


@cache
def stats_table() -> Table:
    return Table(get_settings().stats_table)


@cache
def day_buckets() -> DayBuckets:
    """The stats day buckets (read by every service; written by the stats consumer)."""
    return DayBuckets(stats_table())


@cache
def business_zone() -> ZoneInfo:
    """The time zone of the business day: stats buckets, caps and reports count days in it."""
    return ZoneInfo(get_settings().business_timezone)


def pricer() -> Pricer:
    return Pricer(day_buckets(), business_zone())


def pool_settings() -> PoolSettings:
    settings = get_settings()
    return PoolSettings(
        issuer=settings.user_pool_issuer,
        client_id=settings.user_pool_client_id,
        leeway_seconds=settings.jwt_leeway_seconds,
    )


@cache
def authenticator() -> Authenticator:
    table = users_table()
    return Authenticator(
        settings_provider=token_settings,
        load_user=lambda user_id: table.get({"user_id": user_id}),
        pool=pool_settings(),
        pool_keys=PublishedKeys(get_settings().jwks_url),
        cache_seconds=get_settings().user_cache_seconds,
    )


def _count_cache_result(namespace: str, result: str) -> None:
    add_count(f"Cache{result.capitalize()}", 1)


@cache
def query_cache() -> QueryCache:
    """The query cache every environment shares (Redis), or none at all without REDIS_URL: a
    cache private to one environment would serve what another environment has since changed.
    An invalidation Redis does not take is recorded in the outbox table for the scheduled outbox
    publisher (`shared.cache.OwedEpochRecord`)."""
    settings = get_settings()
    backend: CacheBackend = DisabledBackend()
    owed_record = None
    if settings.redis_url:
        backend = RedisBackend(settings.redis_url)
        owed_record = OwedEpochMarker(Table(settings.outbox_table))
    freshness = min(settings.stats_freshness_seconds, settings.cache_ttl_seconds)
    return QueryCache(
        backend,
        ttl_seconds=settings.cache_ttl_seconds,
        on_result=_count_cache_result,
        namespace_ttls=dict.fromkeys(BUCKET_NAMESPACES, freshness),
        owed_record=owed_record,
    )


@cache
def cursor_codec() -> CursorCodec:
    return CursorCodec(jwt_secret().encode())


@cache
def event_publisher() -> EventPublisher:
    return EventPublisher(get_settings().event_bus_name)


def reset() -> None:
    """Forgets every cached object (tests and the local runner, after changing configuration)."""
    get_settings.cache_clear()
    for factory in (
        users_table,
        leads_table,
        vendors_table,
        pricing_table,
        returns_table,
        postbacks_table,
        audit_table,
        audit_log,
        stats_table,
        day_buckets,
        business_zone,
        authenticator,
        query_cache,
        cursor_codec,
        event_publisher,
        outbox,
    ):
        factory.cache_clear()


@cache
def outbox() -> Outbox:
    settings = get_settings()
    retry = RetryPolicy(
        grace_seconds=settings.outbox_grace_seconds,
        base_seconds=settings.outbox_retry_base_seconds,
        max_seconds=settings.outbox_retry_max_seconds,
    )
    return Outbox(Table(settings.outbox_table), event_publisher(), retry)
