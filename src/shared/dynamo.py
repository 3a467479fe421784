"""DynamoDB access helpers: the one place that builds the client and converts items.

The endpoint comes from boto3's standard settings (`AWS_ENDPOINT_URL_DYNAMODB` /
`AWS_ENDPOINT_URL`), so the same code talks to AWS, to the local moto server or to anything else
that speaks the DynamoDB protocol.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.config import Config

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient

Item = dict[str, Any]

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


@cache
def dynamodb_client() -> DynamoDBClient:
    """One client per process: it is thread-safe and its connection pool is reused across calls."""
    config = Config(retries={"mode": "standard", "max_attempts": 4}, max_pool_connections=32)
    return boto3.client("dynamodb", config=config)


def _numbers_as_decimal(value: Any) -> Any:
    """DynamoDB numbers are decimals; a float is converted through its shortest repr."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, Mapping):
        return {key: _numbers_as_decimal(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_numbers_as_decimal(item) for item in value]
    return value


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    """Python values to DynamoDB's typed form; None values are left out (absent, not NULL)."""
    present = {key: value for key, value in values.items() if value is not None}
    return {key: _serializer.serialize(_numbers_as_decimal(value)) for key, value in present.items()}


def from_item(item: Mapping[str, Any]) -> Item:
    return {key: _deserializer.deserialize(value) for key, value in item.items()}


@dataclass
class Page:
    items: list[Item]
    last_key: dict[str, Any] | None
    scanned_count: int = 0
    round_trips: int = 0


@dataclass
class KeyCondition:
    """A Query on one partition of a table or index, optionally bounded on the sort key."""

    index: str | None
    partition_name: str
    partition_value: str
    sort_name: str | None = None
    sort_from: str | None = None
    sort_to: str | None = None
    sort_prefix: str | None = None
    newest_first: bool = True
    filters: dict[str, str] = field(default_factory=dict)
    # attribute -> (lowest, highest) inclusive, either may be None: a range on a non-key attribute
    filter_ranges: dict[str, tuple[str | None, str | None]] = field(default_factory=dict)
    # attribute -> prefix: only items whose attribute does not start with it (or is absent)
    filter_not_prefixes: dict[str, str] = field(default_factory=dict)

    def query_request(self, table_name: str) -> dict[str, Any]:
        """The arguments of a Query for this condition (without `Limit` and the start key)."""
        names = {"#pk": self.partition_name}
        values: dict[str, Any] = {":pk": self.partition_value}
        key = " AND ".join(["#pk = :pk", *self._sort_key_clauses(names, values)])
        request: dict[str, Any] = {
            "TableName": table_name,
            "KeyConditionExpression": key,
            "ScanIndexForward": not self.newest_first,
        }
        if self.index:
            request["IndexName"] = self.index
        filters = self._filter_clauses(names, values)
        if filters:
            request["FilterExpression"] = " AND ".join(filters)
        request["ExpressionAttributeNames"] = names
        request["ExpressionAttributeValues"] = to_item(values)
        return request

    def _sort_key_clauses(self, names: dict[str, str], values: dict[str, Any]) -> list[str]:
        if not self.sort_name:
            return []
        if self.sort_from or self.sort_to:
            names["#sk"] = self.sort_name
            if self.sort_from and self.sort_to:
                values[":from"], values[":to"] = self.sort_from, self.sort_to
                return ["#sk BETWEEN :from AND :to"]
            if self.sort_from:
                values[":from"] = self.sort_from
                return ["#sk >= :from"]
            values[":to"] = self.sort_to
            return ["#sk <= :to"]
        if self.sort_prefix:
            names["#sk"] = self.sort_name
            values[":prefix"] = self.sort_prefix
            return ["begins_with(#sk, :prefix)"]
        return []

    def _filter_clauses(self, names: dict[str, str], values: dict[str, Any]) -> list[str]:
        clauses = []
        for position, (attribute, value) in enumerate(sorted(self.filters.items())):
            names[f"#f{position}"] = attribute
            values[f":f{position}"] = value
            clauses.append(f"#f{position} = :f{position}")
        for position, (attribute, (low, high)) in enumerate(sorted(self.filter_ranges.items())):
            names[f"#r{position}"] = attribute
            if low is not None:
                values[f":rl{position}"] = low
                clauses.append(f"#r{position} >= :rl{position}")
            if high is not None:
                values[f":rh{position}"] = high
                clauses.append(f"#r{position} <= :rh{position}")
        for position, (attribute, prefix) in enumerate(sorted(self.filter_not_prefixes.items())):
            names[f"#n{position}"] = attribute
            values[f":n{position}"] = prefix
            clauses.append(f"NOT begins_with(#n{position}, :n{position})")
        return clauses


class Table:
    """A DynamoDB table reached through the low-level client (faster to create and use than the
    boto3 resource layer), speaking plain Python values."""

    def __init__(self, name: str, client: DynamoDBClient | None = None) -> None:
        self.name = name
        self._client = client

    @property
    def client(self) -> DynamoDBClient:
        if self._client is None:
            self._client = dynamodb_client()
        return self._client

    def get(self, key: Mapping[str, Any], consistent: bool = False) -> Item | None:
        response = self.client.get_item(TableName=self.name, Key=to_item(key), ConsistentRead=consistent)
        item = response.get("Item")
        return from_item(item) if item else None

    def put(self, values: Mapping[str, Any]) -> None:
        self.client.put_item(TableName=self.name, Item=to_item(values))

    def write(self, write: Write) -> Item | None:
        """One conditional Put, Update or Delete (`write.table` must be this table). Returns the
        item as it is after an Update; raises `ConditionFailed` when the condition does not hold."""
        kind, body = next(iter(write.request().items()))
        try:
            if kind == "Put":
                self.client.put_item(**body)
                return None
            if kind == "Delete":
                self.client.delete_item(**body)
                return None
            response = self.client.update_item(**body, ReturnValues="ALL_NEW")
        except self.client.exceptions.ConditionalCheckFailedException as exc:
            raise ConditionFailed(self.name) from exc
        return from_item(response.get("Attributes", {}))

    def batch_put(self, rows: Sequence[Mapping[str, Any]]) -> None:
        """Writes rows in batches of 25, retrying what DynamoDB reports as unprocessed."""
        self._batch_write([{"PutRequest": {"Item": to_item(row)}} for row in rows])

    def batch_delete(self, keys: Sequence[Mapping[str, Any]]) -> None:
        """Deletes the items of `keys` in batches of 25, retrying what DynamoDB reports as unprocessed."""
        self._batch_write([{"DeleteRequest": {"Key": to_item(key)}} for key in keys])

    def _batch_write(self, writes: list[Any]) -> None:
        for start in range(0, len(writes), 25):
            requests = writes[start : start + 25]
            while requests:
                response = self.client.batch_write_item(RequestItems={self.name: requests})
                requests = list(response.get("UnprocessedItems", {}).get(self.name, []))

    def query_page(self, condition: KeyCondition, limit: int, start_key: dict[str, Any] | None) -> Page:
        """Reads up to `limit` matching items. With no filters a single Query is exactly one page;
        with filters, further Queries continue until the page is full or the partition ends."""
        request = condition.query_request(self.name)
        page = Page(items=[], last_key=start_key)
        while True:
            request["Limit"] = limit - len(page.items)
            if page.last_key:
                request["ExclusiveStartKey"] = to_item(page.last_key)
            response = self.client.query(**request)
            page.round_trips += 1
            page.scanned_count += response.get("ScannedCount", 0)
            page.items.extend(from_item(item) for item in response.get("Items", []))
            raw_last = response.get("LastEvaluatedKey")
            page.last_key = from_item(raw_last) if raw_last else None
            if page.last_key is None or len(page.items) >= limit:
                return page

    def query_all(self, condition: KeyCondition, page_size: int = 1000) -> list[Item]:
        """Every item matching `condition`, page after page (small result sets only)."""
        found: list[Item] = []
        start: dict[str, Any] | None = None
        while True:
            page = self.query_page(condition, limit=page_size, start_key=start)
            found += page.items
            if page.last_key is None:
                return found
            start = page.last_key

    def is_empty(self) -> bool:
        return not self.client.scan(TableName=self.name, Limit=1).get("Items")

    def scan_all(self) -> Iterator[Item]:
        """Every item, page by page. For operator tooling only, never on a request path."""
        paginator = self.client.get_paginator("scan")
        for response in paginator.paginate(TableName=self.name):
            yield from (from_item(item) for item in response.get("Items", []))


class ConditionFailed(Exception):
    """A conditional write found the item not as the condition required."""


CONDITION_FAILED = "ConditionalCheckFailed"


class TransactionCancelled(Exception):
    """A TransactWriteItems was cancelled; `reasons[i]` is the code for `writes[i]`
    ("ConditionalCheckFailed", "TransactionConflict", "None", ...). A cancellation is read by the
    writes' names: `failed("dedupe key")` is whether any write of that name found its condition
    false."""

    def __init__(self, writes: Sequence[Write], reasons: list[str]) -> None:
        super().__init__(
            ", ".join(
                f"{write.name or index}: {reason}"
                for index, (write, reason) in enumerate(zip(writes, reasons, strict=False))
            )
        )
        self.writes = list(writes)
        self.reasons = reasons

    def failed_writes(self, name: str | None = None) -> list[Write]:
        """The writes (of that name) whose condition was false, in transaction order."""
        return [
            write
            for write, reason in zip(self.writes, self.reasons, strict=False)
            if reason == CONDITION_FAILED and (name is None or write.name == name)
        ]

    def failed(self, name: str) -> bool:
        return bool(self.failed_writes(name))

    @property
    def conflicted(self) -> bool:
        """Another transaction touched one of the items meanwhile: running again may succeed."""
        return "TransactionConflict" in self.reasons


@dataclass
class Write:
    """One item of a transaction, in plain Python values (converted by `transact`). `name` says
    what the item is (a lead, a dedupe key...), so a cancelled transaction says what failed."""

    kind: str  # Put | Update | Delete | ConditionCheck
    table: str
    key: dict[str, Any] | None = None
    item: dict[str, Any] | None = None
    update: str | None = None
    condition: str | None = None
    names: dict[str, str] = field(default_factory=dict)
    values: dict[str, Any] = field(default_factory=dict)
    name: str = ""

    def request(self) -> dict[str, Any]:
        body: dict[str, Any] = {"TableName": self.table}
        if self.item is not None:
            body["Item"] = to_item(self.item)
        if self.key is not None:
            body["Key"] = to_item(self.key)
        if self.update:
            body["UpdateExpression"] = self.update
        if self.condition:
            body["ConditionExpression"] = self.condition
        if self.names:
            body["ExpressionAttributeNames"] = self.names
        if self.values:
            body["ExpressionAttributeValues"] = {
                name: _serializer.serialize(_numbers_as_decimal(value)) for name, value in self.values.items()
            }
        return {self.kind: body}


def changes_write(
    table: str,
    key: dict[str, Any],
    changes: Mapping[str, Any],
    condition: str = "",
    names: dict[str, str] | None = None,
    values: dict[str, Any] | None = None,
) -> Write:
    """An Update that sets each of `changes` (removing those whose value is None) under
    `condition`, which may use its own `names` and `values`."""
    names, values = dict(names or {}), dict(values or {})
    assignments, removals = [], []
    for position, (attribute, value) in enumerate(sorted(changes.items())):
        names[f"#u{position}"] = attribute
        if value is None:
            removals.append(f"#u{position}")
        else:
            values[f":u{position}"] = value
            assignments.append(f"#u{position} = :u{position}")
    clauses = []
    if assignments:
        clauses.append("SET " + ", ".join(assignments))
    if removals:
        clauses.append("REMOVE " + ", ".join(removals))
    return Write(
        "Update",
        table,
        key=key,
        update=" ".join(clauses),
        condition=condition or None,
        names=names,
        values=values,
    )


def transact(writes: Sequence[Write], client: DynamoDBClient | None = None) -> None:
    """All of `writes` or none of them. Raises `TransactionCancelled` with a reason per write."""
    dynamodb = client or dynamodb_client()
    try:
        dynamodb.transact_write_items(TransactItems=[write.request() for write in writes])  # type: ignore[misc]
    except dynamodb.exceptions.TransactionCanceledException as exc:
        reasons = [reason.get("Code", "None") for reason in exc.response.get("CancellationReasons", [])]
        raise TransactionCancelled(writes, reasons or ["Unknown"] * len(writes)) from exc


def transact_tolerating(required: Sequence[Write], optional: Sequence[Write]) -> list[Write]:
    """All of `required`, with those of `optional` whose conditions hold: if only optional writes
    found their conditions false, the transaction runs again without them. Returns the optional
    writes left out. Raises `TransactionCancelled` when a required write failed, or on a conflict."""
    try:
        transact([*required, *optional])
    except TransactionCancelled as cancelled:
        failed = cancelled.failed_writes()
        skipped = [write for write in optional if any(write is other for other in failed)]
        if cancelled.conflicted or not skipped or len(skipped) < len(failed):
            raise
        transact([*required, *(write for write in optional if not any(write is s for s in skipped))])
        return skipped
    return []


def batch_get(
    keys: dict[str, list[dict[str, Any]]], client: DynamoDBClient | None = None, consistent: bool = False
) -> dict[str, list[Item]]:
    """Reads items of several tables in one round trip (retrying unprocessed keys); strongly
    consistent reads with `consistent`."""
    dynamodb = client or dynamodb_client()
    found: dict[str, list[Item]] = {table: [] for table in keys}
    pending: dict[str, Any] = {
        table: {"Keys": [to_item(key) for key in table_keys], "ConsistentRead": consistent}
        for table, table_keys in keys.items()
        if table_keys
    }
    while pending:
        response = dynamodb.batch_get_item(RequestItems=pending)
        for table, items in response.get("Responses", {}).items():
            found[table].extend(from_item(item) for item in items)
        pending = dict(response.get("UnprocessedKeys") or {})
    return found
