"""The local event source mapping (`crm.bus.QueuePoller`) against moto over HTTP, with a small fake
function invoked in this process: a batch reaches the function as one SQS event, the records it
reports failed stay in the queue while the others are deleted, an invocation that raises deletes
nothing, and a record failed on maxReceiveCount times moves to the dead-letter queue."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import boto3
import pytest

from crm.bus import QueuePoller
from crm.template import EventSourceMapping
from shared import dependencies
from tests.integration.conftest import test_template
from tests.integration.local_stack import EVENTS_QUEUE


@dataclass
class FakeFunction:
    """What the fake handler does: records every event, then raises if `raises`, answers
    `response` if set, else reports as failed the records whose body is in `fail_bodies` on their
    first receipt."""

    events: list[dict[str, Any]] = field(default_factory=list)
    fail_bodies: set[str] = field(default_factory=set)
    raises: bool = False
    response: Any = None

    def handle(self, event: dict[str, Any]) -> Any:
        self.events.append(event)
        if self.raises:
            raise RuntimeError("the fake function failed")
        if self.response is not None:
            return self.response
        return {
            "batchItemFailures": [
                {"itemIdentifier": record["messageId"]}
                for record in event["Records"]
                if record["body"] in self.fail_bodies
                and record["attributes"]["ApproximateReceiveCount"] == "1"
            ]
        }

    def records(self) -> list[dict[str, Any]]:
        return [record for event in self.events for record in event["Records"]]


# The fake of the running test, invoked in this process so the test can read what it received.
CURRENT: dict[str, FakeFunction] = {}


@dataclass
class InProcessFunction:
    logical_id: str = "FakeFunction"

    def invoke(self, event: dict[str, Any]) -> Any:
        return CURRENT["fake"].handle(event)


@pytest.fixture
def fake() -> Iterator[FakeFunction]:
    CURRENT["fake"] = FakeFunction()
    yield CURRENT["fake"]
    CURRENT.clear()


def fake_function() -> InProcessFunction:
    return InProcessFunction()


def mapping(batch_size: int, batching_window: int = 0, report_failures: bool = True) -> EventSourceMapping:
    return EventSourceMapping(
        function="FakeFunction",
        handler=f"{__name__}.fake_handler",
        name="FakeFunction-Messages",
        queue="FakeQueue",
        batch_size=batch_size,
        batching_window=batching_window,
        report_batch_item_failures=report_failures,
    )


@pytest.fixture
def sqs(aws: dict[str, str]) -> Any:
    return boto3.client("sqs")


def new_queue(sqs: Any, name: str = "fake-messages", **attributes: str) -> str:
    # Long enough that nothing comes back by itself during a test, unless a test says otherwise.
    return str(
        sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "60", **attributes})["QueueUrl"]
    )


def send(sqs: Any, queue_url: str, count: int) -> list[str]:
    bodies = [f"message-{n}" for n in range(count)]
    for start in range(0, count, 10):
        sqs.send_message_batch(
            QueueUrl=queue_url,
            Entries=[
                {"Id": str(n), "MessageBody": body} for n, body in enumerate(bodies[start : start + 10])
            ],
        )
    return bodies


def counts(sqs: Any, queue_url: str) -> tuple[int, int]:
    """(waiting, received and not deleted) messages of the queue."""
    attributes = sqs.get_queue_attributes(
        QueueUrl=queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attributes["ApproximateNumberOfMessages"]), int(
        attributes["ApproximateNumberOfMessagesNotVisible"]
    )


def wait_for(condition: Callable[[], bool], seconds: float = 15.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert condition()


@contextmanager
def running(poller: QueuePoller) -> Iterator[QueuePoller]:
    poller.start()
    try:
        yield poller
    finally:
        poller.stop()
        poller.join(timeout=5)
        assert not poller.is_alive()


@pytest.mark.parametrize(
    ("count", "batch_size", "batching_window"),
    [
        pytest.param(25, 25, 60, id="a-full-batch-goes-at-once"),
        # (all 12 are waiting before the poller starts: its two receives fall well within the window)
        pytest.param(12, 100, 3, id="a-smaller-batch-goes-after-the-window"),
    ],
)
def test_a_batch_of_messages_reaches_the_function_as_one_sqs_event(
    sqs: Any, fake: FakeFunction, count: int, batch_size: int, batching_window: int
) -> None:
    # Given more messages waiting than one receive returns (10)
    queue_url = new_queue(sqs)
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    bodies = send(sqs, queue_url, count)
    # When the poller runs
    with running(
        QueuePoller(mapping(batch_size, batching_window), queue_url, fake_function(), sqs)
    ) as poller:
        wait_for(lambda: poller.delivered == count)
    # Then the function was invoked once, with every message as a record of an SQS event
    assert len(fake.events) == 1
    (event,) = fake.events
    assert set(event) == {"Records"}
    assert sorted(record["body"] for record in event["Records"]) == sorted(bodies)
    for record in event["Records"]:
        assert record["eventSource"] == "aws:sqs"
        assert record["eventSourceARN"] == queue_arn
        assert record["awsRegion"] == "us-east-1"
        assert record["md5OfBody"] == hashlib.md5(record["body"].encode(), usedforsecurity=False).hexdigest()
        assert record["messageAttributes"] == {}
        assert record["messageId"]
        assert record["receiptHandle"]
        assert record["attributes"]["ApproximateReceiveCount"] == "1"
        assert {"SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"} <= set(record["attributes"])
    assert len({record["messageId"] for record in event["Records"]}) == count
    # And every message was deleted
    assert poller.failed == 0
    assert counts(sqs, queue_url) == (0, 0)


def test_more_messages_than_batch_size_go_in_several_batches(sqs: Any, fake: FakeFunction) -> None:
    # Given 30 messages and a batch size of 10
    queue_url = new_queue(sqs)
    bodies = send(sqs, queue_url, 30)
    # When the poller runs
    with running(QueuePoller(mapping(10, 60), queue_url, fake_function(), sqs)) as poller:
        wait_for(lambda: poller.delivered == 30)
    # Then the function got three full batches, every message in one of them
    assert [len(event["Records"]) for event in fake.events] == [10, 10, 10]
    assert sorted(record["body"] for record in fake.records()) == sorted(bodies)
    assert counts(sqs, queue_url) == (0, 0)


def test_records_reported_in_batch_item_failures_stay_in_the_queue_and_the_others_are_deleted(
    sqs: Any, fake: FakeFunction
) -> None:
    # Given six messages, two of which the function reports failed on their first receipt
    queue_url = new_queue(sqs)
    send(sqs, queue_url, 6)
    fake.fail_bodies = {"message-1", "message-4"}
    with running(QueuePoller(mapping(10), queue_url, fake_function(), sqs)) as poller:
        # When the poller delivers them
        wait_for(lambda: poller.delivered + poller.failed == 6)
        # Then the four others were deleted, and the two reported ones were not
        assert (poller.delivered, poller.failed) == (4, 2)
        assert counts(sqs, queue_url) == (0, 2)
        (first,) = fake.events
        reported = [record for record in first["Records"] if record["body"] in fake.fail_bodies]
        # And once visible again (at once here, instead of after the visibility timeout)
        for record in reported:
            sqs.change_message_visibility(
                QueueUrl=queue_url, ReceiptHandle=record["receiptHandle"], VisibilityTimeout=0
            )
        wait_for(lambda: poller.delivered == 6)
    # they reached the function again, alone, on their second receipt
    assert len(fake.events) == 2
    again = fake.events[1]["Records"]
    assert sorted(record["messageId"] for record in again) == sorted(
        record["messageId"] for record in reported
    )
    assert {record["attributes"]["ApproximateReceiveCount"] for record in again} == {"2"}
    assert counts(sqs, queue_url) == (0, 0)


def test_an_invocation_that_raises_deletes_nothing(sqs: Any, fake: FakeFunction) -> None:
    # Given five messages and a function that raises
    queue_url = new_queue(sqs)
    send(sqs, queue_url, 5)
    fake.raises = True
    # When the poller delivers them
    with running(QueuePoller(mapping(10), queue_url, fake_function(), sqs)) as poller:
        wait_for(lambda: poller.failed == 5)
    # Then the function saw them all, and every one is still in the queue
    assert len(fake.records()) == 5
    assert poller.delivered == 0
    assert counts(sqs, queue_url) == (0, 5)


@pytest.mark.parametrize(
    "response",
    [
        pytest.param(
            {"batchItemFailures": [{"itemIdentifier": "not-a-message-of-the-batch"}]}, id="unknown-id"
        ),
        pytest.param({"batchItemFailures": [{"itemIdentifier": ""}]}, id="empty-id"),
        pytest.param({"batchItemFailures": [{"id": "x"}]}, id="no-item-identifier"),
    ],
)
def test_a_response_lambda_rejects_fails_the_whole_batch(
    sqs: Any, fake: FakeFunction, response: dict[str, Any]
) -> None:
    # Given a function answering with a response Lambda counts as a failure of the whole batch
    queue_url = new_queue(sqs)
    send(sqs, queue_url, 3)
    fake.response = response
    # When the poller delivers the messages
    with running(QueuePoller(mapping(10), queue_url, fake_function(), sqs)) as poller:
        wait_for(lambda: poller.failed == 3)
    # Then none was deleted
    assert poller.delivered == 0
    assert counts(sqs, queue_url) == (0, 3)


def test_without_report_batch_item_failures_a_successful_invocation_deletes_the_whole_batch(
    sqs: Any, fake: FakeFunction
) -> None:
    # Given a mapping that does not report item failures, and a function that reports one anyway
    queue_url = new_queue(sqs)
    send(sqs, queue_url, 3)
    fake.fail_bodies = {"message-0"}
    # When the poller delivers the messages
    with running(QueuePoller(mapping(10, report_failures=False), queue_url, fake_function(), sqs)) as poller:
        wait_for(lambda: poller.delivered == 3)
    # Then Lambda ignored the response: every message was deleted
    assert poller.failed == 0
    assert counts(sqs, queue_url) == (0, 0)


def test_a_record_failed_max_receive_count_times_moves_to_the_dead_letter_queue(
    sqs: Any, fake: FakeFunction
) -> None:
    # Given a queue whose messages come back at once, and go to a dead-letter queue after 2 receipts
    dead_letters = new_queue(sqs, "fake-dead-letters")
    dead_letters_arn = sqs.get_queue_attributes(QueueUrl=dead_letters, AttributeNames=["QueueArn"])[
        "Attributes"
    ]["QueueArn"]
    redrive = json.dumps({"deadLetterTargetArn": dead_letters_arn, "maxReceiveCount": 2})
    queue_url = new_queue(sqs, VisibilityTimeout="0", RedrivePolicy=redrive)
    send(sqs, queue_url, 1)
    fake.raises = True
    # When the function fails on it every time
    with running(QueuePoller(mapping(10), queue_url, fake_function(), sqs)):
        wait_for(lambda: counts(sqs, dead_letters)[0] == 1)
    # Then it reached the function twice, then the dead-letter queue
    assert [record["attributes"]["ApproximateReceiveCount"] for record in fake.records()] == ["1", "2"]
    assert counts(sqs, queue_url) == (0, 0)


def test_a_published_lead_event_reaches_the_mapped_function_through_the_rule_and_queue(
    aws: dict[str, str], sqs: Any, fake: FakeFunction
) -> None:
    # Given the template's event source mapping of the stats events queue, to the fake function
    template = test_template()
    (stats_events,) = [m for m in template.event_source_mappings() if m.queue == EVENTS_QUEUE]
    (queue,) = [spec for spec in template.queues() if spec.logical_id == EVENTS_QUEUE]
    poller = QueuePoller(stats_events, aws[EVENTS_QUEUE], fake_function(), sqs)
    with running(poller):
        # When a lead event is published on the bus and the queue drains
        dependencies.event_publisher().publish(
            "LeadCreated", {"lead_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV", "version": 1}
        )
        assert poller.wait_until_idle()
    # Then the function got it as one SQS record whose body is the EventBridge event
    (record,) = fake.records()
    assert record["eventSourceARN"] == poller.queue_arn
    assert poller.queue_arn.endswith(f":{queue.name}")
    event = json.loads(record["body"])
    assert (event["source"], event["detail-type"]) == ("crm.leads", "LeadCreated")
    assert event["detail"]["lead_id"] == "01ARZ3NDEKTSV4RRFFQ69G5FAV"
    assert poller.delivered == 1
