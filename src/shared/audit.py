"""Audit trail: one structured record per request, secrets and personal data masked.

Every record is logged (key `audit`); records of mutating requests are also stored in the audit
table. If that write fails the record is still in the log at ERROR level, from where it can be
replayed: the request itself is never failed by its audit.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import simplejson

from shared.dates import iso_timestamp
from shared.dynamo import Table
from shared.errors import MAX_BODY_BYTES, MAX_BODY_DEPTH, nested_deeper_than
from shared.observability import logger
from shared.security import Principal

MUTATING_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
MAX_BODY_CHARS = 4096
MASK = "***"

SECRET_KEYS = re.compile(r"authorization|token|secret|password|passwd|api[-_]?key|cookie|credential", re.I)
PII_KEYS = re.compile(
    r"^(email|phone|first_name|last_name|name|ip_address|user_agent|address|street|zip|"
    r"consent_text|trustedform_cert_url|jornaya_leadid|q)$",
    re.I,
)


def _mask_personal(value: Any) -> Any:
    if isinstance(value, list):
        return [_mask_personal(item) for item in value[:50]]
    if isinstance(value, Mapping):
        return sanitize(value)
    if value is None or isinstance(value, bool):
        return value
    text = str(value)
    if not text:
        return text
    if "@" in text:
        local, _, domain = text.partition("@")
        return f"{local[:1]}{MASK}@{domain}"
    return f"{MASK}{text[-2:]}" if text[-4:].isdigit() else f"{text[:1]}{MASK}"


def mask_value(key: str, value: Any) -> Any:
    if SECRET_KEYS.search(key):
        return MASK
    if PII_KEYS.match(key):
        return _mask_personal(value)
    return sanitize(value)


def sanitize(value: Any) -> Any:
    """A copy of `value` with secret values replaced and personal data partly masked, by key."""
    if isinstance(value, Mapping):
        return {str(key): mask_value(str(key), item) for key, item in value.items()}
    if isinstance(value, list):
        return [sanitize(item) for item in value[:50]]
    return value


def sanitize_body(body: Any) -> Any:
    """The request body as the audit keeps it: masked, or a summary when it cannot be kept. It
    never raises, whatever the body: the record of a hostile request matters most."""
    if not body:
        return None
    if not isinstance(body, str):
        return f"<{type(body).__name__} body>"
    if len(body) > MAX_BODY_BYTES:  # refused with 413 unread: the audit does not read it either
        return f"<{len(body)} bytes, over the limit>"
    if nested_deeper_than(body):  # refused with 400 unread: parsing it could exhaust the stack
        return f"<{len(body)} bytes, nested deeper than {MAX_BODY_DEPTH} levels>"
    try:
        parsed = simplejson.loads(body, use_decimal=True)
    except ValueError:
        return f"<non-JSON body, {len(body)} bytes>"
    try:
        cleaned = sanitize(parsed)
        text = simplejson.dumps(cleaned, use_decimal=True)
    except Exception:  # a body no check foresaw must not cost the request its record
        logger.exception("audit could not sanitize a request body")
        return f"<unreadable body, {len(body)} bytes>"
    return cleaned if len(text) <= MAX_BODY_CHARS else f"<{len(body)} bytes, truncated>"


def build_record(
    event: Mapping[str, Any],
    status: int,
    duration_ms: float,
    principal: Principal | None,
    now: datetime | None = None,
) -> dict[str, Any]:
    context = event.get("requestContext") or {}
    identity = context.get("identity") or {}
    when = iso_timestamp(now or datetime.now(UTC))
    method = str(event.get("httpMethod", ""))
    return {
        "timestamp": when,
        "request_id": context.get("requestId") or str(uuid.uuid4()),
        "user": principal.user_id if principal else None,
        "role": principal.role.value if principal else None,
        "action": f"{method} {event.get('resource') or event.get('path', '')}",
        "path": event.get("path"),
        "ip": identity.get("sourceIp"),
        "request": {
            "query": sanitize(event.get("queryStringParameters") or {}),
            "path_parameters": event.get("pathParameters") or {},
            "body": sanitize_body(event.get("body")) if method in MUTATING_METHODS else None,
        },
        "status": status,
        "duration_ms": round(duration_ms, 2),
    }


def stored_record(item: Mapping[str, Any]) -> dict[str, Any]:
    """An audit record as `build_record` made it, from its stored item."""
    record = {name: value for name, value in item.items() if name not in ("day", "at")}
    if isinstance(record.get("request"), str):
        record["request"] = simplejson.loads(record["request"], use_decimal=True)
    return record


class AuditLog:
    def __init__(self, table: Table) -> None:
        self._table = table

    def record(self, record: dict[str, Any], method: str) -> None:
        logger.info("audit", extra={"audit": record})
        if method not in MUTATING_METHODS:
            return
        try:
            item = {
                "day": record["timestamp"][:10],
                "at": f"{record['timestamp']}#{record['request_id']}",
                **record,
                # The request as JSON text: inside the record a body nests deeper than DynamoDB's
                # 32 levels, and may use keys a map attribute cannot round-trip.
                "request": simplejson.dumps(record["request"], use_decimal=True),
            }
            self._table.put(item)
        except Exception:  # the audit must never fail the request it describes
            logger.exception("audit write failed", extra={"audit": record})
