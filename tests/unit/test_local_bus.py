"""The local event source mapping's reading of a function's response and its SQS records, as
Lambda's (`crm.bus`); the poller itself runs against moto in tests/integration/test_queue_poller.py."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from crm.bus import batch_item_failures, sqs_record

IDS = {"m-1", "m-2", "m-3"}


@pytest.mark.parametrize(
    ("response", "reported"),
    [
        pytest.param(None, set(), id="no-response"),
        pytest.param({}, set(), id="empty-response"),
        pytest.param({"batchItemFailures": None}, set(), id="null-list"),
        pytest.param({"batchItemFailures": []}, set(), id="empty-list"),
        pytest.param({"applied": 3}, set(), id="other-keys-only"),
        pytest.param({"batchItemFailures": [{"itemIdentifier": "m-2"}]}, {"m-2"}, id="one"),
        pytest.param(
            {"batchItemFailures": [{"itemIdentifier": "m-1"}, {"itemIdentifier": "m-3"}]},
            {"m-1", "m-3"},
            id="two",
        ),
    ],
)
def test_a_response_lambda_accepts_lists_the_records_to_retry(response: Any, reported: set[str]) -> None:
    assert batch_item_failures(response, IDS) == reported


@pytest.mark.parametrize(
    "response",
    [
        pytest.param("ok", id="not-an-object"),
        pytest.param({"batchItemFailures": "m-1"}, id="not-a-list"),
        pytest.param({"batchItemFailures": [{"itemIdentifier": "m-9"}]}, id="not-in-the-batch"),
        pytest.param({"batchItemFailures": [{"itemIdentifier": ""}]}, id="empty-id"),
        pytest.param({"batchItemFailures": [{"itemIdentifier": None}]}, id="null-id"),
        pytest.param({"batchItemFailures": [{"itemId": "m-1"}]}, id="bad-key"),
        pytest.param({"batchItemFailures": ["m-1"]}, id="bare-id"),
        pytest.param(
            {"batchItemFailures": [{"itemIdentifier": "m-1"}, {"itemIdentifier": "m-9"}]},
            id="one-good-one-bad",
        ),
    ],
)
def test_a_response_lambda_rejects_fails_the_whole_batch(response: Any) -> None:
    assert batch_item_failures(response, IDS) is None


def test_a_record_is_the_message_as_lambda_writes_it() -> None:
    message = {
        "MessageId": "m-1",
        "ReceiptHandle": "handle-1",
        "MD5OfBody": "0f",
        "Body": '{"detail-type": "LeadCreated"}',
        "Attributes": {"ApproximateReceiveCount": "3", "SentTimestamp": "1764566918000", "SenderId": "local"},
        "MD5OfMessageAttributes": "1e",
        "MessageAttributes": {
            "kind": {"StringValue": "lead", "DataType": "String"},
            "raw": {"BinaryValue": b"\x00\x01", "DataType": "Binary"},
        },
    }
    record = sqs_record(message, "arn:aws:sqs:eu-west-1:123456789012:crm-test-stats-events")
    assert record == {
        "messageId": "m-1",
        "receiptHandle": "handle-1",
        "body": '{"detail-type": "LeadCreated"}',
        "attributes": {"ApproximateReceiveCount": "3", "SentTimestamp": "1764566918000", "SenderId": "local"},
        "messageAttributes": {
            "kind": {
                "stringValue": "lead",
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": "String",
            },
            "raw": {
                "binaryValue": base64.b64encode(b"\x00\x01").decode(),
                "stringListValues": [],
                "binaryListValues": [],
                "dataType": "Binary",
            },
        },
        "md5OfBody": "0f",
        "md5OfMessageAttributes": "1e",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:crm-test-stats-events",
        "awsRegion": "eu-west-1",
    }
