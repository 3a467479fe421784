"""The posting contract's HTTP answer to each outcome of creating a lead (`leads.posting.answer`)."""

from __future__ import annotations

from decimal import Decimal

import pytest

from leads.models import CreateOutcome, Lead, Outcome, ReasonCode
from leads.posting import answer
from leads.writes import SUPPRESSED

LEAD = Lead(
    lead_id="01JDQ0000000000000000000AA",
    vendor_code="V001",
    email="ann@example.com",
    lead_value=Decimal("42.50"),
    created_at="2026-11-27T09:30:00.000Z",
    created_by="vendor-1",
    updated_at="2026-11-27T09:30:00.000Z",
)


def test_an_accepted_lead_is_a_201_with_the_lead_its_id_and_price() -> None:
    # When
    response = answer(CreateOutcome.accepted(LEAD))
    # Then
    assert response.status == 201
    body = response.body()
    assert (body["outcome"], body["lead_id"], body["price"]) == ("accepted", LEAD.lead_id, Decimal("42.50"))
    assert body["lead"]["email"] == "ann@example.com"
    assert (body["reason_code"], body["error"]) == (None, None)


@pytest.mark.parametrize(
    ("outcome", "status"),
    [
        pytest.param(CreateOutcome.duplicate("01JDQ0000000000000000000BB"), 409, id="duplicate"),
        pytest.param(
            CreateOutcome.rejected(ReasonCode.VENDOR_PAUSED, "Vendor V001 is paused"), 403, id="paused"
        ),
        pytest.param(
            CreateOutcome.rejected(
                ReasonCode.OVER_CAP, "Vendor V001 has reached its lead cap", Decimal("35.00")
            ),
            429,
            id="over-cap",
        ),
        pytest.param(
            CreateOutcome.rejected(
                ReasonCode.DATA_ERROR,
                "Unknown vendor",
                details=[{"field": "vendor_code", "message": "no such vendor"}],
            ),
            422,
            id="unknown-vendor",
        ),
        pytest.param(SUPPRESSED, 422, id="suppressed"),
        *[
            pytest.param(
                CreateOutcome.rejected(code, f"refused: {code}", details=[{"field": "x", "message": "y"}]),
                422,
                id=code.value,
            )
            for code in (
                ReasonCode.NO_CONSENT,
                ReasonCode.MISSING_FIELD,
                ReasonCode.STATE_NOT_ALLOWED,
                ReasonCode.LEAD_TOO_OLD,
                ReasonCode.OUTSIDE_HOURS,
            )
        ],
    ],
)
def test_each_refusal_has_its_status_and_an_error_body_with_its_reason_code(
    outcome: CreateOutcome, status: int
) -> None:
    # When
    response = answer(outcome)
    # Then
    assert response.status == status
    body = response.body()
    assert body["outcome"] == outcome.outcome.value
    assert body["reason_code"] == body["error"]["code"] == outcome.reason_code
    assert body["reason"] == body["error"]["message"] == outcome.reason
    assert body["details"] == body["error"]["details"] == outcome.details
    assert body["lead"] is None
    assert body["price"] == outcome.price


def test_a_duplicate_names_the_existing_lead_only_when_the_outcome_carries_it() -> None:
    assert answer(CreateOutcome.duplicate("01JDQ0000000000000000000BB")).body()["lead_id"] == (
        "01JDQ0000000000000000000BB"
    )
    assert answer(CreateOutcome.duplicate(None)).body()["lead_id"] is None
    assert CreateOutcome.duplicate(None).outcome is Outcome.DUPLICATE


def test_a_suppressed_person_is_told_neither_the_list_nor_the_field() -> None:
    body = answer(SUPPRESSED).body()
    assert (body["reason_code"], body["lead_id"], body["details"]) == ("SUPPRESSED", None, [])
    assert not {"email", "phone", "list"} & set(body["reason"].lower().split())
