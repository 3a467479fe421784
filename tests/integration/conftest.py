"""Integration fixtures: moto in server mode over HTTP, provisioned from template.yaml."""

from __future__ import annotations

import os
import shutil
import socket
from collections.abc import Iterator

import boto3
import pytest
import redis
import requests

from crm.stack import LocalRedis, LocalUserPool, MotoServer, provision, provision_user_pool
from crm.template import Template
from shared import dependencies
from tests.helpers import ALLOWED_ORIGIN, SECOND_ORIGIN, TEST_POOL_ID, base_env


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_template() -> Template:
    return Template.load(
        {"Stage": base_env()["STAGE"], "CorsAllowOrigins": f"{ALLOWED_ORIGIN},{SECOND_ORIGIN}"}
    )


test_template.__test__ = False  # type: ignore[attr-defined]


def test_pool_keys(endpoint: str) -> str:
    """Where the local endpoint publishes the test pool's keys (moto serves them for any pool id)."""
    return f"{endpoint}/{TEST_POOL_ID}/.well-known/jwks.json"


test_pool_keys.__test__ = False  # type: ignore[attr-defined]


@pytest.fixture(scope="session")
def moto_server() -> Iterator[MotoServer]:
    server = MotoServer(port=free_port())
    server.start()
    previous = os.environ.get("AWS_ENDPOINT_URL")
    os.environ["AWS_ENDPOINT_URL"] = server.endpoint
    # The staff user pool's keys, as the local endpoint publishes them (for any pool id).
    os.environ["USER_POOL_JWKS_URL"] = test_pool_keys(server.endpoint)
    dependencies.reset()
    yield server
    server.stop()
    os.environ.pop("USER_POOL_JWKS_URL", None)
    if previous is None:
        os.environ.pop("AWS_ENDPOINT_URL", None)
    else:
        os.environ["AWS_ENDPOINT_URL"] = previous
    dependencies.reset()


def fresh_stack(moto_server: MotoServer) -> dict[str, str]:
    """Resets moto and provisions the template's tables, bus, queues and rules; returns queue
    logical id -> queue URL."""
    requests.post(f"{moto_server.endpoint}/moto-api/reset", timeout=10).raise_for_status()
    dependencies.reset()
    return provision(test_template(), moto_server.endpoint)


def fresh_user_pool(moto_server: MotoServer) -> LocalUserPool:
    """The template's staff user pool on moto (after `fresh_stack`, which removes it), named in
    the functions' USER_POOL_* settings until `forget_user_pool`."""
    pool = provision_user_pool(test_template(), moto_server.endpoint)
    os.environ.update(pool.environment())
    dependencies.reset()
    return pool


def forget_user_pool() -> None:
    """The test settings' USER_POOL_* again."""
    os.environ.update({name: value for name, value in base_env().items() if name.startswith("USER_POOL_")})
    os.environ["USER_POOL_JWKS_URL"] = test_pool_keys(os.environ["AWS_ENDPOINT_URL"])
    dependencies.reset()


@pytest.fixture
def aws(moto_server: MotoServer) -> Iterator[dict[str, str]]:
    """A fresh local stack for one test."""
    yield fresh_stack(moto_server)
    dependencies.reset()


@pytest.fixture
def dynamodb(aws: dict[str, str]) -> object:
    return boto3.client("dynamodb")


@pytest.fixture(scope="session")
def private_redis() -> Iterator[LocalRedis]:
    """A redis-server of the tests' own (as `crm serve` starts one): no other run's entries, and
    it can be paused or flushed without touching the machine's Redis."""
    if shutil.which("redis-server") is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is not installed (CI installs it in .ci/run)", pytrace=False)
        pytest.skip("redis-server is not installed")
    server = LocalRedis()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def query_cache_in_redis(private_redis: LocalRedis, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The process-wide query cache on the private Redis, empty: without REDIS_URL the cache is
    off and every read is loaded."""
    with redis.Redis.from_url(private_redis.url) as client:
        client.flushdb()
    monkeypatch.setenv("REDIS_URL", private_redis.url)
    dependencies.get_settings.cache_clear()
    dependencies.query_cache.cache_clear()
    yield private_redis.url
    dependencies.get_settings.cache_clear()
    dependencies.query_cache.cache_clear()
