"""Delivers events from the local bus to their target functions, as EventBridge would: each rule
of the template feeds an SQS queue; a worker thread per rule receives the matched events and
invokes the rule's function. A failed invocation is not deleted, so it is retried after the
visibility timeout and, after five attempts, lands in the rule's dead-letter queue.

The local gateway waits for the workers to go idle before it answers a mutating request, so the
change has reached its consumers when the response arrives: the next read is fresh, as it is
within seconds in AWS. Each worker waits up to 15 s for its queue to empty (`wait_until_idle`);
past that the gateway answers anyway."""

from __future__ import annotations

import json
import logging
import threading
import time
from typing import Any

from crm.functions import LocalFunction

log = logging.getLogger("crm.bus")


class RuleWorker(threading.Thread):
    def __init__(self, rule_name: str, queue_url: str, function: LocalFunction, sqs: Any) -> None:
        super().__init__(name=f"bus-{rule_name}", daemon=True)
        self.rule_name = rule_name
        self.queue_url = queue_url
        self.function = function
        self._sqs = sqs
        self._stopping = threading.Event()
        self.delivered = 0
        self.failed = 0

    def stop(self) -> None:
        self._stopping.set()

    def wait_until_idle(self, timeout: float = 15.0) -> bool:
        """Waits until the rule's queue holds no message, waiting or in delivery (False on timeout)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            attributes = self._sqs.get_queue_attributes(
                QueueUrl=self.queue_url,
                AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
            )["Attributes"]
            if not any(int(attributes.get(name, 0)) for name in attributes):
                return True
            time.sleep(0.02)
        return False

    def run(self) -> None:
        while not self._stopping.is_set():
            try:
                response = self._sqs.receive_message(
                    QueueUrl=self.queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1
                )
            except Exception:
                if self._stopping.is_set():
                    return
                log.exception("bus: receive failed for rule %s", self.rule_name)
                self._stopping.wait(1.0)
                continue
            for message in response.get("Messages", []):
                self._deliver(message)

    def _deliver(self, message: dict[str, Any]) -> None:
        try:
            self.function.invoke(json.loads(message["Body"]))
        except Exception:
            self.failed += 1
            log.exception(
                "bus: %s failed on an event of rule %s; it will be retried",
                self.function.logical_id,
                self.rule_name,
            )
            return
        self.delivered += 1
        self._sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
