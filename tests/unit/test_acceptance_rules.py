"""A vendor's acceptance rules (`shared.acceptance`) and their evaluation against one post
(`leads.acceptance.refusal`): each rule's reason code, their order, hours across midnight, in
another time zone and over daylight saving time changes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from leads.acceptance import refusal
from leads.models import LeadSubmission, ReasonCode
from shared.acceptance import POSTING_FIELDS, AcceptanceRules, Hours

NOW = datetime(2026, 3, 4, 15, 0, tzinfo=UTC)  # a Wednesday, 10:00 in New York (EST)


def lead(**fields: Any) -> LeadSubmission:
    return LeadSubmission(
        **{"vendor_code": "V001", "email": "ann@example.com", "tcpa_consent": True, **fields}
    )


def rules(**fields: Any) -> AcceptanceRules:
    return AcceptanceRules.model_validate(fields)


def hours(days: list[str], start: str, end: str, zone: str = "America/New_York") -> Hours:
    return Hours.model_validate({"time_zone": zone, "days": days, "from": start, "to": end})


def code_of(found: Any) -> ReasonCode | None:
    return found.code if found is not None else None


def test_the_default_rules_require_consent_and_nothing_else() -> None:
    # Given the rules of a vendor that has none stored
    default = AcceptanceRules.from_item(None)
    # Then consent is required, and a lead with it meets them
    assert default.require_consent is True
    assert refusal(default, lead(), NOW) is None
    assert code_of(refusal(default, lead(tcpa_consent=False), NOW)) is ReasonCode.NO_CONSENT
    # and a vendor whose rules turn consent off may post without it
    assert refusal(rules(require_consent=False), lead(tcpa_consent=False), NOW) is None


def test_missing_fields_are_all_listed_and_rules_on_a_field_require_it() -> None:
    # Given rules requiring a phone and zip, restricting states and limiting lead age
    strict = rules(required_fields=["phone", "zip"], allowed_states=["TX"], max_lead_age_minutes=10)
    # When a lead has none of those
    found = refusal(strict, lead(), NOW)
    # Then each missing field is named, including those the state and age rules need
    assert found is not None
    assert found.code is ReasonCode.MISSING_FIELD
    assert [detail["field"] for detail in found.details] == ["phone", "zip", "state", "submitted_at"]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        pytest.param({"state": "TX"}, None, id="allowed"),
        pytest.param({"state": "CA"}, ReasonCode.STATE_NOT_ALLOWED, id="not-allowed"),
    ],
)
def test_only_allowed_states_are_taken(fields: dict[str, Any], expected: ReasonCode | None) -> None:
    assert code_of(refusal(rules(allowed_states=["TX", "OK"]), lead(**fields), NOW)) is expected


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        pytest.param(timedelta(minutes=15), None, id="at-the-limit"),
        pytest.param(timedelta(minutes=15, seconds=1), ReasonCode.LEAD_TOO_OLD, id="past-it"),
    ],
)
def test_lead_age_is_counted_from_submitted_at(age: timedelta, expected: ReasonCode | None) -> None:
    submitted = (NOW - age).isoformat()
    assert code_of(refusal(rules(max_lead_age_minutes=15), lead(submitted_at=submitted), NOW)) is expected


def test_rules_are_checked_in_their_documented_order() -> None:
    # Given rules that a lead fails all of
    strict = rules(
        required_fields=["zip"],
        allowed_states=["TX"],
        max_lead_age_minutes=5,
        hours=hours(["sun"], "09:00", "10:00"),
    )
    old = (NOW - timedelta(hours=1)).isoformat()
    # Then each fix reveals the next rule, in order
    steps = [
        (lead(tcpa_consent=False, state="CA", submitted_at=old), ReasonCode.NO_CONSENT),
        (lead(state="CA", submitted_at=old), ReasonCode.MISSING_FIELD),
        (lead(state="CA", submitted_at=old, zip="73301"), ReasonCode.STATE_NOT_ALLOWED),
        (lead(state="TX", submitted_at=old, zip="73301"), ReasonCode.LEAD_TOO_OLD),
        (lead(state="TX", submitted_at=NOW.isoformat(), zip="73301"), ReasonCode.OUTSIDE_HOURS),
    ]
    assert [code_of(refusal(strict, submission, NOW)) for submission, _ in steps] == [
        code for _, code in steps
    ]


@pytest.mark.parametrize(
    ("local", "open_"),
    [
        pytest.param("2026-03-06T21:59", False, id="friday-before-the-window"),
        pytest.param("2026-03-06T22:00", True, id="friday-at-its-start"),
        pytest.param("2026-03-07T05:59", True, id="saturday-morning-in-fridays-window"),
        pytest.param("2026-03-07T06:00", False, id="saturday-at-its-end"),
        pytest.param("2026-03-07T23:00", False, id="saturday-night-not-a-window-day"),
        pytest.param("2026-03-05T03:00", False, id="thursday-morning-wednesday-not-a-window-day"),
    ],
)
def test_hours_across_midnight_belong_to_the_day_they_start(local: str, open_: bool) -> None:
    window = hours(["fri"], "22:00", "06:00", zone="UTC")
    assert window.is_open(datetime.fromisoformat(local).replace(tzinfo=UTC)) is open_


def test_hours_are_read_on_the_time_zones_wall_clock() -> None:
    # Given 09:00-17:00 weekdays in Los Angeles
    window = hours(["mon", "tue", "wed", "thu", "fri"], "09:00", "17:00", zone="America/Los_Angeles")
    # Then 16:00 UTC on a Wednesday (08:00 PST) is closed, 17:00 UTC (09:00 PST) open,
    assert window.is_open(datetime(2026, 3, 4, 16, 0, tzinfo=UTC)) is False
    assert window.is_open(datetime(2026, 3, 4, 17, 0, tzinfo=UTC)) is True
    # and 00:30 UTC on a Saturday is still Friday 16:30 there: open
    assert window.is_open(datetime(2026, 3, 7, 0, 30, tzinfo=UTC)) is True


def test_hours_follow_daylight_saving_time() -> None:
    # Given 09:00-17:00 every day in New York (EST = UTC-5 until 8 March 2026, then EDT = UTC-4)
    window = hours(["mon", "tue", "wed", "thu", "fri", "sat", "sun"], "09:00", "17:00")
    # Then 13:30 UTC is 08:30 (closed) the day before the change and 09:30 (open) the day after
    assert window.is_open(datetime(2026, 3, 7, 13, 30, tzinfo=UTC)) is False
    assert window.is_open(datetime(2026, 3, 9, 13, 30, tzinfo=UTC)) is True
    # and 21:30 UTC is 16:30 (open) before, 17:30 (closed) after
    assert window.is_open(datetime(2026, 3, 7, 21, 30, tzinfo=UTC)) is True
    assert window.is_open(datetime(2026, 3, 9, 21, 30, tzinfo=UTC)) is False


def test_equal_from_and_to_is_the_whole_day() -> None:
    window = hours(["wed"], "00:00", "00:00", zone="UTC")
    assert window.is_open(datetime(2026, 3, 4, 23, 59, tzinfo=UTC)) is True
    assert window.is_open(datetime(2026, 3, 5, 0, 0, tzinfo=UTC)) is False


@pytest.mark.parametrize(
    ("fields", "field_name"),
    [
        pytest.param({"required_fields": ["lead_value"]}, "required_fields", id="not-a-posting-field"),
        pytest.param({"required_fields": ["zip", "zip"]}, None, id="repeated-field"),
        pytest.param({"allowed_states": ["tx"]}, "allowed_states", id="lower-case-state"),
        pytest.param({"allowed_states": ["XX"]}, "allowed_states", id="unknown-state"),
        pytest.param({"max_lead_age_minutes": 0}, "max_lead_age_minutes", id="zero-age"),
        pytest.param({"max_lead_age_minutes": "5"}, "max_lead_age_minutes", id="age-as-text"),
        pytest.param({"require_consent": "yes"}, "require_consent", id="consent-as-text"),
        pytest.param({"surprise": 1}, "surprise", id="unknown-rule"),
        pytest.param(
            {"hours": {"time_zone": "Mars/Olympus", "days": ["mon"], "from": "09:00", "to": "17:00"}},
            "hours",
            id="unknown-zone",
        ),
        pytest.param(
            {"hours": {"time_zone": "UTC", "days": ["mon"], "from": "24:00", "to": "17:00"}},
            "hours",
            id="bad-clock",
        ),
        pytest.param(
            {"hours": {"time_zone": "UTC", "days": ["monday"], "from": "09:00", "to": "17:00"}},
            "hours",
            id="bad-day",
        ),
        pytest.param(
            {"hours": {"time_zone": "UTC", "days": [], "from": "09:00", "to": "17:00"}}, "hours", id="no-days"
        ),
    ],
)
def test_bad_rules_are_refused_naming_the_field(fields: dict[str, Any], field_name: str | None) -> None:
    with pytest.raises(ValidationError) as refused:
        AcceptanceRules.model_validate(fields)
    if field_name is not None:
        assert {str(error["loc"][0]) for error in refused.value.errors()} == {field_name}


def test_rules_read_back_as_stored() -> None:
    # Given rules as the agencies service stores them (hours' `from` by its JSON name)
    stored = rules(allowed_states=["TX"], hours=hours(["mon"], "09:00", "17:00")).model_dump(mode="json")
    # Then they are the same rules when read from the vendor record
    assert stored["hours"]["from"] == "09:00"
    assert AcceptanceRules.from_item(stored) == rules(
        allowed_states=["TX"], hours=hours(["mon"], "09:00", "17:00")
    )


def test_every_requirable_field_is_a_posting_field() -> None:
    requirable = AcceptanceRules.model_json_schema()["properties"]["required_fields"]["items"]["enum"]
    assert set(requirable) == set(POSTING_FIELDS) - {"tcpa_consent"}
    assert set(LeadSubmission.model_fields) == set(POSTING_FIELDS) | {"vendor_code", "notes"}
