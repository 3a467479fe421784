"""Request bodies keep their JSON types, and the published schema states the rules they are held to."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from agencies.models import AgencyCreate, AgentChanges, SettingsChanges, VendorPriceBody
from leads.intake import DataError, parse_submission
from leads.models import LeadChanges
from shared.security import Principal, Role

VENDOR = Principal(user_id="demo-vendor-1", role=Role.VENDOR, vendor_code="V001")


@pytest.mark.parametrize(
    ("model", "body", "field"),
    [
        (LeadChanges, {"version": "1", "notes": "x"}, "version"),
        (LeadChanges, {"version": True, "notes": "x"}, "version"),
        (LeadChanges, {"version": 1, "last_contact": 0}, "last_contact"),
        (AgentChanges, {"capacity": False}, "capacity"),
        (AgencyCreate, {"vendor_code": "V009", "name": "Nine", "test_mode": "yes"}, "test_mode"),
        (AgencyCreate, {"vendor_code": "V009", "name": "Nine", "monthly_goal": "50"}, "monthly_goal"),
        (VendorPriceBody, {"price": "35.00"}, "price"),
        (SettingsChanges, {"smart_pricing_enabled": 1}, "smart_pricing_enabled"),
    ],
)
def test_a_value_of_another_json_type_is_refused_naming_its_field(
    model: type[Any], body: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as refused:
        model.model_validate(body)
    assert [error["loc"] for error in refused.value.errors()] == [(field,)]


def test_json_numbers_are_taken_as_json_gives_them() -> None:
    assert LeadChanges.model_validate({"version": 2.0, "notes": "x"}).version == 2
    assert VendorPriceBody.model_validate({"price": 35}).price == Decimal("35")
    assert (
        AgencyCreate.model_validate({"vendor_code": "V009", "name": "Nine", "daily_cap": None}).daily_cap
        is None
    )


def test_a_lead_posted_with_consent_as_a_string_is_a_data_error_naming_it() -> None:
    with pytest.raises(DataError) as refused:
        parse_submission(json.dumps({"email": "jane@example.com", "tcpa_consent": "true"}), VENDOR)
    assert [detail["field"] for detail in refused.value.details] == ["tcpa_consent"]


@pytest.mark.parametrize(
    ("model", "field", "rules"),
    [
        (VendorPriceBody, "price", {"exclusiveMinimum": 0.0, "maximum": 10000.0, "multipleOf": 0.01}),
        (AgentChanges, "capacity", {"minimum": 0, "maximum": 1000}),
    ],
)
def test_the_schema_states_the_bounds_the_body_is_held_to(
    model: type[Any], field: str, rules: dict[str, Any]
) -> None:
    published = model.model_json_schema()["properties"][field]
    assert rules.items() <= published.items()


def test_fields_a_patch_may_omit_but_not_null_are_not_nullable_in_the_schema() -> None:
    schema = AgentChanges.model_json_schema()
    assert schema["minProperties"] == 1
    for name in ("availability", "capacity", "status", "name"):
        assert "anyOf" not in schema["properties"][name]
        assert "default" not in schema["properties"][name]
    with pytest.raises(ValidationError):
        AgentChanges.model_validate({"capacity": None})
