"""`leads.scoring`: the rule table, the clamp, the documented examples, and the doc staying in sync."""

from __future__ import annotations

import itertools
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from leads.scoring import BASELINE, MAX_SCORE, MIN_SCORE, RULES, QualityScore, ScoringInput, score_lead

DOC = Path(__file__).resolve().parents[2] / "docs" / "quality-score.md"

# A lead that fires no rule at all: every row below adds only what its rule needs.
EMPTY = ScoringInput(
    email=None,
    phone=None,
    first_name=None,
    last_name=None,
    state=None,
    zip=None,
    tcpa_consent=False,
    consent_text=None,
    ip_address=None,
    trustedform_cert_url=None,
    landing_page_url=None,
)
CONSENT: dict[str, Any] = {"tcpa_consent": True, "consent_text": "I agree to be contacted by phone."}
COMPLETE: dict[str, Any] = {"first_name": "Jane", "last_name": "Doe", "state": "VA", "zip": "22201"}
AVERAGE_VENDOR: dict[str, Any] = {"vendor_conversion_rate": 0.05, "overall_conversion_rate": 0.06}

# The two worked examples of docs/quality-score.md, field for field.
DOC_EXAMPLE_GOOD = replace(
    EMPTY,
    email="jane.doe@gmail.com",
    phone="+12025550123",
    **COMPLETE,
    tcpa_consent=True,
    consent_text="By clicking Submit I agree to be contacted ...",
    **AVERAGE_VENDOR,
)
DOC_EXAMPLE_JUNK = replace(
    EMPTY,
    email="admin@inbox.mailinator.com",
    first_name="Test",
    ip_address="203.0.113.7",
    vendor_conversion_rate=0.02,
    overall_conversion_rate=0.06,
)


def _lead(**fields: Any) -> ScoringInput:
    return replace(EMPTY, **fields)


def _fired(result: QualityScore) -> dict[str, int]:
    return {r.rule: r.points for r in result.rules}


def _clamp(raw: int) -> int:
    return max(MIN_SCORE, min(MAX_SCORE, raw))


# --- one row per rule ---------------------------------------------------------------------------

RULE_ROWS = [
    pytest.param("valid_phone", 2, _lead(phone="+12025550123"), id="valid_phone"),
    pytest.param("deliverable_email", 1, _lead(email="jane.doe@gmail.com"), id="deliverable_email"),
    pytest.param("role_email", -1, _lead(email="info@acme.com"), id="role_email"),
    pytest.param("disposable_email", -2, _lead(email="jane@mailinator.com"), id="disposable_email"),
    pytest.param("tcpa_consent", 1, _lead(**CONSENT), id="tcpa_consent"),
    pytest.param(
        "consent_trustedform",
        1,
        _lead(**CONSENT, trustedform_cert_url="https://cert.trustedform.com/abc123"),
        id="consent_trustedform",
    ),
    pytest.param(
        "consent_ip_address", 1, _lead(**CONSENT, ip_address="203.0.113.7"), id="consent_ip_address"
    ),
    pytest.param("complete_contact", 1, _lead(**COMPLETE), id="complete_contact"),
    pytest.param(
        "vendor_high_conversion",
        1,
        _lead(vendor_conversion_rate=0.09, overall_conversion_rate=0.06),
        id="vendor_high_conversion",
    ),
    pytest.param(
        "vendor_low_conversion",
        -1,
        _lead(vendor_conversion_rate=0.02, overall_conversion_rate=0.06),
        id="vendor_low_conversion",
    ),
]


@pytest.mark.parametrize(("rule", "points", "data"), RULE_ROWS)
def test_each_rule_fires_on_its_condition_with_its_documented_points(
    rule: str, points: int, data: ScoringInput
) -> None:
    # Given a lead that meets exactly this rule's condition (the consent-evidence rules need consent)

    # When
    result = score_lead(data)

    # Then the rule fires with its pinned weight, explains itself, and nothing else fires but consent
    fired = {r.rule: r for r in result.rules}
    assert fired[rule].points == points
    assert fired[rule].reason.endswith(".")
    assert set(fired) - {rule, "tcpa_consent"} == set()
    assert result.score == _clamp(BASELINE + sum(r.points for r in result.rules))
    assert {r.name: r.points for r in RULES}[rule] == points, "the table and this test disagree"


def test_every_rule_in_the_table_has_a_row_above() -> None:
    # Given the rule rows of this module
    tested = {row.values[0] for row in RULE_ROWS}

    # When / Then: a new rule cannot be added without a test showing it fire
    assert tested == {r.name for r in RULES}


def test_rule_names_are_unique_stable_identifiers() -> None:
    # Given the rule table
    names = [r.name for r in RULES]

    # When / Then
    assert len(names) == len(set(names))
    assert all(re.fullmatch(r"[a-z][a-z0-9_]*", name) for name in names)
    assert all(r.points != 0 and r.description for r in RULES)


@pytest.mark.parametrize(
    ("data", "absent_rule"),
    [
        pytest.param(_lead(phone="+1 555 0100"), "valid_phone", id="invalid-phone"),
        pytest.param(_lead(phone="   "), "valid_phone", id="blank-phone"),
        pytest.param(_lead(email="jane@localhost"), "deliverable_email", id="domain-without-dot"),
        pytest.param(_lead(email=""), "deliverable_email", id="blank-email"),
        pytest.param(_lead(email="jane.example.com"), "deliverable_email", id="email-without-at"),
        pytest.param(_lead(email="info@acme.com"), "deliverable_email", id="role-is-not-deliverable"),
        pytest.param(
            _lead(email="jane@mailinator.com"), "deliverable_email", id="disposable-not-deliverable"
        ),
        pytest.param(_lead(email="information@acme.com"), "role_email", id="role-word-is-only-a-prefix"),
        pytest.param(_lead(email="jane@notmailinator.com"), "disposable_email", id="lookalike-domain"),
        pytest.param(_lead(tcpa_consent=True), "tcpa_consent", id="consent-without-text"),
        pytest.param(_lead(tcpa_consent=True, consent_text="  "), "tcpa_consent", id="consent-blank-text"),
        pytest.param(_lead(consent_text="I agree."), "tcpa_consent", id="text-without-consent"),
        pytest.param(
            _lead(trustedform_cert_url="https://cert.trustedform.com/abc123"),
            "consent_trustedform",
            id="certificate-without-consent",
        ),
        pytest.param(_lead(ip_address="203.0.113.7"), "consent_ip_address", id="ip-without-consent"),
        pytest.param(_lead(**{**COMPLETE, "zip": "2220"}), "complete_contact", id="four-digit-zip"),
        pytest.param(_lead(**{**COMPLETE, "zip": "22201-12"}), "complete_contact", id="bad-zip-plus-4"),
        pytest.param(_lead(**{**COMPLETE, "zip": "SW1A 1AA"}), "complete_contact", id="uk-postcode"),
        pytest.param(_lead(**{**COMPLETE, "last_name": " "}), "complete_contact", id="blank-last-name"),
        pytest.param(_lead(**{**COMPLETE, "state": None}), "complete_contact", id="no-state"),
        pytest.param(_lead(**{**COMPLETE, "zip": "٢٢٢٠١"}), "complete_contact", id="non-ascii-digits-zip"),
        pytest.param(
            _lead(vendor_conversion_rate=0.074, overall_conversion_rate=0.06),
            "vendor_high_conversion",
            id="ratio-just-under-1.25",
        ),
        pytest.param(
            _lead(vendor_conversion_rate=0.031, overall_conversion_rate=0.06),
            "vendor_low_conversion",
            id="ratio-just-over-0.5",
        ),
    ],
)
def test_a_rule_does_not_fire_when_its_condition_is_not_fully_met(
    data: ScoringInput, absent_rule: str
) -> None:
    # Given a lead that almost meets the rule's condition

    # When
    result = score_lead(data)

    # Then
    assert absent_rule not in _fired(result)


@pytest.mark.parametrize(
    ("email", "expected"),
    [
        pytest.param("noreply@acme.com", {"role_email": -1}, id="noreply"),
        pytest.param("info+leads@acme.com", {"role_email": -1}, id="role-with-plus-tag"),
        pytest.param("jane@inbox.mailinator.com", {"disposable_email": -2}, id="disposable-subdomain"),
        pytest.param("admin@mailinator.com", {"role_email": -1, "disposable_email": -2}, id="both-penalties"),
        pytest.param("jane+leads@gmail.com", {"deliverable_email": 1}, id="personal-plus-tag"),
    ],
)
def test_email_rules_combine_as_documented(email: str, expected: dict[str, int]) -> None:
    # Given a lead with only an email

    # When
    result = score_lead(_lead(email=email))

    # Then
    assert _fired(result) == expected


@pytest.mark.parametrize(
    ("vendor", "overall", "expected"),
    [
        pytest.param(0.10, 0.08, {"vendor_high_conversion": 1}, id="exactly-1.25x-is-high"),
        pytest.param(0.03, 0.06, {"vendor_low_conversion": -1}, id="exactly-0.5x-is-low"),
        pytest.param(0.0, 0.06, {"vendor_low_conversion": -1}, id="vendor-never-converts"),
        pytest.param(0.06, 0.06, {}, id="average"),
        pytest.param(None, 0.06, {}, id="vendor-unknown"),
        pytest.param(0.06, None, {}, id="overall-unknown"),
        pytest.param(0.06, 0.0, {}, id="overall-zero"),
        pytest.param(0.0, 0.0, {}, id="both-zero"),
        pytest.param(1.5, 0.06, {}, id="vendor-rate-above-one-ignored"),
        pytest.param(-0.1, 0.06, {}, id="negative-rate-ignored"),
        pytest.param(float("nan"), 0.06, {}, id="nan-ignored"),
        pytest.param(0.06, float("inf"), {}, id="infinite-ignored"),
    ],
)
def test_vendor_conversion_compares_with_the_overall_rate(
    vendor: float | None, overall: float | None, expected: dict[str, int]
) -> None:
    # Given a lead with nothing but the vendor's statistics
    data = _lead(vendor_conversion_rate=vendor, overall_conversion_rate=overall)

    # When
    result = score_lead(data)

    # Then
    assert _fired(result) == expected


# --- the total and the clamp --------------------------------------------------------------------


def test_a_lead_that_fires_nothing_scores_the_baseline() -> None:
    # Given / When
    result = score_lead(EMPTY)

    # Then
    assert (result.score, result.rules) == (BASELINE, ())


def test_the_score_is_clamped_to_ten_at_the_top() -> None:
    # Given every positive signal at once
    data = replace(
        DOC_EXAMPLE_GOOD,
        trustedform_cert_url="https://cert.trustedform.com/abc123",
        ip_address="203.0.113.7",
        vendor_conversion_rate=0.09,
        overall_conversion_rate=0.06,
    )

    # When
    result = score_lead(data)

    # Then the raw total goes past the top, and the score stops there
    assert BASELINE + sum(_fired(result).values()) > MAX_SCORE
    assert result.score == MAX_SCORE == 10


def test_the_score_is_clamped_to_one_at_the_bottom() -> None:
    # Given every negative signal at once
    data = _lead(email="noreply@yopmail.com", vendor_conversion_rate=0.01, overall_conversion_rate=0.06)

    # When
    result = score_lead(data)

    # Then the raw total falls below the bottom, and the score stops there
    assert BASELINE + sum(_fired(result).values()) < MIN_SCORE
    assert result.score == MIN_SCORE == 1


def test_fired_rules_are_reported_in_table_order() -> None:
    # Given a lead firing many rules
    data = replace(DOC_EXAMPLE_GOOD, ip_address="203.0.113.7", vendor_conversion_rate=0.01)

    # When
    result = score_lead(data)

    # Then
    order = [r.name for r in RULES]
    names = [r.rule for r in result.rules]
    assert names == sorted(names, key=order.index)
    assert len(names) == 6


def test_scoring_is_deterministic() -> None:
    # Given / When
    first, second = score_lead(DOC_EXAMPLE_GOOD), score_lead(DOC_EXAMPLE_GOOD)

    # Then
    assert first == second


def test_reasons_never_repeat_the_leads_email_or_phone() -> None:
    # Given a lead whose every rule that can fire with contact data does
    data = replace(DOC_EXAMPLE_GOOD, email="sales@inbox.mailinator.com")

    # When
    result = score_lead(data)

    # Then: reasons are stored and logged, so they must carry no personal data
    for rule in result.rules:
        assert "mailinator" not in rule.reason
        assert "sales" not in rule.reason.lower()
        assert "5550123" not in rule.reason


# --- the product targets and the documented examples -----------------------------------------------


@pytest.mark.parametrize(
    ("data", "expected_score", "expected_rules"),
    [
        pytest.param(
            DOC_EXAMPLE_GOOD,
            8,
            {"valid_phone": 2, "deliverable_email": 1, "tcpa_consent": 1, "complete_contact": 1},
            id="doc-example-1-complete-consented-average-vendor",
        ),
        pytest.param(
            DOC_EXAMPLE_JUNK,
            1,
            {"role_email": -1, "disposable_email": -2, "vendor_low_conversion": -1},
            id="doc-example-2-junk-clamped",
        ),
        pytest.param(
            replace(
                DOC_EXAMPLE_GOOD, trustedform_cert_url="https://cert.trustedform.com/abc", ip_address="::1"
            ),
            10,
            {
                "valid_phone": 2,
                "deliverable_email": 1,
                "tcpa_consent": 1,
                "consent_trustedform": 1,
                "consent_ip_address": 1,
                "complete_contact": 1,
            },
            id="doc-example-1-with-certificate-and-ip",
        ),
        pytest.param(_lead(email="jane.doe@gmail.com"), 4, {"deliverable_email": 1}, id="bare-email-only"),
    ],
)
def test_documented_examples_and_targets_score_as_stated(
    data: ScoringInput, expected_score: int, expected_rules: dict[str, int]
) -> None:
    # Given a lead described in docs/quality-score.md

    # When
    result = score_lead(data)

    # Then
    assert result.score == expected_score
    assert _fired(result) == expected_rules


def test_the_doc_lists_every_rule_with_its_points_and_nothing_else() -> None:
    # Given the rule table of docs/quality-score.md
    text = DOC.read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([a-z0-9_]+)` \| ([+-]\d+) \|", text, flags=re.MULTILINE)

    # When
    documented = {name: int(points) for name, points in rows}

    # Then: same rules, same points, same order, and the same baseline and clamp
    assert [name for name, _ in rows] == [r.name for r in RULES]
    assert documented == {r.name: r.points for r in RULES}
    assert f"**Baseline:** {BASELINE} points." in text
    assert f"clamp the total to {MIN_SCORE}..{MAX_SCORE}" in text


# --- monotonicity -------------------------------------------------------------------------------

_EMAILS = [None, "jane.doe@gmail.com", "info@acme.com", "jane@yopmail.com", "admin@mailinator.com"]
_EVIDENCE: list[dict[str, Any]] = [
    {},
    CONSENT,
    {**CONSENT, "trustedform_cert_url": "https://cert.trustedform.com/abc", "ip_address": "203.0.113.7"},
    {"trustedform_cert_url": "https://cert.trustedform.com/abc", "ip_address": "203.0.113.7"},
]
_CONTACT: list[dict[str, Any]] = [{}, COMPLETE]
_VENDORS: list[dict[str, Any]] = [
    {},
    AVERAGE_VENDOR,
    {"vendor_conversion_rate": 0.09, "overall_conversion_rate": 0.06},
    {"vendor_conversion_rate": 0.01, "overall_conversion_rate": 0.06},
]
_PHONELESS = [
    pytest.param(
        _lead(email=email, **evidence, **contact, **vendor),
        id=f"email={email}-evidence={e}-complete={bool(contact)}-vendor={v}",
    )
    for email, (e, evidence), contact, (v, vendor) in itertools.product(
        _EMAILS, enumerate(_EVIDENCE), _CONTACT, enumerate(_VENDORS)
    )
]


@pytest.mark.parametrize("data", _PHONELESS)
def test_adding_a_valid_phone_never_lowers_the_score(data: ScoringInput) -> None:
    # Given a lead without a phone

    # When
    without_phone = score_lead(data)
    with_phone = score_lead(replace(data, phone="+442079460958"))

    # Then
    assert with_phone.score >= without_phone.score
    assert "valid_phone" in _fired(with_phone)
