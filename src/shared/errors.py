"""Domain errors. Each carries its HTTP status and machine-readable code; `shared.http` turns
any of them into the error body `{"error": {"code", "message", "details"}}` in one place."""

from __future__ import annotations

import base64
import binascii
import re
from typing import Any, ClassVar


class ApiError(Exception):
    status: ClassVar[int] = 400
    code: ClassVar[str] = "BAD_REQUEST"

    def __init__(
        self,
        message: str,
        details: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.details = details or []
        self.headers = headers or {}


class BadRequest(ApiError):
    status = 400
    code = "BAD_REQUEST"


class InvalidCursor(BadRequest):
    code = "INVALID_CURSOR"


class Unauthorized(ApiError):
    status = 401
    code = "UNAUTHORIZED"

    def __init__(self, message: str = "Authentication required") -> None:
        super().__init__(message, headers={"WWW-Authenticate": 'Bearer realm="crm", error="invalid_token"'})


class Forbidden(ApiError):
    status = 403
    code = "FORBIDDEN"


# The one limit on a request body, for every route (API Gateway's own limit is 10 MB).
MAX_BODY_BYTES = 256 * 1024


class PayloadTooLarge(ApiError):
    status = 413
    code = "PAYLOAD_TOO_LARGE"


def check_body_size(body: str | None, base64_encoded: bool = False) -> None:
    """Refuses a request body over `MAX_BODY_BYTES` (413), before anything parses it."""
    if not body:
        return
    if base64_encoded:
        size = len(body) * 3 // 4 - body[-2:].count("=")
    elif len(body) > MAX_BODY_BYTES:
        size = len(body)  # at least one byte per character: too large without encoding it
    else:
        size = len(body.encode("utf-8", "surrogatepass"))
    if size > MAX_BODY_BYTES:
        raise PayloadTooLarge(
            f"The request body is larger than {MAX_BODY_BYTES // 1024} KB",
            details=[
                {"field": "body", "message": f"at most {MAX_BODY_BYTES} bytes", "max_bytes": MAX_BODY_BYTES}
            ],
        )


# How deep a JSON request body may nest objects and arrays: `{"a": [1]}` is 2 levels. Far more than
# any body of the API needs, and far below what a recursive parser (Powertools, pydantic, the audit
# record) survives; the same as DynamoDB's limit for a document.
MAX_BODY_DEPTH = 32
# A JSON string (escapes included), or an unterminated one running to the end of the text. It
# always matches from a quote, so the scan stays linear whatever the text.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\[\s\S]?[^"\\]*)*(?:"|\Z)')
_NON_BRACKETS = re.compile(r"[^\[\]{}]+")


def nested_deeper_than(text: str, limit: int = MAX_BODY_DEPTH) -> bool:
    """Whether JSON text nests objects and arrays more than `limit` levels deep, read without
    parsing it: brackets inside strings do not count. Not recursive and linear in the text, so it
    is safe on any input; text that is not JSON gets an answer too, never an error."""
    if text.count("[") + text.count("{") <= limit:
        return False
    depth = 0
    for bracket in _NON_BRACKETS.sub("", _JSON_STRING.sub("", text)):
        if bracket in "[{":
            depth += 1
            if depth > limit:
                return True
        elif depth:
            depth -= 1
    return False


class BodyNestedTooDeep(BadRequest):
    code = "NESTING_TOO_DEEP"


def check_body_depth(body: str | None, base64_encoded: bool = False) -> None:
    """Refuses a JSON body nested deeper than `MAX_BODY_DEPTH` (400), before anything parses it."""
    if not body:
        return
    text = body
    if base64_encoded:
        try:
            text = base64.b64decode(body, validate=True).decode("utf-8", "replace")
        except (binascii.Error, ValueError):
            return  # not base64: reading the body fails on its own, with its own answer
    if nested_deeper_than(text):
        raise BodyNestedTooDeep(
            f"The request body nests objects and arrays more than {MAX_BODY_DEPTH} levels deep",
            details=[
                {
                    "field": "body",
                    "message": f"at most {MAX_BODY_DEPTH} levels of objects and arrays",
                    "max_depth": MAX_BODY_DEPTH,
                }
            ],
        )


class NotFound(ApiError):
    status = 404
    code = "NOT_FOUND"


class LeadNotFound(NotFound):
    def __init__(self, lead_id: str) -> None:
        super().__init__(f"Lead {lead_id} not found")


class Conflict(ApiError):
    status = 409
    code = "CONFLICT"


class ValidationFailed(ApiError):
    status = 422
    code = "VALIDATION_ERROR"


class DependencyFailed(Exception):
    """A backing service failed in a way the caller cannot fix (mapped to a generic 500)."""
