"""Request bodies keep their JSON types, and the published schema states the rules they are held to."""

from __future__ import annotations

import base64
import json
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from agencies.models import AgencyCreate, AgentChanges, SettingsChanges, VendorPriceBody
from leads.intake import DataError, parse_submission
from leads.models import LeadChanges
from shared.errors import (
    MAX_BODY_BYTES,
    MAX_BODY_DEPTH,
    BodyNestedTooDeep,
    check_body_depth,
    nested_deeper_than,
)
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


# -- how deep a body nests, read without parsing it ------------------------------------------------
def nested(depth: int, inner: str = "1") -> str:
    """`{"a":[[…inner…]]}`: `depth` levels of objects and arrays."""
    return '{"a":' + "[" * (depth - 1) + inner + "]" * (depth - 1) + "}"


def test_the_depth_limit_is_counted_in_levels_of_objects_and_arrays() -> None:
    assert json.loads(nested(MAX_BODY_DEPTH))  # the text is JSON
    assert not nested_deeper_than(nested(MAX_BODY_DEPTH))
    assert nested_deeper_than(nested(MAX_BODY_DEPTH + 1))
    assert not nested_deeper_than(nested(3), limit=3)
    assert nested_deeper_than(nested(4), limit=3)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(json.dumps({"note": "[" * 100 + "{" * 100}), id="brackets-in-a-string"),
        pytest.param(
            json.dumps({'a"' + "[" * 40: ["\\", '\\"' + "{" * 40]}), id="escaped-quotes-and-backslashes"
        ),
        pytest.param(json.dumps([{"k": "[{" * 50}] * 40), id="many-shallow-items"),
        pytest.param('{"a": "' + "[" * 100, id="unterminated-string"),
        pytest.param("]" * 100 + "[" * MAX_BODY_DEPTH, id="closing-before-opening"),
        pytest.param("", id="empty"),
    ],
)
def test_brackets_that_open_no_level_do_not_count(text: str) -> None:
    assert not nested_deeper_than(text)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param('{"a": "]]]]", "b": ' + nested(MAX_BODY_DEPTH) + "}", id="closing-brackets-in-a-string"),
        pytest.param('["\\\\", ' + nested(MAX_BODY_DEPTH) + "]", id="after-an-escaped-backslash"),
        pytest.param("[" * 10_000, id="not-closed"),
        pytest.param("[1, {" * 5_000, id="not-json"),
    ],
)
def test_nesting_past_the_limit_is_found_wherever_it_starts(text: str) -> None:
    assert nested_deeper_than(text)


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("[" * MAX_BODY_BYTES, id="all-open"),
        pytest.param('"' + '\\"' * (MAX_BODY_BYTES // 2), id="one-string-of-escaped-quotes"),
        pytest.param('"' + "\\" * MAX_BODY_BYTES, id="backslashes"),
        pytest.param("[1]," * (MAX_BODY_BYTES // 4), id="many-small-arrays"),
    ],
)
def test_any_text_up_to_the_size_limit_is_scanned_without_recursion(text: str) -> None:
    # The scan never recurses and never backtracks, whatever the text: it answers for all of these.
    assert nested_deeper_than(text) in (True, False)
    assert not nested_deeper_than(text, limit=MAX_BODY_BYTES)


def test_a_base64_body_is_scanned_as_the_text_it_encodes() -> None:
    deep = base64.b64encode(nested(MAX_BODY_DEPTH + 1).encode()).decode()
    shallow = base64.b64encode(nested(MAX_BODY_DEPTH).encode()).decode()
    with pytest.raises(BodyNestedTooDeep) as refused:
        check_body_depth(deep, base64_encoded=True)
    assert refused.value.status == 400
    assert refused.value.code == "NESTING_TOO_DEEP"
    assert refused.value.details == [
        {
            "field": "body",
            "message": f"at most {MAX_BODY_DEPTH} levels of objects and arrays",
            "max_depth": 32,
        }
    ]
    check_body_depth(shallow, base64_encoded=True)
    check_body_depth("not base64!", base64_encoded=True)  # left to the body's reader to refuse


def test_a_lead_posted_nested_past_the_limit_is_refused_before_it_is_parsed() -> None:
    # Given a post nested far past the point where a recursive parser exhausts the stack
    raw = nested(100_000)
    # When / Then
    with pytest.raises(BodyNestedTooDeep):
        parse_submission(raw, VENDOR)
