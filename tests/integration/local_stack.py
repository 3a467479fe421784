"""A fresh local stack for one test (moto over HTTP, tables from the template): the tables it
seeds and inspects, and the events the bus rule sent to the stats events queue."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import boto3

from shared import dependencies
from shared.dynamo import Item, Table, dynamodb_client
from shared.events import events_client

# The queue the template's rule sends lead events to (a key of the `aws` fixture).
EVENTS_QUEUE = "StatsEventsQueue"


@dataclass(frozen=True)
class Stack:
    """The fresh local stack of one test, and the tables it seeds and inspects."""

    queue_url: str
    leads: Table
    users: Table
    vendors: Table
    pricing: Table
    dedupe: Table
    usage: Table
    outbox: Table

    def add_vendors(self, *codes: str, **fields: Any) -> None:
        self.vendors.batch_put(
            [
                {
                    "vendor_code": code,
                    "name": f"Vendor {code}",
                    "status": "active",
                    "test_mode": False,
                    "dedupe_window_days": 30,
                    **fields,
                }
                for code in codes
            ]
        )

    def add_agents(self, *user_ids: str, capacity: int, online: bool = True) -> None:
        self.users.batch_put(
            [
                {
                    "user_id": user_id,
                    "role": "agent",
                    "status": "active",
                    "name": user_id,
                    "assignable": "online" if online else None,
                    "capacity": capacity,
                    "open_leads": 0,
                }
                for user_id in user_ids
            ]
        )

    def open_leads(self, user_id: str) -> int:
        item = self.users.get({"user_id": user_id}, consistent=True)
        assert item is not None
        return int(item["open_leads"])

    def stored_leads(self) -> list[Item]:
        return list(self.leads.scan_all())

    def stored(self, lead_id: str) -> Item:
        item = self.leads.get({"lead_id": lead_id}, consistent=True)
        assert item is not None
        return item

    def events(self, seconds: float = 2.0) -> list[dict[str, Any]]:
        """Every EventBridge event the stats events queue holds (deleted as read)."""
        sqs = boto3.client("sqs")
        events: list[dict[str, Any]] = []
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            received = sqs.receive_message(QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
            messages = received.get("Messages", [])
            for message in messages:
                events.append(json.loads(message["Body"], parse_float=Decimal))
                sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            if events and not messages:
                return events
            if not messages:
                time.sleep(0.05)
        return events


def local_stack(queue_url: str) -> Stack:
    settings = dependencies.get_settings()
    # Build the process-wide clients before any thread uses them (creating a boto3 client is not
    # thread-safe).
    dynamodb_client()
    events_client()
    return Stack(
        queue_url=queue_url,
        leads=Table(settings.leads_table),
        users=Table(settings.users_table),
        vendors=Table(settings.vendors_table),
        pricing=Table(settings.pricing_table),
        dedupe=Table(settings.dedupe_table),
        usage=Table(settings.usage_table),
        outbox=Table(settings.outbox_table),
    )
