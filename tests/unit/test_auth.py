"""`shared.auth`: the JWT attack matrix, the user checks behind a valid token, and the user cache."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.auth import (
    MAX_TOKEN_BYTES,
    STAFF_TOKEN_MAX_SECONDS,
    VENDOR_TOKEN_MAX_SECONDS,
    Authenticator,
    PoolSettings,
    TokenSettings,
    bearer_token,
    issue_token,
    verify_token,
)
from shared.errors import Unauthorized
from shared.security import LeadScope, Principal, Role
from tests.helpers import (
    TEST_AUDIENCE,
    TEST_ISSUER,
    TEST_POOL_CLIENT_ID,
    TEST_POOL_ISSUER,
    TEST_SECRET,
    FakeClock,
    PoolKeysForTests,
    b64url,
    make_token,
    staff_token,
    token_claims,
)

SETTINGS = TokenSettings(secret=TEST_SECRET, issuer=TEST_ISSUER, audience=TEST_AUDIENCE, leeway_seconds=30)
POOL = PoolSettings(issuer=TEST_POOL_ISSUER, client_id=TEST_POOL_CLIENT_ID)

USERS: dict[str, dict[str, Any]] = {
    "demo-admin": {
        "user_id": "demo-admin",
        "role": "admin",
        "status": "active",
        "name": "Ada",
        "email": "a@x.io",
    },
    "demo-manager": {"user_id": "demo-manager", "role": "manager", "status": "active"},
    "demo-agent-1": {"user_id": "demo-agent-1", "role": "agent", "status": "active"},
    "demo-vendor-1": {
        "user_id": "demo-vendor-1",
        "role": "vendor",
        "status": "active",
        "vendor_code": "V001",
    },
    "disabled-user": {"user_id": "disabled-user", "role": "admin", "status": "disabled"},
    "no-status-user": {"user_id": "no-status-user", "role": "admin"},
    "odd-role-user": {"user_id": "odd-role-user", "role": "superuser", "status": "active"},
    "vendor-without-code": {"user_id": "vendor-without-code", "role": "vendor", "status": "active"},
    "vendor-empty-code": {
        "user_id": "vendor-empty-code",
        "role": "vendor",
        "status": "active",
        "vendor_code": "",
    },
    "agent-with-code": {
        "user_id": "agent-with-code",
        "role": "agent",
        "status": "active",
        "vendor_code": "V9",
    },
}


class CountingLoader:
    """A users table stand-in: a dict lookup that counts its calls."""

    def __init__(self, users: dict[str, dict[str, Any]]) -> None:
        self.users = {user_id: dict(user) for user_id, user in users.items()}
        self.calls: list[str] = []

    def __call__(self, user_id: str) -> dict[str, Any] | None:
        self.calls.append(user_id)
        user = self.users.get(user_id)
        return dict(user) if user is not None else None


def make_authenticator(
    loader: CountingLoader | None = None, cache_seconds: int = 0, clock: FakeClock | None = None
) -> Authenticator:
    return Authenticator(
        settings_provider=lambda: SETTINGS,
        load_user=loader or CountingLoader(USERS),
        pool=POOL,
        pool_keys=PoolKeysForTests(),
        cache_seconds=cache_seconds,
        clock=clock or FakeClock(),
    )


def _hand_made_token(header: dict[str, Any], payload: dict[str, Any], signature: bytes = b"") -> str:
    return f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(payload).encode())}.{b64url(signature)}"


def _claims(user_id: str = "demo-vendor-1", **overrides: Any) -> dict[str, Any]:
    return token_claims(user_id, **overrides)


def _rsa_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


# --- The Authorization header -------------------------------------------------------------------


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="missing-header"),
        pytest.param("", id="empty-header"),
        pytest.param("Basic dXNlcjpwYXNz", id="basic-scheme"),
        pytest.param(f"Token {staff_token()}", id="token-scheme"),
        pytest.param(staff_token(), id="no-scheme"),
        pytest.param("Bearer", id="bearer-without-token"),
        pytest.param("Bearer    ", id="bearer-blank-token"),
        pytest.param("Bearer abc.def", id="malformed-two-segments"),
        pytest.param("Bearer not-a-jwt", id="garbage"),
        pytest.param("Bearer a.b.c", id="three-garbage-segments"),
    ],
)
def test_request_without_a_usable_bearer_token_is_rejected(authorization: str | None) -> None:
    # Given
    authenticator = make_authenticator()

    # When / Then
    with pytest.raises(Unauthorized) as raised:
        authenticator.authenticate(authorization)
    assert raised.value.status == 401
    assert raised.value.code == "UNAUTHORIZED"
    assert "WWW-Authenticate" in raised.value.headers


def test_bearer_scheme_is_case_insensitive_and_surrounding_space_is_ignored() -> None:
    # Given
    token = staff_token()

    # When
    extracted = bearer_token(f"  bearer   {token}  ")

    # Then
    assert extracted == token


# --- Token verification: the attack matrix ------------------------------------------------------


def test_vendor_token_with_alg_none_is_rejected() -> None:
    # Given: an unsigned token, once from PyJWT and once by hand with an empty signature
    library_token = jwt.encode(_claims(), None, algorithm="none")
    hand_token = _hand_made_token({"alg": "none", "typ": "JWT"}, _claims())

    # When / Then
    for token in (library_token, hand_token):
        with pytest.raises(Unauthorized):
            verify_token(SETTINGS, token)


def test_alg_none_token_carrying_a_valid_signature_is_rejected() -> None:
    # Given: the header says none, but a real HS256 signature is attached
    valid = make_token("demo-vendor-1")
    _, payload, signature = valid.split(".")
    header = b64url(json.dumps({"alg": "none", "typ": "JWT"}).encode())

    # When / Then
    with pytest.raises(Unauthorized):
        verify_token(SETTINGS, f"{header}.{payload}.{signature}")


def test_token_signed_with_the_wrong_key_is_rejected() -> None:
    # Given
    token = make_token("demo-admin", secret="another-secret-0123456789abcdef0123456789")

    # When / Then
    with pytest.raises(Unauthorized, match="Invalid token"):
        verify_token(SETTINGS, token)


def test_token_with_tampered_payload_is_rejected() -> None:
    # Given: a vendor's valid token whose payload is swapped for an admin's
    header, _, signature = make_token("demo-vendor-1").split(".")
    forged_payload = b64url(json.dumps(_claims("demo-admin")).encode())

    # When / Then
    with pytest.raises(Unauthorized):
        verify_token(SETTINGS, f"{header}.{forged_payload}.{signature}")


def test_rs256_token_is_rejected() -> None:
    # Given: a properly signed RS256 token (the algorithm is pinned to HS256)
    token = jwt.encode(_claims("demo-admin"), _rsa_private_key(), algorithm="RS256")

    # When / Then
    with pytest.raises(Unauthorized):
        verify_token(SETTINGS, token)


def test_hs256_token_keyed_with_an_rsa_public_key_is_rejected() -> None:
    # Given: the classic RS/HS confusion, HMAC-signed with the public key PEM as the secret
    public_pem = (
        _rsa_private_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    signing_input = (
        f"{b64url(json.dumps({'alg': 'HS256', 'typ': 'JWT'}).encode())}."
        f"{b64url(json.dumps(_claims('demo-admin')).encode())}"
    )
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()

    # When / Then
    with pytest.raises(Unauthorized):
        verify_token(SETTINGS, f"{signing_input}.{b64url(signature)}")


def test_token_expired_beyond_the_leeway_is_rejected() -> None:
    # Given
    now = int(time.time())
    token = make_token(iat=now - 7200, nbf=now - 7200, exp=now - 31 - 5)

    # When / Then
    with pytest.raises(Unauthorized, match="Token expired"):
        verify_token(SETTINGS, token)


def test_token_expired_within_the_leeway_is_accepted() -> None:
    # Given
    now = int(time.time())
    token = make_token(iat=now - 3600, nbf=now - 3600, exp=now - 10)

    # When
    claims = verify_token(SETTINGS, token)

    # Then
    assert claims["sub"] == "demo-admin"


@pytest.mark.parametrize("claim", ["nbf", "iat"])
def test_token_not_yet_valid_beyond_the_leeway_is_rejected(claim: str) -> None:
    # Given
    future = int(time.time()) + 120
    token = make_token(**{claim: future})

    # When / Then
    with pytest.raises(Unauthorized):
        verify_token(SETTINGS, token)


def test_token_issued_slightly_in_the_future_within_the_leeway_is_accepted() -> None:
    # Given: clock skew of 10 s between issuer and verifier
    future = int(time.time()) + 10
    token = make_token(iat=future, nbf=future)

    # When
    claims = verify_token(SETTINGS, token)

    # Then
    assert claims["iat"] == future


@pytest.mark.parametrize("claim", ["exp", "iat", "sub", "iss", "aud"])
def test_token_missing_a_required_claim_is_rejected(claim: str) -> None:
    # Given
    token = make_token(drop=(claim,))

    # When / Then
    with pytest.raises(Unauthorized):
        verify_token(SETTINGS, token)


@pytest.mark.parametrize(
    "claims",
    [
        pytest.param({"iss": "someone-else"}, id="wrong-issuer"),
        pytest.param({"aud": "other-api"}, id="wrong-audience"),
        pytest.param({"aud": ["other-api", "another-api"]}, id="wrong-audience-list"),
        pytest.param({"sub": 42}, id="non-string-subject"),
        pytest.param({"exp": "tomorrow"}, id="non-numeric-exp"),
    ],
)
def test_token_with_wrong_claims_is_rejected(claims: dict[str, Any]) -> None:
    # Given
    token = make_token(**claims)

    # When / Then
    with pytest.raises(Unauthorized):
        verify_token(SETTINGS, token)


def _time_claim_values() -> list[Any]:
    """Values of `exp`, `iat` and `nbf` that are valid times to PyJWT (it reads them with
    `int()`) but not JSON numbers, as RFC 7519's NumericDate requires."""
    now = int(time.time())
    return [
        pytest.param("exp", "9999999999", id="exp-as-a-string"),
        pytest.param("iat", str(now), id="iat-as-a-string"),
        pytest.param("nbf", str(now), id="nbf-as-a-string"),
        pytest.param("exp", f"{now + 3600}.0", id="exp-as-a-decimal-string"),
        pytest.param("iat", True, id="iat-as-true"),
        pytest.param("nbf", False, id="nbf-as-false"),
        pytest.param("exp", [now + 3600], id="exp-as-a-list"),
    ]


@pytest.mark.parametrize(("claim", "value"), _time_claim_values())
def test_a_time_claim_that_is_not_a_json_number_is_rejected(claim: str, value: Any) -> None:
    # Given a correctly signed token, valid in every other way
    token = make_token(**{claim: value})

    # When / Then
    with pytest.raises(Unauthorized, match="Invalid token"):
        verify_token(SETTINGS, token)


def test_time_claims_that_are_json_numbers_with_fractions_are_accepted() -> None:
    # Given: NumericDate allows non-integer values
    now = time.time()
    token = make_token(iat=now - 0.5, nbf=now - 0.5, exp=now + 3600.25)

    # When
    claims = verify_token(SETTINGS, token)

    # Then
    assert claims["exp"] == pytest.approx(now + 3600.25)


def test_a_token_without_nbf_is_still_accepted() -> None:
    assert verify_token(SETTINGS, make_token(drop=("nbf",)))["sub"] == "demo-admin"


def test_token_larger_than_8_kb_is_rejected() -> None:
    # Given: a correctly signed token padded with a large claim
    token = make_token(padding="x" * MAX_TOKEN_BYTES)
    assert len(token) > MAX_TOKEN_BYTES

    # When / Then
    with pytest.raises(Unauthorized, match="too large"):
        verify_token(SETTINGS, token)


def test_issued_token_round_trips_through_verify_token() -> None:
    # Given
    now = time.time()
    token = issue_token(SETTINGS, "demo-agent-1", ttl_seconds=600, now=now)

    # When
    claims = verify_token(SETTINGS, token)

    # Then
    assert claims["sub"] == "demo-agent-1"
    assert claims["iss"] == TEST_ISSUER
    assert claims["aud"] == TEST_AUDIENCE
    assert claims["exp"] - claims["iat"] == 600
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


def test_issued_token_is_rejected_under_another_secret() -> None:
    # Given
    token = issue_token(SETTINGS, "demo-admin")
    other = TokenSettings(secret="x" * 40, issuer=TEST_ISSUER, audience=TEST_AUDIENCE)

    # When / Then
    with pytest.raises(Unauthorized):
        verify_token(other, token)


# --- The user behind the token ------------------------------------------------------------------


@pytest.mark.parametrize(
    "user_id",
    [
        pytest.param("nobody", id="unknown-user"),
        pytest.param("disabled-user", id="disabled-user"),
        pytest.param("no-status-user", id="user-without-status"),
        pytest.param("odd-role-user", id="unknown-role"),
        pytest.param("vendor-without-code", id="vendor-without-vendor-code"),
        pytest.param("vendor-empty-code", id="vendor-with-empty-vendor-code"),
        pytest.param("", id="empty-subject"),
    ],
)
def test_valid_token_for_an_unusable_user_is_rejected(user_id: str) -> None:
    # Given
    authenticator = make_authenticator()

    # When / Then
    with pytest.raises(Unauthorized):
        authenticator.authenticate(f"Bearer {make_token(user_id)}")
    with pytest.raises(Unauthorized):
        authenticator.authenticate(f"Bearer {staff_token(user_id, role='admin')}")


@pytest.mark.parametrize(
    ("user_id", "role", "vendor_code", "scope", "cache_key"),
    [
        ("demo-admin", Role.ADMIN, None, LeadScope(None, None), "all"),
        ("demo-manager", Role.MANAGER, None, LeadScope(None, None), "all"),
        ("demo-vendor-1", Role.VENDOR, "V001", LeadScope("V001", None), "vendor:V001"),
        ("demo-agent-1", Role.AGENT, None, LeadScope(None, "demo-agent-1"), "agent:demo-agent-1"),
        ("agent-with-code", Role.AGENT, None, LeadScope(None, "agent-with-code"), "agent:agent-with-code"),
    ],
)
def test_each_role_yields_its_principal_and_lead_scope(
    user_id: str, role: Role, vendor_code: str | None, scope: LeadScope, cache_key: str
) -> None:
    # Given
    authenticator = make_authenticator()

    # When
    principal = authenticator.authenticate(f"Bearer {signed(user_id)}")

    # Then
    assert principal.user_id == user_id
    assert principal.role is role
    assert principal.vendor_code == vendor_code
    assert principal.lead_scope == scope
    assert principal.lead_scope.cache_key == cache_key
    assert principal.lead_scope.sees_all is (cache_key == "all")


def test_principal_carries_name_and_email_from_the_user_record() -> None:
    # Given
    authenticator = make_authenticator()

    # When
    principal = authenticator.authenticate(f"Bearer {staff_token('demo-admin')}")

    # Then
    assert principal == Principal(user_id="demo-admin", role=Role.ADMIN, name="Ada", email="a@x.io")


def test_token_expired_within_the_leeway_authenticates() -> None:
    # Given
    now = int(time.time())
    tokens = [
        staff_token("demo-admin", iat=now - 3600, exp=now - 5),
        make_token("demo-vendor-1", iat=now - 3600, nbf=now - 3600, exp=now - 5),
    ]

    # When
    principals = [make_authenticator().authenticate(f"Bearer {token}") for token in tokens]

    # Then
    assert [principal.role for principal in principals] == [Role.ADMIN, Role.VENDOR]


# --- The lifetime of a token: at most its kind's maximum ---------------------------------------


def signed(user_id: str, **claims: Any) -> str:
    """The kind of token `user_id` signs in with: a vendor credential or the pool's ID token."""
    return make_token(user_id, **claims) if "vendor" in user_id else staff_token(user_id, **claims)


MAXIMUM_BY_USER = [
    pytest.param("demo-admin", STAFF_TOKEN_MAX_SECONDS, id="admin"),
    pytest.param("demo-manager", STAFF_TOKEN_MAX_SECONDS, id="manager"),
    pytest.param("demo-agent-1", STAFF_TOKEN_MAX_SECONDS, id="agent"),
    pytest.param("demo-vendor-1", VENDOR_TOKEN_MAX_SECONDS, id="vendor"),
]
TEN_YEARS = 10 * 365 * 86400


def test_the_maxima_are_an_hour_for_staff_and_365_days_for_vendors() -> None:
    assert STAFF_TOKEN_MAX_SECONDS == 3600
    assert VENDOR_TOKEN_MAX_SECONDS == 365 * 86400


@pytest.mark.parametrize(("user_id", "maximum"), MAXIMUM_BY_USER)
def test_token_living_exactly_its_roles_maximum_is_accepted(user_id: str, maximum: int) -> None:
    # Given
    token = signed(user_id, ttl=maximum)

    # When
    principal = make_authenticator().authenticate(f"Bearer {token}")

    # Then
    assert principal.user_id == user_id


@pytest.mark.parametrize(("user_id", "maximum"), MAXIMUM_BY_USER)
@pytest.mark.parametrize("over", [pytest.param(1, id="one-second"), pytest.param(0.5, id="half-a-second")])
def test_token_living_longer_than_its_roles_maximum_is_rejected(
    user_id: str, maximum: int, over: float
) -> None:
    # Given: a correctly signed token of an active user, valid in every other way
    now = int(time.time())
    token = signed(user_id, iat=now, exp=now + maximum + over)

    # When / Then: refused like any other invalid token, without saying why
    with pytest.raises(Unauthorized, match=r"^Invalid token$"):
        make_authenticator().authenticate(f"Bearer {token}")


@pytest.mark.parametrize(("user_id", "maximum"), MAXIMUM_BY_USER)
@pytest.mark.parametrize(
    "lifetime",
    [
        pytest.param(TEN_YEARS, id="ten-years"),
        pytest.param(10**30, id="10e30-seconds"),
        pytest.param(1e30, id="10e30-seconds-as-a-fraction"),
    ],
)
def test_token_living_for_years_is_rejected(user_id: str, maximum: int, lifetime: float) -> None:
    # Given
    token = signed(user_id, ttl=lifetime)

    # When / Then
    with pytest.raises(Unauthorized, match=r"^Invalid token$"):
        make_authenticator().authenticate(f"Bearer {token}")


def test_staff_token_with_a_vendor_credentials_lifetime_is_rejected() -> None:
    # Given: the maximum follows the token's kind (its issuer), not anything else it says
    token = staff_token("demo-admin", ttl=VENDOR_TOKEN_MAX_SECONDS, role="vendor")

    # When / Then
    with pytest.raises(Unauthorized, match=r"^Invalid token$"):
        make_authenticator().authenticate(f"Bearer {token}")


def test_token_dated_in_the_future_cannot_shorten_its_lifetime() -> None:
    # Given: a token valid for ten years whose `iat` claims it was issued a minute before it expires
    now = int(time.time())
    token = make_token("demo-admin", iat=now + TEN_YEARS - 60, nbf=now, exp=now + TEN_YEARS)

    # When / Then: PyJWT refuses an `iat` beyond the leeway, before the lifetime is measured
    with pytest.raises(Unauthorized, match=r"^Invalid token$"):
        make_authenticator().authenticate(f"Bearer {token}")


def test_rejected_lifetime_is_logged_with_its_reason(caplog: pytest.LogCaptureFixture) -> None:
    # Given
    token = staff_token("demo-agent-1", ttl=STAFF_TOKEN_MAX_SECONDS + 1)

    # When
    with caplog.at_level(logging.INFO), pytest.raises(Unauthorized):
        make_authenticator().authenticate(f"Bearer {token}")

    # Then: the reason is logged, the token is not
    rejected = [record for record in caplog.records if record.getMessage() == "token rejected"]
    assert [record.reason for record in rejected] == ["lifetime over its kind's maximum"]  # type: ignore[attr-defined]
    assert token not in caplog.text


def test_issued_token_at_each_maximum_authenticates() -> None:
    # Given: what the pool issues to the admin and what a vendor credential carries
    staff = staff_token("demo-admin", ttl=STAFF_TOKEN_MAX_SECONDS)
    vendor = issue_token(SETTINGS, "demo-vendor-1", ttl_seconds=VENDOR_TOKEN_MAX_SECONDS)

    # When
    principals = [make_authenticator().authenticate(f"Bearer {token}") for token in (staff, vendor)]

    # Then
    assert [principal.role for principal in principals] == [Role.ADMIN, Role.VENDOR]


# --- The user cache: revocation within 60 s -----------------------------------------------------


def test_disabled_user_is_accepted_while_cached_and_rejected_once_the_cache_expires() -> None:
    # Given: an active vendor authenticated once, then disabled in the users table
    clock = FakeClock()
    loader = CountingLoader(USERS)
    authenticator = make_authenticator(loader, cache_seconds=30, clock=clock)
    header = f"Bearer {make_token('demo-vendor-1')}"
    authenticator.authenticate(header)
    loader.users["demo-vendor-1"]["status"] = "disabled"

    # When: still inside the 30 s cache window
    clock.advance(29.9)
    principal = authenticator.authenticate(header)

    # Then: the cached record is used and the loader was called only once
    assert principal.user_id == "demo-vendor-1"
    assert loader.calls == ["demo-vendor-1"]

    # When: the clock passes 30 s
    clock.advance(0.2)

    # Then: the record is reloaded and the user is refused
    with pytest.raises(Unauthorized):
        authenticator.authenticate(header)
    assert loader.calls == ["demo-vendor-1", "demo-vendor-1"]


def test_disabled_user_is_rejected_at_exactly_the_cache_lifetime() -> None:
    # Given
    clock = FakeClock()
    loader = CountingLoader(USERS)
    authenticator = make_authenticator(loader, cache_seconds=30, clock=clock)
    header = f"Bearer {staff_token('demo-agent-1')}"
    authenticator.authenticate(header)
    loader.users["demo-agent-1"]["status"] = "disabled"

    # When
    clock.advance(30)

    # Then
    with pytest.raises(Unauthorized):
        authenticator.authenticate(header)


def test_loader_is_called_once_per_user_while_cached() -> None:
    # Given
    clock = FakeClock()
    loader = CountingLoader(USERS)
    authenticator = make_authenticator(loader, cache_seconds=30, clock=clock)

    # When
    for _ in range(5):
        authenticator.authenticate(f"Bearer {staff_token('demo-admin')}")
        authenticator.authenticate(f"Bearer {staff_token('demo-agent-1')}")
        clock.advance(1)

    # Then
    assert sorted(loader.calls) == ["demo-admin", "demo-agent-1"]


def test_cache_disabled_loads_the_user_on_every_request() -> None:
    # Given
    loader = CountingLoader(USERS)
    authenticator = make_authenticator(loader, cache_seconds=0)
    header = f"Bearer {staff_token('demo-admin')}"

    # When
    authenticator.authenticate(header)
    loader.users["demo-admin"]["status"] = "disabled"

    # Then
    with pytest.raises(Unauthorized):
        authenticator.authenticate(header)
    assert loader.calls == ["demo-admin", "demo-admin"]


def test_user_enabled_after_an_unknown_lookup_is_accepted_once_the_cache_expires() -> None:
    # Given: a lookup of a user that did not exist yet (the miss is cached too)
    clock = FakeClock()
    loader = CountingLoader(USERS)
    authenticator = make_authenticator(loader, cache_seconds=30, clock=clock)
    header = f"Bearer {staff_token('new-user', role='agent')}"
    with pytest.raises(Unauthorized):
        authenticator.authenticate(header)
    loader.users["new-user"] = {"user_id": "new-user", "role": "agent", "status": "active"}

    # When
    clock.advance(31)
    principal = authenticator.authenticate(header)

    # Then
    assert principal.role is Role.AGENT


def test_bad_token_never_reaches_the_user_loader() -> None:
    # Given
    loader = CountingLoader(USERS)
    authenticator = make_authenticator(loader)

    # When
    with pytest.raises(Unauthorized):
        authenticator.authenticate(f"Bearer {make_token('demo-admin', secret='y' * 40)}")

    # Then
    assert loader.calls == []
