"""Runs the load test (what `make loadtest` calls): each mix at each client count, one row after
the other against the same server, and one table of the rows side by side.

1. starts `crm serve` on free ports (API and local AWS endpoint, `--seed-leads` demo leads), as a
   child process it talks to only over HTTP; or, with `--host URL`, uses a server already running;
2. for each mix (`loadtest/mixes.py`: `reads`, `writes10`), runs the mix briefly at the highest
   client count to warm the server up (not counted), then for each client count runs that many
   closed-loop clients (`crm.loadgen`: a thread and a keep-alive connection each, no think time)
   for the duration;
3. stops the server it started;
4. prints a Markdown table, per (mix, clients): requests, writes, throughput, p50/p95/p99, errors
   (any status but the expected one, or no answer) and the cache hit rate of the dashboard's reads
   (hits over hits and misses of the GETs that carried `X-Cache`), then the throughput at the
   highest client count over the lowest, per mix; writes it to OUT/summary.md, and the per-request
   figures to OUT/results.json.

Tokens: `CRM_TOKEN_<USER_ID>` (e.g. `CRM_TOKEN_DEMO_ADMIN`) when set, else as `crm token` gives
them: the demo staff sign in to the server's user pool (ID tokens, one hour: a run longer than that
needs them set), the vendors' credentials are signed here (JWT_SECRET, JWT_ISSUER, JWT_AUDIENCE,
else the local stack's). With `--host`, the staff sign in to the recorded `crm serve`'s pool.

It runs with the project's interpreter and needs nothing else installed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shlex
import sys
import time
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))  # mixes.py, beside this file

from mixes import MIXES, STAFF_USERS, VENDOR_USERS, Client, Mix, People

from crm.loadgen import Connection, Summary, run_closed_loop, summarise
from crm.server_process import ServerProcess, server_environment
from crm.stack import local_token

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Row:
    mix: str
    clients: int
    seconds: float
    summary: Summary
    by_request: dict[str, Summary]
    generator_cpu: float  # CPU seconds this process used per second of the row
    load_average: float  # the machine's 1-minute load average at the end of the row


def duration(text: str) -> float:
    """Seconds from `40`, `40s`, `3m` or `1h`."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if not found:
        raise argparse.ArgumentTypeError(f"expected a duration such as 40s or 3m, got {text!r}")
    return float(found.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600}[found.group(2)]


def tokens(aws_endpoint: str | None) -> dict[str, str]:
    issued = {}
    for user_id in (*STAFF_USERS, *VENDOR_USERS):
        configured = os.environ.get("CRM_TOKEN_" + user_id.upper().replace("-", "_"))
        lifetime = None if user_id in STAFF_USERS else 6 * 3600
        issued[user_id] = configured or local_token(user_id, ttl_seconds=lifetime, aws_endpoint=aws_endpoint)
    return issued


def run_row(host: str, mix: Mix, clients: int, seconds: float, issued: dict[str, str], people: People) -> Row:
    connections = [Connection(host) for _ in range(clients)]
    workers = [
        Client(number, mix, connections[number], issued, people, seed=1000 * clients + number)
        for number in range(clients)
    ]
    cpu_before = time.process_time()
    started = run_closed_loop(connections, [worker.step for worker in workers], seconds)
    samples = [sample for worker in workers for sample in worker.recorder.samples]
    summary = summarise(samples, started)
    grouped = defaultdict(list)
    for sample in samples:
        grouped[sample.name].append(sample)
    by_request = {name: summarise(group, started) for name, group in sorted(grouped.items())}
    cpu = (time.process_time() - cpu_before) / summary.seconds if summary.seconds else 0.0
    return Row(mix.name, clients, seconds, summary, by_request, cpu, os.getloadavg()[0])


def fmt_ms(value: float) -> str:
    if value != value:  # NaN: no request
        return "—"
    return f"{value:,.1f}" if value < 10 else f"{value:,.0f}"


def fmt_errors(summary: Summary) -> str:
    if not summary.errors:
        return "0"
    kinds = ", ".join(f"{count:,} x {status}" for status, count in summary.errors.items())
    return f"{summary.error_count:,} ({kinds})"


def fmt_hit_rate(hits: int, misses: int) -> str:
    if not hits + misses:
        return "n/a"
    return f"{100 * hits / (hits + misses):.1f} % ({hits:,} of {hits + misses:,})"


def is_lead_read(name: str) -> bool:
    return name.startswith("GET /leads")


def hit_rates(row: Row) -> tuple[str, str, str]:
    """The hit rate of every cached GET, of the dashboard's figures (stats, analytics, agencies,
    reports: reads of the day buckets, refreshed once per freshness interval), and of lead reads
    (lists and single leads, invalidated by each write that can change them)."""
    figures = [(is_lead_read(name), s.cache_hits, s.cache_misses) for name, s in row.by_request.items()]
    dashboard = [(hits, misses) for lead, hits, misses in figures if not lead]
    leads = [(hits, misses) for lead, hits, misses in figures if lead]
    return (
        fmt_hit_rate(row.summary.cache_hits, row.summary.cache_misses),
        fmt_hit_rate(sum(h for h, _ in dashboard), sum(m for _, m in dashboard)),
        fmt_hit_rate(sum(h for h, _ in leads), sum(m for _, m in leads)),
    )


def render(rows: list[Row], header: str) -> str:
    lines = [
        header,
        "",
        "| mix | clients | requests | writes | req/s | p50 ms | p95 ms | p99 ms | errors "
        "| cache hits, all GETs | dashboard figures | lead reads |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: |",
    ]
    for row in rows:
        s = row.summary
        every, dashboard, leads = hit_rates(row)
        lines.append(
            f"| {row.mix} | {row.clients} | {s.requests:,} | {s.writes:,} | {s.throughput:,.1f} "
            f"| {fmt_ms(s.p50_ms)} | {fmt_ms(s.p95_ms)} | {fmt_ms(s.p99_ms)} | {fmt_errors(s)} "
            f"| {every} | {dashboard} | {leads} |"
        )
    lines.append("")
    for mix in dict.fromkeys(row.mix for row in rows):
        of_mix = sorted((row for row in rows if row.mix == mix), key=lambda row: row.clients)
        low, high = of_mix[0], of_mix[-1]
        if high.clients != low.clients and low.summary.throughput:
            ratio = high.summary.throughput / low.summary.throughput
            lines.append(
                f"Throughput {mix}: {ratio:.2f}x at {high.clients} clients over {low.clients} "
                f"({high.summary.throughput:,.1f} / {low.summary.throughput:,.1f} req/s)"
            )
    cpu = ", ".join(f"{row.generator_cpu:.2f}" for row in rows)
    load = ", ".join(f"{row.load_average:.1f}" for row in rows)
    lines += [
        f"Load generator CPU, seconds per second, by row: {cpu}",
        f"Machine load average (1 min) at the end of each row: {load}",
    ]
    return "\n".join(lines)


def results_json(rows: list[Row]) -> list[dict[str, Any]]:
    def figures(summary: Summary) -> dict[str, Any]:
        return {
            **asdict(summary),
            "throughput": summary.throughput,
            "error_count": summary.error_count,
            "hit_rate": summary.hit_rate,
        }

    return [
        {
            "mix": row.mix,
            "clients": row.clients,
            "seconds": row.seconds,
            "generator_cpu": row.generator_cpu,
            "load_average": row.load_average,
            **figures(row.summary),
            "by_request": {name: figures(summary) for name, summary in row.by_request.items()},
        }
        for row in rows
    ]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--mix", nargs="+", choices=sorted(MIXES), default=["reads", "writes10"])
    parser.add_argument("--clients", nargs="+", type=int, default=[1, 16], help="client counts, e.g. 1 4 16")
    parser.add_argument("--time", type=duration, default=40.0, help="each row's duration, e.g. 40s, 3m")
    parser.add_argument("--warmup", type=duration, default=10.0, help="per mix, not counted (0: none)")
    parser.add_argument("--seed-leads", type=int, default=300, help="demo leads for the server started here")
    parser.add_argument("--serve-args", default="", help='more crm serve arguments, e.g. "--concurrency 4"')
    parser.add_argument("--host", help="use this running API (http://host:port) instead of starting one")
    parser.add_argument("--out", type=Path, default=REPO / "test-artifacts" / "loadtest")
    args = parser.parse_args()
    if any(clients < 1 for clients in args.clients):
        parser.error("--clients: each count must be at least 1")
    return args


def main() -> int:
    args = parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    server = None
    host = args.host
    if host is None:
        serve_args = ["--seed-leads", str(args.seed_leads), *shlex.split(args.serve_args)]
        server = ServerProcess.start(serve_args, args.out, server_environment(os.environ, metrics=False))
        print(f"starting crm serve (pid {server.process.pid}) at {server.base_url} ...", flush=True)
        host = server.base_url
    rows: list[Row] = []
    try:
        if server is not None:
            server.wait_until_ready()
        issued, people = tokens(server.aws_endpoint if server else None), People()
        for mix in (MIXES[name] for name in args.mix):
            if args.warmup:
                print(f"{mix.name}: warming up for {args.warmup:g} s (not counted)", flush=True)
                run_row(host, mix, max(args.clients), args.warmup, issued, people)
            for clients in args.clients:
                print(f"{mix.name}: {clients} client(s) for {args.time:g} s", flush=True)
                rows.append(run_row(host, mix, clients, args.time, issued, people))
    finally:
        if server is not None:
            server.stop()
            print(f"crm serve (pid {server.process.pid}) stopped", flush=True)
    where = f"crm serve started here (`{args.seed_leads}` demo leads" + (
        f", `{args.serve_args}`)" if args.serve_args else ")"
    )
    header = (
        f"Closed-loop clients (no think time), {args.time:g} s per row after a {args.warmup:g} s warm-up "
        f"per mix; server: {where if args.host is None else args.host}; machine: {os.cpu_count()} cores, "
        f"Python {platform.python_version()}"
    )
    summary = render(rows, header)
    (args.out / "summary.md").write_text(summary + "\n")
    (args.out / "results.json").write_text(json.dumps(results_json(rows), indent=2) + "\n")
    print("\n" + summary + f"\n\nSummary and per-request figures in {args.out}/")
    return 1 if any(row.summary.error_count for row in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
