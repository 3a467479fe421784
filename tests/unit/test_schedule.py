"""The local stack's schedules: each scheduled function is invoked every period with the event
EventBridge sends, a failed run does not stop the schedule, and a stopped schedule ends."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from typing import Any

from crm.schedule import ScheduleDriver, scheduled_event
from crm.template import ScheduleSpec

SCHEDULE = ScheduleSpec(
    function="Publisher",
    handler="app.handler",
    name="Publisher-EveryMinute",
    expression="rate(1 minute)",
    period_seconds=60,
)


class RecordingFunction:
    """Records its events; fails its first `failures` invocations."""

    logical_id = "Publisher"

    def __init__(self, failures: int = 0) -> None:
        self.events: list[dict[str, Any]] = []
        self.failures = failures
        self.lock = threading.Lock()

    def invoke(self, event: dict[str, Any]) -> Any:
        with self.lock:
            self.events.append(event)
            if len(self.events) <= self.failures:
                raise RuntimeError("boom")
        return {"sent": 0}


def wait_for(condition: Any, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def test_a_scheduled_event_is_the_one_eventbridge_sends() -> None:
    event = scheduled_event(SCHEDULE, datetime(2026, 11, 20, 12, 0, 5, tzinfo=UTC))
    assert event["detail-type"] == "Scheduled Event"
    assert event["source"] == "aws.events"
    assert event["time"] == "2026-11-20T12:00:05Z"
    assert event["resources"] == ["arn:aws:events:us-east-1:123456789012:rule/Publisher-EveryMinute"]
    assert event["detail"] == {}


def test_the_period_is_the_templates_unless_overridden() -> None:
    assert ScheduleDriver(SCHEDULE, RecordingFunction()).period == 60
    assert ScheduleDriver(SCHEDULE, RecordingFunction(), period=0.5).period == 0.5


def test_a_schedule_keeps_running_after_a_failed_run_and_stops_when_told() -> None:
    # Given a function whose first run fails, on a short period
    function = RecordingFunction(failures=1)
    driver = ScheduleDriver(SCHEDULE, function, period=0.02)
    # When the schedule runs until the function has been invoked three times
    driver.start()
    try:
        assert wait_for(lambda: driver.runs >= 2)
    finally:
        driver.stop()
        driver.join(timeout=5)
    # Then the schedule has ended, and the failed run was counted and the runs after it
    # happened, each with an event of its own
    assert not driver.is_alive()
    assert driver.failures == 1
    assert len(function.events) == driver.runs + driver.failures
    assert len({event["id"] for event in function.events}) == len(function.events)
