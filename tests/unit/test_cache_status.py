"""What a request's `X-Cache` header says: `hit` only when every cached read of the request was
served from the cache (`shared.cache.request_cache_status`); and invalidation by scope, which
spares the lists a change does not touch."""

from __future__ import annotations

import pytest

from shared.cache import QueryCache, request_cache_status, start_request_lookups
from tests.unit.memory_cache import MemoryBackend


@pytest.fixture
def cache() -> QueryCache:
    start_request_lookups()
    return QueryCache(MemoryBackend(), ttl_seconds=60)


def test_a_request_that_reads_nothing_through_the_cache_has_no_status(cache: QueryCache) -> None:
    assert request_cache_status() is None


def test_a_first_read_is_a_miss_and_the_same_read_again_a_hit(cache: QueryCache) -> None:
    # When a value is read for the first time
    cache.get_or_load("leads", "all", {"page": 1}, lambda: [1, 2])
    # Then
    assert request_cache_status() == "miss"
    # When the next request reads it again
    start_request_lookups()
    cache.get_or_load("leads", "all", {"page": 1}, lambda: [1, 2])
    # Then
    assert request_cache_status() == "hit"


def test_one_loaded_read_makes_the_whole_request_a_miss(cache: QueryCache) -> None:
    # Given one value already cached
    cache.get_or_load("stats", "all", {"view": "a"}, lambda: 1)
    start_request_lookups()
    # When a request reads it and another, uncached value
    cache.get_or_load("stats", "all", {"view": "a"}, lambda: 1)
    cache.get_or_load("stats", "all", {"view": "b"}, lambda: 2)
    # Then
    assert request_cache_status() == "miss"


def test_an_invalidated_namespace_misses_again(cache: QueryCache) -> None:
    cache.get_or_load("leads", "all", {"page": 1}, lambda: [1])
    cache.invalidate("leads")
    start_request_lookups()
    cache.get_or_load("leads", "all", {"page": 1}, lambda: [1])
    assert request_cache_status() == "miss"


def read_every_scope(cache: QueryCache, scopes: tuple[str, ...], loads: list[str]) -> None:
    """Reads one list per scope, noting each scope whose list had to be loaded."""
    for scope in scopes:

        def load(scope: str = scope) -> list[str]:
            loads.append(scope)
            return [scope]

        cache.get_or_load("leads", scope, {"page": 1}, load)


def test_invalidating_some_scopes_leaves_the_others_cached(cache: QueryCache) -> None:
    # Given one list cached per scope
    scopes = ("all", "vendor:V001", "vendor:V002", "agent:a-1")
    read_every_scope(cache, scopes, [])
    # When a change is invalidated for staff and V001 only
    cache.invalidate("leads", ["all", "vendor:V001"])
    loads: list[str] = []
    read_every_scope(cache, scopes, loads)
    # Then only those two are loaded again
    assert loads == ["all", "vendor:V001"]
    # When the whole namespace is invalidated
    cache.invalidate("leads")
    loads.clear()
    read_every_scope(cache, scopes, loads)
    # Then every scope is loaded again
    assert loads == list(scopes)


def test_the_scopes_that_see_a_lead_are_staff_its_vendor_and_its_agents() -> None:
    from shared.security import scopes_seeing

    assert scopes_seeing("V001", [None]) == {"all", "vendor:V001"}
    assert scopes_seeing("V001", ["a-1", "a-2", None]) == {"all", "vendor:V001", "agent:a-1", "agent:a-2"}
