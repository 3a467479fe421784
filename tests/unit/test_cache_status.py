"""What a request's `X-Cache` header says: `hit` only when every cached read of the request was
served from the cache (`shared.cache.request_cache_status`)."""

from __future__ import annotations

import pytest

from shared.cache import InProcessBackend, QueryCache, request_cache_status, start_request_lookups


@pytest.fixture
def cache() -> QueryCache:
    start_request_lookups()
    return QueryCache(InProcessBackend(), ttl_seconds=60)


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
