"""The load generator's arithmetic and its new people (`crm.loadgen`), without a server."""

from __future__ import annotations

import math

from crm.loadgen import CONNECTION_ERROR, PHONES, Sample, new_person, percentile, summarise
from leads.normalize import normalize_email, normalize_phone


def sample(status: int, ms: float, cache: str | None = None, write: bool = False, at: float = 1.0) -> Sample:
    expected = 201 if write else 200
    return Sample("request", status, status == expected, ms / 1000, cache, at, write)


def test_percentiles_are_nearest_rank() -> None:
    values = [float(n) for n in range(100, 0, -1)]  # 1..100, unsorted
    assert [percentile(values, q) for q in (0.5, 0.95, 0.99, 1.0)] == [50, 95, 99, 100]
    assert percentile([7.0], 0.99) == 7
    assert math.isnan(percentile([], 0.5))


def test_a_summary_counts_errors_by_status_and_the_hit_rate_of_reads_only() -> None:
    # Given reads that hit, missed or read no cache, a failed read, a lost connection, and
    # writes (one refused) that say nothing of the cache
    samples = [
        sample(200, 10, "hit", at=2.0),
        sample(200, 20, "hit", at=3.0),
        sample(200, 30, "miss", at=4.0),
        sample(200, 40, None, at=5.0),
        sample(500, 50, "miss", at=6.0),
        sample(CONNECTION_ERROR, 60, at=7.0),
        sample(201, 70, write=True, at=8.0),
        sample(409, 80, "hit", write=True, at=9.0),
    ]
    # When they are summarised from a start at 1.0
    summary = summarise(samples, started=1.0)
    # Then throughput runs to the last answer, and errors are every unexpected answer or none
    assert (summary.requests, summary.writes, summary.seconds) == (8, 2, 8.0)
    assert summary.throughput == 1.0
    assert summary.errors == {"409": 1, "500": 1, "connection": 1}
    assert summary.error_count == 3
    # And the hit rate is over the reads that carried X-Cache
    assert (summary.cache_hits, summary.cache_misses) == (2, 2)
    assert summary.hit_rate == 0.5
    assert (summary.p50_ms, summary.p99_ms) == (40, 80)


def test_new_people_are_distinct_valid_and_never_the_demo_datas() -> None:
    numbers = [*range(5000), PHONES - 1, 123_456_789]
    people = [new_person(number, "run1") for number in numbers]
    phones = [normalize_phone(person["phone"]) for person in people]
    emails = [normalize_email(person["email"]) for person in people]
    assert len(set(phones)) == len(set(emails)) == len(numbers)
    assert not any(phone[5:8] == "555" for phone in phones)  # +1 NPA 555-01xx is the demo data's
    assert new_person(7, "run1") == new_person(7, "run1")
    assert new_person(7, "run1")["email"] != new_person(7, "run2")["email"]
