"""The query cache against a real Redis (REDIS_URL, default redis://127.0.0.1:6379/0).

Every test works in its own namespace (`test-<uuid>`) and deletes only its own keys, so the tests
never collide with other data; nothing here flushes a database. When Redis is unreachable these
tests fail under CI=true and are skipped otherwise. The fail-open tests that need a Redis that goes
away start their own `redis-server` on a free loopback port and stop only that process.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from typing import Any, NoReturn

import pytest
import redis
import redis.connection

from shared.cache import EPOCH_KEY, GENERATION_PREFIX, KEY_PREFIX, QueryCache, RedisBackend

pytestmark = pytest.mark.redis

REDIS_URL = os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0")
CLOSED_PORT_URL = "redis://127.0.0.1:1/0"
SCOPE = "vendor:ACME"
PARAMS: dict[str, Any] = {"filters": {"state": "TX"}, "limit": 25, "cursor": None}


def _in_ci() -> bool:
    return os.environ.get("CI", "").lower() == "true"


def _unavailable(reason: str) -> NoReturn:
    """Fails under CI (a missing dependency must not pass silently), skips on a workstation."""
    if _in_ci():
        pytest.fail(f"{reason} (CI=true: Redis-backed tests must run)", pytrace=False)
    pytest.skip(reason)


class CountingLoader:
    def __init__(self) -> None:
        self.calls = 0

    def __call__(self) -> dict[str, Any]:
        self.calls += 1
        return {"version": self.calls}


@pytest.fixture(scope="module")
def redis_client() -> Iterator[redis.Redis]:
    """A direct client to REDIS_URL, after checking the server answers PING."""
    client = redis.Redis.from_url(
        REDIS_URL, socket_connect_timeout=1, socket_timeout=1, decode_responses=True
    )
    try:
        client.ping()
    except (redis.RedisError, OSError) as exc:
        client.close()
        _unavailable(f"Redis at {REDIS_URL} is unreachable: {exc}")
    yield client
    client.close()


@pytest.fixture
def namespace(redis_client: redis.Redis) -> Iterator[str]:
    """A namespace no other test or data uses; its keys are deleted afterwards."""
    name = f"test-{uuid.uuid4().hex}"
    yield name
    keys = [
        *redis_client.scan_iter(match=f"{KEY_PREFIX}:{name}:*"),
        *redis_client.scan_iter(match=f"{GENERATION_PREFIX}:{name}:*"),  # scopes' own generations
        f"{GENERATION_PREFIX}:{name}",
    ]
    redis_client.delete(*keys)


def cached_in_each_scope(
    namespace: str, scopes: tuple[str, ...]
) -> tuple[QueryCache, dict[str, CountingLoader]]:
    """A cache on the Redis under test, with one entry of `namespace` loaded in each scope."""
    cache = QueryCache(RedisBackend(REDIS_URL), ttl_seconds=60)
    loaders = {scope: CountingLoader() for scope in scopes}
    for scope, loader in loaders.items():
        cache.get_or_load(namespace, scope, PARAMS, loader)
    return cache, loaders


def entry_keys(client: redis.Redis, namespace: str) -> list[str]:
    return sorted(client.scan_iter(match=f"{KEY_PREFIX}:{namespace}:*"))


# --- against the shared Redis -------------------------------------------------------------------


def test_a_second_read_is_served_from_redis_without_running_the_loader(
    redis_client: redis.Redis, namespace: str
) -> None:
    # Given
    cache = QueryCache(RedisBackend(REDIS_URL), ttl_seconds=60)
    loader = CountingLoader()

    # When
    first = cache.get_or_load(namespace, SCOPE, PARAMS, loader)
    second = cache.get_or_load(namespace, SCOPE, PARAMS, loader)

    # Then
    assert loader.calls == 1
    assert first == second == {"version": 1}
    key = QueryCache.entry_key(namespace, 0, SCOPE, PARAMS)
    assert entry_keys(redis_client, namespace) == [key]
    assert redis_client.get(key) == '{"version": 1}'


def test_an_entry_expires_in_redis_after_its_ttl(redis_client: redis.Redis, namespace: str) -> None:
    # Given
    cache = QueryCache(RedisBackend(REDIS_URL), ttl_seconds=1)
    loader = CountingLoader()
    cache.get_or_load(namespace, SCOPE, PARAMS, loader)
    key = QueryCache.entry_key(namespace, 0, SCOPE, PARAMS)
    assert 0 <= redis_client.ttl(key) <= 1
    assert 0 < redis_client.pttl(key) <= 1000

    # When
    time.sleep(1.2)
    expired = redis_client.exists(key)
    value = cache.get_or_load(namespace, SCOPE, PARAMS, loader)

    # Then
    assert expired == 0
    assert value == {"version": 2}
    assert loader.calls == 2


def test_the_stored_ttl_is_the_configured_one(redis_client: redis.Redis, namespace: str) -> None:
    # Given
    cache = QueryCache(RedisBackend(REDIS_URL), ttl_seconds=300)

    # When
    cache.get_or_load(namespace, SCOPE, PARAMS, CountingLoader())

    # Then
    ttl = redis_client.ttl(QueryCache.entry_key(namespace, 0, SCOPE, PARAMS))
    assert 295 <= ttl <= 300


def test_invalidating_a_namespace_bumps_its_generation_and_reloads(
    redis_client: redis.Redis, namespace: str
) -> None:
    # Given
    cache, loaders = cached_in_each_scope(namespace, ("all", "vendor:ACME", "agent:u-1"))
    generation_key = f"{GENERATION_PREFIX}:{namespace}"
    assert redis_client.get(generation_key) is None

    # When
    cache.invalidate(namespace)

    # Then: every scope reloads, under generation 1
    assert redis_client.get(generation_key) == "1"
    for scope, loader in loaders.items():
        assert cache.get_or_load(namespace, scope, PARAMS, loader) == {"version": 2}
        assert loader.calls == 2
        assert redis_client.exists(QueryCache.entry_key(namespace, 1, scope, PARAMS)) == 1
    cache.invalidate(namespace)
    assert redis_client.get(generation_key) == "2"


def test_invalidating_some_scopes_bumps_only_their_generations(
    redis_client: redis.Redis, namespace: str
) -> None:
    # Given one entry per scope
    cache, loaders = cached_in_each_scope(namespace, ("all", "vendor:ACME", "vendor:GLOBEX"))
    # When staff and ACME are invalidated
    cache.invalidate(namespace, ["all", "vendor:ACME"])
    # Then those two scopes reload under their own generation 1, GLOBEX's entry is still read
    assert redis_client.get(f"{GENERATION_PREFIX}:{namespace}:vendor:ACME") == "1"
    assert redis_client.get(f"{GENERATION_PREFIX}:{namespace}") is None
    for scope, loader in loaders.items():
        cache.get_or_load(namespace, scope, PARAMS, loader)
    assert {scope: loader.calls for scope, loader in loaders.items()} == {
        "all": 2,
        "vendor:ACME": 2,
        "vendor:GLOBEX": 1,
    }
    assert redis_client.exists(QueryCache.entry_key(namespace, 0, "vendor:ACME", PARAMS, 1)) == 1


def test_invalidating_a_namespace_leaves_another_namespace_cached(
    redis_client: redis.Redis, namespace: str
) -> None:
    # Given
    other = f"{namespace}-other"
    cache = QueryCache(RedisBackend(REDIS_URL), ttl_seconds=60)
    loader, other_loader = CountingLoader(), CountingLoader()
    try:
        cache.get_or_load(namespace, SCOPE, PARAMS, loader)
        cache.get_or_load(other, SCOPE, PARAMS, other_loader)

        # When
        cache.invalidate(namespace)
        cache.get_or_load(namespace, SCOPE, PARAMS, loader)
        cache.get_or_load(other, SCOPE, PARAMS, other_loader)

        # Then
        assert loader.calls == 2
        assert other_loader.calls == 1
    finally:
        redis_client.delete(*entry_keys(redis_client, other), f"{GENERATION_PREFIX}:{other}")


def test_the_same_params_in_two_scopes_are_two_keys_in_redis(
    redis_client: redis.Redis, namespace: str
) -> None:
    # Given
    cache = QueryCache(RedisBackend(REDIS_URL), ttl_seconds=60)

    # When
    acme = cache.get_or_load(namespace, "vendor:ACME", PARAMS, lambda: {"data": ["acme"]})
    globex = cache.get_or_load(namespace, "vendor:GLOBEX", PARAMS, lambda: {"data": ["globex"]})

    # Then
    assert acme == {"data": ["acme"]}
    assert globex == {"data": ["globex"]}
    assert entry_keys(redis_client, namespace) == sorted(
        [
            QueryCache.entry_key(namespace, 0, "vendor:ACME", PARAMS),
            QueryCache.entry_key(namespace, 0, "vendor:GLOBEX", PARAMS),
        ]
    )
    assert cache.get_or_load(namespace, "vendor:ACME", PARAMS, lambda: {"data": []}) == acme
    assert cache.get_or_load(namespace, "vendor:GLOBEX", PARAMS, lambda: {"data": []}) == globex


# --- failing open -------------------------------------------------------------------------------


@pytest.fixture
def connection_attempts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records every socket connection redis-py tries to open (it still opens it)."""
    attempts: list[str] = []
    original = redis.connection.AbstractConnection.connect

    def spy(self: redis.connection.AbstractConnection) -> None:
        attempts.append(getattr(self, "port", "?"))
        original(self)

    monkeypatch.setattr(redis.connection.AbstractConnection, "connect", spy)
    return attempts


def test_an_unreachable_redis_fails_open_and_is_not_retried_during_the_backoff(
    connection_attempts: list[str],
) -> None:
    # Given
    results: list[str] = []
    cache = QueryCache(
        RedisBackend(CLOSED_PORT_URL, backoff_seconds=30),
        on_result=lambda namespace, result: results.append(result),
        invalidation_retry_seconds=0,
    )
    loader = CountingLoader()

    # When
    first = cache.get_or_load("leads", SCOPE, PARAMS, loader)
    cache.invalidate("leads")
    attempts_after_first_failure = len(connection_attempts)
    started = time.perf_counter()
    second = cache.get_or_load("leads", SCOPE, PARAMS, loader)
    elapsed = time.perf_counter() - started

    # Then
    assert first == {"version": 1}
    assert second == {"version": 2}
    assert results == ["error", "error"]
    assert attempts_after_first_failure >= 1
    assert len(connection_attempts) == attempts_after_first_failure, "no connection during the back-off"
    assert elapsed < 0.05


def test_an_unreachable_redis_is_tried_again_after_the_backoff(connection_attempts: list[str]) -> None:
    # Given
    cache = QueryCache(RedisBackend(CLOSED_PORT_URL, backoff_seconds=0.1))
    cache.get_or_load("leads", SCOPE, PARAMS, CountingLoader())
    attempts_after_first_failure = len(connection_attempts)

    # When
    time.sleep(0.15)
    value = cache.get_or_load("leads", SCOPE, PARAMS, lambda: {"ok": True})

    # Then
    assert value == {"ok": True}
    assert len(connection_attempts) > attempts_after_first_failure


def test_a_redis_that_hangs_costs_one_timeout_then_nothing() -> None:
    # Given: a socket that accepts connections (backlog) and never answers
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(8)
        port = listener.getsockname()[1]
        cache = QueryCache(RedisBackend(f"redis://127.0.0.1:{port}/0", timeout_seconds=0.2))

        # When
        started = time.perf_counter()
        first = cache.get_or_load("leads", SCOPE, PARAMS, lambda: {"from": "table"})
        first_elapsed = time.perf_counter() - started
        started = time.perf_counter()
        second = cache.get_or_load("leads", SCOPE, PARAMS, lambda: {"from": "table"})
        second_elapsed = time.perf_counter() - started

    # Then
    assert first == second == {"from": "table"}
    assert first_elapsed < 1.0, "one socket timeout, not a retry loop"
    assert second_elapsed < 0.05


def _free_loopback_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class OwnRedisServer:
    """A `redis-server` this test started: stopping it never touches the machine's Redis."""

    def __init__(self, process: subprocess.Popen[bytes], port: int) -> None:
        self.process = process
        self.port = port
        self.url = f"redis://127.0.0.1:{port}/0"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=5)


@pytest.fixture
def own_redis_server() -> Iterator[OwnRedisServer]:
    binary = shutil.which("redis-server")
    if binary is None:
        _unavailable("redis-server is not on PATH")
    port = _free_loopback_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    server = OwnRedisServer(process, port)
    try:
        _wait_until_ready(server)
        yield server
    finally:
        server.stop()


def _wait_until_ready(server: OwnRedisServer, timeout: float = 10.0) -> None:
    client = redis.Redis(host="127.0.0.1", port=server.port, socket_connect_timeout=0.2)
    deadline = time.monotonic() + timeout
    try:
        while True:
            if server.process.poll() is not None:
                pytest.fail(f"redis-server exited with {server.process.returncode} on port {server.port}")
            try:
                if client.ping():
                    return
            except (redis.RedisError, OSError):
                if time.monotonic() > deadline:
                    pytest.fail(f"redis-server on port {server.port} did not answer within {timeout}s")
                time.sleep(0.05)
    finally:
        client.close()


def test_reads_fail_open_when_redis_goes_away_mid_use(own_redis_server: OwnRedisServer) -> None:
    # Given: a warm cache on a Redis that then stops
    results: list[str] = []
    cache = QueryCache(
        RedisBackend(own_redis_server.url),
        on_result=lambda namespace, result: results.append(result),
        invalidation_retry_seconds=0,
    )
    loader = CountingLoader()
    assert cache.get_or_load("leads", SCOPE, PARAMS, loader) == {"version": 1}
    assert cache.get_or_load("leads", SCOPE, PARAMS, loader) == {"version": 1}
    assert results == ["miss", "hit"]

    # When
    own_redis_server.stop()
    after_stop = cache.get_or_load("leads", SCOPE, PARAMS, loader)
    cache.invalidate("leads")
    during_backoff = cache.get_or_load("leads", SCOPE, PARAMS, loader)

    # Then
    assert own_redis_server.process.returncode is not None
    assert after_stop == {"version": 2}
    assert during_backoff == {"version": 3}
    assert results == ["miss", "hit", "error", "error"]


def test_a_write_failing_mid_use_still_returns_the_loaded_value(own_redis_server: OwnRedisServer) -> None:
    # Given: the generation and entry reads succeed, then Redis stops before the write
    cache = QueryCache(RedisBackend(own_redis_server.url))

    def loader_during_which_redis_stops() -> dict[str, Any]:
        own_redis_server.stop()
        return {"from": "table"}

    # When
    value = cache.get_or_load("leads", SCOPE, PARAMS, loader_during_which_redis_stops)

    # Then
    assert value == {"from": "table"}


def test_a_command_error_does_not_switch_the_cache_off(own_redis_server: OwnRedisServer) -> None:
    # Given a generation key of the wrong type (INCR on a list is a WRONGTYPE error), on a Redis of
    # this test's own (the lost invalidation moves the epoch of every key)
    client = redis.Redis.from_url(own_redis_server.url, decode_responses=True)
    client.rpush(f"{GENERATION_PREFIX}:broken", "x")
    results: list[str] = []
    cache = QueryCache(
        RedisBackend(own_redis_server.url),
        on_result=lambda ns, result: results.append(result),
        invalidation_retry_seconds=0,
    )
    # When invalidating the broken namespace fails, then a healthy one is read twice
    cache.invalidate("broken")
    cache.get_or_load("healthy", SCOPE, PARAMS, lambda: {"v": 2})
    cache.get_or_load("healthy", SCOPE, PARAMS, lambda: {"v": 3})
    # Then the healthy namespace is cached as usual (a command error is no outage), under a new
    # epoch, since the broken namespace's invalidation was lost
    assert results == ["miss", "hit"]
    assert client.get(EPOCH_KEY) == "1"
    client.close()


def test_invalidation_is_attempted_even_during_the_backoff(redis_client: redis.Redis, namespace: str) -> None:
    # Given a backend in its back-off window while Redis itself is healthy again
    backend = RedisBackend(REDIS_URL)
    backend._down_until = time.monotonic() + 60
    # When
    QueryCache(backend).invalidate(namespace)
    # Then the generation moved on, so other instances stop serving the old entries
    assert redis_client.get(f"{GENERATION_PREFIX}:{namespace}") == "1"
