"""The local API with the query cache in a real Redis: entries are written per caller scope, and
when that Redis stops the API keeps answering correctly (the cache fails open)."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import redis

from tests.e2e.conftest import LocalServer, start_server, stop_server
from tests.helpers import make_token, staff_token
from tests.integration.conftest import free_port

pytestmark = pytest.mark.redis


@pytest.fixture(scope="module")
def private_redis() -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """A Redis server of this test's own, so stopping it touches nothing else on the machine."""
    binary = shutil.which("redis-server")
    if binary is None:
        if os.environ.get("CI") == "true":
            pytest.fail("redis-server is not installed (CI installs it in .ci/run)")
        pytest.skip("redis-server is not installed")
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            break
        except redis.ConnectionError:
            time.sleep(0.05)
    yield process, port
    if process.poll() is None:
        process.terminate()
        process.wait(timeout=10)


@pytest.fixture(scope="module")
def cached_server(private_redis: tuple[subprocess.Popen[bytes], int]) -> Iterator[LocalServer]:
    _, port = private_redis
    local = start_server({"REDIS_URL": f"redis://127.0.0.1:{port}/0"})
    yield local
    stop_server(local)


def test_lists_are_cached_in_redis_per_caller_scope(
    cached_server: LocalServer, private_redis: tuple[subprocess.Popen[bytes], int]
) -> None:
    # Given
    client = redis.Redis(port=private_redis[1], decode_responses=True)
    # When two callers of different scopes list leads, the first one twice
    first = cached_server.get("/leads", staff_token("demo-admin"), params={"limit": "3"})
    again = cached_server.get("/leads", staff_token("demo-admin"), params={"limit": "3"})
    vendor = cached_server.get("/leads", make_token("demo-vendor-2"), params={"limit": "3"})
    # Then
    assert first.status_code == again.status_code == vendor.status_code == 200
    assert first.json() == again.json()
    keys = set(client.scan_iter("crm:q:leads:*"))
    assert any(":all:" in key for key in keys)
    assert any(":vendor:V002:" in key for key in keys)
    assert all(0 < client.ttl(key) <= 300 for key in keys)


def test_stats_rebuild_refreshes_cached_reports(cached_server: LocalServer) -> None:
    # Given a vendor's day bucket lost (as if its events never arrived), and the daily report of
    # that day read and cached without it
    dynamodb = cached_server.dynamodb()
    vendors_day = next(
        item
        for item in dynamodb.query(  # type: ignore[attr-defined]
            TableName="crm-local-stats",
            KeyConditionExpression="pk = :v",
            ExpressionAttributeValues={":v": {"S": "v"}},
        )["Items"]
        if "v#V002#leads" in item
    )
    day = vendors_day["sk"]["S"]
    dynamodb.delete_item(TableName="crm-local-stats", Key={"pk": vendors_day["pk"], "sk": vendors_day["sk"]})  # type: ignore[attr-defined]
    params = {"vendor": "V002", "from": day, "to": day}
    admin = staff_token("demo-admin")
    lost = cached_server.get("/reports/daily", admin, params=params).json()
    assert lost["rows"] == []
    # When the operator rebuilds the stats
    done = cached_server.run_cli("stats", "rebuild")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"rewritten {day}" in done.stdout
    # Then the next read of the report shows the repaired bucket, not the cached answer
    repaired = cached_server.get("/reports/daily", admin, params=params).json()
    assert [row["lead_count"] for row in repaired["rows"]] == [int(vendors_day["v#V002#leads"]["N"])]


def test_api_keeps_answering_when_redis_stops(
    cached_server: LocalServer, private_redis: tuple[subprocess.Popen[bytes], int]
) -> None:
    # Given a warm cache
    token = staff_token("demo-admin")
    before = cached_server.get("/leads", token, params={"limit": "7"}).json()
    # (30 days to two days ago: whole days in any business time zone, so the answer does not move
    # with the clock, as today's share of a day gone does)
    past_window = {"to": (datetime.now(UTC).date() - timedelta(days=2)).isoformat()}
    stats_before = cached_server.get("/admin/stats", token, params=past_window).json()
    assert stats_before["period"]["partial"] is False, stats_before["period"]
    lead_id = before["data"][0]["lead_id"]
    # When Redis goes away
    process, _ = private_redis
    process.terminate()
    process.wait(timeout=10)
    # Then every read still answers correctly from DynamoDB, without a 5xx
    for _ in range(3):
        listed = cached_server.get("/leads", token, params={"limit": "7"})
        assert listed.status_code == 200
        assert listed.json()["data"] == before["data"]
        one = cached_server.get(f"/leads/{lead_id}", token)
        assert one.status_code == 200
        assert one.json()["lead_id"] == lead_id
    assert cached_server.get("/leads", make_token("demo-vendor-1")).status_code == 200
    stats_after = cached_server.get("/admin/stats", token, params=past_window)
    assert stats_after.status_code == 200
    assert stats_after.json() == stats_before
    # And a vendor can still post, and the new lead is listed at once
    email = f"redis-down-{uuid.uuid4().hex[:8]}@example.com"
    posted = cached_server.request(
        "POST", "/leads", token=make_token("demo-vendor-1"), json={"email": email, "tcpa_consent": True}
    )
    assert posted.status_code == 201, posted.text
    listed = cached_server.get("/leads", make_token("demo-vendor-1"), params={"q": email})
    assert listed.status_code == 200
    assert [lead["lead_id"] for lead in listed.json()["data"]] == [posted.json()["lead_id"]]
