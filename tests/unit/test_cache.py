"""Unit tests of the query cache on an in-memory stand-in for Redis: no network, no sleeps (a fake
clock drives TTL expiry)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from redis.crc import key_slot

from shared.cache import (
    BUCKET_NAMESPACES,
    EPOCH_KEY,
    GENERATION_PREFIX,
    KEY_PREFIX,
    CacheUnavailable,
    DisabledBackend,
    Namespace,
    OwedEpoch,
    QueryCache,
)
from tests.helpers import FakeClock
from tests.unit.memory_cache import MemoryBackend

NAMESPACE = "leads"
SCOPE = "vendor:ACME"
PARAMS: dict[str, Any] = {"filters": {"state": "TX"}, "limit": 25, "cursor": None}


class CountingLoader:
    """A loader that records how often it ran and returns a fresh value each time (or a fixed one)."""

    def __init__(self, value: Any = None) -> None:
        self.calls = 0
        self._value = value

    def __call__(self) -> Any:
        self.calls += 1
        if self._value is not None:
            return self._value
        return {"version": self.calls}


class RecordingBackend:
    """Wraps a real backend and records every call, to count operations."""

    def __init__(self, inner: MemoryBackend) -> None:
        self.inner = inner
        self.calls: list[tuple[str, Any]] = []

    def get_many(self, keys: list[str]) -> list[str | None]:
        self.calls.append(("get_many", list(keys)))
        return self.inner.get_many(keys)

    def set(self, key: str, value: str, ttl_seconds: int) -> None:
        self.calls.append(("set", key))
        self.inner.set(key, value, ttl_seconds)

    def incr_many(self, keys: list[str]) -> None:
        self.calls.append(("incr_many", list(keys)))
        self.inner.incr_many(keys)

    def count(self, operation: str) -> int:
        return sum(1 for name, _ in self.calls if name == operation)


class UnavailableBackend:
    """A backend whose every operation fails as an unreachable Redis does."""

    def get_many(self, keys: list[str]) -> list[str | None]:
        raise CacheUnavailable("connection refused")

    def set(self, key: str, value: str, ttl_seconds: int) -> None:
        raise CacheUnavailable("connection refused")

    def incr_many(self, keys: list[str]) -> None:
        raise CacheUnavailable("connection refused")


class ReadOnlyBackend(MemoryBackend):
    """Reads work, writes fail: a replica-only or out-of-memory Redis."""

    def set(self, key: str, value: str, ttl_seconds: int) -> None:
        raise CacheUnavailable("OOM command not allowed")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def backend(clock: FakeClock) -> MemoryBackend:
    return MemoryBackend(clock=clock)


@pytest.fixture
def results() -> list[tuple[str, str]]:
    return []


@pytest.fixture
def cache(backend: MemoryBackend, results: list[tuple[str, str]]) -> QueryCache:
    return QueryCache(
        backend, ttl_seconds=60, on_result=lambda namespace, result: results.append((namespace, result))
    )


def cached_keys(backend: MemoryBackend) -> list[str]:
    """Entry keys (not generation counters) currently held by the backend."""
    return [key for key in backend.entries if key.startswith(f"{KEY_PREFIX}:")]


# --- read-through -------------------------------------------------------------------------------


def test_first_read_runs_the_loader_and_second_read_is_served_from_the_cache(cache: QueryCache) -> None:
    # Given
    loader = CountingLoader()

    # When
    first = cache.get_or_load(NAMESPACE, SCOPE, PARAMS, loader)
    second = cache.get_or_load(NAMESPACE, SCOPE, PARAMS, loader)

    # Then
    assert loader.calls == 1
    assert first == {"version": 1}
    assert second == first


def test_a_hit_is_served_even_when_the_params_dict_is_built_in_another_order(cache: QueryCache) -> None:
    # Given
    loader = CountingLoader()
    cache.get_or_load(NAMESPACE, SCOPE, {"a": 1, "b": {"x": 1, "y": 2}}, loader)

    # When
    value = cache.get_or_load(NAMESPACE, SCOPE, {"b": {"y": 2, "x": 1}, "a": 1}, loader)

    # Then
    assert loader.calls == 1
    assert value == {"version": 1}


def test_different_params_are_different_entries(cache: QueryCache) -> None:
    # Given
    loader = CountingLoader()
    cache.get_or_load(NAMESPACE, SCOPE, {"limit": 25}, loader)

    # When
    value = cache.get_or_load(NAMESPACE, SCOPE, {"limit": 50}, loader)

    # Then
    assert loader.calls == 2
    assert value == {"version": 2}


def test_a_none_result_is_cached_like_any_other_value(cache: QueryCache) -> None:
    # Given
    calls: list[int] = []

    def loader() -> None:
        calls.append(1)

    # When
    first = cache.get_or_load(NAMESPACE, SCOPE, PARAMS, loader)
    second = cache.get_or_load(NAMESPACE, SCOPE, PARAMS, loader)

    # Then
    assert first is None
    assert second is None
    assert len(calls) == 1


def test_a_loader_error_propagates_and_nothing_is_cached(cache: QueryCache, backend: MemoryBackend) -> None:
    # Given
    def failing_loader() -> dict[str, Any]:
        raise RuntimeError("table unavailable")

    # When
    with pytest.raises(RuntimeError, match="table unavailable"):
        cache.get_or_load(NAMESPACE, SCOPE, PARAMS, failing_loader)

    # Then
    assert cached_keys(backend) == []
    loader = CountingLoader()
    assert cache.get_or_load(NAMESPACE, SCOPE, PARAMS, loader) == {"version": 1}
    assert loader.calls == 1


def test_entry_key_has_the_documented_layout() -> None:
    # Given / When
    key = QueryCache.entry_key(NAMESPACE, 3, SCOPE, PARAMS)

    # Then
    prefix = f"{KEY_PREFIX}:{NAMESPACE}:g3:{SCOPE}:"
    assert key.startswith(prefix)
    digest = key.removeprefix(prefix)
    assert len(digest) == 32
    assert all(character in "0123456789abcdef" for character in digest)


# --- TTL ----------------------------------------------------------------------------------------


def test_an_entry_is_served_until_its_ttl_and_reloaded_after_it(cache: QueryCache, clock: FakeClock) -> None:
    # Given
    loader = CountingLoader()
    cache.get_or_load(NAMESPACE, SCOPE, PARAMS, loader)

    # When
    clock.advance(59.9)
    just_before_expiry = cache.get_or_load(NAMESPACE, SCOPE, PARAMS, loader)
    clock.advance(0.1)
    at_expiry = cache.get_or_load(NAMESPACE, SCOPE, PARAMS, loader)

    # Then
    assert just_before_expiry == {"version": 1}
    assert at_expiry == {"version": 2}
    assert loader.calls == 2


def test_a_namespace_with_a_shorter_ttl_is_reloaded_after_it_and_others_are_not(
    backend: MemoryBackend, clock: FakeClock
) -> None:
    # Given the stats namespaces kept for a 10 s freshness interval, the others for 60 s
    cache = QueryCache(backend, ttl_seconds=60, namespace_ttls=dict.fromkeys(BUCKET_NAMESPACES, 10))
    stats, leads = CountingLoader(), CountingLoader()
    for namespace, loader in ((Namespace.STATS, stats), (Namespace.LEADS, leads)):
        cache.get_or_load(namespace, SCOPE, PARAMS, loader)
    # When 10 s pass, with reads every second
    for _ in range(10):
        clock.advance(1)
        cache.get_or_load(Namespace.STATS, SCOPE, PARAMS, stats)
        cache.get_or_load(Namespace.LEADS, SCOPE, PARAMS, leads)
    # Then the stats were computed once more (once per interval), the lead list never again
    assert (stats.calls, leads.calls) == (2, 1)
    assert cache.ttl_of(Namespace.REPORTS) == 10
    assert cache.ttl_of(Namespace.PRICING) == 60


# --- invalidation -------------------------------------------------------------------------------


def test_invalidating_several_scopes_or_namespaces_is_one_round_trip() -> None:
    # Given
    backend = RecordingBackend(MemoryBackend())
    cache = QueryCache(backend, ttl_seconds=60)
    # When a lead change invalidates its scopes, and a stats change its namespaces
    cache.invalidate(NAMESPACE, ["vendor:ACME", "all", "agent:u-1", "all"])
    cache.invalidate_namespaces(["stats", "reports"])
    # Then each is one call to the backend, naming every counter once
    assert backend.calls == [
        (
            "incr_many",
            [f"{GENERATION_PREFIX}:{NAMESPACE}:{scope}" for scope in ("agent:u-1", "all", "vendor:ACME")],
        ),
        ("incr_many", [f"{GENERATION_PREFIX}:stats", f"{GENERATION_PREFIX}:reports"]),
    ]


def test_every_multi_key_read_names_keys_of_one_hash_slot() -> None:
    # Given a cache whose backend records what it is asked
    backend = RecordingBackend(MemoryBackend())
    cache = QueryCache(backend, ttl_seconds=60)
    # When reads of two namespaces and scopes run, before and after invalidations
    for namespace, scope in ((NAMESPACE, "vendor:ACME"), ("stats", "all")):
        cache.get_or_load(namespace, scope, {"page": 1}, lambda: {"rows": []})
        cache.invalidate(namespace, [scope])
        cache.get_or_load(namespace, scope, {"page": 1}, lambda: {"rows": []})
    # Then each multi-key read could run on a Redis cluster (ElastiCache Serverless)
    reads = [keys for name, keys in backend.calls if name == "get_many" and len(keys) > 1]
    assert reads
    for keys in reads:
        assert len({key_slot(key.encode()) for key in keys}) == 1, keys


def test_invalidating_a_namespace_hides_entries_of_every_scope_with_one_incr(clock: FakeClock) -> None:
    # Given
    backend = RecordingBackend(MemoryBackend(clock=clock))
    cache = QueryCache(backend, ttl_seconds=60)
    scopes = ["all", "vendor:ACME", "vendor:GLOBEX", "agent:u-1", "agent:u-2"]
    loaders = {scope: CountingLoader() for scope in scopes}
    for scope in scopes:
        for page in range(3):
            cache.get_or_load(NAMESPACE, scope, {"page": page}, loaders[scope])
    backend.calls.clear()

    # When
    cache.invalidate(NAMESPACE)

    # Then: one O(1) operation, whatever the number of entries
    assert backend.calls == [("incr_many", [f"{GENERATION_PREFIX}:{NAMESPACE}"])]
    for scope in scopes:
        before = loaders[scope].calls
        cache.get_or_load(NAMESPACE, scope, {"page": 0}, loaders[scope])
        assert loaders[scope].calls == before + 1, scope


def test_invalidating_a_namespace_serves_the_reloaded_value_afterwards(cache: QueryCache) -> None:
    # Given
    loader = CountingLoader()
    cache.get_or_load(NAMESPACE, SCOPE, PARAMS, loader)

    # When
    cache.invalidate(NAMESPACE)
    reloaded = cache.get_or_load(NAMESPACE, SCOPE, PARAMS, loader)
    cached_again = cache.get_or_load(NAMESPACE, SCOPE, PARAMS, loader)

    # Then
    assert reloaded == {"version": 2}
    assert cached_again == {"version": 2}
    assert loader.calls == 2


def test_each_invalidation_moves_to_a_new_generation(cache: QueryCache, backend: MemoryBackend) -> None:
    # Given
    generation_key = f"{GENERATION_PREFIX}:{NAMESPACE}"
    assert backend.get_many([generation_key]) == [None]

    # When
    cache.invalidate(NAMESPACE)
    cache.invalidate(NAMESPACE)
    cache.invalidate(NAMESPACE)

    # Then
    assert backend.get_many([generation_key]) == ["3"]
    cache.get_or_load(NAMESPACE, SCOPE, PARAMS, CountingLoader())
    assert cached_keys(backend) == [QueryCache.entry_key(NAMESPACE, 3, SCOPE, PARAMS)]


def test_invalidating_one_namespace_leaves_other_namespaces_cached(cache: QueryCache) -> None:
    # Given
    leads_loader = CountingLoader()
    stats_loader = CountingLoader()
    cache.get_or_load("leads", SCOPE, PARAMS, leads_loader)
    cache.get_or_load("stats", SCOPE, PARAMS, stats_loader)

    # When
    cache.invalidate("stats")
    cache.get_or_load("leads", SCOPE, PARAMS, leads_loader)
    cache.get_or_load("stats", SCOPE, PARAMS, stats_loader)

    # Then
    assert leads_loader.calls == 1
    assert stats_loader.calls == 2


# --- scope --------------------------------------------------------------------------------------


def test_the_same_params_in_two_scopes_are_two_entries(cache: QueryCache, backend: MemoryBackend) -> None:
    # Given
    acme_loader = CountingLoader({"data": ["acme lead"]})
    globex_loader = CountingLoader({"data": ["globex lead"]})

    # When
    acme = cache.get_or_load(NAMESPACE, "vendor:ACME", PARAMS, acme_loader)
    globex = cache.get_or_load(NAMESPACE, "vendor:GLOBEX", PARAMS, globex_loader)
    acme_again = cache.get_or_load(NAMESPACE, "vendor:ACME", PARAMS, acme_loader)
    globex_again = cache.get_or_load(NAMESPACE, "vendor:GLOBEX", PARAMS, globex_loader)

    # Then
    assert acme_loader.calls == 1
    assert globex_loader.calls == 1
    assert acme == acme_again == {"data": ["acme lead"]}
    assert globex == globex_again == {"data": ["globex lead"]}
    assert acme != globex
    assert sorted(cached_keys(backend)) == sorted(
        [
            QueryCache.entry_key(NAMESPACE, 0, "vendor:ACME", PARAMS),
            QueryCache.entry_key(NAMESPACE, 0, "vendor:GLOBEX", PARAMS),
        ]
    )


@pytest.mark.parametrize("scope", ["", None])
def test_an_unscoped_read_is_rejected_before_touching_the_cache_or_the_loader(
    clock: FakeClock, scope: Any
) -> None:
    # Given
    backend = RecordingBackend(MemoryBackend(clock=clock))
    cache = QueryCache(backend)
    loader = CountingLoader()

    # When / Then
    with pytest.raises(ValueError, match="scoped"):
        cache.get_or_load(NAMESPACE, scope, PARAMS, loader)
    assert loader.calls == 0
    assert backend.calls == []


# --- serialisation ------------------------------------------------------------------------------


def test_a_decimal_survives_a_round_trip_through_the_cache(cache: QueryCache) -> None:
    # Given
    lead = {"lead_id": "01J0", "lead_value": Decimal("35.00"), "history": [Decimal("0.10")]}
    cache.get_or_load(NAMESPACE, SCOPE, PARAMS, lambda: lead)

    # When
    cached = cache.get_or_load(NAMESPACE, SCOPE, PARAMS, CountingLoader({"not": "used"}))

    # Then
    assert cached == lead
    assert isinstance(cached["lead_value"], Decimal)
    assert str(cached["lead_value"]) == "35.00"
    assert str(cached["history"][0]) == "0.10"


def test_decimal_params_are_part_of_the_key(cache: QueryCache) -> None:
    # Given
    loader = CountingLoader()
    cache.get_or_load(NAMESPACE, SCOPE, {"min_value": Decimal("35.00")}, loader)

    # When
    cache.get_or_load(NAMESPACE, SCOPE, {"min_value": Decimal("35.00")}, loader)
    cache.get_or_load(NAMESPACE, SCOPE, {"min_value": Decimal("40.00")}, loader)

    # Then
    assert loader.calls == 2


# --- metrics callback ---------------------------------------------------------------------------


def test_on_result_reports_a_miss_then_a_hit(cache: QueryCache, results: list[tuple[str, str]]) -> None:
    # Given
    loader = CountingLoader()

    # When
    cache.get_or_load(NAMESPACE, SCOPE, PARAMS, loader)
    cache.get_or_load(NAMESPACE, SCOPE, PARAMS, loader)

    # Then
    assert results == [(NAMESPACE, "miss"), (NAMESPACE, "hit")]


def test_a_query_cache_without_on_result_works() -> None:
    # Given
    cache = QueryCache(MemoryBackend())

    # When
    value = cache.get_or_load(NAMESPACE, SCOPE, PARAMS, lambda: [1, 2])

    # Then
    assert value == [1, 2]


# --- failing open -------------------------------------------------------------------------------


def test_an_unavailable_backend_fails_open_to_the_loader(results: list[tuple[str, str]]) -> None:
    # Given
    cache = QueryCache(
        UnavailableBackend(), on_result=lambda namespace, result: results.append((namespace, result))
    )
    loader = CountingLoader({"data": ["from the table"]})

    # When
    first = cache.get_or_load(NAMESPACE, SCOPE, PARAMS, loader)
    second = cache.get_or_load(NAMESPACE, SCOPE, PARAMS, loader)

    # Then
    assert first == second == {"data": ["from the table"]}
    assert loader.calls == 2
    assert results == [(NAMESPACE, "error"), (NAMESPACE, "error")]


def test_an_entry_read_failing_after_the_generation_read_fails_open(
    results: list[tuple[str, str]],
) -> None:
    # Given: the generation read works, the entry read does not
    class FlakyBackend(MemoryBackend):
        def get_many(self, keys: list[str]) -> list[str | None]:
            if keys[0].startswith(f"{KEY_PREFIX}:"):
                raise CacheUnavailable("timeout reading from socket")
            return super().get_many(keys)

    cache = QueryCache(
        FlakyBackend(), on_result=lambda namespace, result: results.append((namespace, result))
    )

    # When
    value = cache.get_or_load(NAMESPACE, SCOPE, PARAMS, CountingLoader({"ok": True}))

    # Then
    assert value == {"ok": True}
    assert results == [(NAMESPACE, "error")]


def test_invalidating_with_an_unavailable_backend_does_not_raise() -> None:
    # Given
    cache = QueryCache(UnavailableBackend(), invalidation_retry_seconds=0)

    # When / Then (no exception)
    cache.invalidate(NAMESPACE)


def test_the_loader_error_propagates_even_when_the_backend_is_unavailable() -> None:
    # Given
    cache = QueryCache(UnavailableBackend())

    def failing_loader() -> None:
        raise LookupError("lead not found")

    # When / Then
    with pytest.raises(LookupError, match="lead not found"):
        cache.get_or_load(NAMESPACE, SCOPE, PARAMS, failing_loader)


def test_a_failed_write_still_returns_the_loaded_value(results: list[tuple[str, str]]) -> None:
    # Given
    cache = QueryCache(
        ReadOnlyBackend(), on_result=lambda namespace, result: results.append((namespace, result))
    )
    loader = CountingLoader()

    # When
    first = cache.get_or_load(NAMESPACE, SCOPE, PARAMS, loader)
    second = cache.get_or_load(NAMESPACE, SCOPE, PARAMS, loader)

    # Then: each read is served by the loader, nothing raised
    assert first == {"version": 1}
    assert second == {"version": 2}
    assert loader.calls == 2
    assert results == [(NAMESPACE, "error"), (NAMESPACE, "error")]


def test_a_miss_returns_the_same_shape_as_a_later_hit(clock: FakeClock) -> None:
    # Given a loader whose value changes form through JSON (tuple, float, int key)
    cache = QueryCache(MemoryBackend(clock=clock))
    value = {"t": (1, 2), "v": 0.5, 1: "x"}
    # When
    miss = cache.get_or_load(NAMESPACE, SCOPE, PARAMS, lambda: value)
    hit = cache.get_or_load(NAMESPACE, SCOPE, PARAMS, lambda: value)
    # Then
    assert miss == hit == {"t": [1, 2], "v": Decimal("0.5"), "1": "x"}


def test_a_value_that_is_not_json_is_returned_uncached() -> None:
    results: list[tuple[str, str]] = []
    cache = QueryCache(MemoryBackend(), on_result=lambda ns, result: results.append((ns, result)))
    marker = object()
    assert cache.get_or_load(NAMESPACE, SCOPE, PARAMS, lambda: marker) is marker
    assert results == [(NAMESPACE, "error")]


def test_a_corrupt_generation_counter_fails_open() -> None:
    # Given a generation counter that is not a number
    backend = MemoryBackend()
    backend.set(f"{GENERATION_PREFIX}:{NAMESPACE}", "not-a-number", 60)
    backend.counters.clear()
    cache = QueryCache(backend)
    # When / Then the loader serves the read
    assert cache.get_or_load(NAMESPACE, SCOPE, PARAMS, lambda: {"ok": True}) == {"ok": True}


# --- no Redis: the cache is off -----------------------------------------------------------------


def test_with_the_cache_off_every_read_runs_its_loader_and_is_a_miss(results: list[tuple[str, str]]) -> None:
    # Given
    cache = QueryCache(DisabledBackend(), on_result=lambda ns, result: results.append((ns, result)))
    loader = CountingLoader()
    # When the same read is made twice, around an invalidation
    first = cache.get_or_load(NAMESPACE, SCOPE, PARAMS, loader)
    cache.invalidate(NAMESPACE)
    second = cache.get_or_load(NAMESPACE, SCOPE, PARAMS, loader)
    # Then each read was loaded afresh and said so
    assert (first, second) == ({"version": 1}, {"version": 2})
    assert results == [(NAMESPACE, "miss"), (NAMESPACE, "miss")]
    assert not cache.epoch_owed


# --- an invalidation Redis does not take ----------------------------------------------------------


class UnreliableIncrements(MemoryBackend):
    """Reads and writes work; the next `failures` increments fail as an unreachable Redis does."""

    def __init__(self, failures: int) -> None:
        super().__init__()
        self.failures = failures
        self.attempts: list[list[str]] = []

    def incr_many(self, keys: list[str]) -> None:
        self.attempts.append(list(keys))
        if self.failures > 0:
            self.failures -= 1
            raise CacheUnavailable("timeout writing to socket")
        super().incr_many(keys)


def test_a_failed_invalidation_is_retried_before_the_write_is_answered() -> None:
    # Given an entry, and a Redis that refuses the next two increments
    backend = UnreliableIncrements(failures=0)
    cache = QueryCache(backend, invalidation_retry_seconds=30)
    cache.get_or_load(NAMESPACE, SCOPE, PARAMS, lambda: {"version": 1})
    backend.failures = 2
    # When the namespace is invalidated
    cache.invalidate(NAMESPACE)
    # Then it was delivered on the third attempt, and the next read loads the new value
    assert backend.attempts == [[f"{GENERATION_PREFIX}:{NAMESPACE}"]] * 3
    assert not cache.epoch_owed
    assert cache.get_or_load(NAMESPACE, SCOPE, PARAMS, lambda: {"version": 2}) == {"version": 2}


def test_a_lost_invalidation_is_made_good_by_an_epoch_bump_every_process_sees() -> None:
    # Given two processes sharing one Redis, each having read an entry
    backend = UnreliableIncrements(failures=0)
    writer = QueryCache(backend, invalidation_retry_seconds=0)
    reader = QueryCache(backend)
    for cache in (writer, reader):
        cache.get_or_load(NAMESPACE, SCOPE, PARAMS, lambda: {"version": 1})
    # When the writer's invalidation cannot reach Redis
    backend.failures = 1
    writer.invalidate(NAMESPACE)
    # Then the writer owes an epoch bump, and meanwhile reads nothing from the cache
    assert writer.epoch_owed
    backend.failures = 1
    assert writer.get_or_load(NAMESPACE, SCOPE, PARAMS, lambda: {"version": 2}) == {"version": 2}
    assert writer.epoch_owed
    # And once Redis takes it, the epoch moves on: no process reads an entry from before
    assert writer.get_or_load(NAMESPACE, SCOPE, PARAMS, lambda: {"version": 2}) == {"version": 2}
    assert not writer.epoch_owed
    assert backend.counters[EPOCH_KEY] == 1
    assert reader.get_or_load(NAMESPACE, SCOPE, PARAMS, lambda: {"version": 2}) == {"version": 2}
    assert QueryCache.entry_key(NAMESPACE, 0, SCOPE, PARAMS, epoch=1) in backend.entries


def test_a_process_that_owes_an_epoch_bump_does_not_wait_on_later_invalidations() -> None:
    # Given a process whose invalidation was lost
    backend = UnreliableIncrements(failures=1)
    cache = QueryCache(backend, invalidation_retry_seconds=0)
    cache.invalidate(NAMESPACE)
    cache.invalidation_retry_seconds = 30
    # When it invalidates again while Redis is still away
    backend.failures = 1
    cache.invalidate("stats")
    # Then it tried once, to pay the epoch it owes (which covers this change too), and still owes it
    assert backend.attempts == [[f"{GENERATION_PREFIX}:{NAMESPACE}"], [EPOCH_KEY]]
    assert cache.epoch_owed
    # And its next invalidation that reaches Redis pays it
    cache.invalidate("stats")
    assert backend.attempts[-1] == [EPOCH_KEY]
    assert not cache.epoch_owed


# --- the owed epoch recorded for the outbox publisher ---------------------------------------------


class MemoryOwedRecord:
    """An in-memory stand-in for the owed-epoch item of the outbox table: each recording replaces
    it with a new id, and clearing removes it only if it is still the one that was found."""

    def __init__(self) -> None:
        self.current: OwedEpoch | None = None
        self.recordings = 0

    def record(self, owed_since: datetime) -> None:
        self.recordings += 1
        self.current = OwedEpoch(f"record-{self.recordings}", owed_since)

    def find(self) -> OwedEpoch | None:
        return self.current

    def clear(self, owed: OwedEpoch) -> bool:
        if self.current != owed:
            return False
        self.current = None
        return True


def test_a_lost_invalidation_is_recorded_and_the_publisher_bumps_the_epoch_without_the_writer() -> None:
    # Given a writer and a reader sharing one Redis and one record, and an entry the reader cached
    backend = UnreliableIncrements(failures=0)
    record = MemoryOwedRecord()
    writer = QueryCache(backend, invalidation_retry_seconds=0, owed_record=record)
    reader = QueryCache(backend, owed_record=record)
    publisher = QueryCache(backend, owed_record=record)
    reader.get_or_load(NAMESPACE, SCOPE, PARAMS, lambda: {"version": 1})
    # When the writer's invalidation cannot reach Redis (and the writer is never heard of again)
    backend.failures = 1
    writer.invalidate(NAMESPACE)
    # Then the debt is recorded before the write is answered
    assert record.current is not None
    assert record.current.owed_since.tzinfo is not None
    assert reader.get_or_load(NAMESPACE, SCOPE, PARAMS, lambda: {"version": 2}) == {"version": 1}
    # When the publisher runs once Redis is back
    assert publisher.pay_recorded_epoch()
    # Then the epoch moved on, the record is gone, and the reader loads the change
    assert backend.counters[EPOCH_KEY] == 1
    assert record.current is None
    assert reader.get_or_load(NAMESPACE, SCOPE, PARAMS, lambda: {"version": 2}) == {"version": 2}
    # And a run with nothing recorded bumps nothing
    assert not publisher.pay_recorded_epoch()
    assert backend.counters[EPOCH_KEY] == 1


def test_the_publisher_keeps_the_record_while_redis_is_away() -> None:
    # Given a recorded debt, and a Redis the publisher cannot reach either
    record = MemoryOwedRecord()
    record.record(datetime.now(UTC))
    publisher = QueryCache(UnavailableBackend(), owed_record=record)
    # When the publisher runs
    bumped = publisher.pay_recorded_epoch()
    # Then it bumped nothing and the record waits for its next run
    assert not bumped
    assert record.current is not None


class RecordingAgainDuringTheBump(UnreliableIncrements):
    """A Redis on which, while the publisher's epoch bump is in flight, another environment loses
    an invalidation and records its debt again."""

    def __init__(self, record: MemoryOwedRecord) -> None:
        super().__init__(failures=0)
        self._record = record

    def incr_many(self, keys: list[str]) -> None:
        super().incr_many(keys)
        if keys == [EPOCH_KEY] and self._record.recordings == 1:
            self._record.record(datetime.now(UTC))


def test_a_debt_recorded_while_the_publisher_bumps_the_epoch_stays_for_its_next_run() -> None:
    # Given a recorded debt, recorded again while the publisher bumps the epoch
    record = MemoryOwedRecord()
    record.record(datetime.now(UTC))
    backend = RecordingAgainDuringTheBump(record)
    publisher = QueryCache(backend, owed_record=record)
    # When the publisher runs twice
    first = publisher.pay_recorded_epoch()
    kept = record.current
    second = publisher.pay_recorded_epoch()
    # Then the first run left the newer record, and the second paid it too
    assert first
    assert second
    assert kept is not None
    assert kept.record_id == "record-2"
    assert backend.counters[EPOCH_KEY] == 2
    assert record.current is None


def test_each_invalidation_lost_while_the_epoch_is_owed_is_recorded_again() -> None:
    # Given a process whose invalidation was lost and recorded, and a publisher that has since
    # paid and cleared that record (Redis answers the publisher, not this process)
    backend = UnreliableIncrements(failures=1)
    record = MemoryOwedRecord()
    cache = QueryCache(backend, invalidation_retry_seconds=0, owed_record=record)
    cache.invalidate(NAMESPACE)
    first = record.current
    assert first is not None
    assert QueryCache(backend, owed_record=record).pay_recorded_epoch()
    # When it loses another invalidation
    backend.failures = 1
    cache.invalidate(NAMESPACE)
    # Then that one is recorded again, owed since the first loss
    assert record.current is not None
    assert record.current.record_id != first.record_id
    assert record.current.owed_since == first.owed_since
    # And once this process pays the epoch itself, a later invalidation records nothing
    cache.invalidate(NAMESPACE)
    assert not cache.epoch_owed
    recordings = record.recordings
    cache.invalidate(NAMESPACE)
    assert record.recordings == recordings


def test_a_delivered_invalidation_records_nothing() -> None:
    record = MemoryOwedRecord()
    cache = QueryCache(UnreliableIncrements(failures=0), owed_record=record)
    cache.invalidate(NAMESPACE)
    assert record.recordings == 0
