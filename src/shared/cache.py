"""The query cache: read-through, scoped by the caller's security scope, invalidated per namespace.

Keys look like `crm:q:{namespace}:g{generation}:{scope}:{digest}`. Invalidating a namespace bumps
its generation counter (one INCR, O(1) however many entries exist); entries of older generations
are never read again and expire by TTL. A namespace can also be invalidated for some scopes
only (the lists a changed lead appears in): each scope has a generation of its own, which the key
carries once it has one (`g{generation}.{scope generation}`). The cache fails open: if Redis is
unreachable the loader runs and the request succeeds, and Redis is not retried for a short
back-off so a dead cache does not add a connect timeout to every request.
"""

from __future__ import annotations

import hashlib
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
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


class CacheUnavailable(Exception):
    """The backend could not be reached; callers fall back to the source of truth."""


class InProcessBackend:
    """A bounded, thread-safe TTL map for `crm serve` and for a function with no Redis."""

    def __init__(self, max_entries: int = 10_000, clock: Callable[[], float] = time.monotonic) -> None:
        self._entries: OrderedDict[str, tuple[float, str]] = OrderedDict()
        # Generation counters live apart from the entries and are never evicted: losing one would
        # restart it and make entries of an old generation readable again.
        self._counters: dict[str, int] = {}
        self._max_entries = max_entries
        self._clock = clock
        self._lock = threading.Lock()

    def get_many(self, keys: list[str]) -> list[str | None]:
        now = self._clock()
        values: list[str | None] = []
        with self._lock:
            for key in keys:
                if key in self._counters:
                    values.append(str(self._counters[key]))
                    continue
                entry = self._entries.get(key)
                if entry is None or entry[0] <= now:
                    self._entries.pop(key, None)
                    values.append(None)
                else:
                    self._entries.move_to_end(key)
                    values.append(entry[1])
        return values

    def set(self, key: str, value: str, ttl_seconds: int) -> None:
        with self._lock:
            self._entries[key] = (self._clock() + ttl_seconds, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)

    def incr(self, key: str) -> int:
        with self._lock:
            self._counters[key] = self._counters.get(key, 0) + 1
            return self._counters[key]

    def incr_many(self, keys: list[str]) -> None:
        for key in keys:
            self.incr(key)


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
    ) -> None:
        self.backend = backend
        self.ttl_seconds = ttl_seconds
        # Namespaces whose entries live shorter than `ttl_seconds`: those that changes outside the
        # request path (lead events) refresh by expiry rather than by invalidation.
        self.namespace_ttls = dict(namespace_ttls or {})
        # Called with (namespace, "hit" | "miss" | "error") so the caller can publish metrics.
        self._on_result = on_result or (lambda namespace, result: None)

    def _count(self, namespace: str, result: str) -> None:
        _REQUEST_LOOKUPS.set((*_REQUEST_LOOKUPS.get(), result))
        self._on_result(namespace, result)

    def ttl_of(self, namespace: str) -> int:
        return self.namespace_ttls.get(namespace, self.ttl_seconds)

    @staticmethod
    def entry_key(namespace: str, generation: int, scope: str, params: Any, scope_generation: int = 0) -> str:
        digest = hashlib.sha256(
            simplejson.dumps(params, sort_keys=True, use_decimal=True).encode()
        ).hexdigest()
        version = f"{generation}.{scope_generation}" if scope_generation else str(generation)
        return f"{KEY_PREFIX}:{namespace}:g{version}:{scope}:{digest[:32]}"

    def get_or_load(self, namespace: str, scope: str, params: Any, loader: Callable[[], T]) -> T:
        """Returns the cached value for (namespace, scope, params), or runs `loader` and stores
        its JSON-serialisable result. `scope` is the caller's security scope and is always part
        of the key, so callers that may see different rows never share an entry."""
        if not scope:
            raise ValueError("a cache entry must be scoped to the caller")
        try:
            generation, scope_generation = self._generations(namespace, scope)
            key = self.entry_key(namespace, generation, scope, params, scope_generation)
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
        if not counters:
            return
        try:
            self.backend.incr_many(counters)
        except CacheUnavailable as exc:
            # Entries written before the outage still expire by TTL; nothing else can be done.
            logger.error("cache invalidation failed", extra={"counters": counters, "reason": str(exc)})

    def _generations(self, namespace: str, scope: str) -> tuple[int, int]:
        """The namespace's generation and the scope's own, in one round trip."""
        values = self.backend.get_many(
            [f"{GENERATION_PREFIX}:{namespace}", f"{GENERATION_PREFIX}:{namespace}:{scope}"]
        )
        try:
            namespace_generation, scope_generation = (
                int(value) if value is not None else 0 for value in values
            )
        except ValueError as exc:
            raise CacheUnavailable(f"corrupt generation counter for {namespace!r}") from exc
        return namespace_generation, scope_generation
