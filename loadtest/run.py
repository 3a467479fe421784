"""Runs the load test end to end (what `make loadtest` calls):

1. starts `crm serve` on free ports (API and local AWS endpoint), with Powertools metrics on so
   that each invocation prints its EMF record (CacheHit / CacheMiss / CacheError, the same
   metrics the functions publish to CloudWatch) to the server's stdout;
2. runs locust headless against it, writing CSVs to the output folder;
3. stops the server it started, by its PID (SIGTERM: `crm serve` then stops its moto child);
4. prints p50/p95/p99 per request, the request rate, the error rate and the cache hit rate, and
   writes the same table as Markdown to OUT/summary.md.

With `--host URL` it uses a server that is already running and starts nothing; the cache hit rate
is then read from `--server-log FILE` if given (that server's stdout, started with
`POWERTOOLS_METRICS_DISABLED=false`), else not reported.

Standard library only: it runs with the project's interpreter; locust runs from its own venv.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import signal
import socket
import subprocess  # nosec B404  # fixed executables from this repository's venvs
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
CACHE_RESULTS = ("CacheHit", "CacheMiss", "CacheError")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def start_server(crm: str, seed_leads: int, out: Path) -> tuple[subprocess.Popen[bytes], str]:
    port, aws_port = free_port(), free_port()
    while aws_port == port:
        aws_port = free_port()
    env = {**os.environ, "POWERTOOLS_METRICS_DISABLED": "false", "PYTHONUNBUFFERED": "1"}
    command = [crm, "serve", "--port", str(port), "--aws-port", str(aws_port), "--quiet"]
    command += ["--seed-leads", str(seed_leads)]
    with (out / "server.log").open("wb") as stdout, (out / "server.err.log").open("wb") as stderr:
        # A session of its own, so that a server that ignores SIGTERM can be killed with its
        # moto child, and nothing else.
        process = subprocess.Popen(  # noqa: S603  # nosec B603
            command, stdout=stdout, stderr=stderr, env=env, cwd=REPO, start_new_session=True
        )
    return process, f"http://127.0.0.1:{port}"


def wait_until_ready(process: subprocess.Popen[bytes], host: str, out: Path, timeout: float = 180) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"crm serve exited with code {process.returncode}; see {out}/server.err.log")
        try:
            with urllib.request.urlopen(f"{host}/openapi.json", timeout=2) as response:  # noqa: S310  # nosec B310
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise SystemExit(f"crm serve did not answer within {timeout:.0f} s")


def stop_server(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=30)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)  # the group started above: this server and moto
        process.wait(timeout=10)


def cache_counts(log: Path) -> dict[str, float]:
    """Sums the cache metrics of every EMF record the functions printed."""
    totals = dict.fromkeys(CACHE_RESULTS, 0.0)
    for line in log.read_text(errors="replace").splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        try:
            record = json.loads(line)
        except ValueError:
            continue
        for name in CACHE_RESULTS:
            value = record.get(name)
            if isinstance(value, list):
                totals[name] += sum(value)
            elif isinstance(value, (int, float)):
                totals[name] += value
    return totals


def fmt_ms(value: float | None) -> str:
    return "—" if value is None else f"{value:,.0f}"


def summarise(rows: list[dict[str, Any]], cache: dict[str, float] | None, args: argparse.Namespace) -> str:
    """`rows`: what the locustfile wrote to LOADTEST_RESULTS, the total (name "Aggregated") last."""
    lines = [
        f"Users: {args.users} (spawn rate {args.spawn_rate}/s), duration {args.time}, "
        f"demo leads seeded: {args.seed_leads}; machine: {os.cpu_count()} cores, "
        f"Python {platform.python_version()}",
        "",
        "| request | count | failures | p50 ms | p95 ms | p99 ms | req/s |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    *requests, total = rows
    for row in requests:
        lines.append(
            f"| `{row['method']} {row['name']}` | {row['count']:,} | {row['failures']:,} "
            f"| {fmt_ms(row['p50'])} | {fmt_ms(row['p95'])} | {fmt_ms(row['p99'])} | {row['rps']:.2f} |"
        )
    count, failures = total["count"], total["failures"]
    lines.append(
        f"| **all** | **{count:,}** | **{failures:,}** | **{fmt_ms(total['p50'])}** "
        f"| **{fmt_ms(total['p95'])}** | **{fmt_ms(total['p99'])}** | **{total['rps']:.2f}** |"
    )
    error_rate = 100 * failures / count if count else 0.0
    lines += [
        "",
        f"Request rate: {total['rps']:.2f} req/s; error rate: {error_rate:.2f}% ({failures:,} of {count:,})",
    ]
    if cache is None:
        lines.append("Cache hit rate: not measured (server not started by this command; see --server-log)")
    else:
        hits, misses, errors = (int(cache[name]) for name in CACHE_RESULTS)
        lookups = hits + misses + errors
        rate = f"{100 * hits / lookups:.1f}%" if lookups else "n/a (no cache lookups)"
        lines.append(
            f"Cache hit rate: {rate} ({hits:,} hits, {misses:,} misses, {errors:,} errors "
            f"of {lookups:,} query-cache lookups, from the functions' CacheHit/CacheMiss/CacheError metrics)"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--locust", default=str(REPO / ".venv-load" / "bin" / "locust"))
    parser.add_argument("--crm", default=str(REPO / ".venv" / "bin" / "crm"))
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--spawn-rate", type=float, default=2)
    parser.add_argument("--time", default="3m", help="locust --run-time, e.g. 150s, 3m")
    parser.add_argument("--seed-leads", type=int, default=300, help="demo leads for the server started here")
    parser.add_argument("--host", help="use this running API instead of starting one")
    parser.add_argument("--server-log", help="with --host: that server's stdout, for the cache hit rate")
    parser.add_argument("--out", default=str(REPO / "test-artifacts" / "loadtest"))
    args = parser.parse_args()

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    server = None
    log = Path(args.server_log) if args.server_log else None
    host = args.host
    prefix = out / "run"
    results = out / "results.json"
    for stale in [*out.glob("run_*.csv"), results]:
        stale.unlink(missing_ok=True)
    try:
        if host is None:
            print("starting crm serve on free ports ...", flush=True)
            server, host = start_server(args.crm, args.seed_leads, out)
            log = out / "server.log"
            wait_until_ready(server, host, out)
            print(f"crm serve (pid {server.pid}) ready at {host}", flush=True)
        command = [
            args.locust, "-f", str(REPO / "loadtest" / "locustfile.py"), "--host", host,
            "--headless", "-u", str(args.users), "-r", str(args.spawn_rate), "-t", args.time,
            "--stop-timeout", "30", "--csv", str(prefix), "--only-summary",
        ]  # fmt: skip
        print("$ " + " ".join(command), flush=True)
        env = {**os.environ, "CRM_BIN": args.crm, "LOADTEST_RESULTS": str(results)}
        code = subprocess.call(command, env=env, cwd=REPO)  # noqa: S603  # nosec B603
    finally:
        if server is not None:
            stop_server(server)
            print(f"crm serve (pid {server.pid}) stopped", flush=True)
    cache = cache_counts(log) if log is not None and log.exists() else None
    if not results.exists():
        print(f"locust wrote no results (exit code {code})", file=sys.stderr)
        return code or 1
    summary = summarise(json.loads(results.read_text()), cache, args)
    (out / "summary.md").write_text(summary + "\n")
    print("\n" + summary + f"\n\nCSV and summary in {out}/")
    return code


if __name__ == "__main__":
    sys.exit(main())
