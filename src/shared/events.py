"""Publishing domain events to the EventBridge bus."""

from __future__ import annotations

from collections.abc import Mapping
from functools import cache
from typing import TYPE_CHECKING, Any

import boto3
import simplejson
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from shared.observability import logger

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient

LEAD_SOURCE = "crm.leads"


class PublishFailed(Exception):
    """The bus did not accept the event after retries."""


@cache
def events_client() -> EventBridgeClient:
    return boto3.client("events", config=Config(retries={"mode": "standard", "max_attempts": 4}))


class EventPublisher:
    def __init__(self, bus_name: str, client: EventBridgeClient | None = None, attempts: int = 3) -> None:
        self.bus_name = bus_name
        self._client = client
        self._attempts = attempts

    @property
    def client(self) -> EventBridgeClient:
        if self._client is None:
            self._client = events_client()
        return self._client

    def publish(self, detail_type: str, detail: Mapping[str, Any], source: str = LEAD_SOURCE) -> None:
        """Puts one event on the bus; retries entries the bus reports as failed. Raises
        `PublishFailed` when it cannot, so the caller can record the change for reconciliation."""
        entry: Any = {
            "EventBusName": self.bus_name,
            "Source": source,
            "DetailType": detail_type,
            "Detail": simplejson.dumps(detail, use_decimal=True),
        }
        last_error = "unknown"
        for attempt in range(1, self._attempts + 1):
            try:
                response = self.client.put_events(Entries=[entry])
            except (BotoCoreError, ClientError) as exc:
                last_error = str(exc)
            else:
                if response.get("FailedEntryCount", 0) == 0:
                    return
                failed = response["Entries"][0]
                last_error = f"{failed.get('ErrorCode')}: {failed.get('ErrorMessage')}"
            logger.warning(
                "event publish attempt failed", extra={"attempt": attempt, "detail_type": detail_type}
            )
        raise PublishFailed(last_error)
