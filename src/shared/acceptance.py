"""A vendor's acceptance rules (the agency record's `acceptance`, SPEC §9) and the posting fields
they may name. The agencies service validates and stores them; the lead service reads them from
the vendor record and applies them (`leads.acceptance`)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from functools import cache
from typing import Any, Literal
from zoneinfo import ZoneInfo, available_timezones

from pydantic import ConfigDict, Field, field_validator, model_validator

from shared.types import JsonBody

# Every field a lead post may carry (besides the staff-only `vendor_code` and `notes`).
POSTING_FIELDS = (
    "first_name",
    "last_name",
    "email",
    "phone",
    "state",
    "zip",
    "campaign_source",
    "tcpa_consent",
    "consent_text",
    "ip_address",
    "user_agent",
    "trustedform_cert_url",
    "jornaya_leadid",
    "landing_page_url",
    "submitted_at",
)
# The posting fields a vendor's rules may require (consent has its own rule, `require_consent`).
RequirableField = Literal[
    "first_name",
    "last_name",
    "email",
    "phone",
    "state",
    "zip",
    "campaign_source",
    "consent_text",
    "ip_address",
    "user_agent",
    "trustedform_cert_url",
    "jornaya_leadid",
    "landing_page_url",
    "submitted_at",
]
# US states, DC and the inhabited territories, by their postal codes.
UsState = Literal[
    "AL", "AK", "AZ", "AR", "CA", "CO", "CT", "DE", "FL", "GA", "HI", "ID", "IL", "IN", "IA", "KS",
    "KY", "LA", "ME", "MD", "MA", "MI", "MN", "MS", "MO", "MT", "NE", "NV", "NH", "NJ", "NM", "NY",
    "NC", "ND", "OH", "OK", "OR", "PA", "RI", "SC", "SD", "TN", "TX", "UT", "VT", "VA", "WA", "WV",
    "WI", "WY", "DC", "PR", "VI", "GU", "AS", "MP",
]  # fmt: skip
CLOCK_TIME = r"^([01][0-9]|2[0-3]):[0-5][0-9]$"
MAX_LEAD_AGE_MINUTES = 60 * 24 * 365
UNIQUE: dict[str, Any] = {"uniqueItems": True}  # each value at most once, as validated


class Day(StrEnum):
    MON = "mon"
    TUE = "tue"
    WED = "wed"
    THU = "thu"
    FRI = "fri"
    SAT = "sat"
    SUN = "sun"


WEEK = list(Day)  # Monday first, as `datetime.weekday()` counts


@cache
def _zones() -> frozenset[str]:
    return frozenset(available_timezones())


def _zone_names(schema: dict[str, Any]) -> None:
    """The schema of a time zone: one of the IANA names (read when the schema is built)."""
    schema["enum"] = sorted(_zones())


def _minutes(clock: str) -> int:
    hours, minutes = clock.split(":")
    return int(hours) * 60 + int(minutes)


class Hours(JsonBody):
    """Hours of operation: leads are taken on `days` from `from` (inclusive) to `to` (exclusive),
    wall-clock time in `time_zone`. A `to` earlier than `from` runs past midnight into the next
    day (the window belongs to the day it starts on); `from` equal to `to` is the whole day."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, validate_by_name=True, validate_by_alias=True, serialize_by_alias=True
    )

    time_zone: str = Field(
        min_length=1,
        max_length=64,
        description="IANA time zone, e.g. America/New_York",
        json_schema_extra=_zone_names,
    )
    days: list[Day] = Field(
        min_length=1, max_length=7, description="Days the window starts on", json_schema_extra=UNIQUE
    )
    from_: str = Field(alias="from", pattern=CLOCK_TIME, description="HH:MM, 24-hour clock")
    to: str = Field(pattern=CLOCK_TIME, description="HH:MM, 24-hour clock (exclusive)")

    @field_validator("time_zone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        if value not in _zones():
            raise ValueError("expected an IANA time zone, e.g. America/New_York")
        return value

    @field_validator("days")
    @classmethod
    def _each_day_once(cls, value: list[Day]) -> list[Day]:
        if len(set(value)) != len(value):
            raise ValueError("each day at most once")
        return sorted(value, key=WEEK.index)

    def is_open(self, now: datetime) -> bool:
        """Whether `now` (an aware time) falls inside the hours, read on the zone's wall clock
        (so the window moves with daylight saving time)."""
        local = now.astimezone(ZoneInfo(self.time_zone))
        minute = local.hour * 60 + local.minute
        today, yesterday = WEEK[local.weekday()], WEEK[(local.weekday() - 1) % 7]
        start, end = _minutes(self.from_), _minutes(self.to)
        if start == end:
            return today in self.days
        if start < end:
            return today in self.days and start <= minute < end
        return (today in self.days and minute >= start) or (yesterday in self.days and minute < end)


class AcceptanceRules(JsonBody):
    """What a vendor's leads must meet to be accepted. A rule on a field (allowed states, lead
    age) makes that field required."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    require_consent: bool = Field(default=True, description="tcpa_consent must be true")
    required_fields: list[RequirableField] = Field(
        default_factory=list, max_length=len(POSTING_FIELDS), json_schema_extra=UNIQUE
    )
    allowed_states: list[UsState] = Field(
        default_factory=list,
        max_length=60,
        description="Two-letter codes; empty: every state",
        json_schema_extra=UNIQUE,
    )
    max_lead_age_minutes: int | None = Field(
        default=None,
        ge=1,
        le=MAX_LEAD_AGE_MINUTES,
        description="Most minutes from the lead's submitted_at to its post; null: no limit",
    )
    hours: Hours | None = Field(default=None, description="null: leads are taken at any time")

    @model_validator(mode="after")
    def _without_repeats(self) -> AcceptanceRules:
        for name in ("required_fields", "allowed_states"):
            values = getattr(self, name)
            if len(set(values)) != len(values):
                raise ValueError(f"{name}: each value at most once")
        return self

    @classmethod
    def from_item(cls, stored: Any) -> AcceptanceRules:
        """The rules stored on a vendor record (the defaults when it has none)."""
        return cls.model_validate(stored) if isinstance(stored, dict) else cls()
