"""How leads are stored: index keys derived from the lead, and DynamoDB number conversion."""

from __future__ import annotations

from decimal import Decimal

import pytest

from leads.models import Disposition, Lead
from leads.normalize import search_form
from leads.repository import LISTED, LeadRepository, index_attributes, search_terms
from shared.dynamo import from_item, to_item


def make_lead(**overrides: object) -> Lead:
    values: dict[str, object] = {
        "lead_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV",
        "vendor_code": "V001",
        "created_at": "2026-11-01T12:00:00.000Z",
        "created_by": "demo-vendor-1",
        "updated_at": "2026-11-01T12:00:00.000Z",
        **overrides,
    }
    return Lead.model_validate(values)


def test_a_lead_carries_one_index_key_per_field_it_has() -> None:
    # Given a new lead with no campaign and no agent
    lead = make_lead()
    # When / Then it is listed, by vendor and by disposition only
    assert index_attributes(lead) == {"ix_all": LISTED, "ix_vendor": "V001", "ix_disposition": "new"}, (
        "no email, phone or last name either: no search keys"
    )


def test_an_assigned_campaign_lead_is_in_every_index() -> None:
    lead = make_lead(
        assigned_agent="demo-agent-1", campaign_source="tiktok-ads", disposition=Disposition.CLOSED
    )
    assert index_attributes(lead) == {
        "ix_all": LISTED,
        "ix_vendor": "V001",
        "ix_agent": "demo-agent-1",
        "ix_campaign": "tiktok-ads",
        "ix_disposition": "closed",
    }


def test_a_stored_lead_round_trips_with_its_money_exact() -> None:
    lead = make_lead(lead_value=Decimal("40.00"), sale_amount=Decimal("1234.50"))
    item = from_item(to_item(LeadRepository.to_item(lead)))
    assert Lead.model_validate(item) == lead
    assert item["lead_value"] == Decimal("40.00")


def test_floats_become_exact_decimals_at_any_depth() -> None:
    item = to_item({"duration_ms": 12.5, "nested": {"values": [0.1, 2]}, "absent": None})
    assert item == {
        "duration_ms": {"N": "12.5"},
        "nested": {"M": {"values": {"L": [{"N": "0.1"}, {"N": "2"}]}}},
    }


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        ("Jane.Doe@", (("email", "jane.doe@"),)),
        ("jane.d", (("email", "jane.d"),)),
        ("(202) 555-01", (("phone", "+120255501"),)),
        ("202555", (("phone", "+1202555"),)),
        ("1 202 555", (("phone", "+1202555"),)),
        ("+44 20 79", (("phone", "+442079"),)),
        ("  Van  Der ", (("first_name", "van der"), ("last_name", "van der"))),
        ("Jane", (("first_name", "jane"), ("last_name", "jane"))),
        ("o'Néil", (("first_name", "o'neil"), ("last_name", "o'neil"))),
        ("JOSÉ ál", (("first_name", "jose al"), ("last_name", "jose al"))),
        ("\u0301\u0301", ()),
    ],
)
def test_q_is_read_as_the_stored_form_of_each_kind_it_may_be(
    q: str, expected: tuple[tuple[str, str], ...]
) -> None:
    assert search_terms(q) == expected


def test_a_lead_is_searchable_by_email_phone_and_name_both_ways_round() -> None:
    lead = make_lead(
        email="jane@example.com", phone="+12025550143", first_name="Zoë Ann", last_name="Van Der Berg"
    )
    attributes = index_attributes(lead)
    assert attributes["ix_email"] == "jane@example.com"
    assert attributes["ix_phone"] == "+12025550143"
    assert attributes["ix_first_name"] == "zoe ann van der berg"
    assert attributes["ix_name"] == "van der berg zoe ann"


@pytest.mark.parametrize(
    ("names", "expected"),
    [
        ({"first_name": "Jane"}, {"ix_first_name": "jane"}),
        ({"last_name": "Doe"}, {"ix_name": "doe"}),
    ],
)
def test_a_lead_with_one_name_has_the_one_name_key(names: dict[str, str], expected: dict[str, str]) -> None:
    attributes = index_attributes(make_lead(**names))
    assert {
        key: value for key, value in attributes.items() if key in ("ix_first_name", "ix_name")
    } == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("  José   ÁLVAREZ ", "jose alvarez"),
        ("Straße", "strasse"),
        ("Zoë", "zoe"),
        ("Øyvind Łukasz", "oyvind lukasz"),
        ("Ærø", "aero"),
        ("O'Néil", "o'neil"),
    ],
)
def test_search_form_folds_case_and_accents_and_collapses_spaces(text: str, expected: str) -> None:
    assert search_form(text) == expected
