"""`shared.auth` for staff: the user pool's ID tokens, their kind told by the issuer with the
algorithm pinned per kind, the role granted by the pool's groups and held by the user record, and
the pool's keys fetched from its JWKS document once, again only for an unknown key id."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import rsa

from shared.auth import Authenticator, PoolSettings, PublishedKeys, TokenSettings, verify_pool_token
from shared.errors import Unauthorized
from shared.security import Role
from tests.helpers import (
    TEST_AUDIENCE,
    TEST_ISSUER,
    TEST_POOL_CLIENT_ID,
    TEST_POOL_ISSUER,
    TEST_SECRET,
    PoolKeysForTests,
    make_token,
    pool_private_key,
    staff_claims,
    staff_token,
)

POOL = PoolSettings(issuer=TEST_POOL_ISSUER, client_id=TEST_POOL_CLIENT_ID)
USERS = {
    "demo-admin": {"user_id": "demo-admin", "role": "admin", "status": "active"},
    "demo-agent-1": {"user_id": "demo-agent-1", "role": "agent", "status": "active"},
    "demo-vendor-1": {
        "user_id": "demo-vendor-1",
        "role": "vendor",
        "status": "active",
        "vendor_code": "V001",
    },
}


def authenticator(keys: Any = None) -> Authenticator:
    return Authenticator(
        settings_provider=lambda: TokenSettings(TEST_SECRET, TEST_ISSUER, TEST_AUDIENCE),
        load_user=USERS.get,
        pool=POOL,
        pool_keys=keys or PoolKeysForTests(),
        cache_seconds=0,
    )


def refused(token: str) -> bool:
    try:
        authenticator().authenticate(f"Bearer {token}")
    except Unauthorized:
        return True
    return False


# --- which tokens are staff tokens ---------------------------------------------------------------


def test_the_pools_id_token_names_its_user_record_and_role() -> None:
    principal = authenticator().authenticate(f"Bearer {staff_token('demo-agent-1')}")
    assert (principal.user_id, principal.role) == ("demo-agent-1", Role.AGENT)


def test_an_access_token_is_refused() -> None:
    # Given: what the pool issues as an access token: no audience, its client in `client_id`
    claims = staff_claims(token_use="access", client_id=TEST_POOL_CLIENT_ID)
    del claims["aud"]
    token = jwt.encode(claims, pool_private_key(), algorithm="RS256", headers={"kid": "dummy"})
    # Then
    assert refused(token)
    assert refused(staff_token(token_use="access"))


def test_an_hs256_token_claiming_the_pool_as_issuer_is_refused() -> None:
    # The pool's issuer pins RS256: a token signed with the API's own secret cannot pass as staff.
    assert refused(jwt.encode(staff_claims(), TEST_SECRET, algorithm="HS256"))


def test_a_pool_signed_token_claiming_the_apis_issuer_is_refused() -> None:
    # The API's issuer pins HS256: the pool's key cannot sign a vendor credential.
    claims = {
        **staff_claims("demo-vendor-1"),
        "iss": TEST_ISSUER,
        "aud": TEST_AUDIENCE,
        "sub": "demo-vendor-1",
    }
    assert refused(jwt.encode(claims, pool_private_key(), algorithm="RS256", headers={"kid": "dummy"}))


def test_a_vendor_credential_naming_a_staff_user_is_refused() -> None:
    assert refused(make_token("demo-admin"))
    assert not refused(make_token("demo-vendor-1"))


def test_a_pool_token_naming_a_vendor_user_is_refused() -> None:
    assert refused(staff_token("demo-vendor-1", role="admin"))


@pytest.mark.parametrize(
    "groups",
    [
        pytest.param(["admin"], id="another-role"),
        pytest.param([], id="none"),
        pytest.param("agent", id="a-string"),
        pytest.param(["vendor"], id="vendor"),
    ],
)
def test_groups_that_do_not_grant_the_users_role_are_refused(groups: Any) -> None:
    assert refused(staff_token("demo-agent-1", **{"cognito:groups": groups}))


def test_several_groups_grant_the_first_role_by_precedence() -> None:
    token = staff_token("demo-admin", **{"cognito:groups": ["agent", "admin"]})
    assert authenticator().authenticate(f"Bearer {token}").role is Role.ADMIN
    assert refused(staff_token("demo-agent-1", **{"cognito:groups": ["agent", "manager"]}))


@pytest.mark.parametrize("value", [None, "", 42, ["demo-admin"]])
def test_a_user_id_attribute_that_is_not_a_user_id_is_refused(value: Any) -> None:
    assert refused(staff_token(**{"custom:user_id": value}))


# --- the pool's keys ------------------------------------------------------------------------------


class JwksServer:
    """The pool's JWKS document over HTTP on loopback, counting its fetches."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.fetches = 0
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.fetches += 1
                body = json.dumps({"keys": owner.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.http = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.http.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http.server_address[1]}/.well-known/jwks.json"

    def publish(self, kid: str, key: rsa.RSAPrivateKey) -> None:
        public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
        self.keys.append({**public, "kid": kid, "alg": "RS256", "use": "sig"})


@pytest.fixture
def jwks() -> Iterator[JwksServer]:
    server = JwksServer()
    server.publish("dummy", pool_private_key())
    yield server
    server.http.shutdown()
    server.http.server_close()


def test_the_keys_are_fetched_once_for_many_tokens(jwks: JwksServer) -> None:
    keys = PublishedKeys(jwks.url)
    for user in ("demo-admin", "demo-agent-1", "demo-admin"):
        assert verify_pool_token(POOL, keys, staff_token(user))["custom:user_id"] == user
    assert jwks.fetches == 1


def test_a_rotated_key_is_fetched_when_a_token_names_it(jwks: JwksServer) -> None:
    # Given: the keys were fetched, then the pool published a new key (no refresh cool-down here)
    keys = PublishedKeys(jwks.url, refresh_cooldown_seconds=0)
    verify_pool_token(POOL, keys, staff_token())
    rotated = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwks.publish("rotated", rotated)
    # When: a token signed with it arrives
    claims = verify_pool_token(POOL, keys, staff_token(key=rotated, kid="rotated"))
    # Then the document is fetched once more, and the token is accepted
    assert claims["custom:user_id"] == "demo-admin"
    assert jwks.fetches == 2


def test_unknown_key_ids_refetch_at_most_once_per_cool_down(jwks: JwksServer) -> None:
    keys = PublishedKeys(jwks.url)
    verify_pool_token(POOL, keys, staff_token())
    for n in range(5):
        with pytest.raises(Unauthorized):
            verify_pool_token(POOL, keys, staff_token(kid=f"made-up-{n}"))
    assert jwks.fetches == 1  # within the cool-down, a made-up key id costs no fetch


def test_an_unreachable_key_document_refuses_the_token() -> None:
    keys = PublishedKeys("http://127.0.0.1:9/.well-known/jwks.json")
    with pytest.raises(Unauthorized):
        verify_pool_token(POOL, keys, staff_token())
