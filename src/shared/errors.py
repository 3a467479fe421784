"""Domain errors. Each carries its HTTP status and machine-readable code; `shared.http` turns
any of them into the error body `{"error": {"code", "message", "details"}}` in one place."""

from __future__ import annotations

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
