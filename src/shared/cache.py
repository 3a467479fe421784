"""The query cache: read-through, scoped by the caller's security scope, invalidated per namespace.

Keys look like `crm:q:{namespace}:g{generation}:{scope}:{digest}`. Invalidating a namespace bumps
its generation counter (one INCR, O(1) however many entries exist); entries of older generations
are never read again and expire by TTL. A namespace can also be invalidated for some scopes
only (the lists a changed lead appears in): each scope has a generation of its own, which the key
carries once it has one (`g{generation}.{scope generation}`). The cache fails open: if Redis is
unreachable the loader runs and the request succeeds, and Redis is not retried for a short
back-off so a dead cache does not add a connect timeout to every request.

An invalidation is never lost silently. One that cannot reach Redis is retried for a short while
(`invalidation_retry_seconds`) before the write is answered; if Redis is still away, the process
owes an epoch bump: every key carries the global epoch (`crm:gen:epoch`, `...e{epoch}` once it is
not 0), the process reads nothing from the cache until it has bumped it, and it bumps it before
its next cached read or invalidation, which makes every entry written before the outage
unreachable. The debt is also recorded in DynamoDB (`OwedEpochRecord`: one item in the outbox
table, written before the write is answered), and the scheduled outbox publisher bumps the epoch
when it finds that record and Redis answers (`QueryCache.pay_recorded_epoch`), so the bump does
not depend on the writing environment ever running again. The guarantee: once Redis is back, no
environment serves an entry older than a write made during the outage for longer than one
publisher period (1 minute), whatever happens to the writing environment. See docs/decisions.md,
"Cache".

Without Redis the cache is off (`DisabledBackend`): every read runs its loader.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any, Protocol, TypeVar, cast

import simplejson

from shared.observability import logger

T = TypeVar("T")

KEY_PREFIX = "crm:q"
# Every generation counter carries one hash tag, so a read of a namespace's and a scope's
# counters together (one MGET) names keys of one hash slot: a Redis cluster, and ElastiCache
# Serverless, refuse a multi-key command across slots (CROSSSLOT).
GENERATION_PREFIX = "{crm}:gen"
# Part of every entry's key: bumped by a process that could not deliver an invalidation, once
# Redis answers it again, so no entry from before the outage is read afterwards.
EPOCH_KEY = f"{GENERATION_PREFIX}:epoch"
INVALIDATION_RETRY_SECONDS = 2.0
INVALIDATION_RETRY_INTERVAL_SECONDS = 0.05


class Namespace(StrEnum):
    """What a cached read is about; a change invalidates each namespace whose reads it moves."""

    LEADS = "leads"
    STATS = "stats"  # the dashboard and analytics
    AGENCIES = "agencies"  # agencies with their performance
    AGENTS = "agents"  # agents with their open leads and conversions
    PRICING = "pricing"
    REPORTS = "reports"


# Every namespace whose reads are computed from the stats day buckets: a change to the buckets
# (an applied lead event, a rebuild) invalidates them all.
BUCKET_NAMESPACES = (Namespace.STATS, Namespace.AGENCIES, Namespace.AGENTS, Namespace.REPORTS)


# What the query cache answered to each read of the current request ("hit", "miss", "error").
_REQUEST_LOOKUPS: ContextVar[tuple[str, ...]] = ContextVar("query_cache_lookups", default=())


def start_request_lookups() -> None:
    """Forgets the lookups of the previous request (called as each request starts)."""
    _REQUEST_LOOKUPS.set(())


def request_cache_status() -> str | None:
    """`hit` when every cached read of the current request was served from the cache, `miss`
    when any had to be loaded, None when the request read nothing through the cache."""
    lookups = _REQUEST_LOOKUPS.get()
    if not lookups:
        return None
    return "hit" if all(result == "hit" for result in lookups) else "miss"


class CacheBackend(Protocol):
    def get_many(self, keys: list[str]) -> list[str | None]: ...

    def set(self, key: str, value: str, ttl_seconds: int) -> None: ...

    def incr_many(self, keys: list[str]) -> None:
        """Adds one to each counter, in one round trip."""
        ...


class OwedEpochRecord(Protocol):
    """The durable record that some environment owes an epoch bump: one record however many
    environments and writes owe it, kept in the source of truth (reachable while Redis is not)."""

    def record(self, owed_since: datetime) -> None:
        """Records (again) that the epoch is owed since `owed_since`; never raises: a write whose
        record fails still keeps its own debt in memory."""
        ...

    def find(self) -> OwedEpoch | None: ...

    def clear(self, owed: OwedEpoch) -> bool:
        """Removes the record `find` returned, unless it has been recorded again since (then that
        later debt stays for the next run). True when it removed it."""
        ...


@dataclass(frozen=True)
class OwedEpoch:
    """A recorded epoch debt: `record_id` changes with every recording, `owed_since` is when the
    environment that recorded it last first owed it."""

    record_id: str
    owed_since: datetime


class CacheUnavailable(Exception):
    """The backend could not be reached; callers fall back to the source of truth."""


class DisabledBackend:
    """The query cache switched off (no Redis configured): it stores nothing, so every read runs
    its loader and is reported as a miss. A cache private to one execution environment would
    serve values that other environments have changed since, so there is none."""

    def get_many(self, keys: list[str]) -> list[str | None]:
        return [None] * len(keys)

    def set(self, key: str, value: str, ttl_seconds: int) -> None:
        return None

    def incr_many(self, keys: list[str]) -> None:
        return None


class RedisBackend:
    """Redis (ElastiCache in AWS). Short timeouts: the cache must never be slower than the table."""

    def __init__(self, url: str, timeout_seconds: float = 0.25, backoff_seconds: float = 5.0) -> None:
        import redis  # imported here so that a function running without Redis never loads it

        self._errors: tuple[type[Exception], ...] = (redis.RedisError, OSError)
        # Only an unreachable server starts the back-off; a command error says nothing about it.
        self._outages: tuple[type[Exception], ...] = (redis.ConnectionError, redis.TimeoutError, OSError)
        self._client = redis.Redis.from_url(
            url,
            socket_connect_timeout=timeout_seconds,
            socket_timeout=timeout_seconds,
            decode_responses=True,
            health_check_interval=30,
        )
        self._backoff_seconds = backoff_seconds
        self._down_until = 0.0

    def _call(self, operation: Callable[[], T], during_backoff: bool = False) -> T:
        if not during_backoff and time.monotonic() < self._down_until:
            raise CacheUnavailable("redis marked down")
        try:
            return operation()
        except self._errors as exc:
            if isinstance(exc, self._outages):
                self._down_until = time.monotonic() + self._backoff_seconds
            raise CacheUnavailable(str(exc)) from exc

    def get_many(self, keys: list[str]) -> list[str | None]:
        return self._call(lambda: cast(list[str | None], self._client.mget(keys)))

    def set(self, key: str, value: str, ttl_seconds: int) -> None:
        self._call(lambda: self._client.set(key, value, ex=ttl_seconds))

    def incr_many(self, keys: list[str]) -> None:
        # Invalidations are always attempted: skipping one would leave stale entries elsewhere.
        def increment() -> None:
            pipeline = self._client.pipeline(transaction=False)
            for key in keys:
                pipeline.incr(key)
            pipeline.execute()

        self._call(increment, during_backoff=True)


class QueryCache:
    def __init__(
        self,
        backend: CacheBackend,
        ttl_seconds: int = 300,
        on_result: Callable[[str, str], None] | None = None,
        namespace_ttls: Mapping[str, int] | None = None,
        invalidation_retry_seconds: float = INVALIDATION_RETRY_SECONDS,
        owed_record: OwedEpochRecord | None = None,
    ) -> None:
        self.backend = backend
        self.ttl_seconds = ttl_seconds
        # Namespaces whose entries live shorter than `ttl_seconds`: those that changes outside the
        # request path (lead events) refresh by expiry rather than by invalidation.
        self.namespace_ttls = dict(namespace_ttls or {})
        # Called with (namespace, "hit" | "miss" | "error") so the caller can publish metrics.
        self._on_result = on_result or (lambda namespace, result: None)
        self.invalidation_retry_seconds = invalidation_retry_seconds
        # True from an invalidation that never reached Redis until this process has bumped the
        # epoch: meanwhile it reads nothing from the cache (its own entries may be stale).
        self.epoch_owed = False
        self._owed_since: datetime | None = None
        # Where a lost invalidation is recorded for the scheduled outbox publisher to make good.
        self._owed_record = owed_record

    def _count(self, namespace: str, result: str) -> None:
        _REQUEST_LOOKUPS.set((*_REQUEST_LOOKUPS.get(), result))
        self._on_result(namespace, result)

    def ttl_of(self, namespace: str) -> int:
        return self.namespace_ttls.get(namespace, self.ttl_seconds)

    @staticmethod
    def entry_key(
        namespace: str, generation: int, scope: str, params: Any, scope_generation: int = 0, epoch: int = 0
    ) -> str:
        digest = hashlib.sha256(
            simplejson.dumps(params, sort_keys=True, use_decimal=True).encode()
        ).hexdigest()
        version = f"{generation}.{scope_generation}" if scope_generation else str(generation)
        if epoch:
            version = f"{version}e{epoch}"
        return f"{KEY_PREFIX}:{namespace}:g{version}:{scope}:{digest[:32]}"

    def get_or_load(self, namespace: str, scope: str, params: Any, loader: Callable[[], T]) -> T:
        """Returns the cached value for (namespace, scope, params), or runs `loader` and stores
        its JSON-serialisable result. `scope` is the caller's security scope and is always part
        of the key, so callers that may see different rows never share an entry."""
        if not scope:
            raise ValueError("a cache entry must be scoped to the caller")
        try:
            key = self._current_key(namespace, scope, params)
            cached = self.backend.get_many([key])[0]
        except CacheUnavailable as exc:
            logger.warning(
                "cache unavailable, reading through", extra={"namespace": namespace, "reason": str(exc)}
            )
            self._count(namespace, "error")
            return loader()
        if cached is not None:
            self._count(namespace, "hit")
            return simplejson.loads(cached, use_decimal=True)
        value = loader()
        try:
            serialised = simplejson.dumps(value, use_decimal=True)
        except TypeError:
            logger.exception("cache value is not JSON; not cached", extra={"namespace": namespace})
            self._count(namespace, "error")
            return value
        try:
            self.backend.set(key, serialised, self.ttl_of(namespace))
        except CacheUnavailable as exc:
            logger.warning("cache write skipped", extra={"namespace": namespace, "reason": str(exc)})
            self._count(namespace, "error")
        else:
            self._count(namespace, "miss")
        # A miss returns what a hit would, so callers never see two shapes of one value.
        return simplejson.loads(serialised, use_decimal=True)

    def invalidate(self, namespace: str, scopes: Iterable[str] | None = None) -> None:
        """Makes entries of the namespace unreachable: of every scope, or of `scopes` only. One
        round trip either way."""
        if scopes is None:
            self._bump([f"{GENERATION_PREFIX}:{namespace}"])
        else:
            self._bump([f"{GENERATION_PREFIX}:{namespace}:{scope}" for scope in sorted(set(scopes))])

    def invalidate_namespaces(self, namespaces: Iterable[str]) -> None:
        """Makes every entry of each namespace unreachable, in one round trip."""
        self._bump([f"{GENERATION_PREFIX}:{namespace}" for namespace in namespaces])

    def _bump(self, counters: list[str]) -> None:
        """Delivers an invalidation, trying again for `invalidation_retry_seconds` while Redis
        is unreachable. When it still cannot, the process owes an epoch bump, which invalidates
        this change with every other; a process that already owes one only tries to pay it.
        Each invalidation lost this way is recorded (`OwedEpochRecord`) before returning, so the
        bump is made even if this process never runs again."""
        if not counters:
            return
        if self.epoch_owed:
            if not self._pay_epoch():
                self._record_owed()
            return
        deadline = time.monotonic() + self.invalidation_retry_seconds
        while True:
            try:
                self.backend.incr_many(counters)
                return
            except CacheUnavailable as exc:
                if time.monotonic() + INVALIDATION_RETRY_INTERVAL_SECONDS >= deadline:
                    self.epoch_owed = True
                    self._owed_since = datetime.now(UTC)
                    logger.error(
                        "cache invalidation failed; the cache epoch will be bumped when Redis answers",
                        extra={"counters": counters, "reason": str(exc)},
                    )
                    self._record_owed()
                    return
            time.sleep(INVALIDATION_RETRY_INTERVAL_SECONDS)

    def _record_owed(self) -> None:
        # Recorded again for each lost invalidation: the publisher may have paid and cleared an
        # earlier record while this process still could not reach Redis.
        if self._owed_record is not None and self._owed_since is not None:
            self._owed_record.record(self._owed_since)

    def _pay_epoch(self) -> bool:
        """Bumps the epoch this process owes, if Redis answers; True when it did."""
        try:
            self.backend.incr_many([EPOCH_KEY])
        except CacheUnavailable as exc:
            logger.warning("cache epoch still owed", extra={"reason": str(exc)})
            return False
        self.epoch_owed = False
        self._owed_since = None
        logger.info("cache epoch bumped after a lost invalidation")
        return True

    def pay_recorded_epoch(self) -> bool:
        """Bumps the epoch if an environment recorded that it owes it (`OwedEpochRecord`) and
        Redis answers, then clears the record; True when it bumped it. The scheduled outbox
        publisher runs this every minute: the debt is paid even if the environment that lost the
        invalidation never runs again. A record left by an environment that has paid its debt
        itself since costs one more bump (the whole cache reloads once more), never a stale read."""
        if self._owed_record is None:
            return False
        owed = self._owed_record.find()
        if owed is None:
            return False
        try:
            self.backend.incr_many([EPOCH_KEY])
        except CacheUnavailable as exc:
            logger.warning(
                "recorded cache epoch still owed",
                extra={"owed_since": owed.owed_since.isoformat(), "reason": str(exc)},
            )
            return False
        cleared = self._owed_record.clear(owed)
        logger.info(
            "cache epoch bumped for an invalidation lost in an environment",
            extra={"owed_since": owed.owed_since.isoformat(), "record_cleared": cleared},
        )
        return True

    def _current_key(self, namespace: str, scope: str, params: Any) -> str:
        """The key of the entry for these params now, in one round trip (two after an outage
        in which this process lost an invalidation: the epoch it owes is bumped first, and only
        once Redis answers reads again, so a dead Redis costs no extra timeout)."""
        counters = self._counters(namespace, scope)
        if self.epoch_owed:
            self._pay_epoch()
            if self.epoch_owed:
                raise CacheUnavailable("an invalidation is still owed")
            counters = self._counters(namespace, scope)
        epoch, generation, scope_generation = counters
        return self.entry_key(namespace, generation, scope, params, scope_generation, epoch)

    def _counters(self, namespace: str, scope: str) -> tuple[int, int, int]:
        """The epoch, the namespace's generation and the scope's own, in one round trip."""
        values = self.backend.get_many(
            [EPOCH_KEY, f"{GENERATION_PREFIX}:{namespace}", f"{GENERATION_PREFIX}:{namespace}:{scope}"]
        )
        try:
            epoch, namespace_generation, scope_generation = (
                int(value) if value is not None else 0 for value in values
            )
        except ValueError as exc:
            raise CacheUnavailable(f"corrupt generation counter for {namespace!r}") from exc
        return epoch, namespace_generation, scope_generation
