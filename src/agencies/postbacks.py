"""Postbacks to vendors: the postbacks table, the delivery queue, and what the routes do with
them (register an endpoint, rotate its secret, list deliveries, retry one by hand).

The table holds, per vendor (`vendor_code`), its endpoint (`key` "endpoint") and its deliveries
(`key` "delivery#<delivery_id>", the id time-ordered, so a Query lists them newest first). A
delivery waits for its next attempt as a message on the postback queue (`agencies.
postback_delivery` sends it); SQS delays a message by at most 15 minutes, so a longer wait is a
message that comes early and is sent again for the rest."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3

from agencies.models import (
    DeliveryStatus,
    PostbackDelivery,
    PostbackEndpoint,
    PostbackEndpointBody,
)
from agencies.repository import AgencyNotFound, AgencyRepository
from agencies.webhooks import DestinationRefused, Resolver, check_destination, new_secret, resolve
from shared.dates import iso_timestamp
from shared.dynamo import ConditionFailed, Item, KeyCondition, Page, Table, Write, changes_write
from shared.errors import Conflict, DependencyFailed, NotFound, ValidationFailed
from shared.pagination import CursorCodec
from shared.responses import Pagination
from shared.security import Principal

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

ENDPOINT_KEY = "endpoint"
DELIVERY_PREFIX = "delivery#"
# After a rotation the previous secret signs beside the new one this long, so a receiver can
# switch without missing a postback.
PREVIOUS_SECRET_HOURS = 24
# SQS's longest message delay.
MAX_QUEUE_DELAY_SECONDS = 900
# Attempts kept on a delivery (a delivery retried by hand again and again keeps its latest).
KEPT_ATTEMPTS = 30


class PostbackNotRegistered(NotFound):
    code = "POSTBACK_NOT_REGISTERED"

    def __init__(self, vendor_code: str) -> None:
        super().__init__(f"Agency {vendor_code} has no postback endpoint")


class DeliveryNotFound(NotFound):
    def __init__(self, delivery_id: str) -> None:
        super().__init__(f"Delivery {delivery_id} not found")


class DeliveryPending(Conflict):
    code = "DELIVERY_PENDING"


class PostbackUrlRefused(ValidationFailed):
    code = "POSTBACK_URL_REFUSED"

    def __init__(self, reason: str) -> None:
        super().__init__(f"This postback URL is not allowed: {reason}", [{"field": "url", "message": reason}])


def now() -> datetime:
    return datetime.now(UTC)


def delivery_key(delivery_id: str) -> dict[str, str]:
    return {"key": f"{DELIVERY_PREFIX}{delivery_id}"}


# -- the table ------------------------------------------------------------------------------------
class PostbackStore:
    def __init__(self, table: Table) -> None:
        self._table = table

    def endpoint(self, vendor_code: str) -> Item | None:
        return self._table.get({"vendor_code": vendor_code, "key": ENDPOINT_KEY}, consistent=True)

    def put_endpoint(self, item: Mapping[str, Any], condition: str) -> None:
        self._table.write(
            Write("Put", self._table.name, item={**item, "key": ENDPOINT_KEY}, condition=condition)
        )

    def delete_endpoint(self, vendor_code: str) -> bool:
        key = {"vendor_code": vendor_code, "key": ENDPOINT_KEY}
        try:
            self._table.write(
                Write(
                    "Delete", self._table.name, key=key, condition="attribute_exists(#k)", names={"#k": "key"}
                )
            )
        except ConditionFailed:
            return False
        return True

    def delivery(self, vendor_code: str, delivery_id: str) -> Item | None:
        return self._table.get({"vendor_code": vendor_code, **delivery_key(delivery_id)}, consistent=True)

    def add_delivery(self, item: Mapping[str, Any]) -> bool:
        """Stores a new delivery; False when it exists (its event came twice)."""
        try:
            self._table.write(
                Write(
                    "Put",
                    self._table.name,
                    item={**item, **delivery_key(str(item["delivery_id"]))},
                    condition="attribute_not_exists(#k)",
                    names={"#k": "key"},
                )
            )
        except ConditionFailed:
            return False
        return True

    def update_delivery(self, delivery: Mapping[str, Any], changes: Mapping[str, Any]) -> bool:
        """Applies `changes` if the delivery is still as read (same status and attempt count);
        False when another attempt or a retry changed it meanwhile."""
        write = changes_write(
            self._table.name,
            {"vendor_code": delivery["vendor_code"], **delivery_key(str(delivery["delivery_id"]))},
            changes,
            condition="#s0 = :s0 AND #c0 = :c0",
            names={"#s0": "status", "#c0": "attempt_count"},
            values={":s0": delivery["status"], ":c0": delivery["attempt_count"]},
        )
        try:
            self._table.write(write)
        except ConditionFailed:
            return False
        return True

    def deliveries(
        self, vendor_code: str, status: DeliveryStatus | None, limit: int, start: dict[str, Any] | None
    ) -> Page:
        condition = KeyCondition(
            index=None,
            partition_name="vendor_code",
            partition_value=vendor_code,
            sort_name="key",
            sort_prefix=DELIVERY_PREFIX,
            filters={"status": status.value} if status else {},
        )
        return self._table.query_page(condition, limit, start)


# -- the queue ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DueAttempt:
    """A message of the postback queue: attempt `attempt` of a delivery, not before `not_before`."""

    vendor_code: str
    delivery_id: str
    attempt: int
    not_before: datetime
    manual: bool = False

    def body(self) -> str:
        return json.dumps(
            {
                "delivery": {"vendor_code": self.vendor_code, "delivery_id": self.delivery_id},
                "attempt": self.attempt,
                "not_before": iso_timestamp(self.not_before),
                "manual": self.manual,
            }
        )

    @classmethod
    def parse(cls, body: Mapping[str, Any]) -> DueAttempt:
        return cls(
            vendor_code=str(body["delivery"]["vendor_code"]),
            delivery_id=str(body["delivery"]["delivery_id"]),
            attempt=int(body["attempt"]),
            not_before=datetime.fromisoformat(str(body["not_before"]).replace("Z", "+00:00")),
            manual=bool(body.get("manual")),
        )


@cache
def sqs_client() -> SQSClient:
    return boto3.client("sqs")


class DeliveryQueue:
    """The postback queue (due attempts) and its dead-letter queue, by name."""

    def __init__(self, queue_name: str, dead_letter_queue_name: str, client: SQSClient | None = None) -> None:
        self._names = {"due": queue_name, "dead": dead_letter_queue_name}
        self._client = client
        self._urls: dict[str, str] = {}

    @property
    def client(self) -> SQSClient:
        if self._client is None:
            self._client = sqs_client()
        return self._client

    def _url(self, which: str) -> str:
        if which not in self._urls:
            self._urls[which] = self.client.get_queue_url(QueueName=self._names[which])["QueueUrl"]
        return self._urls[which]

    def schedule(self, due: DueAttempt, at: datetime | None = None) -> None:
        """Sends `due`, delayed until its time (at most SQS's 15 minutes: a message due later comes
        early and is sent again)."""
        wait = (due.not_before - (at or now())).total_seconds()
        delay = max(0, min(MAX_QUEUE_DELAY_SECONDS, int(wait + 0.999)))
        self.client.send_message(QueueUrl=self._url("due"), MessageBody=due.body(), DelaySeconds=delay)

    def dead_letter(self, delivery: Mapping[str, Any]) -> None:
        body = {"delivery": {"vendor_code": delivery["vendor_code"], "delivery_id": delivery["delivery_id"]}}
        self.client.send_message(QueueUrl=self._url("dead"), MessageBody=json.dumps(body))


# -- the routes' work -----------------------------------------------------------------------------
def endpoint_view(item: Mapping[str, Any], secret: str | None = None) -> dict[str, Any]:
    fields = {name: item.get(name) for name in PostbackEndpoint.model_fields if name != "secret"}
    return PostbackEndpoint.model_validate({**fields, "secret": secret}).model_dump(
        mode="json", exclude_none=True
    )


def delivery_view(item: Mapping[str, Any]) -> dict[str, Any]:
    log = list(item.get("attempts", []))
    last = log[-1] if log else {}
    shown = {
        **item,
        "webhook_id": item["delivery_id"],
        "event_type": item["event"],
        "attempts": int(item.get("attempt_count", len(log))),
        "last_status_code": last.get("response_code"),
        "last_latency_ms": last.get("latency_ms"),
        "attempt_log": log,
        "payload": json.loads(str(item["body"])),
    }
    return PostbackDelivery.model_validate(shown).model_dump(mode="json")


class PostbackService:
    def __init__(
        self,
        agencies: AgencyRepository,
        store: PostbackStore,
        queue: DeliveryQueue,
        codec: CursorCodec,
        allow_loopback: bool,
        resolver: Resolver = resolve,
    ) -> None:
        self._agencies = agencies
        self._store = store
        self._queue = queue
        self._codec = codec
        self._allow_loopback = allow_loopback
        self._resolver = resolver

    def _agency(self, principal: Principal, code: str) -> None:
        own = principal.lead_scope.vendor_code
        if (own is not None and own != code) or self._agencies.get(code) is None:
            raise AgencyNotFound(code)  # another agency's endpoint does not exist for a vendor

    def _endpoint(self, code: str) -> Item:
        item = self._store.endpoint(code)
        if item is None:
            raise PostbackNotRegistered(code)
        return item

    def show(self, principal: Principal, code: str) -> dict[str, Any]:
        self._agency(principal, code)
        return endpoint_view(self._endpoint(code))

    def register(self, principal: Principal, code: str, body: PostbackEndpointBody) -> dict[str, Any]:
        """Sets the vendor's endpoint. A first registration, or one with `rotate_secret`, makes a
        signing secret and shows it (after a rotation the previous one signs beside it for a day);
        any other change keeps the secret and does not show it."""
        self._agency(principal, code)
        try:
            check_destination(body.url, self._allow_loopback, self._resolver)
        except DestinationRefused as exc:
            raise PostbackUrlRefused(str(exc)) from exc
        moment = now()
        stamp = iso_timestamp(moment)
        values = {"url": body.url, "events": [event.value for event in body.events], "updated_at": stamp}
        existing = self._store.endpoint(code)
        if existing is None:
            secret = new_secret()
            item = {
                "vendor_code": code,
                **values,
                "created_at": stamp,
                "secret": secret,
                "secret_rotated_at": stamp,
            }
            try:
                self._store.put_endpoint(item, condition="attribute_not_exists(vendor_code)")
            except ConditionFailed as exc:
                raise Conflict("The endpoint was registered meanwhile; read it and try again") from exc
            return endpoint_view(item, secret)
        item = {**existing, **values}
        shown = None
        if body.rotate_secret:
            shown = new_secret()
            item.update(
                secret=shown,
                previous_secret=existing["secret"],
                previous_secret_until=iso_timestamp(moment + timedelta(hours=PREVIOUS_SECRET_HOURS)),
                secret_rotated_at=stamp,
            )
        self._store.put_endpoint(item, condition="attribute_exists(vendor_code)")
        return endpoint_view(item, shown)

    def remove(self, principal: Principal, code: str) -> None:
        self._agency(principal, code)
        if not self._store.delete_endpoint(code):
            raise PostbackNotRegistered(code)

    def deliveries(
        self, principal: Principal, code: str, status: DeliveryStatus | None, limit: int, cursor: str | None
    ) -> dict[str, Any]:
        self._agency(principal, code)
        query = f"postbacks|{code}|{status.value if status else ''}"
        page = self._store.deliveries(code, status, limit, self._codec.decode(cursor, query))
        data = [delivery_view(item) for item in page.items]
        pagination = Pagination(
            cursor=self._codec.encode(page.last_key, query),
            hasMore=page.last_key is not None,
            count=len(data),
        )
        return {"data": data, "pagination": pagination.model_dump()}

    def retry(self, principal: Principal, code: str, delivery_id: str) -> dict[str, Any]:
        """Tries a delivered or failed delivery once more, now (409 while one is pending)."""
        self._agency(principal, code)
        delivery = self._store.delivery(code, delivery_id)
        if delivery is None:
            raise DeliveryNotFound(delivery_id)
        if delivery["status"] == DeliveryStatus.PENDING:
            raise DeliveryPending("This delivery is waiting for an attempt already")
        moment = now()
        changes = {"status": DeliveryStatus.PENDING.value, "next_attempt_at": iso_timestamp(moment)}
        if not self._store.update_delivery(delivery, changes):
            raise DeliveryPending("This delivery changed meanwhile; read it and try again")
        due = DueAttempt(code, delivery_id, int(delivery["attempt_count"]) + 1, moment, manual=True)
        try:
            self._queue.schedule(due, moment)
        except Exception as exc:  # nothing queued: the delivery goes back as it was
            pending = {**delivery, **changes}
            self._store.update_delivery(pending, {"status": delivery["status"], "next_attempt_at": None})
            raise DependencyFailed("the postback queue did not take the retry") from exc
        return delivery_view({**delivery, **changes})
