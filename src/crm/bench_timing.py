"""Timing requests for `crm bench`: a function invoked in-process with its DynamoDB calls counted,
the same request over the local HTTP gateway, and the rows of the benchmark's table."""

from __future__ import annotations

import json
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

# A function's handler called in this process (`LocalFunction.in_process`).
Invoker = Callable[[dict[str, Any]], Any]
# One in-process call: (ms, DynamoDB calls, items read, DynamoDB ms).
Sample = tuple[float, int, int, float]


@dataclass
class Row:
    size: int
    scenario: str
    cache: str
    median_ms: float
    p95_ms: float
    http_median_ms: float
    round_trips: float
    items_read: float
    dynamodb_ms: float

    @property
    def overhead_ms(self) -> float:
        return self.http_median_ms - self.median_ms


@dataclass(frozen=True)
class ReadScenario:
    """A GET measured in-process and over HTTP; `cache_namespace` is what a cache miss invalidates."""

    name: str
    function: Invoker
    cache_namespace: str
    resource: str
    path: str
    query: dict[str, str]


class DynamoCounter:
    """Counts DynamoDB calls, the items they read and the time spent in them, through botocore's
    event hooks (register `started` on before-call and `finished` on after-call)."""

    def __init__(self) -> None:
        self.calls = 0
        self.items = 0
        self.seconds = 0.0
        self._started = threading.local()
        self._lock = threading.Lock()

    def started(self, **_: Any) -> None:
        self._started.at = time.perf_counter()

    def finished(self, parsed: dict[str, Any] | None = None, **_: Any) -> None:
        elapsed = time.perf_counter() - getattr(self._started, "at", time.perf_counter())
        with self._lock:
            self.calls += 1
            self.seconds += elapsed
            parsed = parsed or {}
            self.items += int(parsed.get("ScannedCount", 1 if "Item" in parsed else 0))

    def reset(self) -> tuple[int, int, float]:
        with self._lock:
            totals = self.calls, self.items, self.seconds * 1000
            self.calls = self.items = 0
            self.seconds = 0.0
            return totals


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def samples_row(
    size: int, name: str, cache: str, samples: list[Sample], over_http_ms: list[float] | None = None
) -> Row:
    """The table row of in-process samples, with the median over HTTP when it was measured."""
    times_ms = [sample[0] for sample in samples]
    return Row(
        size,
        name,
        cache,
        statistics.median(times_ms),
        _percentile(times_ms, 0.95),
        statistics.median(over_http_ms) if over_http_ms else float("nan"),
        statistics.mean(sample[1] for sample in samples),
        statistics.mean(sample[2] for sample in samples),
        statistics.median(sample[3] for sample in samples),
    )


def proxy_event(
    method: str,
    resource: str,
    path: str,
    headers: dict[str, str],
    query: dict[str, str] | None = None,
    body: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A REST API proxy event for a lead route (its one path parameter, if any, is `lead_id`)."""
    query = query or {}
    return {
        "resource": resource,
        "path": path,
        "httpMethod": method,
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} or None,
        "pathParameters": {"lead_id": path.rsplit("/", 1)[1]} if "{" in resource else None,
        "body": json.dumps(body) if body is not None else None,
        "isBase64Encoded": False,
        "requestContext": {"requestId": "bench", "identity": {"sourceIp": "127.0.0.1"}, "stage": "local"},
    }


def timed_invocation(
    function: Invoker, event: dict[str, Any], counter: DynamoCounter, expected_status: int
) -> tuple[Sample, dict[str, Any]]:
    """One in-process call of `function`, which must answer `expected_status`, and its response."""
    counter.reset()
    started = time.perf_counter()
    response = function(event)
    elapsed = (time.perf_counter() - started) * 1000
    assert response["statusCode"] == expected_status, response
    calls, read, spent = counter.reset()
    return (elapsed, calls, read, spent), response


def measure_read(
    size: int,
    scenario: ReadScenario,
    cache: str,
    *,
    token: str,
    base_url: str,
    counter: DynamoCounter,
    count: int,
    invalidate: Callable[[], None],
) -> Row:
    """`count` calls of the scenario in-process and as many over HTTP; with `cache` "miss" the
    query cache is invalidated before each call, with "hit" it answers after the warm-up call."""
    import requests as http

    headers = {"Authorization": f"Bearer {token}", "Origin": "http://localhost:5173"}
    event = proxy_event("GET", scenario.resource, scenario.path, headers, query=scenario.query)
    session = http.Session()

    def prepare() -> None:
        if cache == "miss":
            invalidate()

    scenario.function(event)  # warm
    samples: list[Sample] = []
    over_http: list[float] = []
    for _ in range(count):
        prepare()
        samples.append(timed_invocation(scenario.function, event, counter, 200)[0])
        prepare()
        started = time.perf_counter()
        answer = session.get(base_url + scenario.path, params=scenario.query, headers=headers, timeout=30)
        over_http.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, answer.text
    return samples_row(size, scenario.name, cache, samples, over_http)


def measure_scan_baseline(size: int, leads: Any, zone: ZoneInfo, counter: DynamoCounter) -> Row:
    """The dashboard computed the naive way: scan every lead and aggregate on each request."""
    from datetime import UTC, datetime

    from stats.dashboard import dashboard
    from stats.rebuild import expected_buckets
    from stats.window import Window

    samples = []
    for _ in range(3 if size < 10_000 else 1):  # a full scan at 100,000 leads takes minutes here
        counter.reset()
        started = time.perf_counter()
        today = datetime.now(UTC).astimezone(zone).date()
        dashboard(expected_buckets(leads.scan_all(), zone), Window.ending(today, 30), [])
        elapsed = (time.perf_counter() - started) * 1000
        samples.append((elapsed, *counter.reset()))
    return samples_row(size, "scan-and-aggregate baseline (30d dashboard)", "n/a", samples)


def measure_writes(
    size: int,
    admin_token: str,
    vendor_token: str,
    function: Invoker,
    counter: DynamoCounter,
    count: int,
) -> list[Row]:
    """POST, PATCH and DELETE in-process: each call a real change (new person, new note)."""
    vendor = {"Authorization": f"Bearer {vendor_token}", "Content-Type": "application/json"}
    admin = {"Authorization": f"Bearer {admin_token}", "Content-Type": "application/json"}
    posts: list[Sample] = []
    created: list[dict[str, Any]] = []
    for _ in range(count + 1):
        person = {
            "email": f"bench-{uuid.uuid4().hex[:12]}@example.com",
            "first_name": "Bench",
            "tcpa_consent": True,
            "consent_text": "I agree",
        }
        event = proxy_event("POST", "/leads", "/leads", vendor, body=person)
        sample, response = timed_invocation(function, event, counter, 201)
        posts.append(sample)
        created.append(json.loads(response["body"])["lead"])
    patches: list[Sample] = []
    for lead in created:
        change = {"version": lead["version"], "notes": "called back"}
        patches.append(timed_invocation(function, _lead_event("PATCH", lead, admin, change), counter, 200)[0])
    deletes = [
        timed_invocation(function, _lead_event("DELETE", lead, admin), counter, 204)[0] for lead in created
    ]
    samples = {"POST /leads": posts, "PATCH /leads/{lead_id}": patches, "DELETE /leads/{lead_id}": deletes}
    # The first call of each warms code paths.
    return [samples_row(size, name, "n/a", values[1:]) for name, values in samples.items()]


def _lead_event(
    method: str, lead: dict[str, Any], headers: dict[str, str], body: dict[str, Any] | None = None
) -> dict[str, Any]:
    return proxy_event(method, "/leads/{lead_id}", f"/leads/{lead['lead_id']}", headers, body=body)
