"""`crm bench`: measures the read path at fixed data sizes and prints a table.

It starts a private local stack (the local AWS endpoint, `crm.local_aws`, on a free port, and the
template's functions behind the local HTTP gateway). For each size it resets the endpoint,
provisions the template's tables on it, seeds that many demo leads, and times each scenario
in-process (the handler called directly) and through the gateway, with the query cache missed
(invalidated before each call) and hit, beside a scan-and-aggregate baseline of the dashboard; at
the first size it also times writes (POST, PATCH, DELETE) in-process. It counts DynamoDB round
trips and items read per request, times `crm serve` start-up, and measures each function's cold
start in the `sam build` artifact (`crm.bench_cold_start`, also `crm bench --cold-start`).
`crm.bench_timing` times the requests.
"""

from __future__ import annotations

import gc
import os
import subprocess  # nosec B404  # runs this interpreter with fixed arguments
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

from crm.bench_cold_start import fresh_build, sam_build
from crm.bench_cold_start import measure as measure_cold_starts
from crm.bench_cold_start import render as render_cold_starts
from crm.bench_timing import (
    DynamoCounter,
    Invoker,
    ReadScenario,
    Row,
    measure_read,
    measure_scan_baseline,
    measure_writes,
)
from crm.functions import FunctionRegistry
from crm.gateway import ApiGateway
from crm.http_server import LocalHttpServer
from crm.stack import (
    LocalRedis,
    MotoServer,
    free_port,
    function_environment,
    local_template,
    local_token,
    provision,
)
from crm.template import Template

if TYPE_CHECKING:
    from crm.seed import SeedTables

COLD_START_ROUNDS = 5


_started = time.monotonic()


def progress(message: str) -> None:
    """A line on stderr with the elapsed time: the table goes to stdout once everything is measured."""
    print(f"[{time.monotonic() - _started:7.1f}s] {message}", file=sys.stderr, flush=True)


def serve_startup_seconds(seed: bool) -> float:
    port, aws_port = free_port(), free_port()
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
        "--no-record",
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


@dataclass
class BenchStack:
    """The template's functions called in this process (`in_process`), their DynamoDB calls
    counted, and the same functions in their execution environments behind the local gateway,
    over HTTP on a free port."""

    template: Template
    aws_endpoint: str
    functions: FunctionRegistry
    in_process: dict[str, Invoker]
    server: LocalHttpServer
    counter: DynamoCounter

    @classmethod
    def start(cls, template: Template, aws_endpoint: str) -> BenchStack:
        from shared.dynamo import dynamodb_client

        counter = DynamoCounter()
        dynamodb_client().meta.events.register("before-call.dynamodb", counter.started)
        dynamodb_client().meta.events.register("after-call.dynamodb", counter.finished)
        functions = FunctionRegistry(template, os.environ)
        in_process = {
            logical_id: function.in_process() for logical_id, function in functions.functions.items()
        }
        gateway = ApiGateway(template.routes(), functions, template.gateway_responses(), "local")
        server = LocalHttpServer(("127.0.0.1", free_port()), gateway, log_requests=False)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return cls(template, aws_endpoint, functions, in_process, server, counter)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.functions.stop()


def run(sizes: list[int], requests_per_scenario: int) -> tuple[list[Row], str]:
    template = local_template()
    moto = MotoServer(port=free_port())
    redis = None if os.environ.get("REDIS_URL") else LocalRedis()
    if redis is not None:
        redis.start()
        os.environ["REDIS_URL"] = redis.url
    # The functions' configuration must be in place before their code is first imported.
    os.environ.update(function_environment(template, moto.endpoint, os.environ))
    moto.start()
    from crm.serve import staff_pool

    # The staff user pool (its ids are the same each time it is created on the endpoint).
    pool, _ = staff_pool(template, moto.endpoint, with_demo_staff=False)
    os.environ.update(pool.environment())
    with tempfile.TemporaryDirectory(prefix="crm-bench-build-") as scratch:
        build = fresh_build()
        if build is None:
            print("sam build (.aws-sam/build is missing or older than the sources)", file=sys.stderr)
            build = sam_build(Path(scratch) / "build")
        cold_starts = render_cold_starts(build, measure_cold_starts(build, template, COLD_START_ROUNDS))
    stack = BenchStack.start(template, moto.endpoint)
    rows: list[Row] = []
    try:
        for size in sizes:
            rows += measure_size(stack, size, requests_per_scenario, with_writes=size == sizes[0])
    finally:
        stack.stop()
        moto.stop()
        if redis is not None:
            redis.stop()
    return rows, cold_starts


def measure_size(stack: BenchStack, size: int, requests_per_scenario: int, with_writes: bool) -> list[Row]:
    """The rows at `size` leads (writes only `with_writes`), on tables emptied and seeded for it."""
    from shared import dependencies
    from shared.auth import issue_token

    tables, zone, probe_id = seed_leads(stack, size)
    # The seeded leads are not part of any request and are gone with `seed_leads`: collect them,
    # and keep what lives on out of the garbage collector's way, so a full collection of the
    # harness's own heap does not land inside a measured request at large sizes.
    gc.collect()
    gc.freeze()
    progress(f"{size:,} leads: measuring requests")
    token = local_token("demo-admin", aws_endpoint=stack.aws_endpoint)
    rows = measure_reads(stack, size, token, requests_per_scenario, probe_id)
    progress(f"{size:,} leads: measuring the scan baseline")
    rows.append(measure_scan_baseline(size, tables.leads, zone, stack.counter))
    if with_writes:
        vendor_token = issue_token(dependencies.token_settings(), "demo-vendor-1")
        leads_function = stack.in_process["LeadsFunction"]
        rows += measure_writes(
            size, token, vendor_token, leads_function, stack.counter, requests_per_scenario
        )
    gc.unfreeze()
    return rows


def seed_leads(stack: BenchStack, size: int) -> tuple[SeedTables, ZoneInfo, str]:
    """Empties the local AWS endpoint, provisions the template on it, and writes the demo
    directory and `size` demo leads with the stats buckets their events would have built.
    Returns the tables, the business time zone and the id of the lead in the middle."""
    import requests as http

    from crm.seed import SeedTables, demo_leads, seed_demo_data
    from crm.serve import staff_pool
    from leads.repository import LeadRepository
    from shared import dependencies
    from stats.dependencies import stats_store
    from stats.rebuild import rebuild

    http.post(f"{stack.aws_endpoint}/moto-api/reset", timeout=30)
    provision(stack.template, stack.aws_endpoint)
    staff_pool(stack.template, stack.aws_endpoint, with_demo_staff=True)
    tables = SeedTables.configured()
    seed_demo_data(tables, lead_count=0)
    progress(f"{size:,} leads: seeding")
    sample = demo_leads(size)
    LeadRepository(tables.leads).put_many(sample)
    zone = dependencies.business_zone()
    # The buckets the lead events would have built, from the leads just written.
    rebuild((LeadRepository.to_item(lead) for lead in sample), stats_store(), zone)
    return tables, zone, sample[size // 2].lead_id


def read_scenarios(functions: dict[str, Invoker], probe_id: str) -> list[ReadScenario]:
    """The GETs measured at every size; `probe_id` is the lead read by id."""
    leads, stats = functions["LeadsFunction"], functions["StatsFunction"]
    return [
        ReadScenario(
            "GET /admin/stats?period=30d", stats, "stats", "/admin/stats", "/admin/stats", {"period": "30d"}
        ),
        ReadScenario(
            "GET /admin/analytics?period=12m",
            stats,
            "stats",
            "/admin/analytics",
            "/admin/analytics",
            {"period": "12m"},
        ),
        ReadScenario("GET /leads?limit=50", leads, "leads", "/leads", "/leads", {"limit": "50"}),
        ReadScenario(
            "GET /leads?vendor=V001&limit=50",
            leads,
            "leads",
            "/leads",
            "/leads",
            {"vendor": "V001", "limit": "50"},
        ),
        ReadScenario("GET /leads/{lead_id}", leads, "leads", "/leads/{lead_id}", f"/leads/{probe_id}", {}),
    ]


def measure_reads(
    stack: BenchStack, size: int, token: str, requests_per_scenario: int, probe_id: str
) -> list[Row]:
    """Each read scenario with the query cache missed, then hit."""
    from shared import dependencies

    # moto's Query walks the whole index, so lead lists past 10,000 leads get fewer samples.
    lead_samples = requests_per_scenario if size <= 10_000 else max(3, requests_per_scenario // 3)
    rows = []
    for scenario in read_scenarios(stack.in_process, probe_id):
        count = lead_samples if scenario.cache_namespace == "leads" else requests_per_scenario
        progress(f"{size:,} leads: {scenario.name}")
        invalidate = partial(dependencies.query_cache().invalidate, scenario.cache_namespace)
        for cache in ("miss", "hit"):
            rows.append(
                measure_read(
                    size,
                    scenario,
                    cache,
                    token=token,
                    base_url=stack.base_url,
                    counter=stack.counter,
                    count=count,
                    invalidate=invalidate,
                )
            )
    return rows


def _ms(value: float) -> str:
    return "—" if value != value else f"{value:.1f}"  # NaN: not measured over HTTP


def render(rows: list[Row], cold_starts: str, startup: dict[str, float]) -> str:
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
    lines += ["", cold_starts]
    lines += ["", "| `crm serve` start-up | seconds |", "| --- | ---: |"]
    lines += [f"| {label} | {seconds:.1f} |" for label, seconds in startup.items()]
    return "\n".join(lines)


def main(sizes: list[int], requests_per_scenario: int) -> int:
    startup = {
        "with demo data (300 leads)": serve_startup_seconds(seed=True),
        "--no-seed": serve_startup_seconds(seed=False),
    }
    rows, cold_starts = run(sizes, requests_per_scenario)
    print(render(rows, cold_starts, startup))
    return 0
