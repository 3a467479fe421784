"""The local AWS endpoint writes the items a DynamoDB read returns as JSON directly
(`crm.local_aws.direct_item_responses`): the answer a client parses is the one moto's serialiser
gives, for every kind of attribute value, and through the endpoint over HTTP."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.dynamodb.responses import DynamoResult

from crm.local_aws import ITEM_READS, direct_item_responses
from crm.stack import MotoServer

ITEMS = [
    {
        "pk": {"S": f"lead#{n}"},
        "sk": {"N": str(n)},
        "name": {"S": 'Zoë "quoted" \\ name'},
        "price": {"N": "35.50"},
        "tags": {"SS": ["a", "b"]},
        "scores": {"NS": ["1", "2.5"]},
        "consent": {"BOOL": n % 2 == 0},
        "closed": {"NULL": True},
        "history": {"L": [{"M": {"at": {"S": "2026-12-01T00:00:00Z"}, "n": {"N": "1"}}}]},
    }
    for n in range(3)
]


@pytest.fixture
def compared(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, Any, Any]]]:
    """Every item read answered directly, with what moto's serialiser would have answered, by
    moto in this process (not the suite's local endpoint)."""
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    serialise = DynamoResult.execute_result
    seen: list[tuple[str, Any, Any]] = []
    with mock_aws():
        direct_item_responses()
        direct = DynamoResult.execute_result

        def both(self: Any, context: Any) -> Any:
            answer = direct(self, context)
            if context.operation_model.name in ITEM_READS:
                seen.append((context.operation_model.name, answer, serialise(self, context)))
            return answer

        DynamoResult.execute_result = both  # type: ignore[method-assign]
        try:
            yield seen
        finally:
            DynamoResult.execute_result = serialise  # type: ignore[method-assign]


def test_item_reads_answer_what_the_serialiser_answers(compared: list[tuple[str, Any, Any]]) -> None:
    # Given a table holding items with every kind of attribute value
    client = boto3.client("dynamodb", region_name="us-east-1")
    client.create_table(
        TableName="items",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    for item in ITEMS:
        client.put_item(TableName="items", Item=item)
    # When each kind of read returns them
    got = client.get_item(TableName="items", Key={"pk": {"S": "lead#1"}})["Item"]
    queried = client.query(
        TableName="items",
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": "lead#2"}},
    )["Items"]
    scanned = client.scan(TableName="items")["Items"]
    batch = client.batch_get_item(RequestItems={"items": {"Keys": [{"pk": {"S": "lead#0"}}]}})
    # Then the client reads the items as written, sets, numbers and nesting included
    assert got == ITEMS[1]
    assert queried == [ITEMS[2]]
    assert sorted(scanned, key=lambda item: item["sk"]["N"]) == ITEMS
    assert batch["Responses"]["items"] == [ITEMS[0]]
    # And each answer is the serialiser's: the same status, media type and JSON
    assert sorted({name for name, _, _ in compared}) == sorted(ITEM_READS)
    for _, (status, headers, body), (expected_status, expected_headers, expected_body) in compared:
        assert status == expected_status == 200
        assert headers["Content-Type"] == expected_headers["Content-Type"]
        assert json.loads(body) == json.loads(expected_body)


def test_the_endpoint_answers_reads_over_http(moto_server: MotoServer) -> None:
    client = boto3.client(
        "dynamodb",
        endpoint_url=moto_server.endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    client.create_table(
        TableName="direct-items",
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        BillingMode="PAY_PER_REQUEST",
    )
    client.put_item(TableName="direct-items", Item=ITEMS[0])
    try:
        assert client.get_item(TableName="direct-items", Key={"pk": ITEMS[0]["pk"]})["Item"] == ITEMS[0]
    finally:
        client.delete_table(TableName="direct-items")
