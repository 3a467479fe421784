"""`crm bench --burst N`: N new leads posted as fast as a fresh `crm serve` takes them, and what the
stats path made of them.

It starts a private `crm serve` (a child process on free ports, `crm.server_process`, with the demo
directory and no leads, Powertools metrics printed to its stdout) and treats it as a black box:
HTTP, its local AWS endpoint, and its stdout. N leads of distinct people are posted by C
concurrent vendor clients (`demo-vendor-1` … `-5` in turn), each a closed loop over one keep-alive
connection (`crm.loadgen`). Then, as an admin, it reads GET /admin/stats until the dashboard
counts every accepted lead, and measures that delay from the last accepted post. It waits for the
template's `StatsEventsQueue` to drain, counts what its dead-letter queue
(`StatsConsumerDeadLetterQueue`) holds, stops the server, and adds up the stats consumer's
metrics (`StatsBatches`, `StatsEventsApplied`, `BucketItemWrites`, `ConflictsRetried`) from the EMF
lines on the server's stdout (`crm.emf`).

`STATS_FRESHNESS_SECONDS`, when set, is passed to the server like the rest of the environment
(stats answers may then be up to that old), and the report says which interval applied.
"""

from __future__ import annotations

import itertools
import json
import math
import os
import re
import subprocess  # nosec B404  # runs this interpreter with fixed arguments
import sys
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from crm.emf import metric_sums_in
from crm.loadgen import Connection, Recorder, new_person, run_closed_loop, summarise
from crm.server_process import ServerProcess, server_environment
from crm.stack import FAKE_CREDENTIALS, function_environment, local_template, local_token

FRESHNESS_VARIABLE = "STATS_FRESHNESS_SECONDS"
CONSUMER_METRICS = ("StatsBatches", "StatsEventsApplied", "BucketItemWrites", "ConflictsRetried")
VENDOR_USERS = tuple(f"demo-vendor-{n}" for n in range(1, 6))
ADMIN = "demo-admin"
STATS_PATH = "/admin/stats?period=7d"  # conversion.leads: the leads created in the last 7 days
DEAD_LETTER_QUEUE = "StatsConsumerDeadLetterQueue"
FRESH_TIMEOUT_SECONDS = 120.0  # plus twice the freshness interval, when one is set
DRAIN_TIMEOUT_SECONDS = 60.0
POLL_SECONDS = 0.1


@dataclass
class BurstReport:
    requested: int
    clients: int
    freshness_interval: str  # what STATS_FRESHNESS_SECONDS said, or that it was unset
    accepted: int = 0
    refused: dict[str, int] = field(default_factory=dict)  # by status; "connection": no answer
    post_seconds: float = 0.0  # from the first post sent to the last accepted answer
    post_p50_ms: float = math.nan
    post_p95_ms: float = math.nan
    stats_fresh_seconds: float | None = None  # None: not seen within the timeout
    stats_leads: int = 0  # leads the dashboard counted at the end, beyond those before the burst
    batches: int = 0
    events_applied: int = 0
    bucket_item_writes: int = 0
    conflicts_retried: int = 0
    still_queued: int = 0  # events left in the stats events queue
    dead_letters: int = 0
    # What `crm stats rebuild` found to repair afterwards: day buckets rewritten or removed, lead
    # states reset (None: the rebuild did not run or said nothing readable).
    rebuild_repairs: tuple[int, int, int] | None = None

    @property
    def posts_per_second(self) -> float:
        return self.accepted / self.post_seconds if self.post_seconds > 0 else 0.0

    @property
    def writes_per_lead(self) -> float:
        return self.bucket_item_writes / self.accepted if self.accepted else 0.0

    def problems(self) -> list[str]:
        """What makes the figures inconsistent with N leads fully applied (none: all is well)."""
        checks = [
            (self.accepted == self.requested, f"{self.accepted} of {self.requested} posts accepted"),
            (self.stats_fresh_seconds is not None, "the dashboard never counted every accepted lead"),
            (self.stats_leads == self.accepted, f"the dashboard counts {self.stats_leads} new leads"),
            (self.batches > 0, "no StatsBatches metric on the server's stdout"),
            (self.events_applied == self.accepted, f"{self.events_applied} lead events applied"),
            (self.still_queued == 0, f"{self.still_queued} events still in the stats events queue"),
            (self.dead_letters == 0, f"{self.dead_letters} messages in the dead-letter queue"),
            (self.rebuild_repairs == (0, 0, 0), f"a full rebuild repaired {self.rebuild_repairs}"),
        ]
        return [message for passed, message in checks if not passed]

    def to_json(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "posts_per_second": self.posts_per_second,
            "writes_per_lead": self.writes_per_lead,
            "problems": self.problems(),
        }


def progress(message: str) -> None:
    print(f"[burst] {message}", file=sys.stderr, flush=True)


def freshness_interval(environ: Mapping[str, str]) -> str:
    value = environ.get(FRESHNESS_VARIABLE)
    if value:
        return f"`{FRESHNESS_VARIABLE}={value}` s"
    return f"`{FRESHNESS_VARIABLE}` unset (the server's default)"


def run(count: int, clients: int, out: Path, serve_args: Sequence[str] = ()) -> BurstReport:
    env = server_environment(os.environ, metrics=True)
    report = BurstReport(count, clients, freshness_interval(env))
    server = ServerProcess.start(["--seed-leads", "0", *serve_args], out, env)
    try:
        progress(f"crm serve (pid {server.process.pid}) starting at {server.base_url}")
        server.wait_until_ready()
        stats = StatsReader(
            server.base_url, local_token(ADMIN, environ=env, aws_endpoint=server.aws_endpoint)
        )
        before = stats.leads()
        progress(f"posting {count:,} leads from {clients} vendor clients")
        last_accepted = post_burst(server.base_url, report, env)
        progress(f"{report.accepted:,} accepted; waiting for the dashboard to count them")
        timeout = FRESH_TIMEOUT_SECONDS + 2 * _seconds(env.get(FRESHNESS_VARIABLE))
        report.stats_fresh_seconds, report.stats_leads = stats.wait_for(
            before + report.accepted, last_accepted, timeout
        )
        report.stats_leads -= before
        report.still_queued, report.dead_letters = queue_depths(server.aws_endpoint, env)
        report.rebuild_repairs = rebuild_repairs(server.aws_endpoint, env)
    finally:
        server.stop()
    sums = metric_sums_in(server.stdout, CONSUMER_METRICS)
    report.batches, report.events_applied, report.bucket_item_writes, report.conflicts_retried = (
        int(sums[name]) for name in CONSUMER_METRICS
    )
    return report


def post_burst(base_url: str, report: BurstReport, env: Mapping[str, str]) -> float:
    """Posts `report.requested` new people as fast as the server answers, recording the outcome
    in `report`. Returns when the last accepted answer arrived (`time.perf_counter()`)."""
    run_id = uuid.uuid4().hex[:8]
    numbers = itertools.count()  # shared by the clients: next() on it is atomic
    tokens = [local_token(VENDOR_USERS[i % len(VENDOR_USERS)], environ=env) for i in range(report.clients)]
    connections = [Connection(base_url) for _ in range(report.clients)]
    recorders = [Recorder() for _ in range(report.clients)]

    def poster(client: int) -> Callable[[], bool]:
        def step() -> bool:
            number = next(numbers)
            if number >= report.requested:
                return False
            answer = connections[client].request(
                "POST",
                "/leads",
                tokens[client],
                new_person(number, run_id),
                **{"Idempotency-Key": f"burst-{run_id}-{number}"},
            )
            recorders[client].record("POST /leads", answer, expected=201, write=True)
            return True

        return step

    started = run_closed_loop(connections, [poster(client) for client in range(report.clients)])
    samples = [sample for recorder in recorders for sample in recorder.samples]
    accepted = [sample for sample in samples if sample.ok]
    summary = summarise(samples, started)
    last_accepted = max((sample.finished for sample in accepted), default=started)
    report.accepted = len(accepted)
    report.refused = summary.errors
    report.post_seconds = last_accepted - started
    report.post_p50_ms, report.post_p95_ms = summary.p50_ms, summary.p95_ms
    return last_accepted


class StatsReader:
    """GET /admin/stats as an admin: how many leads the dashboard counts."""

    def __init__(self, base_url: str, token: str) -> None:
        self._connection = Connection(base_url)
        self._token = token

    def leads(self) -> int:
        answer = self._connection.request("GET", STATS_PATH, self._token)
        if answer.status != 200:
            raise RuntimeError(f"GET {STATS_PATH} answered {answer.status}: {answer.body[:200]!r}")
        return int(answer.json()["conversion"]["leads"])

    def wait_for(self, leads: int, since: float, timeout: float) -> tuple[float | None, int]:
        """Polls until the dashboard counts at least `leads`: (seconds from `since`, the count),
        or (None, the last count) after `timeout` seconds."""
        deadline = time.perf_counter() + timeout
        while True:
            seen = self.leads()
            if seen >= leads:
                return time.perf_counter() - since, seen
            if time.perf_counter() > deadline:
                return None, seen
            time.sleep(POLL_SECONDS)


REBUILD_SUMMARY = re.compile(r"(\d+) day bucket\(s\) rewritten, (\d+) removed, (\d+) lead state\(s\) reset")


def rebuild_repairs(aws_endpoint: str, env: Mapping[str, str]) -> tuple[int, int, int] | None:
    """Runs `crm stats rebuild` against the server's tables, as an operator would, and returns
    what it had to repair: (day buckets rewritten, removed, lead states reset). All zero means the
    buckets the consumer built equal those a full rebuild computes from the leads."""
    rebuild_env = {
        **env,
        **function_environment(local_template(env), aws_endpoint, env),
        "REDIS_URL": "",  # the server's own Redis is not known here; nothing cached to refresh
    }
    done = subprocess.run(  # nosec B603  # this interpreter, fixed arguments
        [sys.executable, "-m", "crm.cli", "stats", "rebuild"],
        env=rebuild_env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    found = REBUILD_SUMMARY.search(done.stdout)
    if done.returncode != 0 or found is None:
        progress(f"crm stats rebuild failed ({done.returncode}): {done.stderr.strip()[-500:]}")
        return None
    rewritten, removed, reset = (int(value) for value in found.groups())
    return rewritten, removed, reset


def queue_depths(aws_endpoint: str, env: Mapping[str, str]) -> tuple[int, int]:
    """(messages left in the stats events queue, messages in its dead-letter queue), once the
    former has drained or `DRAIN_TIMEOUT_SECONDS` have passed."""
    import boto3

    queues = {queue.logical_id: queue for queue in local_template(env).queues()}
    source = next(queue for queue in queues.values() if queue.dead_letter_queue == DEAD_LETTER_QUEUE)
    sqs = boto3.client(
        "sqs",
        endpoint_url=aws_endpoint,
        region_name="us-east-1",
        aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )

    def depth(name: str) -> int:
        url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
        attributes = sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        waiting = attributes.get("ApproximateNumberOfMessages", "0")
        in_flight = attributes.get("ApproximateNumberOfMessagesNotVisible", "0")
        return int(waiting) + int(in_flight)

    deadline = time.monotonic() + DRAIN_TIMEOUT_SECONDS
    while (queued := depth(source.name)) and time.monotonic() < deadline:
        time.sleep(POLL_SECONDS)
    return queued, depth(queues[DEAD_LETTER_QUEUE].name)


def _seconds(value: str | None) -> float:
    try:
        return max(0.0, float(value)) if value else 0.0
    except ValueError:
        return 0.0


def _ms(value: float) -> str:
    return "—" if math.isnan(value) else f"{value:,.0f}"


def _repairs(repairs: tuple[int, int, int] | None) -> str:
    if repairs is None:
        return "not measured (the rebuild failed)"
    rewritten, removed, reset = repairs
    return f"{rewritten} day buckets rewritten, {removed} removed, {reset} lead states reset"


def render(report: BurstReport) -> str:
    fresh = report.stats_fresh_seconds
    refused = ", ".join(f"{count:,} x {status}" for status, count in report.refused.items()) or "0"
    rows = [
        ("posts accepted", f"{report.accepted:,} of {report.requested:,}"),
        ("posts refused or failed", refused),
        ("post throughput", f"{report.posts_per_second:,.1f} leads/s over {report.post_seconds:,.1f} s"),
        ("post latency p50 / p95", f"{_ms(report.post_p50_ms)} / {_ms(report.post_p95_ms)} ms"),
        ("stats consumer invocations (batches)", f"{report.batches:,}"),
        ("lead events applied", f"{report.events_applied:,}"),
        ("bucket-item writes", f"{report.bucket_item_writes:,} ({report.writes_per_lead:.3f} per lead)"),
        ("conflicts retried", f"{report.conflicts_retried:,}"),
        (
            "stats fresh after the last accepted post",
            "not within the timeout" if fresh is None else f"{fresh:,.2f} s",
        ),
        ("stats freshness interval", report.freshness_interval),
        ("events left in the stats events queue", f"{report.still_queued:,}"),
        ("messages in the dead-letter queue", f"{report.dead_letters:,}"),
        ("a full rebuild afterwards repaired", _repairs(report.rebuild_repairs)),
    ]
    lines = [
        f"Burst of {report.requested:,} new leads from {report.clients} concurrent vendor clients into "
        "a fresh `crm serve` (demo directory, no leads)",
        "",
        "| burst | value |",
        "| --- | ---: |",
        *(f"| {label} | {value} |" for label, value in rows),
    ]
    return "\n".join(lines)


def main(count: int, clients: int, out: Path, serve_args: Sequence[str] = ()) -> int:
    report = run(count, clients, out, serve_args)
    summary = render(report)
    (out / "summary.md").write_text(summary + "\n")
    (out / "report.json").write_text(json.dumps(report.to_json(), indent=2) + "\n")
    print(summary)
    problems = report.problems()
    for problem in problems:
        print(f"inconsistent: {problem}", file=sys.stderr)
    return 1 if problems else 0
