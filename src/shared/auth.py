"""Authentication: verify the bearer token, then load the user it names.

Tokens are HS256 JWTs (the algorithm is pinned, so `none` and RS/HS confusion are refused) with
`exp`, `iat` and `sub` required and issuer and audience checked. `exp`, `iat` and `nbf` must be
JSON numbers (RFC 7519 NumericDate): PyJWT would read `"9999999999"` or `true` as a time. A valid
token is not enough: the user must exist in the users table and be active, so disabling a user
revokes its tokens within `user_cache_seconds` (at most 60), and the token's lifetime (`exp - iat`)
must not exceed the maximum of the user's role (`max_token_lifetime`).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jwt

from shared.errors import Unauthorized
from shared.observability import logger
from shared.security import Principal, Role

ALGORITHM = "HS256"
REQUIRED_CLAIMS = ["exp", "iat", "sub", "iss", "aud"]
TIME_CLAIMS = ("exp", "iat", "nbf")  # NumericDate: a JSON number of seconds since the epoch
MAX_TOKEN_BYTES = 8192
# The longest lifetime (`exp - iat`) a token may have, by the role of the user it names. Staff
# tokens are for a working day (`crm serve` prints one of exactly this lifetime). A vendor
# credential (POST /agencies/{code}/credentials) is issued for exactly the vendor maximum: an
# integration is rotated yearly, and revoked at any time by disabling its user.
STAFF_TOKEN_MAX_SECONDS = 12 * 3600
VENDOR_TOKEN_MAX_SECONDS = 365 * 86400


@dataclass(frozen=True)
class TokenSettings:
    secret: str
    issuer: str
    audience: str
    leeway_seconds: int = 30


def issue_token(
    settings: TokenSettings, user_id: str, ttl_seconds: int = 3600, now: float | None = None
) -> str:
    """A signed token for `user_id`; used by `crm token`, credentials issuance and the tests."""
    issued_at = int(now if now is not None else time.time())
    claims = {
        "sub": user_id,
        "iss": settings.issuer,
        "aud": settings.audience,
        "iat": issued_at,
        "nbf": issued_at,
        "exp": issued_at + ttl_seconds,
    }
    return jwt.encode(claims, settings.secret, algorithm=ALGORITHM)


def max_token_lifetime(role: Role) -> int:
    """The longest lifetime in seconds a token of a user with `role` may have."""
    return VENDOR_TOKEN_MAX_SECONDS if role is Role.VENDOR else STAFF_TOKEN_MAX_SECONDS


def verify_token(settings: TokenSettings, token: str) -> dict[str, Any]:
    if len(token) > MAX_TOKEN_BYTES:
        raise Unauthorized("Token too large")
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            settings.secret,
            algorithms=[ALGORITHM],
            audience=settings.audience,
            issuer=settings.issuer,
            leeway=settings.leeway_seconds,
            options={"require": REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("Token expired") from exc
    except jwt.PyJWTError as exc:
        logger.info("token rejected", extra={"reason": type(exc).__name__})
        raise Unauthorized("Invalid token") from exc
    for claim in TIME_CLAIMS:
        if claim in claims and not _is_numeric_date(claims[claim]):
            logger.info("token rejected", extra={"reason": f"{claim} is not a number"})
            raise Unauthorized("Invalid token")
    return claims


def _is_numeric_date(value: Any) -> bool:
    """A JSON number: an int or a finite float, not a bool (which Python counts as an int)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return False
    return math.isfinite(value)


def bearer_token(authorization: str | None) -> str:
    if not authorization:
        raise Unauthorized("Missing bearer token")
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("Authorization header must be 'Bearer <token>'")
    return token.strip()


UserLoader = Callable[[str], dict[str, Any] | None]


class Authenticator:
    """Turns an Authorization header into a `Principal`, or raises `Unauthorized`."""

    def __init__(
        self,
        settings_provider: Callable[[], TokenSettings],
        load_user: UserLoader,
        cache_seconds: int = 30,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings_provider = settings_provider
        self._load_user = load_user
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._users: dict[str, tuple[float, dict[str, Any] | None]] = {}
        self._lock = threading.Lock()

    def authenticate(self, authorization: str | None) -> Principal:
        claims = verify_token(self._settings_provider(), bearer_token(authorization))
        user_id = claims["sub"]
        if not isinstance(user_id, str) or not user_id:
            raise Unauthorized("Invalid token")
        user = self._user(user_id)
        if user is None or user.get("status") != "active":
            raise Unauthorized("Unknown or disabled user")
        try:
            role = Role(str(user.get("role")))
        except ValueError as exc:
            raise Unauthorized("Unknown or disabled user") from exc
        vendor_code = user.get("vendor_code") or None
        if role is Role.VENDOR and vendor_code is None:
            raise Unauthorized("Unknown or disabled user")
        # Only the user record knows the role, hence the maximum; `verify_token` has checked that
        # both claims are numbers (an `iat` in the future beyond the leeway is refused by PyJWT).
        if claims["exp"] - claims["iat"] > max_token_lifetime(role):
            logger.info(
                "token rejected", extra={"reason": "lifetime over the role's maximum", "role": role.value}
            )
            raise Unauthorized("Invalid token")
        return Principal(
            user_id=user_id,
            role=role,
            name=str(user.get("name", "")),
            email=str(user.get("email", "")),
            vendor_code=vendor_code if role is Role.VENDOR else None,
        )

    def _user(self, user_id: str) -> dict[str, Any] | None:
        now = self._clock()
        with self._lock:
            cached = self._users.get(user_id)
        if cached is not None and cached[0] > now:
            return cached[1]
        user = self._load_user(user_id)
        with self._lock:
            if self._cache_seconds > 0:
                if len(self._users) > 10_000:
                    self._users.clear()
                self._users[user_id] = (now + self._cache_seconds, user)
        return user
