"""Turns the raw body of POST /leads into a normalised `LeadSubmission`, or says exactly what is
wrong with it: every bad field is reported at once, as `details` entries naming the field."""

from __future__ import annotations

import ipaddress
import re
from typing import Any

import simplejson
from pydantic import ValidationError

from leads import models
from leads.models import STAFF_SUBMISSION_FIELDS, SUBMISSION_FIELDS, Lead, LeadSubmission
from leads.normalize import FieldError, clean_text, normalize_email, normalize_phone
from shared.errors import BadRequest, ValidationFailed, check_body_size
from shared.security import Principal, Role

ZIP_PATTERN = re.compile(models.ZIP_PATTERN)
STATE_PATTERN = re.compile(models.STATE_PATTERN)
URL_PATTERN = re.compile(models.URL_PATTERN)
VENDOR_CODE_PATTERN = re.compile(models.VENDOR_CODE_PATTERN)


class DataError(ValidationFailed):
    """The lead's data is not acceptable (422 DATA_ERROR), with one detail per field."""

    code = "DATA_ERROR"


def _detail(field: str, message: str) -> dict[str, str]:
    return {"field": field, "message": message}


def read_body(raw: str | None) -> dict[str, Any]:
    check_body_size(raw)  # the shared limit: this route parses its body itself
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


def _normalise(submission: LeadSubmission, staff: bool) -> tuple[dict[str, Any], list[dict[str, str]]]:
    values: dict[str, Any] = submission.model_dump()
    problems: list[dict[str, str]] = []

    def apply(field: str, fix: Any) -> None:
        if values.get(field) is None:
            return
        try:
            values[field] = fix(values[field])
        except FieldError as exc:
            problems.append(_detail(exc.field, exc.message))

    apply("email", normalize_email)
    apply("phone", normalize_phone)
    for field, limit in (
        ("first_name", 100),
        ("last_name", 100),
        ("campaign_source", 128),
        ("consent_text", 4000),
        ("user_agent", 512),
        ("notes", 4000),
    ):
        apply(field, lambda value, field=field, limit=limit: clean_text(value, field, limit))
    if (
        values.get("email") is None
        and values.get("phone") is None
        and not any(p["field"] in ("email", "phone") for p in problems)
    ):
        problems.append(_detail("email", "at least one of email or phone is required"))
    if values.get("state") is not None:
        if STATE_PATTERN.match(values["state"].strip()):
            values["state"] = values["state"].strip().upper()
        else:
            problems.append(_detail("state", "expected a two-letter state code"))
    if values.get("zip") is not None:
        if ZIP_PATTERN.match(values["zip"].strip()):
            values["zip"] = values["zip"].strip()
        else:
            problems.append(_detail("zip", "expected a 5-digit ZIP code or ZIP+4"))
    for field in ("trustedform_cert_url", "landing_page_url"):
        if values.get(field) is not None and not URL_PATTERN.match(values[field]):
            problems.append(_detail(field, "expected an http(s) URL"))
    if values.get("ip_address") is not None:
        try:
            values["ip_address"] = str(ipaddress.ip_address(values["ip_address"].strip()))
        except ValueError:
            problems.append(_detail("ip_address", "expected an IPv4 or IPv6 address"))
    if staff:
        code = values.get("vendor_code")
        if code is None:
            problems.append(_detail("vendor_code", "required when staff enter a lead"))
        elif not VENDOR_CODE_PATTERN.match(code):
            problems.append(_detail("vendor_code", "expected letters, digits, '-' or '_'"))
    return values, problems


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
