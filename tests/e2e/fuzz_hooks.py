"""What the contract fuzzer is taught beyond the OpenAPI document (loaded by schemathesis through
SCHEMATHESIS_HOOKS when `test_contract_fuzzing` runs it).

The document describes each value's shape; the rules below cannot be written in JSON Schema, so the
fuzzer learns them here, and only for the cases it generates as valid (its invalid cases are left
as drawn, and must still be refused with a 4xx; the API's own tests cover each refusal):

- `format: phone` is a number that exists in its numbering plan (not just digits);
- a list `cursor` is valid only as a previous page returned it (it is signed over the query);
- `from` is not after `to`, and a day range (reports, the audit trail) spans at most 400 days;
- a stats window (`/admin/stats`, `/admin/analytics`) is a `period` or `from`/`to`, never both,
  and ends today at the latest;
- pricing settings are consistent in themselves: `min_price` not above `max_price`, and
  time-of-day bands that run forwards without overlapping;
- a vendor posts leads only as itself and may not set staff-only fields; staff must name the
  vendor a lead is for, and it must exist;
- the suppression list takes emails and phones no posted lead uses (an area code and a domain
  of their own), so valid lead posts are never refused as SUPPRESSED by what the fuzzer listed;
- a valid lead has TCPA consent: the demo vendors' acceptance rules require it (the default);
- its `submitted_at` is not in the future (a moment that has not come is refused);
- its `landing_page_url` is one a URL parser reads (the fuzzer parses the URLs of responses);
- a postback endpoint is a URL this stack may call: a port on this machine nothing listens on
  (deliveries to it fail and wait for their retries).
"""

from __future__ import annotations

import os
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

import phonenumbers
import schemathesis
from hypothesis import strategies as st

VENDOR_CODES = os.environ.get("FUZZ_VENDOR_CODES", "V001").split(",")
OWN_VENDOR_CODE = os.environ.get("FUZZ_OWN_VENDOR_CODE")  # set when fuzzing as a vendor
STAFF_ONLY_FIELDS = ("vendor_code", "notes")
MAX_RANGE_DAYS = 400
DAY_RANGE_PATHS = ("/admin/audit", "/reports/")
STATS_WINDOW_PATHS = ("/admin/stats", "/admin/analytics")

# What the fuzzer lists on the suppression list: an area code lead posts do not draw from, a domain.
SUPPRESSED_AREA_CODE = "907"
SUPPRESSED_DOMAIN = "@suppressed-fuzz.com"

# Area codes and exchanges in service, so every drawn number is valid; the line varies.
_AREA_CODES = ["202", "212", "213", "305", "312", "415", "512", "617", "646", "718"]
_EXCHANGES = ["234", "321", "456", "555", "789"]
_STYLES = ["+1{area}{exchange}{line}", "({area}) {exchange}-{line}", "{area}.{exchange}.{line}"]


def _phone(area: str, exchange: str, line: int, style: str) -> str:
    return style.format(area=area, exchange=exchange, line=f"{line:04d}")


schemathesis.openapi.format(
    "phone",
    st.builds(
        _phone,
        st.sampled_from(_AREA_CODES),
        st.sampled_from(_EXCHANGES),
        st.integers(0, 9999),
        st.sampled_from(_STYLES),
    ),
)


def _is_unlisted_phone_number(value: str) -> bool:
    try:
        number = phonenumbers.parse(value, "US")
    except phonenumbers.NumberParseException:
        return False
    national = str(number.national_number)
    return phonenumbers.is_valid_number(number) and not national.startswith(SUPPRESSED_AREA_CODE)


def _forward_range(query: dict[str, Any]) -> None:
    """`from`/`to`, when given, made to run forwards over at most MAX_RANGE_DAYS (both are then
    sent, so the API's defaults play no part)."""
    if "from" not in query and "to" not in query:
        return
    try:
        last = date.fromisoformat(query["to"]) if "to" in query else datetime.now(UTC).date()
        first = date.fromisoformat(query["from"]) if "from" in query else last - timedelta(days=29)
    except (TypeError, ValueError):
        return  # not a day: left for the API to refuse
    first, last = min(first, last), max(first, last)
    query["from"] = max(first, last - timedelta(days=MAX_RANGE_DAYS - 1)).isoformat()
    query["to"] = last.isoformat()


def _stats_window(query: dict[str, Any]) -> None:
    """`from`/`to`, when given, replace `period`, run forwards and end today at the latest."""
    if "from" not in query and "to" not in query:
        return
    query.pop("period", None)
    _forward_range(query)
    today = datetime.now(UTC).date().isoformat()
    first, last = query.get("from"), query.get("to")
    if isinstance(first, str) and isinstance(last, str) and last > today:  # days, once ordered
        query["to"], query["from"] = today, min(first, today)


def _instant(value: str) -> datetime:
    if "T" not in value:
        return datetime.combine(date.fromisoformat(value), datetime.min.time(), tzinfo=UTC)
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def _ordered_bounds(query: dict[str, Any]) -> None:
    """`from` and `to` of the lead list (days or times) swapped when they run backwards."""
    try:
        backwards = "from" in query and "to" in query and _instant(query["from"]) > _instant(query["to"])
    except (TypeError, ValueError):
        return  # left for the API to refuse
    if backwards:
        query["from"], query["to"] = query["to"], query["from"]


def _consistent_settings(body: dict[str, Any]) -> None:
    """Pricing settings made consistent: prices in order, bands forwards and apart."""
    low, high = body.get("min_price"), body.get("max_price")
    if isinstance(low, int | float) and isinstance(high, int | float) and low > high:
        body["min_price"], body["max_price"] = high, low
    bands = body.get("time_of_day_multipliers")
    if not isinstance(bands, list):
        return
    taken: set[int] = set()
    kept = []
    for band in bands:
        start, end = sorted((int(band["from_hour"]), int(band["to_hour"])))
        hours = set(range(start, end))
        if hours and start <= 23 and not hours & taken:
            taken |= hours
            kept.append({**band, "from_hour": start, "to_hour": end})
    body["time_of_day_multipliers"] = kept


def _valid_query(path: str, query: dict[str, Any]) -> None:
    query.pop("cursor", None)
    if path.startswith(DAY_RANGE_PATHS):
        _forward_range(query)
    elif path in STATS_WINDOW_PATHS:
        _stats_window(query)
    elif path == "/leads":
        _ordered_bounds(query)


def _readable_url(body: dict[str, Any], name: str) -> None:
    value = body.get(name)
    if not isinstance(value, str):
        return
    try:
        urlsplit(value.strip())
    except ValueError:
        body[name] = "https://offers.example.com/landing"


def _apart_from_leads(body: dict[str, Any]) -> None:
    """A listed email or phone that no lead the fuzzer posts has."""
    if isinstance(body.get("phone"), str):
        body["phone"] = _phone(SUPPRESSED_AREA_CODE, _EXCHANGES[0], len(body["phone"]), _STYLES[0])
    if isinstance(body.get("email"), str):
        body["email"] = f"listed{len(body['email'])}{SUPPRESSED_DOMAIN}"


def _lead_post(body: dict[str, Any]) -> None:
    """A lead post with a phone that exists, of nobody the fuzzer listed (values of one operation
    are reused in another), as the vendor may post it (or naming a vendor)."""
    phone = body.get("phone")
    if isinstance(phone, str) and phone.strip() and not _is_unlisted_phone_number(phone):
        body["phone"] = _phone(_AREA_CODES[0], _EXCHANGES[0], len(phone), _STYLES[0])
    body["tcpa_consent"] = True
    _readable_url(body, "landing_page_url")
    _submitted_in_the_past(body)
    email = body.get("email")
    if isinstance(email, str) and email.strip().lower().endswith(SUPPRESSED_DOMAIN):
        body["email"] = f"posted{len(email)}@example.com"
    if OWN_VENDOR_CODE:
        for field in STAFF_ONLY_FIELDS:
            body.pop(field, None)
    else:  # staff name the vendor, which must exist
        body["vendor_code"] = VENDOR_CODES[len(str(body.get("vendor_code"))) % len(VENDOR_CODES)]


def _submitted_in_the_past(body: dict[str, Any]) -> None:
    """A `submitted_at` the schema allows but the clock has not reached becomes a moment ago."""
    submitted = body.get("submitted_at")
    if not isinstance(submitted, str):
        return
    try:
        moment = datetime.fromisoformat(submitted.strip())
    except ValueError:
        return  # refused for its form, as the schema's format says
    if moment.tzinfo is not None and moment > datetime.now(UTC):
        body["submitted_at"] = (datetime.now(UTC) - timedelta(minutes=5)).isoformat().replace("+00:00", "Z")


def _callable_endpoint(body: dict[str, Any]) -> None:
    body["url"] = "http://127.0.0.1:9/fuzz"


# Bodies made valid beyond their schema, by operation.
BODY_RULES = {
    ("PATCH", "/pricing/settings"): _consistent_settings,
    ("POST", "/admin/suppressions"): _apart_from_leads,
    ("POST", "/leads"): _lead_post,
    ("PUT", "/agencies/{code}/webhook"): _callable_endpoint,
}


@schemathesis.hook
def map_case(context: schemathesis.HookContext, case: Any) -> Any:
    meta = case.meta
    if meta is None or not meta.generation.mode.is_positive:
        return case
    if isinstance(case.query, dict):
        _valid_query(case.path, case.query)
    rule = BODY_RULES.get((case.method.upper(), case.path))
    if rule is not None and isinstance(case.body, dict):
        rule(case.body)
    return case
