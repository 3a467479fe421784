"""Builders shared by every test: configuration, tokens, API Gateway events, Lambda contexts."""

from __future__ import annotations

import base64
import json
import os
import time
import uuid
from dataclasses import dataclass
from functools import cache
from typing import Any

import jwt
from moto.cognitoidp.models import load_resource

TEST_SECRET = "test-secret-0123456789abcdef0123456789abcdef"
TEST_ISSUER = "crm"
TEST_AUDIENCE = "crm-api"
TEST_POOL_ID = "us-east-1_crmTest01"
TEST_POOL_CLIENT_ID = "crmtestdashboardclient0001"
TEST_POOL_ISSUER = f"https://cognito-idp.us-east-1.amazonaws.com/{TEST_POOL_ID}"
ALLOWED_ORIGIN = "https://dashboard.test"
SECOND_ORIGIN = "http://localhost:5173"
DISALLOWED_ORIGIN = "https://evil.test"


def base_env(stage: str = "test") -> dict[str, str]:
    """The environment a function gets from template.yaml, with test values."""
    return {
        "STAGE": stage,
        "LEADS_TABLE": f"crm-{stage}-leads",
        "USERS_TABLE": f"crm-{stage}-users",
        "VENDORS_TABLE": f"crm-{stage}-vendors",
        "PRICING_TABLE": f"crm-{stage}-pricing",
        "AUDIT_TABLE": f"crm-{stage}-audit",
        "DEDUPE_TABLE": f"crm-{stage}-dedupe",
        "SUPPRESSIONS_TABLE": f"crm-{stage}-suppressions",
        "USAGE_TABLE": f"crm-{stage}-vendor-usage",
        "OUTBOX_TABLE": f"crm-{stage}-outbox",
        "IDEMPOTENCY_TABLE": f"crm-{stage}-idempotency",
        "STATS_TABLE": f"crm-{stage}-stats",
        "STATS_STATE_TABLE": f"crm-{stage}-stats-state",
        "RETURNS_TABLE": f"crm-{stage}-returns",
        "POSTBACKS_TABLE": f"crm-{stage}-postbacks",
        "POSTBACK_QUEUE": f"crm-{stage}-postbacks",
        "POSTBACK_DEAD_LETTER_QUEUE": f"crm-{stage}-postbacks-dlq",
        "EVENT_BUS_NAME": f"crm-{stage}",
        "CORS_ALLOW_ORIGINS": f"{ALLOWED_ORIGIN},{SECOND_ORIGIN}",
        "JWT_SECRET": TEST_SECRET,
        "JWT_ISSUER": TEST_ISSUER,
        "JWT_AUDIENCE": TEST_AUDIENCE,
        "USER_POOL_ID": TEST_POOL_ID,
        "USER_POOL_CLIENT_ID": TEST_POOL_CLIENT_ID,
        "USER_POOL_ISSUER": TEST_POOL_ISSUER,
        "USER_CACHE_SECONDS": "0",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_METRICS_DISABLED": "true",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
    }


def token_claims(user_id: str = "demo-admin", ttl: int = 3600, **overrides: Any) -> dict[str, Any]:
    """The claims of a token like `crm token` issues, valid from now for `ttl` seconds."""
    now = int(time.time())
    return {
        "sub": user_id,
        "iss": TEST_ISSUER,
        "aud": TEST_AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + ttl,
        **overrides,
    }


# The staff user pool's signing key: the local AWS endpoint's (moto's) key, which every pool it
# creates signs with and whose public half it serves at /<pool id>/.well-known/jwks.json.
POOL_KEY_ID = "dummy"


@cache
def pool_private_key() -> Any:
    return jwt.algorithms.RSAAlgorithm.from_jwk(
        json.dumps(load_resource("cognitoidp/resources/jwks-private.json"))
    )


class PoolKeysForTests:
    """The pool's published keys without an HTTP endpoint, for unit tests (`shared.auth.SigningKeys`)."""

    def __init__(self) -> None:
        self.lookups: list[str] = []

    def key(self, kid: str) -> Any:
        self.lookups.append(kid)
        if kid != POOL_KEY_ID:
            raise jwt.PyJWKClientError(f"no key {kid!r}")
        return pool_private_key().public_key()


def staff_role(user_id: str) -> str:
    """The pool group of a test's staff user, read from its id (demo-admin, demo-manager,
    demo-agent-1, ...): an admin unless the id says manager or agent."""
    for role in ("manager", "agent"):
        if role in user_id:
            return role
    return "admin"


def staff_claims(
    user_id: str = "demo-admin", role: str | None = None, ttl: int = 3600, **overrides: Any
) -> dict[str, Any]:
    """The claims of an ID token of the staff user pool (the environment's USER_POOL_ISSUER and
    USER_POOL_CLIENT_ID) for the user record `user_id`, valid from now for `ttl` seconds."""
    now = int(time.time())
    return {
        "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, user_id)),
        "iss": os.environ.get("USER_POOL_ISSUER", TEST_POOL_ISSUER),
        "aud": os.environ.get("USER_POOL_CLIENT_ID", TEST_POOL_CLIENT_ID),
        "token_use": "id",
        "auth_time": now,
        "iat": now,
        "exp": now + ttl,
        "jti": str(uuid.uuid4()),
        "email": f"{user_id}@crm.example.com",
        "cognito:username": str(uuid.uuid5(uuid.NAMESPACE_URL, user_id)),
        "cognito:groups": [role or staff_role(user_id)],
        "custom:user_id": user_id,
        **overrides,
    }


def staff_token(
    user_id: str = "demo-admin",
    *,
    role: str | None = None,
    ttl: int = 3600,
    drop: tuple[str, ...] = (),
    key: Any = None,
    kid: str = POOL_KEY_ID,
    **claims: Any,
) -> str:
    """An ID token as the staff user pool issues it (signed with the pool's key); `claims`
    override, `drop` removes claims."""
    payload = staff_claims(user_id, role, ttl, **claims)
    for claim in drop:
        payload.pop(claim, None)
    return jwt.encode(payload, key or pool_private_key(), algorithm="RS256", headers={"kid": kid})


def token_for(user_id: str) -> str:
    """The token `user_id` signs in with: a vendor credential for a vendor's integration user
    (an id naming a vendor), else the staff user pool's ID token."""
    return make_token(user_id) if "vendor" in user_id.lower() else staff_token(user_id)


def b64url(data: bytes) -> str:
    """Base64url without padding, as JWT segments are written."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def make_token(
    user_id: str = "demo-admin",
    *,
    secret: str = TEST_SECRET,
    algorithm: str = "HS256",
    ttl: int = 3600,
    drop: tuple[str, ...] = (),
    **claims: Any,
) -> str:
    """A vendor credential as `POST /agencies/{code}/credentials` issues it (HS256, the API's own
    issuer); `claims` override, `drop` removes claims."""
    payload = token_claims(user_id, ttl, **claims)
    for claim in drop:
        payload.pop(claim, None)
    return jwt.encode(payload, secret, algorithm=algorithm)


def api_event(
    method: str,
    path: str,
    *,
    resource: str | None = None,
    path_parameters: dict[str, str] | None = None,
    query: dict[str, str] | None = None,
    headers: dict[str, str] | None = None,
    body: Any = None,
    token: str | None = None,
    origin: str | None = ALLOWED_ORIGIN,
) -> dict[str, Any]:
    """An API Gateway REST (v1) proxy event, as the local runner and API Gateway build it."""
    all_headers = {"Accept": "application/json", **(headers or {})}
    if token is not None:
        all_headers["Authorization"] = f"Bearer {token}"
    if origin is not None:
        all_headers["Origin"] = origin
    if body is not None and not isinstance(body, str):
        body = json.dumps(body)
        all_headers.setdefault("Content-Type", "application/json")
    request_id = str(uuid.uuid4())
    return {
        "resource": resource or path,
        "path": path,
        "httpMethod": method,
        "headers": all_headers,
        "multiValueHeaders": {key: [value] for key, value in all_headers.items()},
        "queryStringParameters": query or None,
        "multiValueQueryStringParameters": {k: [v] for k, v in query.items()} if query else None,
        "pathParameters": path_parameters,
        "stageVariables": None,
        "requestContext": {
            "resourcePath": resource or path,
            "httpMethod": method,
            "path": f"/test{path}",
            "stage": "test",
            "requestId": request_id,
            "identity": {"sourceIp": "127.0.0.1", "userAgent": "pytest"},
            "requestTimeEpoch": int(time.time() * 1000),
            "accountId": "123456789012",
            "apiId": "local",
            "protocol": "HTTP/1.1",
        },
        "body": body,
        "isBase64Encoded": False,
    }


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, start: float = 1_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@dataclass
class FakeLambdaContext:
    function_name: str = "test-function"
    function_version: str = "$LATEST"
    memory_limit_in_mb: int = 512
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:test-function"
    aws_request_id: str = "00000000-0000-0000-0000-000000000000"
    log_group_name: str = "/aws/lambda/test-function"
    log_stream_name: str = "local"

    def get_remaining_time_in_millis(self) -> int:
        return 15_000


def sqs_event(bodies: list[object]) -> dict[str, Any]:
    """A Lambda SQS event carrying `bodies` (EventBridge events, or anything else) as JSON."""
    return {
        "Records": [
            {
                "messageId": f"m-{index}",
                "receiptHandle": f"r-{index}",
                "body": json.dumps(body, default=str),
                "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": "1764547200000"},
                "messageAttributes": {},
                "md5OfBody": "",
                "eventSource": "aws:sqs",
                "eventSourceARN": "arn:aws:sqs:us-east-1:123456789012:crm-test-stats-events",
                "awsRegion": "us-east-1",
            }
            for index, body in enumerate(bodies)
        ]
    }


def response_json(response: dict[str, Any]) -> Any:
    return json.loads(response["body"]) if response.get("body") else None


def header(response: dict[str, Any], name: str) -> str | None:
    """A response header from `headers` or `multiValueHeaders`, case-insensitively."""
    for key, value in (response.get("headers") or {}).items():
        if key.lower() == name.lower():
            return str(value)
    for key, values in (response.get("multiValueHeaders") or {}).items():
        if key.lower() == name.lower():
            return ",".join(values)
    return None
