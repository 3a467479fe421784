"""`crm bench`: measures the read path at fixed data sizes and prints a table.

For each size it starts a private local stack (moto server, tables from the template), seeds that
many demo leads, and times each scenario in-process (the handler called directly) and through the
local HTTP gateway, with the query cache missed (invalidated before each call) and hit. It also
counts DynamoDB round trips and items read per request, times `crm serve` start-up, and measures
each handler module's import time in a fresh interpreter (`python -X importtime`).
"""

from __future__ import annotations

import gc
import os
import re
import socket
import statistics
import subprocess  # nosec B404  # runs this interpreter with fixed arguments
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from crm.stack import MotoServer, function_environment, local_template, provision
from crm.template import Template

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


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


_started = time.monotonic()


def progress(message: str) -> None:
    """A line on stderr with the elapsed time: the table goes to stdout once everything is measured."""
    print(f"[{time.monotonic() - _started:7.1f}s] {message}", file=sys.stderr, flush=True)


def _percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def import_times(template: Template) -> tuple[str, list[tuple[str, float, float]]]:
    """(module, cumulative import ms from -X importtime, wall ms), each in a fresh interpreter.
    With a `sam build` output present, the module is imported as Lambda would: only the function
    artifact and the layer on sys.path; otherwise from the development environment."""
    build = PROJECT_ROOT / ".aws-sam" / "build"
    where = "sam build artifact + layer" if build.is_dir() else "development virtualenv"
    results = []
    for logical_id, properties in template.functions().items():
        module = properties["Handler"].rpartition(".")[0]
        prefix = ""
        if build.is_dir():
            paths = [str(build / logical_id), str(build / "SharedLayer" / "python")]
            prefix = f"import sys; sys.path[:0] = {paths!r}; "
        code = (
            prefix + f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
        )
        done = subprocess.run(  # nosec B603  # this interpreter, fixed arguments
            [sys.executable, *(["-I", "-S"] if build.is_dir() else []), "-X", "importtime", "-c", code],
            capture_output=True,
            text=True,
            env=os.environ.copy(),
            check=True,
            timeout=120,
        )
        cumulative = 0.0
        for line in done.stderr.splitlines():
            found = re.match(r"import time:\s+\d+ \|\s+(\d+) \| (\s*)(\S+)", line)
            if found and found.group(3) == module:
                cumulative = int(found.group(1)) / 1000
        results.append((module, cumulative, float(done.stdout.strip()) * 1000))
    return where, results


def serve_startup_seconds(seed: bool) -> float:
    port, aws_port = _free_port(), _free_port()
    args = [
        sys.executable,
        "-m",
        "crm.cli",
        "serve",
        "--port",
        str(port),
        "--aws-port",
        str(aws_port),
        "--quiet",
    ]
    if not seed:
        args.append("--no-seed")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "LEADS_", "USERS_"))}
    started = time.monotonic()
    process = subprocess.Popen(  # nosec B603  # this interpreter, fixed arguments
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    try:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("  curl "):
                return time.monotonic() - started
        raise RuntimeError("crm serve exited before it was ready")
    finally:
        process.terminate()
        process.wait(timeout=10)


ImportTimes = tuple[str, list[tuple[str, float, float]]]


def run(sizes: list[int], requests_per_scenario: int) -> tuple[list[Row], ImportTimes]:
    template = local_template()
    moto = MotoServer(port=_free_port())
    # The functions' configuration must be in place before their code is first imported.
    os.environ.update(function_environment(template, moto.endpoint, os.environ))
    os.environ["REDIS_URL"] = ""
    import requests as http

    from crm.functions import FunctionRegistry
    from crm.gateway import ApiGateway, LocalHttpServer
    from crm.seed import SeedTables, demo_leads, seed_demo_data
    from leads.repository import LeadRepository
    from shared import dependencies
    from shared.auth import issue_token
    from shared.dynamo import dynamodb_client
    from stats.consumer import stats_store
    from stats.rebuild import rebuild

    moto.start()
    times = import_times(template)
    counter = DynamoCounter()
    dynamodb_client().meta.events.register("before-call.dynamodb", counter.started)
    dynamodb_client().meta.events.register("after-call.dynamodb", counter.finished)
    functions = FunctionRegistry(template)
    leads_function = functions["LeadsFunction"]
    stats_function = functions["StatsFunction"]
    stats_function = functions["StatsFunction"]
    gateway = ApiGateway(template.routes(), functions, template.gateway_responses(), "local")
    server = LocalHttpServer(("127.0.0.1", _free_port()), gateway, log_requests=False)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    rows: list[Row] = []
    try:
        for size in sizes:
            http.post(f"{moto.endpoint}/moto-api/reset", timeout=30)
            provision(template, moto.endpoint)
            tables = SeedTables.configured()
            seed_demo_data(tables, lead_count=0)
            progress(f"{size:,} leads: seeding")
            sample = demo_leads(size)
            LeadRepository(tables.leads).put_many(sample)
            zone = ZoneInfo(dependencies.get_settings().business_timezone)
            # The buckets the lead events would have built, from the leads just written.
            rebuild((LeadRepository.to_item(lead) for lead in sample), stats_store(), zone)
            probe_id = sample[size // 2].lead_id
            # The seeding data is not part of any request: drop it, and keep what lives on out
            # of the garbage collector's way, so a full collection of the harness's own heap
            # does not land inside a measured request at large sizes.
            del sample
            gc.collect()
            gc.freeze()
            progress(f"{size:,} leads: measuring requests")
            token = issue_token(dependencies.token_settings(), "demo-admin")
            # (name, function, cache namespace, resource, path, query)
            scenarios = [
                (
                    "GET /admin/stats?period=30d",
                    stats_function,
                    "stats",
                    "/admin/stats",
                    "/admin/stats",
                    {"period": "30d"},
                ),
                (
                    "GET /admin/analytics?period=12m",
                    stats_function,
                    "stats",
                    "/admin/analytics",
                    "/admin/analytics",
                    {"period": "12m"},
                ),
                ("GET /leads?limit=50", leads_function, "leads", "/leads", "/leads", {"limit": "50"}),
                (
                    "GET /leads?vendor=V001&limit=50",
                    leads_function,
                    "leads",
                    "/leads",
                    "/leads",
                    {"vendor": "V001", "limit": "50"},
                ),
                (
                    "GET /leads/{lead_id}",
                    leads_function,
                    "leads",
                    "/leads/{lead_id}",
                    f"/leads/{probe_id}",
                    {},
                ),
            ]
            # moto's Query walks the whole index, so lead lists past 10,000 leads get fewer samples.
            lead_samples = requests_per_scenario if size <= 10_000 else max(3, requests_per_scenario // 3)
            for name, function, namespace, resource, path, query in scenarios:
                count = lead_samples if namespace == "leads" else requests_per_scenario
                progress(f"{size:,} leads: {name}")
                for cache in ("miss", "hit"):
                    rows.append(
                        _measure(
                            size,
                            name,
                            cache,
                            resource,
                            path,
                            query,
                            token,
                            function,
                            base,
                            counter,
                            count,
                            partial(dependencies.query_cache().invalidate, str(namespace)),
                        )
                    )
            progress(f"{size:,} leads: measuring the scan baseline")
            rows.append(_measure_scan_baseline(size, tables.leads, zone, counter, requests_per_scenario))
            if size == sizes[0]:  # moto's transactions copy every table: writes are measured once
                vendor_token = issue_token(dependencies.token_settings(), "demo-vendor-1")
                rows += _measure_writes(
                    size, token, vendor_token, leads_function, counter, requests_per_scenario
                )
            gc.unfreeze()
    finally:
        server.shutdown()
        server.server_close()
        moto.stop()
    return rows, times


def _measure(
    size: int,
    name: str,
    cache: str,
    resource: str,
    path: str,
    query: dict[str, str],
    token: str,
    function: Any,
    base: str,
    counter: DynamoCounter,
    count: int,
    invalidate: Callable[[], None],
) -> Row:
    import requests as http

    headers = {"Authorization": f"Bearer {token}", "Origin": "http://localhost:5173"}
    path_parameters = {"lead_id": path.rsplit("/", 1)[1]} if "{" in resource else None
    event = {
        "resource": resource,
        "path": path,
        "httpMethod": "GET",
        "headers": headers,
        "multiValueHeaders": {k: [v] for k, v in headers.items()},
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} or None,
        "pathParameters": path_parameters,
        "body": None,
        "isBase64Encoded": False,
        "requestContext": {"requestId": "bench", "identity": {"sourceIp": "127.0.0.1"}, "stage": "local"},
    }
    session = http.Session()

    def prepare() -> None:
        if cache == "miss":
            invalidate()

    function.invoke(event)  # warm
    in_process, over_http, trips, items, dynamo_ms = [], [], [], [], []
    for _ in range(count):
        prepare()
        counter.reset()
        started = time.perf_counter()
        response = function.invoke(event)
        in_process.append((time.perf_counter() - started) * 1000)
        calls, read, spent = counter.reset()
        trips.append(calls)
        items.append(read)
        dynamo_ms.append(spent)
        assert response["statusCode"] == 200, response
        prepare()
        started = time.perf_counter()
        answer = session.get(base + path, params=query, headers=headers, timeout=30)
        over_http.append((time.perf_counter() - started) * 1000)
        assert answer.status_code == 200, answer.text
    return Row(
        size,
        name,
        cache,
        statistics.median(in_process),
        _percentile(in_process, 0.95),
        statistics.median(over_http),
        statistics.mean(trips),
        statistics.mean(items),
        statistics.median(dynamo_ms),
    )


def _measure_scan_baseline(size: int, leads: Any, zone: ZoneInfo, counter: DynamoCounter, count: int) -> Row:
    """The dashboard computed the naive way: scan every lead and aggregate on each request."""
    from datetime import UTC, datetime

    from stats.dashboard import Period, dashboard
    from stats.rebuild import expected_buckets

    samples = []
    for _ in range(3 if size < 10_000 else 1):  # a full scan at 100,000 leads takes minutes here
        counter.reset()
        started = time.perf_counter()
        today = datetime.now(UTC).astimezone(zone).date()
        dashboard(expected_buckets(leads.scan_all(), zone), Period.ending(today, 30), [])
        elapsed = (time.perf_counter() - started) * 1000
        samples.append((elapsed, *counter.reset()))
    return _in_process_row(size, "scan-and-aggregate baseline (30d dashboard)", samples)


def _in_process_row(size: int, name: str, samples: list[tuple[float, int, int, float]]) -> Row:
    """A row from (ms, DynamoDB calls, items read, DynamoDB ms) samples measured in-process only."""
    times_ms = [sample[0] for sample in samples]
    return Row(
        size,
        name,
        "n/a",
        statistics.median(times_ms),
        _percentile(times_ms, 0.95),
        float("nan"),
        statistics.mean(sample[1] for sample in samples),
        statistics.mean(sample[2] for sample in samples),
        statistics.median(sample[3] for sample in samples),
    )


def _measure_writes(
    size: int, admin_token: str, vendor_token: str, function: Any, counter: DynamoCounter, count: int
) -> list[Row]:
    """POST, PATCH and DELETE in-process: each call a real change (new person, new note)."""
    import json
    import uuid

    def event(
        method: str, path: str, token: str, body: dict[str, Any] | None, resource: str
    ) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
        lead_id = path.rsplit("/", 1)[1] if "{" in resource else None
        return {
            "resource": resource,
            "path": path,
            "httpMethod": method,
            "headers": headers,
            "multiValueHeaders": {k: [v] for k, v in headers.items()},
            "queryStringParameters": None,
            "multiValueQueryStringParameters": None,
            "pathParameters": {"lead_id": lead_id} if lead_id else None,
            "body": json.dumps(body) if body is not None else None,
            "isBase64Encoded": False,
            "requestContext": {"requestId": "bench", "identity": {"sourceIp": "127.0.0.1"}, "stage": "local"},
        }

    Sample = tuple[float, int, int, float]

    def timed(request: dict[str, Any], expected: int) -> tuple[Sample, Any]:
        counter.reset()
        started = time.perf_counter()
        response = function.invoke(request)
        elapsed = (time.perf_counter() - started) * 1000
        assert response["statusCode"] == expected, response
        calls, read, spent = counter.reset()
        return (elapsed, calls, read, spent), json.loads(response["body"]) if response.get("body") else None

    post, patch, delete = "POST /leads", "PATCH /leads/{lead_id}", "DELETE /leads/{lead_id}"
    samples: dict[str, list[Sample]] = {post: [], patch: [], delete: []}
    created: list[dict[str, Any]] = []
    for _ in range(count + 1):
        body = {
            "email": f"bench-{uuid.uuid4().hex[:12]}@example.com",
            "first_name": "Bench",
            "tcpa_consent": True,
            "consent_text": "I agree",
        }
        sample, answer = timed(event("POST", "/leads", vendor_token, body, "/leads"), 201)
        samples[post].append(sample)
        created.append(answer["lead"])
    for lead in created:
        change = {"version": lead["version"], "notes": "called back"}
        sample, _ = timed(
            event("PATCH", f"/leads/{lead['lead_id']}", admin_token, change, "/leads/{lead_id}"), 200
        )
        samples[patch].append(sample)
    for lead in created:
        sample, _ = timed(
            event("DELETE", f"/leads/{lead['lead_id']}", admin_token, None, "/leads/{lead_id}"), 204
        )
        samples[delete].append(sample)
    # The first call of each warms code paths.
    return [_in_process_row(size, name, values[1:]) for name, values in samples.items()]


def _ms(value: float) -> str:
    return "—" if value != value else f"{value:.1f}"  # NaN: not measured over HTTP


def render(rows: list[Row], times: ImportTimes, startup: dict[str, float]) -> str:
    lines = [
        "| leads | request | cache | in-process median ms | of which DynamoDB ms | in-process p95 ms "
        "| over HTTP median ms | runner overhead ms | DynamoDB calls | items read |",
        "| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {r.size:,} | `{r.scenario}` | {r.cache} | {r.median_ms:.1f} | {r.dynamodb_ms:.1f} "
        f"| {r.p95_ms:.1f} | {_ms(r.http_median_ms)} | {_ms(r.overhead_ms)} "
        f"| {r.round_trips:g} | {r.items_read:g} |"
        for r in rows
    ]
    where, modules = times
    lines += [
        "",
        f"| handler module ({where}) | import (importtime, cumulative) ms | import wall ms |",
        "| --- | ---: | ---: |",
    ]
    lines += [f"| `{module}` | {cumulative:.0f} | {wall:.0f} |" for module, cumulative, wall in modules]
    lines += ["", "| `crm serve` start-up | seconds |", "| --- | ---: |"]
    lines += [f"| {label} | {seconds:.1f} |" for label, seconds in startup.items()]
    return "\n".join(lines)


def main(sizes: list[int], requests_per_scenario: int) -> int:
    startup = {
        "with demo data (300 leads)": serve_startup_seconds(seed=True),
        "--no-seed": serve_startup_seconds(seed=False),
    }
    rows, times = run(sizes, requests_per_scenario)
    print(render(rows, times, startup))
    return 0
