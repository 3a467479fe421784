"""What a stats batch costs, as the store counts it and the consumer publishes it: transactions
committed, bucket-item writes, conflicts retried (no network: the store's transactions and reads
are replaced by fakes that record what they were given)."""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from ulid import ULID

import stats.store
from crm.emf import metric_sums
from shared.dynamo import Table, TransactionCancelled, Write
from stats.aggregation import LeadView
from stats.store import LEAD_STATE, MAX_ATTEMPTS, BatchResult, LeadChange, StatsStore
from tests.helpers import FakeLambdaContext, sqs_event

START = datetime(2026, 10, 1, 15, 0, tzinfo=UTC)
CONSUMER_METRICS = ("StatsBatches", "StatsEventsApplied", "BucketItemWrites", "ConflictsRetried")


def new_lead(number: int) -> LeadChange:
    """A new lead of one day, from one of three vendors to one of three agents."""
    view = LeadView.from_values(
        {
            "vendor_code": f"V00{number % 3 + 1}",
            "campaign_source": "google",
            "assigned_agent": f"agent-{number % 3 + 1}",
            "disposition": "new",
            "lead_value": "40.00",
            "quality_score": 7,
            "created_at": (START + timedelta(seconds=number)).isoformat().replace("+00:00", "Z"),
        }
    )
    return LeadChange(f"L{number:04d}", 1, view)


class FakeDynamo:
    """`transact` and `batch_get` for the store: no lead has a state yet, and the first
    `conflicts` transactions are cancelled by a conflict (as when another delivery got there
    first); the others commit and are kept."""

    def __init__(self, conflicts: int) -> None:
        self.conflicts = conflicts
        self.committed: list[list[Write]] = []
        self.cancelled = 0

    def transact(self, writes: Sequence[Write], client: object = None) -> None:
        if self.cancelled < self.conflicts:
            self.cancelled += 1
            raise TransactionCancelled(writes, ["None"] * (len(writes) - 1) + ["TransactionConflict"])
        self.committed.append(list(writes))

    def batch_get(
        self, keys: dict[str, list[dict[str, Any]]], client: object = None, consistent: bool = False
    ) -> dict[str, list[dict[str, Any]]]:
        return {table: [] for table in keys}

    def bucket_writes(self) -> int:
        return sum(write.name != LEAD_STATE for writes in self.committed for write in writes)


@pytest.fixture
def fake_dynamo(monkeypatch: pytest.MonkeyPatch) -> Callable[[int], FakeDynamo]:
    """Installs a `FakeDynamo` cancelling that many transactions; retries wait no time."""

    def install(conflicts: int) -> FakeDynamo:
        fake = FakeDynamo(conflicts)
        monkeypatch.setattr(stats.store, "transact", fake.transact)
        monkeypatch.setattr(stats.store, "batch_get", fake.batch_get)
        monkeypatch.setattr(stats.store, "BACKOFF_SECONDS", 0.0)
        return fake

    return install


def store() -> StatsStore:
    return StatsStore(Table("crm-test-stats"), Table("crm-test-stats-state"), ZoneInfo("America/New_York"))


def test_a_batch_counts_the_bucket_item_writes_it_committed_and_the_conflicts_it_retried(
    fake_dynamo: Callable[[int], FakeDynamo],
) -> None:
    # Given 150 new leads (more than one transaction holds) and a first transaction that a
    # concurrent delivery cancels
    fake = fake_dynamo(1)
    # When the store applies them as one batch
    result = store().apply_batch(new_lead(number) for number in range(150))
    # Then every lead is applied, in the transactions that committed
    assert result.applied == {f"L{number:04d}" for number in range(150)}
    assert not result.failed
    assert result.transactions == len(fake.committed) == 2
    # And the writes counted are the bucket items those transactions wrote, not the cancelled
    # one's, and not the leads' states
    assert result.bucket_item_writes == fake.bucket_writes()
    assert 0 < result.bucket_item_writes < 150
    assert result.conflicts_retried == 1


def test_a_batch_that_never_commits_counts_each_retry_and_no_write(
    fake_dynamo: Callable[[int], FakeDynamo],
) -> None:
    # Given transactions that are always cancelled by a conflict
    fake = fake_dynamo(MAX_ATTEMPTS)
    # When the store applies a batch of three leads (one transaction)
    result = store().apply_batch(new_lead(number) for number in range(3))
    # Then they are failed, after a retry of that transaction for each attempt but the first
    assert result.failed == {"L0000", "L0001", "L0002"}
    assert result.applied == set()
    assert (result.transactions, result.bucket_item_writes) == (0, 0)
    assert result.conflicts_retried == MAX_ATTEMPTS - 1
    assert fake.committed == []


def test_a_redelivered_batch_commits_nothing_and_counts_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given leads whose version 1 was applied already
    fake = FakeDynamo(conflicts=0)
    monkeypatch.setattr(stats.store, "transact", fake.transact)
    change = new_lead(0)
    assert change.view is not None
    applied = {"lead_id": change.lead_id, "version": 1, "view": change.view.to_values()}
    monkeypatch.setattr(stats.store, "batch_get", lambda keys, **_: {t: [applied] for t in keys})
    # When the same change comes again
    result = store().apply_batch([change])
    # Then nothing is written or counted
    assert result == BatchResult()
    assert fake.committed == []


class FakeUpdater:
    """The consumer's bucket updater, answering with a fixed result."""

    def __init__(self, result: BatchResult) -> None:
        self.result = result
        self.changes: list[LeadChange] = []

    def apply(self, changes: Iterable[LeadChange]) -> BatchResult:
        self.changes = list(changes)
        return self.result


def lead_event(number: int) -> dict[str, Any]:
    change = new_lead(number)
    assert change.view is not None
    after = json.loads(json.dumps(change.view.to_values(), default=str))
    detail = {"lead_id": change.lead_id, "version": 1, "before": None, "after": after}
    return {"version": "0", "detail-type": "LeadCreated", "source": "crm.leads", "detail": detail}


def test_each_consumer_invocation_publishes_its_batch_as_metrics_that_add_up_from_its_output(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import stats.batch
    import stats.consumer

    # Given metrics printed as EMF (as under `crm serve` with POWERTOOLS_METRICS_DISABLED=false),
    # and a store that applied two leads in transactions writing 7 bucket items after 2 conflicts
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    result = BatchResult(
        applied={"L0000", "L0001"}, transactions=3, bucket_item_writes=7, conflicts_retried=2
    )
    updater = FakeUpdater(result)
    monkeypatch.setattr(stats.batch, "bucket_updater", lambda: updater)
    # When the consumer takes two batches of lead events
    for _ in range(2):
        stats.consumer.lambda_handler(sqs_event([lead_event(0), lead_event(1)]), FakeLambdaContext())
    # Then its output, logs included, adds up to two batches of what the store reported
    sums = metric_sums(capsys.readouterr().out.splitlines(), CONSUMER_METRICS)
    assert sums == {"StatsBatches": 2, "StatsEventsApplied": 4, "BucketItemWrites": 14, "ConflictsRetried": 4}
    assert [change.lead_id for change in updater.changes] == ["L0000", "L0001"]


def test_with_metrics_disabled_the_consumer_prints_and_keeps_no_metric(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import stats.batch
    import stats.consumer
    from shared.observability import metrics

    # Given metrics disabled (the local default, and the tests')
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "true")
    monkeypatch.setattr(stats.batch, "bucket_updater", lambda: FakeUpdater(BatchResult(bucket_item_writes=3)))
    # When the consumer takes a batch
    stats.consumer.lambda_handler(sqs_event([lead_event(0)]), FakeLambdaContext())
    # Then no EMF record is printed, and none piles up for a later flush
    assert metric_sums(capsys.readouterr().out.splitlines(), CONSUMER_METRICS)["StatsBatches"] == 0
    assert metrics.metric_set == {}


def test_emf_sums_read_only_declared_metrics_of_emf_records() -> None:
    record = {
        "_aws": {"CloudWatchMetrics": [{"Namespace": "LeadCRM", "Metrics": [{"Name": "BucketItemWrites"}]}]},
        "BucketItemWrites": [2, 3],
        "StatsBatches": 9,  # not declared in this record: a property, not a metric
        "service": "crm",
    }
    lines = [
        "Lead CRM API listening on http://127.0.0.1:3000",
        json.dumps({"level": "INFO", "message": "lead changes applied", "StatsBatches": 1}),
        json.dumps(record),
        "{not json",
        json.dumps({**record, "BucketItemWrites": 4}),
    ]
    assert metric_sums(lines, ("BucketItemWrites", "StatsBatches")) == {
        "BucketItemWrites": 9,
        "StatsBatches": 0,
    }


# ---------------------------------------------------------------------- freshness and correlation
NOW = datetime(2026, 10, 1, 15, 0, 30, tzinfo=UTC)


def traced_event(number: int, committed: datetime, correlation_id: str | None) -> dict[str, Any]:
    """A LeadCreated as the leads service sends it: its id made when the change was committed,
    and the id of the API request that made it."""
    event = lead_event(number)
    event["detail"]["event_id"] = str(ULID.from_datetime(committed))
    event["detail"]["correlation_id"] = correlation_id
    return event


@pytest.fixture
def consumer_logs() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """The consumer's log records (JSON lines), written to a buffer instead of stdout."""
    from shared.observability import logger

    handler = logger.registered_handler
    previous, buffer = handler.stream, io.StringIO()
    handler.stream = buffer  # not setStream, which would flush a stream pytest may have closed
    yield lambda: [json.loads(line) for line in buffer.getvalue().splitlines()]
    handler.stream = previous


def emf_records(out: str) -> list[dict[str, Any]]:
    return [json.loads(line) for line in out.splitlines() if line.startswith("{") and '"_aws"' in line]


@pytest.fixture
def consumer(monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[BatchResult], FakeUpdater]]:
    """The consumer with metrics printed as EMF, a clock at NOW and a store answering `result`."""
    import stats.batch
    import stats.consumer

    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    monkeypatch.setattr(stats.batch, "clock", NOW.timestamp)
    previous_level = stats.consumer.logger.log_level
    stats.consumer.logger.setLevel("INFO")

    def install(result: BatchResult) -> FakeUpdater:
        updater = FakeUpdater(result)
        monkeypatch.setattr(stats.batch, "bucket_updater", lambda: updater)
        return updater

    yield install
    stats.consumer.logger.setLevel(previous_level)


def test_the_consumer_logs_each_event_under_the_correlation_id_of_the_request_that_made_it(
    consumer: Callable[[BatchResult], FakeUpdater], consumer_logs: Callable[[], list[dict[str, Any]]]
) -> None:
    import stats.consumer

    # Given two lead changes made by two API requests, one the store applies and one it fails
    consumer(BatchResult(applied={"L0000"}, failed={"L0001"}))
    events = [
        traced_event(0, NOW - timedelta(seconds=2), "request-a"),
        traced_event(1, NOW - timedelta(seconds=3), "request-b"),
    ]
    # When the consumer takes them in one batch
    response = stats.consumer.lambda_handler(sqs_event(events), FakeLambdaContext())
    # Then each is logged under its own request's correlation id, with its event id and fate
    logs = consumer_logs()
    per_event = {record["lead_id"]: record for record in logs if record["message"].startswith("lead change ")}
    assert per_event["L0000"]["correlation_id"] == "request-a"
    assert per_event["L0000"]["message"] == "lead change applied"
    assert per_event["L0000"]["event_id"] == events[0]["detail"]["event_id"]
    assert per_event["L0001"]["correlation_id"] == "request-b"
    assert (per_event["L0001"]["message"], per_event["L0001"]["level"]) == ("lead change failed", "WARNING")
    # And the batch's summary belongs to no single request
    (summary,) = [record for record in logs if record["message"] == "lead changes applied"]
    assert "correlation_id" not in summary
    assert response == {"batchItemFailures": [{"itemIdentifier": "m-1"}]}


def test_the_consumer_publishes_the_age_of_the_oldest_change_it_applied_in_seconds(
    consumer: Callable[[BatchResult], FakeUpdater], capsys: pytest.CaptureFixture[str]
) -> None:
    import stats.consumer

    # Given changes committed 2 s and 7 s ago, both applied, and one 60 s old the store failed
    consumer(BatchResult(applied={"L0000", "L0001"}, failed={"L0002"}))
    events = [
        traced_event(0, NOW - timedelta(seconds=2), "request-a"),
        traced_event(1, NOW - timedelta(seconds=7), "request-b"),
        traced_event(2, NOW - timedelta(seconds=60), "request-c"),
    ]
    # When the consumer takes them
    stats.consumer.lambda_handler(sqs_event(events), FakeLambdaContext())
    # Then it publishes the age of the oldest change it applied, as seconds, under its service
    (record,) = emf_records(capsys.readouterr().out)
    assert record["StatsEventAgeSeconds"] == [pytest.approx(7.0)]  # one value per invocation
    (directive,) = record["_aws"]["CloudWatchMetrics"]
    units = {metric["Name"]: metric["Unit"] for metric in directive["Metrics"]}
    assert units["StatsEventAgeSeconds"] == "Seconds"
    assert directive["Namespace"] == "LeadCRM"
    assert directive["Dimensions"] == [["service"]]


def test_an_event_without_an_id_is_aged_from_when_the_bus_accepted_it(
    consumer: Callable[[BatchResult], FakeUpdater], capsys: pytest.CaptureFixture[str]
) -> None:
    import stats.consumer

    consumer(BatchResult(applied={"L0000"}))
    event = {**lead_event(0), "time": (NOW - timedelta(seconds=4)).isoformat().replace("+00:00", "Z")}
    stats.consumer.lambda_handler(sqs_event([event]), FakeLambdaContext())
    (record,) = emf_records(capsys.readouterr().out)
    assert record["StatsEventAgeSeconds"] == [pytest.approx(4.0)]  # one value per invocation


def test_a_batch_that_applies_nothing_publishes_no_event_age(
    consumer: Callable[[BatchResult], FakeUpdater], capsys: pytest.CaptureFixture[str]
) -> None:
    import stats.consumer

    # Given a redelivered change: the store applies nothing
    consumer(BatchResult())
    stats.consumer.lambda_handler(
        sqs_event([traced_event(0, NOW - timedelta(seconds=600), "request-a")]), FakeLambdaContext()
    )
    # Then there is no age to report (a redelivery is not a late change)
    (record,) = emf_records(capsys.readouterr().out)
    assert "StatsEventAgeSeconds" not in record
    assert record["StatsBatches"] == [1]
