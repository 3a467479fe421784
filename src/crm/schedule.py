"""Invokes the template's scheduled functions on their schedule, as EventBridge Scheduler does.

Each `Type: Schedule` event of the template (`crm.template.ScheduleSpec`, a `rate(...)`
expression) gets a `ScheduleDriver` thread: one period after the stack starts, and every period
after that, it invokes the function in its execution environments (`crm.functions`) with the
event EventBridge sends (`detail-type` "Scheduled Event", source `aws.events`, the rule in
`resources`). A run that fails is logged; the next period's run is its retry, as the functions
it drives expect (the outbox publisher leaves what it could not send for its next run). Runs of
one schedule never overlap: a run longer than the period delays the next one.

`crm serve --schedule-interval SECONDS` replaces every schedule's period (tests use a second or
less, so a scheduled function's work shows without waiting a minute)."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from crm.bus import Invocable
from crm.template import LOCAL_PSEUDO, ScheduleSpec

# Not under "crm": that is the functions' own (Powertools) logger, at their log level.
log = logging.getLogger("local.schedule")


def scheduled_event(schedule: ScheduleSpec, at: datetime) -> dict[str, Any]:
    """The event EventBridge sends a function on a schedule."""
    region, account = LOCAL_PSEUDO["AWS::Region"], LOCAL_PSEUDO["AWS::AccountId"]
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{account}:rule/{schedule.name}"],
        "detail": {},
    }


class ScheduleDriver(threading.Thread):
    """Invokes `function` every `period` seconds (the schedule's own unless given), as the module
    docstring describes. `runs` counts the invocations that returned, `failures` those that raised."""

    def __init__(self, schedule: ScheduleSpec, function: Invocable, period: float | None = None) -> None:
        super().__init__(name=f"schedule-{schedule.name}", daemon=True)
        self.schedule = schedule
        self.function = function
        self.period = float(period if period is not None else schedule.period_seconds)
        if self.period <= 0:
            raise ValueError("a schedule's period must be positive")
        self._stopping = threading.Event()
        self.runs = 0
        self.failures = 0

    def stop(self) -> None:
        self._stopping.set()

    def run(self) -> None:
        next_run = time.monotonic() + self.period
        while not self._stopping.wait(max(0.0, next_run - time.monotonic())):
            self._invoke()
            next_run = max(next_run + self.period, time.monotonic())

    def _invoke(self) -> None:
        try:
            result = self.function.invoke(scheduled_event(self.schedule, datetime.now(UTC)))
        except Exception:
            self.failures += 1
            if not self._stopping.is_set():
                log.exception("schedule: %s failed; the next run is its retry", self.schedule.name)
            return
        self.runs += 1
        log.debug("schedule: %s ran: %r", self.schedule.name, result)
