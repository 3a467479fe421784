"""The days a stats view covers, how much of its last day has gone by, and what it is compared with.

A window is a named period ending today (`7d`, `30d`, `90d`, `12m`) or the days `from`..`to` (at
most `shared.dates.MAX_RANGE_DAYS`, never after today). `elapsed` is the share of its last day gone
by: 1 when that day is over; less when the window ends today, which makes it **partial**.

Every `change` compares like for like: the window with as many days just before it, taken to the
same point. The previous window's full days count whole and its last day counts for `elapsed` of
its value (a day's events are taken as spread evenly over it), just as today's bucket holds only
what happened until now.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Literal

from shared.buckets import Buckets, Counters
from shared.dates import DayRange
from shared.errors import BadRequest

PeriodName = Literal["7d", "30d", "90d", "12m"]
PERIOD_DAYS: dict[str, int] = {"7d": 7, "30d": 30, "90d": 90, "12m": 365}
DEFAULT_PERIOD = "30d"
ELAPSED_PRECISION = Decimal("0.0001")
WHOLE = Decimal(1)


@dataclass(frozen=True)
class Window(DayRange):
    """`first`..`last` (business days, both included) and the share of `last` gone by."""

    elapsed: Decimal = WHOLE

    @classmethod
    def ending(cls, last: date, days: int, elapsed: Decimal = WHOLE) -> Window:
        return cls(last - timedelta(days=days - 1), last, elapsed)

    @property
    def length(self) -> int:
        return (self.last - self.first).days + 1

    @property
    def partial(self) -> bool:
        """Whether the last day is not over yet (the window ends today)."""
        return self.elapsed < WHOLE

    def previous(self) -> Window:
        """The window of as many days just before this one, to the same point of its last day."""
        return Window.ending(self.first - timedelta(days=1), self.length, self.elapsed)

    def last_complete_day(self) -> date:
        """The window's last day when it is over, else the day before it."""
        return self.last - timedelta(days=1) if self.partial else self.last


def elapsed_share(now: datetime) -> Decimal:
    """The share of `now`'s day (in `now`'s zone) gone by, to `ELAPSED_PRECISION`: 0 at midnight.
    Measured in real seconds, so a day of 23 or 25 hours (a DST change) is counted as long as it is."""
    zone = now.tzinfo
    midnight = datetime.combine(now.date(), time(), tzinfo=zone).astimezone(UTC)
    next_midnight = datetime.combine(now.date() + timedelta(days=1), time(), tzinfo=zone).astimezone(UTC)
    share = Decimal((now.astimezone(UTC) - midnight).total_seconds()) / Decimal(
        (next_midnight - midnight).total_seconds()
    )
    return min(share.quantize(ELAPSED_PRECISION, rounding=ROUND_HALF_UP), WHOLE - ELAPSED_PRECISION)


def window_of(period: str | None, first: date | None, last: date | None, now: datetime) -> Window:
    """The window a request asks for: `period` (default `DEFAULT_PERIOD`) or `from`/`to`, never
    both. `now` is the current time in the business zone. A 400 for both, for `to` after today,
    for `from` after `to`; `RANGE_TOO_LARGE` for more than `MAX_RANGE_DAYS` days."""
    today = now.date()
    if period is not None and (first is not None or last is not None):
        raise BadRequest(
            "Ask for a 'period' or for 'from'/'to', not both",
            details=[{"field": "period", "message": "not allowed with 'from' or 'to'"}],
        )
    if last is not None and last > today:
        raise BadRequest(
            f"'to' must not be after today ({today.isoformat()})",
            details=[{"field": "to", "message": "after today"}],
        )
    if first is None and last is None:
        span: DayRange = Window.ending(today, PERIOD_DAYS[period or DEFAULT_PERIOD])
    else:
        span = DayRange.of(first, last, today)
    elapsed = elapsed_share(now) if span.last == today else WHOLE
    return Window(span.first, span.last, elapsed)


def summed_to_same_point(buckets: Buckets, window: Window) -> Counters:
    """A past window's counters to the point of its last day that `window.elapsed` says: its full
    days whole, its last day prorated (uniform within the day)."""
    total: Counters = {}
    days = window.days
    for day in days:
        weight = window.elapsed if day == days[-1] else WHOLE
        for name, value in buckets.get(day, {}).items():
            total[name] = total.get(name, Decimal(0)) + value * weight
    return total
