"""Unit tests of the query cache with the in-process backend: no network, no sleeps (a fake clock
drives TTL expiry)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from redis.crc import key_slot

from shared.cache import (
    BUCKET_NAMESPACES,
    GENERATION_PREFIX,
    KEY_PREFIX,
    CacheUnavailable,
    InProcessBackend,
    Namespace,
    QueryCache,
)
from tests.helpers import FakeClock

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

    def __init__(self, inner: InProcessBackend) -> None:
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


class ReadOnlyBackend(InProcessBackend):
    """Reads work, writes fail: a replica-only or out-of-memory Redis."""

    def set(self, key: str, value: str, ttl_seconds: int) -> None:
        raise CacheUnavailable("OOM command not allowed")


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def backend(clock: FakeClock) -> InProcessBackend:
    return InProcessBackend(clock=clock)


@pytest.fixture
def results() -> list[tuple[str, str]]:
    return []


@pytest.fixture
def cache(backend: InProcessBackend, results: list[tuple[str, str]]) -> QueryCache:
    return QueryCache(
        backend, ttl_seconds=60, on_result=lambda namespace, result: results.append((namespace, result))
    )


def cached_keys(backend: InProcessBackend) -> list[str]:
    """Entry keys (not generation counters) currently held by the in-process backend."""
    return [key for key in backend._entries if key.startswith(f"{KEY_PREFIX}:")]


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


def test_a_loader_error_propagates_and_nothing_is_cached(
    cache: QueryCache, backend: InProcessBackend
) -> None:
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
    backend: InProcessBackend, clock: FakeClock
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


def test_an_expired_entry_is_dropped_from_the_in_process_backend(clock: FakeClock) -> None:
    # Given
    backend = InProcessBackend(clock=clock)
    backend.set("k", "v", ttl_seconds=10)

    # When
    clock.advance(10)
    values = backend.get_many(["k"])

    # Then
    assert values == [None]
    assert "k" not in backend._entries


# --- invalidation -------------------------------------------------------------------------------


def test_invalidating_several_scopes_or_namespaces_is_one_round_trip() -> None:
    # Given
    backend = RecordingBackend(InProcessBackend())
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
    backend = RecordingBackend(InProcessBackend())
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
    backend = RecordingBackend(InProcessBackend(clock=clock))
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


def test_each_invalidation_moves_to_a_new_generation(cache: QueryCache, backend: InProcessBackend) -> None:
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


def test_an_invalidated_entry_is_never_served_again_under_cache_pressure(clock: FakeClock) -> None:
    # Given: a small cache holding an entry of generation 1
    backend = InProcessBackend(max_entries=2, clock=clock)
    cache = QueryCache(backend, ttl_seconds=60)
    cache.invalidate("stats")
    cache.get_or_load("stats", SCOPE, PARAMS, lambda: {"total": 1})
    # ...and another namespace's entry pushing the least recently used key (the counter) out
    cache.get_or_load("leads", SCOPE, PARAMS, lambda: {"leads": []})

    # When: the data changes and the namespace is invalidated
    cache.invalidate("stats")
    value = cache.get_or_load("stats", SCOPE, PARAMS, lambda: {"total": 2})

    # Then
    assert value == {"total": 2}


# --- scope --------------------------------------------------------------------------------------


def test_the_same_params_in_two_scopes_are_two_entries(cache: QueryCache, backend: InProcessBackend) -> None:
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
    backend = RecordingBackend(InProcessBackend(clock=clock))
    cache = QueryCache(backend)
    loader = CountingLoader()

    # When / Then
    with pytest.raises(ValueError, match="scoped"):
        cache.get_or_load(NAMESPACE, scope, PARAMS, loader)
    assert loader.calls == 0
    assert backend.calls == []


# --- the in-process backend ---------------------------------------------------------------------


def test_the_in_process_backend_evicts_the_least_recently_used_entry_beyond_max_entries(
    clock: FakeClock,
) -> None:
    # Given
    backend = InProcessBackend(max_entries=3, clock=clock)
    for key in ("a", "b", "c"):
        backend.set(key, key.upper(), ttl_seconds=60)

    # When
    backend.set("d", "D", ttl_seconds=60)

    # Then
    assert len(backend._entries) == 3
    assert backend.get_many(["a", "b", "c", "d"]) == [None, "B", "C", "D"]


def test_reading_an_entry_protects_it_from_eviction(clock: FakeClock) -> None:
    # Given
    backend = InProcessBackend(max_entries=3, clock=clock)
    for key in ("a", "b", "c"):
        backend.set(key, key.upper(), ttl_seconds=60)
    backend.get_many(["a"])

    # When
    backend.set("d", "D", ttl_seconds=60)

    # Then
    assert backend.get_many(["a", "b", "c", "d"]) == ["A", None, "C", "D"]


def test_rewriting_an_entry_protects_it_from_eviction(clock: FakeClock) -> None:
    # Given
    backend = InProcessBackend(max_entries=2, clock=clock)
    backend.set("a", "A1", ttl_seconds=60)
    backend.set("b", "B", ttl_seconds=60)
    backend.set("a", "A2", ttl_seconds=60)

    # When
    backend.set("c", "C", ttl_seconds=60)

    # Then
    assert backend.get_many(["a", "b", "c"]) == ["A2", None, "C"]


def test_a_query_cache_on_a_full_in_process_backend_stays_bounded(clock: FakeClock) -> None:
    # Given
    backend = InProcessBackend(max_entries=10, clock=clock)
    cache = QueryCache(backend, ttl_seconds=60)

    # When
    for page in range(100):
        cache.get_or_load(NAMESPACE, SCOPE, {"page": page}, CountingLoader())

    # Then
    assert len(backend._entries) <= 10
    loader = CountingLoader()
    cache.get_or_load(NAMESPACE, SCOPE, {"page": 0}, loader)
    assert loader.calls == 1, "the oldest page was evicted and is loaded again"


def test_the_in_process_backend_counts_generations_from_one() -> None:
    # Given
    backend = InProcessBackend()

    # When
    values = [backend.incr("counter") for _ in range(3)]

    # Then
    assert values == [1, 2, 3]
    assert backend.get_many(["counter"]) == ["3"]


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
    cache = QueryCache(InProcessBackend())

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
    class FlakyBackend(InProcessBackend):
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
    cache = QueryCache(UnavailableBackend())

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
    cache = QueryCache(InProcessBackend(clock=clock))
    value = {"t": (1, 2), "v": 0.5, 1: "x"}
    # When
    miss = cache.get_or_load(NAMESPACE, SCOPE, PARAMS, lambda: value)
    hit = cache.get_or_load(NAMESPACE, SCOPE, PARAMS, lambda: value)
    # Then
    assert miss == hit == {"t": [1, 2], "v": Decimal("0.5"), "1": "x"}


def test_a_value_that_is_not_json_is_returned_uncached() -> None:
    results: list[tuple[str, str]] = []
    cache = QueryCache(InProcessBackend(), on_result=lambda ns, result: results.append((ns, result)))
    marker = object()
    assert cache.get_or_load(NAMESPACE, SCOPE, PARAMS, lambda: marker) is marker
    assert results == [(NAMESPACE, "error")]


def test_a_corrupt_generation_counter_fails_open() -> None:
    # Given a generation counter that is not a number
    backend = InProcessBackend()
    backend.set(f"{GENERATION_PREFIX}:{NAMESPACE}", "not-a-number", 60)
    backend._counters.clear()
    cache = QueryCache(backend)
    # When / Then the loader serves the read
    assert cache.get_or_load(NAMESPACE, SCOPE, PARAMS, lambda: {"ok": True}) == {"ok": True}
