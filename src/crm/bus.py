"""Delivers events from the local bus to their functions, as EventBridge and Lambda do in AWS.

Each rule of the template sends the events it matches to its target queues (moto's EventBridge
does this itself). Each event source mapping of the template (a function's `Type: SQS` event)
gets a `QueuePoller` thread, Lambda's poller: it receives up to BatchSize messages, keeping on
receiving (SQS returns at most 10 at a time) until the batch is full or the mapping's batching
window has passed since the first message arrived, and invokes the function once with them as an
SQS event (`{"Records": [...]}`). It then deletes every message of the batch except those the
function listed in `batchItemFailures` (when the mapping reports item failures; otherwise a
successful invocation deletes them all). An invocation that raises, or answers with a response
Lambda would reject, deletes nothing. A message left in the queue is received again once its
visibility timeout passes and, after the queue's maxReceiveCount receipts, moved to its
dead-letter queue by the redrive policy (moto applies it as SQS does).

Batches of one mapping are delivered one at a time; in AWS several pollers deliver batches of one
queue concurrently. The function runs in its own execution environments (`crm.functions`), so a
batch never waits behind API requests, and API requests never wait for the bus: the gateway
answers a write as soon as its function does, and the stats it moves are fresh once the batch is
applied and the cached reads have expired (the stats freshness interval), as in AWS.
`wait_until_idle` tells a tool or a test when the queue is drained."""

from __future__ import annotations

import base64
import logging
import threading
import time
from typing import Any, Protocol

from crm.template import EventSourceMapping

# Not under "crm": that is the functions' own (Powertools) logger, at their log level.
log = logging.getLogger("local.bus")

SQS_MAX_MESSAGES_PER_RECEIVE = 10
SQS_MAX_ENTRIES_PER_DELETE = 10
# A long poll while no batch is being gathered; also how soon a stopped poller notices.
IDLE_WAIT_SECONDS = 1
# While a batch is being gathered and the queue is empty: how often to look again.
GATHER_INTERVAL_SECONDS = 0.05


class Invocable(Protocol):
    """What a poller invokes: a function of the template (`crm.functions.LocalFunction`)."""

    @property
    def logical_id(self) -> str: ...

    def invoke(self, event: dict[str, Any]) -> Any: ...


class QueuePoller(threading.Thread):
    """Lambda's poller for one event source mapping: delivers the messages of `queue_url` to
    `function` in batches, as the module docstring describes.

    `delivered` counts the records the function took (invoked with them, not reported, deleted);
    `failed` the records left in the queue for another receipt: those reported in
    `batchItemFailures`, and every record of an invocation that raised or gave a response Lambda
    counts as a failure of the whole batch. A record received again is counted again."""

    def __init__(self, mapping: EventSourceMapping, queue_url: str, function: Invocable, sqs: Any) -> None:
        super().__init__(name=f"poller-{mapping.name}", daemon=True)
        self.mapping = mapping
        self.queue_url = queue_url
        self.function = function
        self._sqs = sqs
        self.queue_arn = str(
            sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
        )
        self._stopping = threading.Event()
        self.delivered = 0
        self.failed = 0

    def stop(self) -> None:
        self._stopping.set()

    def wait_until_idle(self, timeout: float = 15.0) -> bool:
        """Waits until the queue holds no message: none waiting, in a batch, or received and left
        for a retry (False on timeout).

        The queue's two counts are taken at slightly different instants, so a message whose
        visibility timeout passes between them is in neither: the queue is taken as empty only
        when two readings in a row say so."""
        deadline = time.monotonic() + timeout
        empty_readings = 0
        while time.monotonic() < deadline:
            empty_readings = empty_readings + 1 if self._holds_nothing() else 0
            if empty_readings == 2:
                return True
            if not empty_readings:
                time.sleep(0.02)
        return False

    def _holds_nothing(self) -> bool:
        attributes = self._sqs.get_queue_attributes(
            QueueUrl=self.queue_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return not any(int(value) for value in attributes.values())

    def run(self) -> None:
        while not self._stopping.is_set():
            batch = self._gather()
            if batch:
                self._deliver(batch)

    def _receive(self, count: int, wait_seconds: int) -> list[dict[str, Any]]:
        response = self._sqs.receive_message(
            QueueUrl=self.queue_url,
            MaxNumberOfMessages=min(count, SQS_MAX_MESSAGES_PER_RECEIVE),
            WaitTimeSeconds=wait_seconds,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        return list(response.get("Messages", []))

    def _gather(self) -> list[dict[str, Any]]:
        """One batch: waits for a first message, then receives more until the batch holds
        BatchSize messages or the batching window has passed since the first one arrived. Empty
        when nothing arrived. A message received twice (its visibility timeout passed meanwhile)
        is in the batch once, with its latest receipt."""
        try:
            first = self._receive(self.mapping.batch_size, IDLE_WAIT_SECONDS)
        except Exception:
            if not self._stopping.is_set():
                log.exception("bus: receiving for %s failed", self.mapping.name)
                self._stopping.wait(1.0)
            return []
        batch = {message["MessageId"]: message for message in first}
        window_ends = time.monotonic() + self.mapping.batching_window
        while batch and len(batch) < self.mapping.batch_size:
            left = window_ends - time.monotonic()
            if left <= 0 or self._stopping.is_set():
                break
            try:
                more = self._receive(self.mapping.batch_size - len(batch), 0)
            except Exception:
                log.exception(
                    "bus: receiving for %s failed; delivering the batch gathered", self.mapping.name
                )
                break
            batch.update((message["MessageId"], message) for message in more)
            if not more:
                self._stopping.wait(min(GATHER_INTERVAL_SECONDS, left))
        return list(batch.values())

    def _deliver(self, messages: list[dict[str, Any]]) -> None:
        """Invokes the function once with the batch, then deletes what it did not report."""
        event = {"Records": [sqs_record(message, self.queue_arn) for message in messages]}
        try:
            response = self.function.invoke(event)
        except Exception:
            self.failed += len(messages)
            log.exception(
                "bus: %s failed on a batch of %d record(s) from %s; every record will be retried",
                self.function.logical_id,
                len(messages),
                self.mapping.queue,
            )
            return
        # Without ReportBatchItemFailures Lambda reads no response: the batch succeeded.
        reported: set[str] | None = set()
        if self.mapping.report_batch_item_failures:
            reported = batch_item_failures(response, {message["MessageId"] for message in messages})
        if reported is None:
            self.failed += len(messages)
            log.error(
                "bus: %s answered a batch of %d record(s) with an invalid batchItemFailures "
                "response; every record will be retried: %r",
                self.function.logical_id,
                len(messages),
                response,
            )
            return
        done = [message for message in messages if message["MessageId"] not in reported]
        self._delete_handled(done)
        self.delivered += len(done)
        self.failed += len(reported)
        if reported:
            log.warning(
                "bus: %s reported %d of %d record(s) failed; they will be retried: %s",
                self.function.logical_id,
                len(reported),
                len(messages),
                sorted(reported),
            )

    def _delete_handled(self, messages: list[dict[str, Any]]) -> None:
        for start in range(0, len(messages), SQS_MAX_ENTRIES_PER_DELETE):
            chunk = messages[start : start + SQS_MAX_ENTRIES_PER_DELETE]
            entries = [
                {"Id": str(n), "ReceiptHandle": message["ReceiptHandle"]} for n, message in enumerate(chunk)
            ]
            try:
                failed = self._sqs.delete_message_batch(QueueUrl=self.queue_url, Entries=entries).get(
                    "Failed", []
                )
            except Exception:
                log.exception("bus: deleting %d handled message(s) failed; they will come again", len(chunk))
                continue
            if failed:
                log.warning(
                    "bus: %d handled message(s) were not deleted and will come again: %s", len(failed), failed
                )


def batch_item_failures(response: Any, message_ids: set[str]) -> set[str] | None:
    """The message ids a function listed in `batchItemFailures`, as Lambda reads its response:
    no response, no list or an empty one means every record succeeded; None means Lambda counts
    the whole batch as failed (a response of another shape, or an `itemIdentifier` that is
    missing, empty or not a message of the batch)."""
    if response is None:
        return set()
    if not isinstance(response, dict):
        return None
    items = response.get("batchItemFailures")
    if items is None:
        return set()
    if not isinstance(items, list):
        return None
    reported = set()
    for item in items:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, str) or identifier not in message_ids:
            return None
        reported.add(identifier)
    return reported


def sqs_record(message: dict[str, Any], queue_arn: str) -> dict[str, Any]:
    """One record of a Lambda SQS event, from a message as ReceiveMessage returns it."""
    record = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message["Body"],
        "attributes": dict(message.get("Attributes", {})),
        "messageAttributes": {
            name: _record_attribute(value) for name, value in message.get("MessageAttributes", {}).items()
        },
        "md5OfBody": message["MD5OfBody"],
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": queue_arn.split(":")[3],
    }
    if "MD5OfMessageAttributes" in message:
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def _record_attribute(value: dict[str, Any]) -> dict[str, Any]:
    """A message attribute as Lambda writes it in a record (camel case, binary as base64)."""
    attribute: dict[str, Any] = {
        "stringListValues": list(value.get("StringListValues", [])),
        "binaryListValues": [base64.b64encode(item).decode() for item in value.get("BinaryListValues", [])],
        "dataType": value["DataType"],
    }
    if "StringValue" in value:
        attribute["stringValue"] = value["StringValue"]
    if "BinaryValue" in value:
        attribute["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    return attribute
