"""The lead quality score: an integer from 1 to 10 computed from documented, weighted rules.

The score starts at `BASELINE`, adds the signed points of every rule in `RULES` whose condition
holds, and is clamped to 1..10. Rules are independent of one another except where a condition says
otherwise (the two consent-evidence rules need consent), so each fired rule explains its own
contribution. The function is pure and deterministic: the same input always gives the same score
and the same rules, in `RULES` order.

docs/quality-score.md documents the table; tests/unit/test_scoring.py fails if the two drift.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TypeGuard

from leads.normalize import FieldError, is_disposable, normalize_phone

__all__ = [
    "BASELINE",
    "HIGH_CONVERSION_RATIO",
    "LOW_CONVERSION_RATIO",
    "MAX_SCORE",
    "MIN_SCORE",
    "ROLE_LOCAL_PARTS",
    "RULES",
    "QualityScore",
    "Rule",
    "RuleResult",
    "ScoringInput",
    "score_lead",
]

BASELINE = 3
MIN_SCORE = 1
MAX_SCORE = 10

# Fractions, not floats, so that a vendor at exactly 1.25x (or 0.5x) the overall rate is on the
# documented side of the threshold whatever binary rounding the rates went through.
HIGH_CONVERSION_RATIO = Fraction(5, 4)
LOW_CONVERSION_RATIO = Fraction(1, 2)

# Mailboxes that belong to a function rather than a person: a lead that gives one rarely reaches
# the person who filled in the form.
ROLE_LOCAL_PARTS: frozenset[str] = frozenset(
    {
        "abuse",
        "admin",
        "administrator",
        "billing",
        "contact",
        "do-not-reply",
        "donotreply",
        "help",
        "hostmaster",
        "info",
        "marketing",
        "no-reply",
        "noreply",
        "office",
        "postmaster",
        "root",
        "sales",
        "support",
        "webmaster",
    }
)

# ASCII digits only: `\d` would also accept e.g. Arabic-Indic digits, which no US ZIP uses.
_US_ZIP = re.compile(r"[0-9]{5}(?:-[0-9]{4})?")


@dataclass(frozen=True)
class ScoringInput:
    """What the score is computed from. `email` is already normalized and `phone` already E.164 (or
    None); rates are fractions in 0..1, None when unknown."""

    email: str | None
    phone: str | None
    first_name: str | None
    last_name: str | None
    state: str | None
    zip: str | None
    tcpa_consent: bool
    consent_text: str | None
    ip_address: str | None
    trustedform_cert_url: str | None
    landing_page_url: str | None
    vendor_conversion_rate: float | None = None
    overall_conversion_rate: float | None = None


@dataclass(frozen=True)
class RuleResult:
    """A rule that fired: its stable machine name, signed points and a sentence explaining why."""

    rule: str
    points: int
    reason: str


@dataclass(frozen=True)
class QualityScore:
    """The clamped score and every rule that fired, in `RULES` order."""

    score: int
    rules: tuple[RuleResult, ...]


@dataclass(frozen=True)
class Rule:
    """One row of the rule table. `check` returns the reason sentence when the rule fires and None
    otherwise; reasons never contain the lead's personal data, because they are stored and logged."""

    name: str
    points: int
    description: str
    check: Callable[[ScoringInput], str | None] = field(repr=False, compare=False)


# --- helpers ----------------------------------------------------------------------------------------


def _present(value: str | None) -> TypeGuard[str]:
    """Whether a text field carries something: None and blank strings both mean "not given"."""
    return value is not None and value.strip() != ""


def _email_parts(email: str | None) -> tuple[str, str] | None:
    """(local part, domain) of a present address, None when absent or without an @."""
    if not _present(email):
        return None
    local, at, domain = email.strip().lower().rpartition("@")
    if not at or not local:
        return None
    return local, domain


def _is_role(local: str) -> bool:
    # "info+leads@" is still the info mailbox: sub-addressing does not make it personal.
    return local.split("+", 1)[0] in ROLE_LOCAL_PARTS


def _has_consent(data: ScoringInput) -> bool:
    return data.tcpa_consent and _present(data.consent_text)


def _as_rate(value: float | None) -> Fraction | None:
    """The rate as an exact fraction, or None if unknown or outside 0..1 (a corrupt statistic must
    not move the score)."""
    if value is None or isinstance(value, bool) or not math.isfinite(value) or not 0 <= value <= 1:
        return None
    # Through the shortest repr so that 0.1 means 1/10, not the binary float nearest to it.
    return Fraction(repr(float(value)))


def _conversion_ratio(data: ScoringInput) -> Fraction | None:
    vendor = _as_rate(data.vendor_conversion_rate)
    overall = _as_rate(data.overall_conversion_rate)
    if vendor is None or overall is None or overall == 0:
        return None
    return vendor / overall


# --- rule conditions --------------------------------------------------------------------------------


def _valid_phone(data: ScoringInput) -> str | None:
    if not _present(data.phone):
        return None
    try:
        normalize_phone(data.phone)
    except FieldError:
        return None
    return "Phone number is a valid, dialable number."


def _deliverable_email(data: ScoringInput) -> str | None:
    parts = _email_parts(data.email)
    if parts is None:
        return None
    local, domain = parts
    if "." not in domain or is_disposable(f"{local}@{domain}") or _is_role(local):
        return None
    return "Email address looks deliverable: a personal mailbox on a non-disposable domain."


def _role_email(data: ScoringInput) -> str | None:
    parts = _email_parts(data.email)
    if parts is None or not _is_role(parts[0]):
        return None
    return "Email address is a role mailbox (such as info@ or noreply@), not a person."


def _disposable_email(data: ScoringInput) -> str | None:
    parts = _email_parts(data.email)
    if parts is None or not is_disposable(f"{parts[0]}@{parts[1]}"):
        return None
    return "Email address is on a disposable-mailbox domain."


def _tcpa_consent(data: ScoringInput) -> str | None:
    if not _has_consent(data):
        return None
    return "Lead gave TCPA consent and the consent language shown is recorded."


def _consent_trustedform(data: ScoringInput) -> str | None:
    if not (_has_consent(data) and _present(data.trustedform_cert_url)):
        return None
    return "Consent is backed by a TrustedForm certificate."


def _consent_ip_address(data: ScoringInput) -> str | None:
    if not (_has_consent(data) and _present(data.ip_address)):
        return None
    return "Consent was recorded with the submitter's IP address."


def _complete_contact(data: ScoringInput) -> str | None:
    names_and_state = all(_present(v) for v in (data.first_name, data.last_name, data.state))
    if not (names_and_state and _present(data.zip) and _US_ZIP.fullmatch(data.zip.strip())):
        return None
    return "Contact details are complete: first and last name, state and a valid US ZIP code."


def _vendor_high_conversion(data: ScoringInput) -> str | None:
    ratio = _conversion_ratio(data)
    if ratio is None or ratio < HIGH_CONVERSION_RATIO:
        return None
    return f"Vendor converts at {float(ratio):.2f}x the overall rate (at least 1.25x)."


def _vendor_low_conversion(data: ScoringInput) -> str | None:
    ratio = _conversion_ratio(data)
    if ratio is None or ratio > LOW_CONVERSION_RATIO:
        return None
    return f"Vendor converts at {float(ratio):.2f}x the overall rate (at most 0.5x)."


# Weights are chosen so that a complete, consented lead with a phone and an email from an average
# vendor scores 8 (3 + 2 + 1 + 1 + 1), the strongest evidence reaches the clamp, and a bare
# email-only lead scores 4. The phone outweighs the email because agents work leads by phone.
RULES: tuple[Rule, ...] = (
    Rule("valid_phone", 2, "A phone number that parses as a valid number.", _valid_phone),
    Rule(
        "deliverable_email",
        1,
        "An email address whose domain has a dot, is not disposable, and is not a role mailbox.",
        _deliverable_email,
    ),
    Rule(
        "role_email",
        -1,
        "The email is a role mailbox (info@, admin@, noreply@, sales@, ...), ignoring any +tag.",
        _role_email,
    ),
    Rule(
        "disposable_email",
        -2,
        "The email domain, or a parent domain, is a known disposable-mailbox service.",
        _disposable_email,
    ),
    Rule("tcpa_consent", 1, "TCPA consent is true and the consent text is not blank.", _tcpa_consent),
    Rule(
        "consent_trustedform",
        1,
        "Consent (as above) plus a TrustedForm certificate URL.",
        _consent_trustedform,
    ),
    Rule("consent_ip_address", 1, "Consent (as above) plus the submitter's IP address.", _consent_ip_address),
    Rule(
        "complete_contact",
        1,
        "First name, last name and state are not blank and the ZIP is 12345 or 12345-6789.",
        _complete_contact,
    ),
    Rule(
        "vendor_high_conversion",
        1,
        "The vendor's historical conversion rate is at least 1.25x the overall rate.",
        _vendor_high_conversion,
    ),
    Rule(
        "vendor_low_conversion",
        -1,
        "The vendor's historical conversion rate is at most 0.5x the overall rate.",
        _vendor_low_conversion,
    ),
)


def score_lead(data: ScoringInput) -> QualityScore:
    """Score a lead: `BASELINE` plus the points of every rule that fires, clamped to 1..10.

    Returns the score with the fired rules in `RULES` order. Never raises for odd input: a field
    that cannot be read (an unparsable phone, a rate outside 0..1) simply does not fire its rule.
    """
    fired: list[RuleResult] = []
    for rule in RULES:
        reason = rule.check(data)
        if reason is not None:
            fired.append(RuleResult(rule=rule.name, points=rule.points, reason=reason))
    raw = BASELINE + sum(result.points for result in fired)
    return QualityScore(score=max(MIN_SCORE, min(MAX_SCORE, raw)), rules=tuple(fired))
