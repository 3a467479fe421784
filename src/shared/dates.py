"""Times and days as the API stores and reads them: ISO 8601 timestamps in UTC with a `Z`, query
days (`YYYY-MM-DD`) from 1970 on, the bounded day ranges that reports and the audit trail read, and
today as the business counts days."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from shared.errors import BadRequest

# Ranges are counted back from a day; before this one they would leave the calendar (year 1).
EARLIEST_DAY = date(1970, 1, 1)
MAX_RANGE_DAYS = 400
DEFAULT_RANGE_DAYS = 30


def iso_timestamp(moment: datetime, timespec: Literal["seconds", "milliseconds"] = "milliseconds") -> str:
    """`2026-11-27T09:30:00.000Z`: the stored form of a time (sorts as text in time order)."""
    return moment.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def now_timestamp() -> str:
    return iso_timestamp(datetime.now(UTC))


@dataclass(frozen=True)
class Clock:
    """Today in the business time zone, where the stats buckets and reports count their days."""

    zone: ZoneInfo
    now: Callable[[], datetime] = lambda: datetime.now(UTC)

    def today(self) -> date:
        return self.now().astimezone(self.zone).date()


def parse_day(value: str | None, field: str) -> date | None:
    """A `YYYY-MM-DD` query parameter as a date; a 400 naming the field when it is no real day
    or before `EARLIEST_DAY`."""
    if value is None:
        return None
    try:
        day = date.fromisoformat(value)
    except ValueError as exc:
        raise BadRequest(f"'{field}' must be a date (YYYY-MM-DD)", details=[{"field": field}]) from exc
    if day < EARLIEST_DAY:
        raise BadRequest(
            f"'{field}' must not be before {EARLIEST_DAY.isoformat()}",
            details=[{"field": field, "message": f"before {EARLIEST_DAY.isoformat()}"}],
        )
    return day


class RangeTooLarge(BadRequest):
    code = "RANGE_TOO_LARGE"


@dataclass(frozen=True)
class DayRange:
    """From `first` to `last`, both included."""

    first: date
    last: date

    @classmethod
    def of(cls, first: date | None, last: date | None, today: date) -> DayRange:
        """The range asked for; by default the `DEFAULT_RANGE_DAYS` days ending `last` (today).
        `first` after `last` is a 400; more than `MAX_RANGE_DAYS` days a 400 `RANGE_TOO_LARGE`."""
        last = last or today
        first = first or last - timedelta(days=DEFAULT_RANGE_DAYS - 1)
        if first > last:
            raise BadRequest(
                "'from' must not be after 'to'", details=[{"field": "from", "message": "after 'to'"}]
            )
        if (last - first).days + 1 > MAX_RANGE_DAYS:
            raise RangeTooLarge(
                f"A range covers at most {MAX_RANGE_DAYS} days",
                details=[
                    {
                        "field": "from",
                        "message": f"more than {MAX_RANGE_DAYS} days before 'to'",
                        "max_days": MAX_RANGE_DAYS,
                    }
                ],
            )
        return cls(first, last)

    @property
    def days(self) -> list[str]:
        """Every day of the range, oldest first."""
        return [
            (self.first + timedelta(days=n)).isoformat() for n in range((self.last - self.first).days + 1)
        ]
