"""`shared.audit`: masking of secrets and personal data, the audit record, and its storage."""

from __future__ import annotations

import copy
import json
import re
from datetime import UTC, datetime
from typing import Any

import pytest

from shared.audit import MASK, MAX_BODY_CHARS, AuditLog, build_record, sanitize, sanitize_body, stored_record
from shared.errors import MAX_BODY_BYTES, MAX_BODY_DEPTH
from shared.security import Principal, Role
from tests.helpers import api_event

NOW = datetime(2024, 3, 5, 14, 7, 9, 123456, tzinfo=UTC)
ADMIN = Principal(user_id="demo-admin", role=Role.ADMIN)
VENDOR = Principal(user_id="demo-vendor-1", role=Role.VENDOR, vendor_code="V001")


class FakeTable:
    def __init__(self, fail: bool = False) -> None:
        self.items: list[dict[str, Any]] = []
        self.fail = fail

    def put(self, values: dict[str, Any]) -> None:
        if self.fail:
            raise RuntimeError("DynamoDB is down")
        self.items.append(values)


def _dumped(value: Any) -> str:
    return json.dumps(value, default=str)


# --- sanitize -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key",
    [
        "Authorization",
        "authorization",
        "token",
        "access_token",
        "refreshToken",
        "password",
        "new_password",
        "passwd",
        "secret",
        "client_secret",
        "api_key",
        "apiKey",
        "API-KEY",
        "Cookie",
        "credentials",
    ],
)
def test_secret_values_are_masked_whatever_their_type(key: str) -> None:
    # Given
    values: list[Any] = ["s3cr3t-value", 12345, {"nested": "s3cr3t-value"}, ["s3cr3t-value"], None]

    # When
    cleaned = [sanitize({key: value}) for value in values]

    # Then
    assert cleaned == [{key: MASK}] * len(values)


def test_secrets_are_masked_at_any_depth() -> None:
    # Given
    payload = {
        "level1": {
            "level2": [
                {"headers": {"Authorization": "Bearer eyJhbGciOi.abc.def"}},
                {"deeper": {"password": "hunter2", "ok": "visible"}},
            ],
            "api_key": "AKIA123",
        },
        "items": [[{"secret": "buried"}]],
    }

    # When
    cleaned = sanitize(payload)

    # Then
    assert cleaned == {
        "level1": {
            "level2": [
                {"headers": {"Authorization": MASK}},
                {"deeper": {"password": MASK, "ok": "visible"}},
            ],
            "api_key": MASK,
        },
        "items": [[{"secret": MASK}]],
    }
    for secret in ("eyJhbGciOi", "hunter2", "AKIA123", "buried"):
        assert secret not in _dumped(cleaned)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("email", "john@example.com", "j***@example.com"),
        ("Email", "Jane.Doe@Example.org", "J***@Example.org"),
        ("phone", "+15551234567", "***67"),
        ("phone", "(555) 123-4567", "***67"),
        ("first_name", "John", "J***"),
        ("last_name", "Smith", "S***"),
        ("name", "Acme Leads", "A***"),
        ("address", "1 Main St", "1***"),
        ("zip", "90210", "***10"),
        ("ip_address", "203.0.113.9", "2***"),
        ("user_agent", "Mozilla/5.0", "M***"),
        ("q", "john smith", "j***"),
    ],
)
def test_personal_data_is_partly_masked(key: str, value: str, expected: str) -> None:
    # Given / When
    cleaned = sanitize({key: value})

    # Then
    assert cleaned == {key: expected}


def test_personal_data_is_masked_inside_nested_objects_and_lists() -> None:
    # Given
    payload = {"leads": [{"email": "john@example.com", "phone": "+15551234567", "first_name": "John"}]}

    # When
    cleaned = sanitize(payload)

    # Then
    assert cleaned == {"leads": [{"email": "j***@example.com", "phone": "***67", "first_name": "J***"}]}
    for raw in ("john@", "5551234", "John"):
        assert raw not in _dumped(cleaned)


def test_phone_keeps_only_its_last_two_digits() -> None:
    # Given
    phone = "+15557654321"

    # When
    masked = sanitize({"phone": phone})["phone"]

    # Then
    assert masked.endswith("21")
    assert re.sub(r"\D", "", masked) == "21"


@pytest.mark.parametrize("value", ["", None, True])
def test_empty_or_non_text_personal_data_passes_through(value: Any) -> None:
    # Given / When / Then
    assert sanitize({"email": value}) == {"email": value}


@pytest.mark.parametrize(
    ("payload", "raw"),
    [
        pytest.param({"phone": 15551234567}, "5551234567", id="numeric-phone"),
        pytest.param({"email": ["john@example.com"]}, "john@", id="list-of-emails"),
        pytest.param({"phone": ["+15551234567"]}, "5551234567", id="list-of-phones"),
    ],
)
def test_personal_data_that_is_not_a_string_is_still_masked(payload: dict[str, Any], raw: str) -> None:
    # Given / When
    cleaned = sanitize(payload)

    # Then
    assert raw not in _dumped(cleaned)


def test_other_values_are_kept() -> None:
    # Given
    payload = {"vendor_code": "V001", "disposition": "new", "lead_value": 35, "tcpa_consent": True}

    # When / Then
    assert sanitize(payload) == payload


def test_sanitize_does_not_mutate_its_input() -> None:
    # Given
    payload = {"password": "hunter2", "contact": {"email": "john@example.com"}, "list": [{"token": "t"}]}
    original = copy.deepcopy(payload)

    # When
    sanitize(payload)

    # Then
    assert payload == original


def test_long_lists_are_cut_to_50_items() -> None:
    # Given / When
    cleaned = sanitize({"ids": list(range(500))})

    # Then
    assert cleaned == {"ids": list(range(50))}


# --- sanitize_body ------------------------------------------------------------------------------


def test_non_json_body_is_summarised() -> None:
    # Given
    body = "password=hunter2&email=john@example.com"

    # When
    summary = sanitize_body(body)

    # Then
    assert summary == f"<non-JSON body, {len(body)} bytes>"


def test_huge_body_is_truncated() -> None:
    # Given
    body = json.dumps({"notes": "x" * (MAX_BODY_CHARS * 2)})

    # When
    summary = sanitize_body(body)

    # Then
    assert summary == f"<{len(body)} bytes, truncated>"


@pytest.mark.parametrize("body", [None, ""])
def test_no_body_is_none(body: str | None) -> None:
    # Given / When / Then
    assert sanitize_body(body) is None


# --- build_record -------------------------------------------------------------------------------


def test_get_request_record_has_no_body_and_names_the_resource() -> None:
    # Given
    event = api_event(
        "GET",
        "/leads/01HV0000000000000000000000",
        resource="/leads/{lead_id}",
        path_parameters={"lead_id": "01HV0000000000000000000000"},
        body={"password": "should-not-appear"},
        token="eyJ.secret.token",
    )

    # When
    record = build_record(event, 200, 12.3456, ADMIN, now=NOW)

    # Then
    assert record["action"] == "GET /leads/{lead_id}"
    assert record["path"] == "/leads/01HV0000000000000000000000"
    assert record["request"]["body"] is None
    assert record["request"]["path_parameters"] == {"lead_id": "01HV0000000000000000000000"}
    assert record["user"] == "demo-admin"
    assert record["role"] == "admin"
    assert record["status"] == 200
    assert record["duration_ms"] == 12.35
    assert record["timestamp"] == "2024-03-05T14:07:09.123Z"
    assert record["request_id"] == event["requestContext"]["requestId"]
    assert record["ip"] == "127.0.0.1"
    assert "eyJ.secret.token" not in _dumped(record)
    assert "should-not-appear" not in _dumped(record)


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
def test_mutating_request_record_carries_the_sanitized_body(method: str) -> None:
    # Given
    event = api_event(
        method,
        "/leads",
        body={"email": "john@example.com", "phone": "+15551234567", "api_key": "k-123", "state": "CA"},
    )

    # When
    record = build_record(event, 201, 5.0, VENDOR, now=NOW)

    # Then
    assert record["action"] == f"{method} /leads"
    assert record["request"]["body"] == {
        "email": "j***@example.com",
        "phone": "***67",
        "api_key": MASK,
        "state": "CA",
    }
    assert record["user"] == "demo-vendor-1"
    assert record["role"] == "vendor"
    assert record["status"] == 201


def test_mutating_request_with_non_json_body_is_summarised() -> None:
    # Given
    event = api_event("POST", "/leads", body="not json at all")

    # When
    record = build_record(event, 400, 1.0, ADMIN, now=NOW)

    # Then
    assert record["request"]["body"] == "<non-JSON body, 15 bytes>"


def test_mutating_request_with_huge_body_is_truncated() -> None:
    # Given
    body = json.dumps([{"notes": "y" * 200} for _ in range(40)])
    event = api_event("POST", "/leads", body=body)

    # When
    record = build_record(event, 201, 1.0, ADMIN, now=NOW)

    # Then
    assert record["request"]["body"] == f"<{len(body)} bytes, truncated>"


def test_query_string_is_sanitized() -> None:
    # Given
    event = api_event("GET", "/leads", query={"q": "john smith", "token": "abc", "disposition": "new"})

    # When
    record = build_record(event, 200, 1.0, ADMIN, now=NOW)

    # Then
    assert record["request"]["query"] == {"q": "j***", "token": MASK, "disposition": "new"}


def test_anonymous_request_record_has_no_user_or_role() -> None:
    # Given
    event = api_event("GET", "/leads", token=None)

    # When
    record = build_record(event, 401, 0.5, None, now=NOW)

    # Then
    assert record["user"] is None
    assert record["role"] is None
    assert record["status"] == 401
    assert record["request"]["query"] == {}


def test_record_without_request_id_gets_a_generated_one() -> None:
    # Given
    event = api_event("GET", "/leads")
    del event["requestContext"]["requestId"]

    # When
    record = build_record(event, 200, 1.0, ADMIN)

    # Then
    assert re.fullmatch(r"[0-9a-f-]{36}", record["request_id"])
    assert record["timestamp"].endswith("Z")


# --- AuditLog.record ----------------------------------------------------------------------------


def test_read_request_is_logged_but_not_stored() -> None:
    # Given
    table = FakeTable()
    record = build_record(api_event("GET", "/leads"), 200, 1.0, ADMIN, now=NOW)

    # When
    AuditLog(table).record(record, "GET")  # type: ignore[arg-type]

    # Then
    assert table.items == []


@pytest.mark.parametrize("method", ["GET", "OPTIONS", "HEAD"])
def test_non_mutating_methods_are_not_stored(method: str) -> None:
    # Given
    table = FakeTable()
    record = build_record(api_event(method, "/leads"), 200, 1.0, ADMIN, now=NOW)

    # When
    AuditLog(table).record(record, method)  # type: ignore[arg-type]

    # Then
    assert table.items == []


def test_mutating_request_is_stored_once_keyed_by_day_and_time() -> None:
    # Given
    table = FakeTable()
    event = api_event("POST", "/leads", body={"email": "john@example.com"})
    record = build_record(event, 201, 1.0, VENDOR, now=NOW)

    # When
    AuditLog(table).record(record, "POST")  # type: ignore[arg-type]

    # Then
    assert len(table.items) == 1
    item = table.items[0]
    assert item["day"] == "2024-03-05"
    assert item["at"] == f"2024-03-05T14:07:09.123Z#{event['requestContext']['requestId']}"
    assert item["user"] == "demo-vendor-1"
    assert item["status"] == 201
    assert stored_record(item)["request"]["body"] == {"email": "j***@example.com"}


def test_failed_audit_write_does_not_fail_the_request() -> None:
    # Given
    table = FakeTable(fail=True)
    record = build_record(api_event("DELETE", "/leads/x"), 204, 1.0, ADMIN, now=NOW)

    # When
    AuditLog(table).record(record, "DELETE")  # type: ignore[arg-type]

    # Then: no exception, nothing stored
    assert table.items == []


def test_body_over_the_request_limit_is_recorded_by_size_without_being_read() -> None:
    body = '{"email": "' + "x" * MAX_BODY_BYTES + '@example.com"}'
    assert sanitize_body(body) == f"<{len(body)} bytes, over the limit>"


def _nested(depth: int) -> str:
    """`{"a":[[…]]}`, `depth` levels deep."""
    return '{"a":' + "[" * (depth - 1) + "]" * (depth - 1) + "}"


@pytest.mark.parametrize("depth", [MAX_BODY_DEPTH + 1, 489, 100_000])
def test_a_body_nested_past_the_depth_limit_is_recorded_by_size_without_being_read(depth: int) -> None:
    # Given a body the API refuses unread (400 NESTING_TOO_DEEP); 489 levels once exhausted the stack
    body = _nested(depth)
    event = api_event("PATCH", "/leads/x", body=body)

    # When
    record = build_record(event, 400, 1.0, None, now=NOW)

    # Then
    assert record["request"]["body"] == f"<{len(body)} bytes, nested deeper than {MAX_BODY_DEPTH} levels>"
    assert sanitize_body(body) == record["request"]["body"]


def test_a_body_at_the_depth_limit_is_recorded_in_full() -> None:
    body = _nested(MAX_BODY_DEPTH)
    assert sanitize_body(body) == json.loads(body)


def test_a_record_is_stored_whatever_body_it_describes() -> None:
    # Given a deeply nested body, and one nested to the limit that masks a secret at its bottom
    table = FakeTable()
    deep = build_record(api_event("POST", "/agents", body=_nested(5_000)), 400, 1.0, ADMIN, now=NOW)
    inner: Any = {"password": "hunter2"}
    for _ in range(MAX_BODY_DEPTH - 1):
        inner = [inner]
    at_limit = build_record(api_event("POST", "/agents", body=inner), 422, 1.0, ADMIN, now=NOW)

    # When
    AuditLog(table).record(deep, "POST")  # type: ignore[arg-type]
    AuditLog(table).record(at_limit, "POST")  # type: ignore[arg-type]

    # Then both are stored, the secret masked at any depth
    assert [stored_record(item)["status"] for item in table.items] == [400, 422]
    assert "hunter2" not in _dumped(table.items)
    bottom = stored_record(table.items[1])["request"]["body"]
    for _ in range(MAX_BODY_DEPTH - 1):
        bottom = bottom[0]
    assert bottom == {"password": MASK}


@pytest.mark.parametrize("body", [12345, ["a"], {"a": 1}])
def test_a_body_that_is_not_text_is_summarised_by_its_type(body: Any) -> None:
    assert sanitize_body(body) == f"<{type(body).__name__} body>"
