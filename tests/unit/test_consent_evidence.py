"""Consent evidence in a lead post (`leads.intake`): a TrustedForm certificate URL, a Jornaya
LeadiD and the time the consumer submitted the lead, each checked and normalised, or refused as
a DATA_ERROR naming the field."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from leads.intake import DataError, parse_submission
from leads.models import LeadSubmission
from shared.security import Principal, Role

VENDOR = Principal(user_id="demo-vendor-1", role=Role.VENDOR, vendor_code="V001")
CERT_ID = "0123456789abcdef0123456789abcdef01234567"


def parsed(**fields: Any) -> LeadSubmission:
    return parse_submission(json.dumps({"email": "ann@example.com", **fields}), VENDOR)


def refused_fields(**fields: Any) -> list[str]:
    with pytest.raises(DataError) as refused:
        parsed(**fields)
    return [detail["field"] for detail in refused.value.details]


def test_a_trustedform_certificate_is_kept_with_its_id_lower_case() -> None:
    assert parsed(trustedform_cert_url=f"https://cert.trustedform.com/{CERT_ID}").trustedform_cert_url == (
        f"https://cert.trustedform.com/{CERT_ID}"
    )
    assert parsed(
        trustedform_cert_url=f"https://cert.trustedform.com/{CERT_ID.upper()}"
    ).trustedform_cert_url == (f"https://cert.trustedform.com/{CERT_ID}")


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://cert.trustedform.com/abc123", id="short-id"),
        pytest.param(f"https://cert.trustedform.com/{CERT_ID}0", id="long-id"),
        pytest.param(f"https://cert.trustedform.com/{CERT_ID[:-1]}g", id="not-hex"),
        pytest.param(f"http://cert.trustedform.com/{CERT_ID}", id="plain-http"),
        pytest.param(f"https://evil.example.com/{CERT_ID}", id="another-host"),
        pytest.param(f"https://cert.trustedform.com.evil.example/{CERT_ID}", id="lookalike-host"),
        pytest.param(f"https://cert.trustedform.com/{CERT_ID}?x=1", id="query"),
    ],
)
def test_any_other_url_is_not_a_trustedform_certificate(url: str) -> None:
    assert refused_fields(trustedform_cert_url=url) == ["trustedform_cert_url"]


def test_a_jornaya_leadid_is_kept_upper_case() -> None:
    assert parsed(jornaya_leadid="3f2504e0-4f89-11d3-9a0c-0305e82c3301").jornaya_leadid == (
        "3F2504E0-4F89-11D3-9A0C-0305E82C3301"
    )


@pytest.mark.parametrize(
    "token", ["not-a-token", "3F2504E04F8911D39A0C0305E82C3301", "3F2504E0-4F89-11D3-9A0C-0305E82C330Z"]
)
def test_a_jornaya_leadid_must_be_a_uuid(token: str) -> None:
    assert refused_fields(jornaya_leadid=token) == ["jornaya_leadid"]


def test_submitted_at_is_stored_in_utc() -> None:
    assert parsed(submitted_at="2026-03-01T09:30:00-05:00").submitted_at == "2026-03-01T14:30:00.000Z"


@pytest.mark.parametrize(
    "value",
    [
        pytest.param("yesterday", id="not-a-time"),
        pytest.param("2026-03-01T09:30:00", id="no-zone"),
        pytest.param((datetime.now(UTC) + timedelta(hours=1)).isoformat(), id="future"),
    ],
)
def test_a_bad_submitted_at_is_refused(value: str) -> None:
    assert refused_fields(submitted_at=value) == ["submitted_at"]


def test_consent_must_be_a_json_boolean() -> None:
    assert refused_fields(tcpa_consent="true") == ["tcpa_consent"]
