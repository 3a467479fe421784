"""A lean closed-loop HTTP load generator, for `crm bench --burst` and `loadtest/run.py`.

Each client is one thread with one keep-alive `http.client` connection: it sends its next request
as soon as it has read the previous answer (no think time), so the offered load is exactly the
number of clients. A thread waiting for an answer holds no CPU and releases the GIL; what a
request costs the generator is building it and parsing the answer's headers, about a tenth of a
millisecond, which matters on a small machine where the generator and the server share the cores.

Standard library only, so that the load test needs nothing installed beside the project.
"""

from __future__ import annotations

import http.client
import json
import math
import socket
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

CACHE_STATUS_HEADER = "X-Cache"  # hit | miss, on every answer that read through the query cache
CONNECTION_ERROR = 0  # the status recorded when no answer came


@dataclass(frozen=True)
class Answer:
    status: int  # CONNECTION_ERROR when the request got no answer
    body: bytes
    cache: str | None  # the X-Cache header, if any
    seconds: float

    def json(self) -> Any:
        return json.loads(self.body) if self.body else None


class Connection:
    """One client's keep-alive connection to `base_url` (http only), reopened after an error."""

    def __init__(self, base_url: str, timeout: float = 120) -> None:
        parts = urlsplit(base_url)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"expected http://host:port, got {base_url!r}")
        self._connection = http.client.HTTPConnection(parts.hostname, parts.port or 80, timeout=timeout)
        self._prefix = parts.path.rstrip("/")

    def open(self) -> None:
        self._connection.connect()
        # Headers and body go out in separate writes: no Nagle delay between them.
        assert self._connection.sock is not None
        self._connection.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def request(self, method: str, path: str, token: str, body: Any = None, **headers: str) -> Answer:
        """One request; an answer with `status == CONNECTION_ERROR` when none came."""
        all_headers = {"Authorization": f"Bearer {token}", **headers}
        data = None
        if body is not None:
            data = json.dumps(body).encode()
            all_headers["Content-Type"] = "application/json"
        started = time.perf_counter()
        try:
            self._connection.request(method, self._prefix + path, body=data, headers=all_headers)
            response = self._connection.getresponse()
            payload = response.read()
        except (OSError, http.client.HTTPException):
            self._connection.close()  # the next request opens a new connection
            return Answer(CONNECTION_ERROR, b"", None, time.perf_counter() - started)
        seconds = time.perf_counter() - started
        return Answer(response.status, payload, response.getheader(CACHE_STATUS_HEADER), seconds)

    def close(self) -> None:
        self._connection.close()


@dataclass(frozen=True)
class Sample:
    """One request as a client saw it."""

    name: str  # the request's label, e.g. "GET /admin/stats?period=30d"
    status: int
    ok: bool  # the status it should have
    seconds: float
    cache: str | None
    finished: float  # time.perf_counter() when the answer was read
    write: bool = False


@dataclass
class Recorder:
    """A client's samples (one recorder per thread, so recording takes no lock)."""

    samples: list[Sample] = field(default_factory=list)

    def record(self, name: str, answer: Answer, expected: int, write: bool = False) -> bool:
        ok = answer.status == expected
        self.samples.append(
            Sample(name, answer.status, ok, answer.seconds, answer.cache, time.perf_counter(), write)
        )
        return ok


def percentile(values: Sequence[float], fraction: float) -> float:
    """The nearest-rank percentile of `values` (sorted or not); NaN when there are none."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = max(1, math.ceil(fraction * len(ordered)))
    return ordered[rank - 1]


@dataclass(frozen=True)
class Summary:
    requests: int
    writes: int
    seconds: float  # from the common start to the last answer
    p50_ms: float
    p95_ms: float
    p99_ms: float
    errors: dict[str, int]  # by status ("connection" when no answer came)
    cache_hits: int
    cache_misses: int

    @property
    def throughput(self) -> float:
        return self.requests / self.seconds if self.seconds > 0 else 0.0

    @property
    def error_count(self) -> int:
        return sum(self.errors.values())

    @property
    def hit_rate(self) -> float | None:
        """Hits over hits and misses of the answers that carried `X-Cache`."""
        looked_up = self.cache_hits + self.cache_misses
        return self.cache_hits / looked_up if looked_up else None


def summarise(samples: Iterable[Sample], started: float) -> Summary:
    """The samples' figures; the cache counts are those of reads (writes carry no `X-Cache`)."""
    samples = list(samples)
    latencies = [sample.seconds * 1000 for sample in samples]
    errors: dict[str, int] = {}
    for sample in samples:
        if not sample.ok:
            key = "connection" if sample.status == CONNECTION_ERROR else str(sample.status)
            errors[key] = errors.get(key, 0) + 1
    last = max((sample.finished for sample in samples), default=started)
    return Summary(
        requests=len(samples),
        writes=sum(sample.write for sample in samples),
        seconds=last - started,
        p50_ms=percentile(latencies, 0.50),
        p95_ms=percentile(latencies, 0.95),
        p99_ms=percentile(latencies, 0.99),
        errors=dict(sorted(errors.items())),
        cache_hits=sum(sample.cache == "hit" and not sample.write for sample in samples),
        cache_misses=sum(sample.cache == "miss" and not sample.write for sample in samples),
    )


def run_closed_loop(
    connections: Sequence[Connection], steps: Sequence[Callable[[], bool]], seconds: float = math.inf
) -> float:
    """Runs each client's `step` on its own thread, all starting at the same moment, over and
    over until `seconds` have passed or the step returns False (nothing left to do). A request
    under way when the time is up is completed and counted. Returns the common start
    (`time.perf_counter()`); the connections are closed on return."""
    for connection in connections:
        connection.open()
    start = threading.Barrier(len(steps) + 1)
    started = [0.0]
    failures: list[BaseException] = []

    def client(step: Callable[[], bool]) -> None:
        start.wait()
        deadline = started[0] + seconds
        try:
            while time.perf_counter() < deadline and step():
                pass
        except BaseException as exc:  # a bug in a step: raised again below, not lost with its thread
            failures.append(exc)

    threads = [threading.Thread(target=client, args=(step,), daemon=True) for step in steps]
    for thread in threads:
        thread.start()
    started[0] = time.perf_counter()
    start.wait()
    for thread in threads:
        thread.join()
    for connection in connections:
        connection.close()
    if failures:
        raise failures[0]
    return started[0]


# ------------------------------------------------------------------------------ new people
AREA_CODES = ("212", "213", "305", "312", "404", "512", "602", "704", "720", "206")
# Exchanges a valid US number may have, without 555 (the demo data's 555-01xx) and N11 codes.
EXCHANGES = tuple(exchange for exchange in range(200, 1000) if exchange != 555 and exchange % 100 != 11)
FIRST_NAMES = ("Ava", "Ben", "Chloe", "Diego", "Elena", "Farah", "Grace", "Hiro", "Isla", "Jamal")
LAST_NAMES = ("Adams", "Baker", "Chen", "Diaz", "Evans", "Foster", "Gupta", "Hughes", "Ito", "Jones")
STATES = (("TX", "73301"), ("NY", "10001"), ("FL", "33101"), ("CA", "94105"), ("IL", "60601"))
# The demo data's campaigns (crm.seed.CAMPAIGNS), not imported: this module stays light.
CAMPAIGNS = ("google-search", "facebook-ads", "tiktok-ads", "email-newsletter", "affiliate-network")
PHONES = len(AREA_CODES) * len(EXCHANGES) * 10_000


def new_person(number: int, run_id: str) -> dict[str, Any]:
    """The body of a vendor's POST /leads for person `number` of run `run_id`: its email and
    phone are those of no other number of the run (phones repeat only after `PHONES` people),
    and never those of the demo data."""
    first = FIRST_NAMES[number % len(FIRST_NAMES)]
    last = LAST_NAMES[number // len(FIRST_NAMES) % len(LAST_NAMES)]
    rest, area = divmod(number % PHONES, len(AREA_CODES))
    exchange, line = divmod(rest, 10_000)
    state, zip_code = STATES[number % len(STATES)]
    return {
        "first_name": first,
        "last_name": last,
        "email": f"{first}.{last}.{run_id}.{number}@example.com".lower(),
        "phone": f"({AREA_CODES[area]}) {EXCHANGES[exchange]}-{line:04d}",
        "state": state,
        "zip": zip_code,
        "campaign_source": CAMPAIGNS[number % len(CAMPAIGNS)],
        "tcpa_consent": True,
        "consent_text": "I agree to be contacted by phone, text and email.",
        "ip_address": f"203.0.113.{number % 254 + 1}",
        "landing_page_url": "https://offers.example.com/quote",
    }
