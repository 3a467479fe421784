"""Turns the raw body of POST /leads into a normalised `LeadSubmission`, or says exactly what is
wrong with it: every bad field is reported at once, as `details` entries naming the field."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import simplejson
from pydantic import ValidationError

from leads import models
from leads.models import STAFF_SUBMISSION_FIELDS, SUBMISSION_FIELDS, Lead, LeadSubmission
from leads.normalize import FieldError, clean_text, normalize_email, normalize_phone
from shared.dates import iso_timestamp
from shared.errors import BadRequest, ValidationFailed, check_body_depth, check_body_size
from shared.security import Principal, Role

ZIP_PATTERN = re.compile(models.ZIP_PATTERN)
STATE_PATTERN = re.compile(models.STATE_PATTERN)
URL_PATTERN = re.compile(models.URL_PATTERN)
TRUSTEDFORM_PATTERN = re.compile(models.TRUSTEDFORM_PATTERN)
JORNAYA_PATTERN = re.compile(models.JORNAYA_PATTERN)
# A submission time this far ahead of ours is the poster's clock running fast, not an error.
CLOCK_SKEW = timedelta(minutes=5)
VENDOR_CODE_PATTERN = re.compile(models.VENDOR_CODE_PATTERN)
# Free-text fields and their longest length after cleaning.
TEXT_LIMITS = {
    "first_name": 100,
    "last_name": 100,
    "campaign_source": 128,
    "consent_text": 4000,
    "user_agent": 512,
    "notes": 4000,
}


class DataError(ValidationFailed):
    """The lead's data is not acceptable (422 DATA_ERROR), with one detail per field."""

    code = "DATA_ERROR"


def _detail(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message}


def read_body(raw: str | None) -> dict[str, Any]:
    check_body_size(raw)  # the shared limits: this route (and `crm import`) parses its body itself
    check_body_depth(raw)
    if raw is None or not raw.strip():
        raise DataError("The request has no body", details=[_detail("body", "a JSON object is required")])
    try:
        body = simplejson.loads(raw, use_decimal=True)
    except ValueError as exc:
        raise BadRequest("The body is not valid JSON", details=[_detail("body", str(exc))]) from exc
    if not isinstance(body, dict):
        raise DataError("The body must be a JSON object", details=[_detail("body", "expected an object")])
    return body


def check_fields(body: dict[str, Any], principal: Principal) -> list[dict[str, str]]:
    """Fields the caller may not write are rejected by name, never silently dropped."""
    staff = principal.is_staff
    allowed = SUBMISSION_FIELDS | (STAFF_SUBMISSION_FIELDS if staff else {"vendor_code"})
    problems = []
    for name in sorted(body):
        if name in allowed:
            continue
        if name in Lead.model_fields or name in STAFF_SUBMISSION_FIELDS:
            problems.append(_detail(name, f"may not be set by a {principal.role.value}"))
        else:
            problems.append(_detail(name, "unknown field"))
    if principal.role is Role.VENDOR and body.get("vendor_code") not in (None, principal.vendor_code):
        problems.append(_detail("vendor_code", f"a vendor posts only as itself ({principal.vendor_code})"))
    return problems


# A field's normalised value, from its name and value; raises `FieldError` saying what is wrong.
Fix = Callable[[str, str], str]


def _text(limit: int) -> Fix:
    return lambda field, value: clean_text(value, field, limit)


def _matching(pattern: re.Pattern[str], message: str, fix: Callable[[str], str] = str.strip) -> Fix:
    """A field's value `fix`ed, if its stripped form matches `pattern`."""

    def check(field: str, value: str) -> str:
        if not pattern.match(value.strip()):
            raise FieldError(field, message)
        return fix(value)

    return check


def _ip_address(field: str, value: str) -> str:
    try:
        return str(ipaddress.ip_address(value.strip()))
    except ValueError as exc:
        raise FieldError(field, "expected an IPv4 or IPv6 address") from exc


def _url(field: str, value: str) -> str:
    if not URL_PATTERN.match(value):
        raise FieldError(field, "expected an http(s) URL")
    return value


def _submitted_at(field: str, value: str) -> str:
    """An ISO 8601 time with a zone, not in the future; stored as UTC."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError as exc:
        raise FieldError(field, "expected an ISO 8601 time, e.g. 2026-03-01T14:30:00Z") from exc
    if moment.tzinfo is None:
        raise FieldError(field, "the time needs a zone (Z or an offset)")
    if moment > datetime.now(UTC) + CLOCK_SKEW:
        raise FieldError(field, "is in the future")
    return iso_timestamp(moment.astimezone(UTC))


# How each field is normalised (or refused), field by field: contact details and free text first,
# then the fields with a format.
CONTACT_AND_TEXT: dict[str, Fix] = {
    "email": lambda _, value: normalize_email(value),
    "phone": lambda _, value: normalize_phone(value),
    **{field: _text(limit) for field, limit in TEXT_LIMITS.items()},
}
FORMATTED: dict[str, Fix] = {
    "state": _matching(STATE_PATTERN, "expected a two-letter state code", lambda v: v.strip().upper()),
    "zip": _matching(ZIP_PATTERN, "expected a 5-digit ZIP code or ZIP+4"),
    "trustedform_cert_url": _matching(
        TRUSTEDFORM_PATTERN,
        "expected a TrustedForm certificate URL: https://cert.trustedform.com/ and 40 hex characters",
        lambda v: v.strip().lower(),
    ),
    "jornaya_leadid": _matching(
        JORNAYA_PATTERN, "expected a Jornaya LeadiD (a UUID)", lambda v: v.strip().upper()
    ),
    "submitted_at": _submitted_at,
    "landing_page_url": _url,
    "ip_address": _ip_address,
}


def _normalise(submission: LeadSubmission, staff: bool) -> tuple[dict[str, Any], list[dict[str, str]]]:
    values: dict[str, Any] = submission.model_dump()
    problems: list[dict[str, str]] = []

    def apply(fixes: dict[str, Fix]) -> None:
        for field, fix in fixes.items():
            if values.get(field) is None:
                continue
            try:
                values[field] = fix(field, values[field])
            except FieldError as exc:
                problems.append(_detail(exc.field, exc.message))

    apply(CONTACT_AND_TEXT)
    contact_refused = any(problem["field"] in ("email", "phone") for problem in problems)
    if values.get("email") is None and values.get("phone") is None and not contact_refused:
        problems.append(_detail("email", "at least one of email or phone is required"))
    apply(FORMATTED)
    if staff:
        problems += _staff_vendor_code_problems(values.get("vendor_code"))
    return values, problems


def _staff_vendor_code_problems(code: str | None) -> list[dict[str, str]]:
    """Staff name the vendor a lead is entered for."""
    if code is None:
        return [_detail("vendor_code", "required when staff enter a lead")]
    if not VENDOR_CODE_PATTERN.match(code):
        return [_detail("vendor_code", "expected letters, digits, '-' or '_'")]
    return []


def parse_submission(raw: str | None, principal: Principal) -> LeadSubmission:
    """The normalised submission, or `DataError` listing every problem (413/400 for a body that
    is too large or not JSON)."""
    body = read_body(raw)
    problems = check_fields(body, principal)
    # A blank optional field is an absent one: many posting systems send "" for what they lack.
    known = {
        name: value
        for name, value in body.items()
        if name in SUBMISSION_FIELDS | STAFF_SUBMISSION_FIELDS
        and not (isinstance(value, str) and not value.strip())
    }
    try:
        submission = LeadSubmission.model_validate(known)
    except ValidationError as exc:
        problems += [
            _detail(".".join(str(part) for part in error["loc"]), error["msg"]) for error in exc.errors()
        ]
        raise DataError("The lead has invalid fields", details=problems) from exc
    staff = principal.is_staff
    values, normalisation_problems = _normalise(submission, staff)
    problems += normalisation_problems
    if problems:
        raise DataError("The lead has invalid fields", details=problems)
    if principal.role is Role.VENDOR:
        values["vendor_code"] = principal.vendor_code
    return LeadSubmission.model_validate(values)
