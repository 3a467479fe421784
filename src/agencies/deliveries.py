"""The postback delivery function's work (PostbackDeliveryFunction in template.yaml; its entry
point is `agencies.postback_delivery`). Its queue carries two kinds of message:

- lead events from the bus (rule LeadPostbacksRule): each postback an event calls for
  (`agencies.webhooks.notices`) that the vendor subscribed to becomes a delivery, tried at once;
- due attempts (`agencies.postbacks.DueAttempt`), sent by a failed attempt for the next one, or by
  a retry by hand.

An attempt signs the body (Standard Webhooks), checks the destination again (a host that now
resolves to a private address is refused), posts to the checked address with a short timeout,
never follows a redirect, and records the outcome on the delivery. A 2xx is delivered; otherwise
the next attempt is queued after the back-off (POSTBACK_RETRY_SECONDS), and once they are spent
the delivery is failed and sent to the dead-letter queue. A retry by hand is one attempt.

Lead posting never waits for any of this: the API answers once the lead is stored, and its event
reaches this function through the bus."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from functools import cache
from typing import Any

import urllib3

from agencies.models import DeliveryStatus
from agencies.postbacks import KEPT_ATTEMPTS, DeliveryQueue, DueAttempt, PostbackStore, now
from agencies.webhooks import (
    Destination,
    DestinationRefused,
    PostbackEvent,
    Resolver,
    check_destination,
    delivery_id,
    next_delay,
    notices,
    payload,
    resolve,
    signed_headers,
)
from shared.dates import iso_timestamp
from shared.observability import logger, metrics

CONNECT_TIMEOUT_SECONDS = 3
READ_TIMEOUT_SECONDS = 10
# A due attempt that arrives this early is on time (SQS delays are whole seconds).
EARLY_TOLERANCE = timedelta(seconds=1)


@dataclass(frozen=True)
class Outcome:
    delivered: bool
    outcome: str
    response_code: int | None = None
    latency_ms: int | None = None
    error: str | None = None


def post(destination: Destination, headers: Mapping[str, str], body: str) -> Outcome:
    """Posts `body` to the checked address of `destination` (TLS verified against its host name);
    any answer but a 2xx, a redirect included, or none at all is a failed attempt."""
    host_header = (
        destination.host if destination.port in (80, 443) else f"{destination.host}:{destination.port}"
    )
    timeout = urllib3.Timeout(connect=CONNECT_TIMEOUT_SECONDS, read=READ_TIMEOUT_SECONDS)
    pool: urllib3.HTTPConnectionPool
    if destination.scheme == "https":
        pool = urllib3.HTTPSConnectionPool(
            destination.address,
            destination.port,
            timeout=timeout,
            retries=False,
            cert_reqs="CERT_REQUIRED",
            server_hostname=destination.host,
            assert_hostname=destination.host,
        )
    else:
        pool = urllib3.HTTPConnectionPool(
            destination.address, destination.port, timeout=timeout, retries=False
        )
    started = time.perf_counter()
    try:
        with pool:
            response = pool.urlopen(
                "POST",
                destination.target,
                body=body.encode(),
                headers={**headers, "host": host_header},
                redirect=False,
                preload_content=False,
            )
            response.release_conn()
    except urllib3.exceptions.HTTPError as exc:
        return Outcome(False, "failed", None, _elapsed_ms(started), type(exc).__name__)
    latency = _elapsed_ms(started)
    if 200 <= response.status < 300:
        return Outcome(True, "delivered", response.status, latency)
    return Outcome(False, "failed", response.status, latency, f"HTTP {response.status}")


def _elapsed_ms(started: float) -> int:
    return round((time.perf_counter() - started) * 1000)


class Deliverer:
    def __init__(
        self,
        store: PostbackStore,
        queue: DeliveryQueue,
        retry_seconds: tuple[int, ...],
        allow_loopback: bool,
        return_reason: Callable[[str], str | None] = lambda lead_id: None,
        resolver: Resolver = resolve,
        sender: Any = post,
    ) -> None:
        self._store = store
        self._queue = queue
        self._retry_seconds = retry_seconds
        self._allow_loopback = allow_loopback
        self._resolver = resolver
        self._send = sender
        self._return_reason = return_reason

    def handle(self, body: Mapping[str, Any]) -> None:
        """One message of the queue: a lead event, or a due attempt."""
        if "detail-type" in body:
            self.on_lead_event(body)
        else:
            self.on_due(DueAttempt.parse(body))

    def on_lead_event(self, event: Mapping[str, Any]) -> None:
        for notice in notices(str(event["detail-type"]), event["detail"]):
            endpoint = self._store.endpoint(notice.vendor_code)
            if endpoint is None or notice.event.value not in endpoint.get("events", []):
                continue
            if notice.event is PostbackEvent.RETURNED:
                notice = replace(
                    notice, data={**notice.data, "reason_code": self._return_reason(notice.data["lead_id"])}
                )
            at = datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00"))
            delivery: Mapping[str, Any] = {
                "vendor_code": notice.vendor_code,
                "delivery_id": delivery_id(str(event["id"]), notice.event, at),
                "event": notice.event.value,
                "body": payload(notice, at),
                "status": DeliveryStatus.PENDING.value,
                "created_at": iso_timestamp(now()),
                "attempt_count": 0,
                "attempts": [],
                "next_attempt_at": iso_timestamp(now()),
            }
            if not self._store.add_delivery(delivery):  # the bus sent this event before
                stored = self._store.delivery(notice.vendor_code, str(delivery["delivery_id"]))
                if stored is None or stored["status"] != DeliveryStatus.PENDING or stored["attempt_count"]:
                    continue
                delivery = stored
            self.attempt(delivery, endpoint, manual=False)

    def on_due(self, due: DueAttempt) -> None:
        moment = now()
        if due.not_before - moment > EARLY_TOLERANCE:
            self._queue.schedule(due, moment)  # longer than SQS delays a message: wait again
            return
        delivery = self._store.delivery(due.vendor_code, due.delivery_id)
        if (
            delivery is None
            or delivery["status"] != DeliveryStatus.PENDING
            or int(delivery["attempt_count"]) != due.attempt - 1
        ):
            return  # done already, or this message came twice
        endpoint = self._store.endpoint(due.vendor_code)
        self.attempt(delivery, endpoint, manual=due.manual)

    def attempt(self, delivery: Mapping[str, Any], endpoint: Mapping[str, Any] | None, manual: bool) -> None:
        number = int(delivery["attempt_count"]) + 1
        moment = now()
        result = self._try(delivery, endpoint, moment)
        record = {
            "attempt": number,
            "at": iso_timestamp(moment),
            "outcome": result.outcome,
            "response_code": result.response_code,
            "latency_ms": result.latency_ms,
            "error": result.error,
            "manual": manual,
        }
        delay = (
            None
            if (result.delivered or manual or endpoint is None)
            else next_delay(self._retry_seconds, number)
        )
        if result.delivered:
            status, next_at = DeliveryStatus.DELIVERED, None
        elif delay is not None:
            status, next_at = DeliveryStatus.PENDING, moment + timedelta(seconds=delay)
            # Queued before the delivery records this attempt: a delivery never waits with
            # nothing queued (a duplicate of this message is dropped: the count moves on).
            self._queue.schedule(
                DueAttempt(str(delivery["vendor_code"]), str(delivery["delivery_id"]), number + 1, next_at),
                moment,
            )
        else:
            status, next_at = DeliveryStatus.FAILED, None
        changes = {
            "status": status.value,
            "attempt_count": number,
            "attempts": [*delivery.get("attempts", []), record][-KEPT_ATTEMPTS:],
            "next_attempt_at": iso_timestamp(next_at) if next_at else None,
            "updated_at": iso_timestamp(now()),
        }
        if not self._store.update_delivery(delivery, changes):
            return  # another receipt of the same message recorded this attempt
        metrics.add_metric(name=f"Postback{result.outcome.capitalize()}", unit="Count", value=1)
        if status is DeliveryStatus.FAILED and not manual:
            self._queue.dead_letter(delivery)
            logger.warning(
                "postback dead-lettered",
                extra={"delivery_id": delivery["delivery_id"], "vendor_code": delivery["vendor_code"]},
            )

    def _try(
        self, delivery: Mapping[str, Any], endpoint: Mapping[str, Any] | None, moment: datetime
    ) -> Outcome:
        if endpoint is None:
            return Outcome(False, "refused", error="no postback endpoint is registered")
        try:
            destination = check_destination(str(endpoint["url"]), self._allow_loopback, self._resolver)
        except DestinationRefused as exc:
            return Outcome(False, "refused", error=str(exc))
        headers = signed_headers(
            signing_secrets(endpoint, moment), str(delivery["delivery_id"]), moment, str(delivery["body"])
        )
        result: Outcome = self._send(destination, headers, str(delivery["body"]))
        return result


def signing_secrets(endpoint: Mapping[str, Any], moment: datetime) -> list[str]:
    """The endpoint's secret and, for a day after a rotation, the previous one."""
    found = [str(endpoint["secret"])]
    until = endpoint.get("previous_secret_until")
    if endpoint.get("previous_secret") and until and iso_timestamp(moment) < str(until):
        found.append(str(endpoint["previous_secret"]))
    return found


@cache
def deliverer() -> Deliverer:
    from shared import dependencies
    from shared.config import get_settings
    from shared.returns import ReturnRecords

    settings = get_settings()
    returns = ReturnRecords(dependencies.returns_table())

    def return_reason(lead_id: str) -> str | None:
        found = returns.get(lead_id)
        return found.reason_code.value if found else None

    return Deliverer(
        PostbackStore(dependencies.postbacks_table()),
        DeliveryQueue(settings.postback_queue, settings.postback_dead_letter_queue),
        settings.postback_retry_seconds,
        settings.postback_allow_loopback,
        return_reason,
    )


def handle_batch(event: Mapping[str, Any]) -> dict[str, Any]:
    """Each record on its own: one that fails (a table or the queue unreachable) is reported and
    comes again; the others are done."""
    worker = deliverer()
    failures = []
    for record in event.get("Records", []):
        try:
            worker.handle(json.loads(record["body"]))
        except Exception:
            logger.exception(
                "postback message failed; it will come again", extra={"message_id": record["messageId"]}
            )
            failures.append({"itemIdentifier": record["messageId"]})
    return {"batchItemFailures": failures}
