"""Authentication: verify the bearer token, then load the user it names.

Two kinds of token reach the API, told apart by their issuer, each with its algorithm pinned:

- **Staff** (admins, managers, agents) present the staff user pool's **ID token** (RS256, the key
  looked up by `kid` in the pool's JWKS: fetched once, cached, fetched again for an unknown `kid`
  at most every 30 s). Its audience is the dashboard's client, its `token_use` is `id` (an access
  token has no audience and is refused), and it names the user record by the immutable
  attribute `custom:user_id`. The role comes from `cognito:groups`, and the user record must be
  active and hold the same role.
- **Vendors** present a credential issued by `POST /agencies/{code}/credentials` (HS256, the
  API's own issuer and audience). Such a token is accepted for a vendor user only: an HS256 token
  naming a staff user is refused, as is a pool token naming a vendor.

Both must carry `exp`, `iat` and `sub`, as JSON numbers (RFC 7519 NumericDate) for the times, and
may not live longer than their kind's maximum. A valid token is not enough: the user must exist
and be active, so disabling a user revokes its tokens within `user_cache_seconds` (at most 60).
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Protocol

import jwt

from shared.errors import Unauthorized
from shared.observability import logger
from shared.security import Principal, Role

ALGORITHM = "HS256"  # vendor credentials
POOL_ALGORITHM = "RS256"  # the staff user pool's tokens
REQUIRED_CLAIMS = ["exp", "iat", "sub", "iss", "aud"]
POOL_REQUIRED_CLAIMS = [*REQUIRED_CLAIMS, "token_use", "custom:user_id"]
TIME_CLAIMS = ("exp", "iat", "nbf")  # NumericDate: a JSON number of seconds since the epoch
MAX_TOKEN_BYTES = 8192
# The longest lifetime (`exp - iat`) of each kind of token. A staff ID token lives as long as the
# pool's dashboard client issues them (template.yaml: IdTokenValidity, 1 hour); the dashboard
# refreshes it with its refresh token. A vendor credential is issued for exactly the vendor
# maximum: an integration is rotated yearly (a new credential first, then the old one revoked),
# and revoked at any time by disabling its user.
STAFF_TOKEN_MAX_SECONDS = 3600
VENDOR_TOKEN_MAX_SECONDS = 365 * 86400
JWKS_CACHE_SECONDS = 6 * 3600
JWKS_REFRESH_COOLDOWN_SECONDS = 30
JWKS_TIMEOUT_SECONDS = 5
# The pool's groups that grant a role, by precedence (a user in several gets the first).
STAFF_GROUPS = (Role.ADMIN, Role.MANAGER, Role.AGENT)


class TokenKind(StrEnum):
    STAFF = "staff"  # the user pool's ID token
    VENDOR = "vendor"  # a vendor credential


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


@dataclass(frozen=True)
class PoolSettings:
    """The staff user pool whose ID tokens the API accepts."""

    issuer: str
    client_id: str
    leeway_seconds: int = 30


class SigningKeys(Protocol):
    """The pool's public keys, by key id."""

    def key(self, kid: str) -> Any: ...


class PublishedKeys:
    """The keys a user pool publishes (its JWKS document), through PyJWT's JWKS client: fetched
    when first needed, kept for `JWKS_CACHE_SECONDS`, and fetched again when a token names a key
    id not in them (a rotation), at most once per `JWKS_REFRESH_COOLDOWN_SECONDS`."""

    def __init__(self, url: str, refresh_cooldown_seconds: float = JWKS_REFRESH_COOLDOWN_SECONDS) -> None:
        self._client = jwt.PyJWKClient(
            url,
            lifespan=JWKS_CACHE_SECONDS,
            timeout=JWKS_TIMEOUT_SECONDS,
            cooldown_duration=refresh_cooldown_seconds,
        )

    def key(self, kid: str) -> Any:
        return self._client.get_signing_key(kid).key


def verify_token(settings: TokenSettings, token: str) -> dict[str, Any]:
    """The claims of a vendor credential, or `Unauthorized`."""
    _check_size(token)
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
    _check_times(claims, VENDOR_TOKEN_MAX_SECONDS)
    return claims


def verify_pool_token(pool: PoolSettings, keys: SigningKeys, token: str) -> dict[str, Any]:
    """The claims of one of the staff user pool's ID tokens, or `Unauthorized`."""
    _check_size(token)
    try:
        kid = jwt.get_unverified_header(token).get("kid")
        if not isinstance(kid, str) or not kid:
            raise jwt.InvalidTokenError("no key id")
        claims: dict[str, Any] = jwt.decode(
            token,
            keys.key(kid),
            algorithms=[POOL_ALGORITHM],
            audience=pool.client_id,
            issuer=pool.issuer,
            leeway=pool.leeway_seconds,
            options={"require": POOL_REQUIRED_CLAIMS},
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("Token expired") from exc
    except (jwt.PyJWTError, jwt.PyJWKClientError) as exc:
        logger.info("token rejected", extra={"reason": type(exc).__name__})
        raise Unauthorized("Invalid token") from exc
    if claims["token_use"] != "id":  # noqa: S105  # an ID token, not a password
        logger.info("token rejected", extra={"reason": f"token_use {claims['token_use']!r}"})
        raise Unauthorized("Invalid token")
    _check_times(claims, STAFF_TOKEN_MAX_SECONDS)
    return claims


def _check_size(token: str) -> None:
    if len(token) > MAX_TOKEN_BYTES:
        raise Unauthorized("Token too large")


def _check_times(claims: dict[str, Any], max_lifetime: int) -> None:
    for claim in TIME_CLAIMS:
        if claim in claims and not _is_numeric_date(claims[claim]):
            logger.info("token rejected", extra={"reason": f"{claim} is not a number"})
            raise Unauthorized("Invalid token")
    # An `iat` in the future beyond the leeway is refused by PyJWT.
    if claims["exp"] - claims["iat"] > max_lifetime:
        logger.info("token rejected", extra={"reason": "lifetime over its kind's maximum"})
        raise Unauthorized("Invalid token")


def token_kind(pool: PoolSettings, token: str) -> TokenKind:
    """Which kind a token claims to be, from its issuer (verified afterwards with that kind's
    algorithm and keys only)."""
    try:
        issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
    except jwt.PyJWTError as exc:
        raise Unauthorized("Invalid token") from exc
    return TokenKind.STAFF if issuer == pool.issuer else TokenKind.VENDOR


def group_role(groups: Any) -> Role | None:
    """The role the pool's groups grant (the first by precedence), if any."""
    if not isinstance(groups, list):
        return None
    return next((role for role in STAFF_GROUPS if role.value in groups), None)


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
        pool: PoolSettings,
        pool_keys: SigningKeys,
        cache_seconds: int = 30,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings_provider = settings_provider
        self._load_user = load_user
        self._pool = pool
        self._pool_keys = pool_keys
        self._cache_seconds = cache_seconds
        self._clock = clock
        self._users: dict[str, tuple[float, dict[str, Any] | None]] = {}
        self._lock = threading.Lock()

    def authenticate(self, authorization: str | None) -> Principal:
        token = bearer_token(authorization)
        _check_size(token)
        if token_kind(self._pool, token) is TokenKind.STAFF:
            claims = verify_pool_token(self._pool, self._pool_keys, token)
            user_id, granted = claims["custom:user_id"], group_role(claims.get("cognito:groups"))
        else:
            claims = verify_token(self._settings_provider(), token)
            user_id, granted = claims["sub"], Role.VENDOR
        if not isinstance(user_id, str) or not user_id or granted is None:
            raise Unauthorized("Invalid token")
        user = self._user(user_id)
        if user is None or user.get("status") != "active":
            raise Unauthorized("Unknown or disabled user")
        # The token's kind and groups grant a role; the user record must hold the same one.
        if user.get("role") != granted.value:
            logger.info(
                "token rejected", extra={"reason": "role not granted by the token", "role": granted.value}
            )
            raise Unauthorized("Unknown or disabled user")
        vendor_code = user.get("vendor_code") or None
        if granted is Role.VENDOR and vendor_code is None:
            raise Unauthorized("Unknown or disabled user")
        return Principal(
            user_id=user_id,
            role=granted,
            name=str(user.get("name", "")),
            email=str(user.get("email", "")),
            vendor_code=vendor_code if granted is Role.VENDOR else None,
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
