"""The local API over real HTTP, as a dashboard or a vendor's server reaches it: `crm serve`
started like `make run`, demo data, the printed token, auth, row-level security and CORS."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import socket
import subprocess
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from email.message import Message
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest

from tests.e2e.conftest import (
    PROJECT_ROOT,
    LocalServer,
    banner_token,
    crm_command,
    start_server,
    stop_server,
)
from tests.helpers import (
    ALLOWED_ORIGIN,
    DISALLOWED_ORIGIN,
    SECOND_ORIGIN,
    TEST_SECRET,
    make_token,
    staff_token,
    token_for,
)

ULID_PATTERN = r"^[0-9A-HJKMNP-TV-Z]{26}$"


def list_all(server: LocalServer, token: str, **params: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    query: dict[str, str] = {"limit": "200", **params}
    while True:
        response = server.get("/leads", token, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["data"]
        if not body["pagination"]["hasMore"]:
            return items
        query["cursor"] = body["pagination"]["cursor"]


def assert_error(response: Any, status: int, code: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    assert isinstance(body["error"]["details"], list)


def test_server_is_ready_within_30_seconds_and_prints_a_token_and_curl_line(server: LocalServer) -> None:
    assert server.startup_seconds < 30
    assert any(
        "curl" in line and "/leads" in line and "Authorization: Bearer" in line for line in server.banner
    )
    # The demo executive's ID token from the server's staff user pool
    claims = jwt.decode(banner_token(server), options={"verify_signature": False})
    assert jwt.get_unverified_header(banner_token(server))["alg"] == "RS256"
    assert (claims["custom:user_id"], claims["cognito:groups"], claims["token_use"]) == (
        "demo-admin",
        ["admin"],
        "id",
    )
    assert claims["iss"] == os.environ["USER_POOL_ISSUER"]
    assert claims["email"] == "demo-admin@crm.example.com"


def test_printed_token_lists_demo_leads_in_the_list_shape(server: LocalServer) -> None:
    # When
    response = server.get("/leads", banner_token(server), params={"limit": "5"})
    # Then
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"data", "pagination"}
    assert set(body["pagination"]) == {"cursor", "hasMore", "count"}
    assert body["pagination"]["count"] == len(body["data"]) == 5
    assert body["pagination"]["hasMore"] is True
    lead = body["data"][0]
    for name in (
        "lead_id",
        "vendor_code",
        "campaign_source",
        "email",
        "phone",
        "disposition",
        "lead_value",
        "quality_score",
        "created_at",
        "update_history",
        "version",
    ):
        assert name in lead
    assert lead["created_at"].endswith("Z")


def test_demo_data_covers_90_days_of_every_vendor_campaign_agent_and_disposition(server: LocalServer) -> None:
    leads = list_all(server, staff_token("demo-admin"))
    assert 200 <= len(leads) <= 500
    assert {lead["vendor_code"] for lead in leads} == {"V001", "V002", "V003", "V004", "V005"}
    assert {lead["disposition"] for lead in leads} == {"new", "contacted", "qualified", "closed", "lost"}
    assert len({lead["campaign_source"] for lead in leads}) >= 5
    assert {lead["assigned_agent"] for lead in leads} >= {f"demo-agent-{n}" for n in range(1, 6)}
    days = sorted(lead["created_at"][:10] for lead in leads)
    assert days[0] < days[-1]


def test_get_one_lead_returns_the_lead_shape(server: LocalServer) -> None:
    token = staff_token("demo-admin")
    lead = server.get("/leads", token, params={"limit": "1"}).json()["data"][0]
    response = server.get(f"/leads/{lead['lead_id']}", token)
    assert response.status_code == 200
    assert response.json() == lead


@pytest.mark.parametrize(
    ("user", "expected"),
    [
        ("demo-admin", lambda lead: True),
        ("demo-manager", lambda lead: True),
        ("demo-agent-2", lambda lead: lead["assigned_agent"] == "demo-agent-2"),
        ("demo-vendor-3", lambda lead: lead["vendor_code"] == "V003"),
    ],
)
def test_each_role_sees_exactly_the_leads_it_may(server: LocalServer, user: str, expected: Any) -> None:
    everything = list_all(server, staff_token("demo-admin"))
    visible = list_all(server, token_for(user))
    wanted = sorted(lead["lead_id"] for lead in everything if expected(lead))
    assert wanted
    assert sorted(lead["lead_id"] for lead in visible) == wanted


def test_vendor_gets_404_for_another_vendors_lead(server: LocalServer) -> None:
    other = list_all(server, staff_token("demo-admin"), vendor="V002")[0]
    response = server.get(f"/leads/{other['lead_id']}", make_token("demo-vendor-1"))
    assert_error(response, 404, "NOT_FOUND")
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN


def _rs256_token() -> str:
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return make_token("demo-admin", secret=key, algorithm="RS256")  # type: ignore[arg-type]


def _alg_none_token() -> str:
    return jwt.encode(
        {"sub": "demo-admin", "iss": "crm", "aud": "crm-api", "iat": 1, "exp": 4102444800},
        None,
        algorithm="none",
    )


AUTH_FAILURES = {
    "missing": None,
    "malformed": "not-a-jwt",
    "alg-none": _alg_none_token(),
    "rs256-confusion": _rs256_token(),
    "wrong-key": make_token("demo-admin", secret="another-secret-0123456789abcdef0123456789"),
    "expired": make_token("demo-admin", ttl=-3600),
    "no-exp": make_token("demo-admin", drop=("exp",)),
    "no-sub": make_token("demo-admin", drop=("sub",)),
    "wrong-issuer": make_token("demo-admin", iss="someone-else"),
    "wrong-audience": make_token("demo-admin", aud="another-api"),
    "unknown-user": make_token("nobody"),
    "huge": make_token("demo-admin", padding="x" * 9000),
}


@pytest.mark.parametrize("case", sorted(AUTH_FAILURES))
def test_bad_credentials_get_401_with_the_error_body_and_cors(server: LocalServer, case: str) -> None:
    response = server.get("/leads", AUTH_FAILURES[case])
    assert_error(response, 401, "UNAUTHORIZED")
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_disabled_user_is_rejected(server: LocalServer) -> None:
    # Given a disabled user written straight into the local table through the documented endpoint
    server.dynamodb().put_item(  # type: ignore[attr-defined]
        TableName="crm-local-users",
        Item={"user_id": {"S": "e2e-disabled"}, "role": {"S": "admin"}, "status": {"S": "disabled"}},
    )
    # When / Then
    assert_error(server.get("/leads", make_token("e2e-disabled")), 401, "UNAUTHORIZED")


def test_preflight_needs_no_token_and_grants_the_allowed_origin(server: LocalServer) -> None:
    for path in ("/leads", "/leads/01ARZ3NDEKTSV4RRFFQ69G5FAV"):
        response = server.request(
            "OPTIONS",
            path,
            origin=SECOND_ORIGIN,
            headers={
                "Access-Control-Request-Method": "GET",
                "Access-Control-Request-Headers": "authorization,content-type,idempotency-key",
            },
        )
        assert 200 <= response.status_code < 300
        assert response.headers["Access-Control-Allow-Origin"] == SECOND_ORIGIN
        assert "GET" in response.headers["Access-Control-Allow-Methods"]
        allowed = {
            name.strip().lower() for name in response.headers["Access-Control-Allow-Headers"].split(",")
        }
        assert {"authorization", "content-type", "idempotency-key"} <= allowed


@pytest.mark.parametrize(
    ("path", "token", "status"),
    [
        ("/leads", "admin", 200),
        ("/leads", None, 401),
        ("/leads/01ARZ3NDEKTSV4RRFFQ69G5FAV", "admin", 404),
        ("/no-such-route", None, 404),
        ("/leads", "bad-limit", 422),
    ],
)
def test_every_response_to_an_allowed_origin_carries_cors_headers(
    server: LocalServer, path: str, token: str | None, status: int
) -> None:
    params = {"limit": "0"} if token == "bad-limit" else None
    response = server.get(path, staff_token("demo-admin") if token else None, params=params)
    assert response.status_code == status
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN


def test_disallowed_origin_is_never_granted(server: LocalServer) -> None:
    preflight = server.request(
        "OPTIONS", "/leads", origin=DISALLOWED_ORIGIN, headers={"Access-Control-Request-Method": "GET"}
    )
    for response in (
        preflight,
        server.get("/leads", staff_token("demo-admin"), origin=DISALLOWED_ORIGIN),
        server.get("/leads", None, origin=DISALLOWED_ORIGIN),
    ):
        assert response.headers.get("Access-Control-Allow-Origin") in (None, "")
        assert DISALLOWED_ORIGIN not in json.dumps(dict(response.headers))
        assert response.headers["Vary"] == "Origin"  # a shared cache keeps it from allowed origins


def test_the_second_allowed_origin_reads_every_kind_of_answer_and_each_varies_on_origin(
    server: LocalServer,
) -> None:
    # Given requests from the second allowed origin, one of each kind of answer
    admin = staff_token("demo-admin")
    answers = {
        "preflight": server.request(
            "OPTIONS", "/leads", origin=SECOND_ORIGIN, headers={"Access-Control-Request-Method": "GET"}
        ),
        "json": server.get("/leads", admin, params={"limit": "1"}, origin=SECOND_ORIGIN),
        "error": server.get("/leads", None, origin=SECOND_ORIGIN),
        "csv": server.get("/reports/daily", admin, params={"format": "csv"}, origin=SECOND_ORIGIN),
        "gateway": server.get("/no-such-route", origin=SECOND_ORIGIN),
    }
    # Then each is granted to that origin, and says that it depends on the Origin
    assert {kind: answer.status_code for kind, answer in answers.items()} == {
        "preflight": 204,
        "json": 200,
        "error": 401,
        "csv": 200,
        "gateway": 404,
    }
    assert answers["csv"].headers["Content-Type"].startswith("text/csv")
    for kind, answer in answers.items():
        assert answer.headers["Access-Control-Allow-Origin"] == SECOND_ORIGIN, kind
        assert answer.headers["Vary"] == "Origin", kind


def test_unknown_route_is_a_json_404(server: LocalServer) -> None:
    assert_error(server.get("/no-such-route"), 404, "NOT_FOUND")
    assert_error(server.get("/leads/x/y", token=staff_token("demo-admin")), 404, "NOT_FOUND")


@pytest.mark.parametrize("limit", ["0", "201", "-1", "ten"])
def test_limit_out_of_range_is_a_4xx_with_the_error_body(server: LocalServer, limit: str) -> None:
    response = server.get("/leads", staff_token("demo-admin"), params={"limit": limit})
    assert_error(response, 422, "VALIDATION_ERROR")
    assert response.json()["error"]["details"][0]["field"] == "limit"


@pytest.mark.parametrize("cursor", ["garbage", "a.b", "eyJsZWFkX2lkIjoieCJ9.AAAA", "x" * 3000])
def test_garbage_cursor_is_a_4xx_with_the_error_body(server: LocalServer, cursor: str) -> None:
    response = server.get("/leads", staff_token("demo-admin"), params={"cursor": cursor})
    assert 400 <= response.status_code < 500
    assert response.json()["error"]["code"] in {"INVALID_CURSOR", "VALIDATION_ERROR"}


def test_openapi_document_and_swagger_ui_are_served(server: LocalServer) -> None:
    document = server.get("/openapi.json").json()
    assert document["openapi"].startswith("3.")
    assert {"/leads", "/leads/{lead_id}"} <= set(document["paths"])
    assert document["components"]["securitySchemes"]["bearerAuth"]["scheme"] == "bearer"
    page = server.get("/docs")
    assert page.status_code == 200
    assert "swagger-ui" in page.text
    assert server.get("/docs/swagger-ui-bundle.min.js").status_code == 200


def test_crm_openapi_prints_the_served_document(server: LocalServer) -> None:
    printed = subprocess.run(
        crm_command("openapi"),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(printed.stdout)["paths"] == server.get("/openapi.json").json()["paths"]


def crm_token(server: LocalServer, *args: str) -> subprocess.CompletedProcess[str]:
    aws_port = server.aws_endpoint.rsplit(":", 1)[1]
    return subprocess.run(
        crm_command("token", *args, "--aws-port", aws_port),
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        # The server's stage (start_server clears STAGE) and signing secret
        env={**{k: v for k, v in os.environ.items() if k != "STAGE"}, "JWT_SECRET": TEST_SECRET},
        timeout=60,
    )


def test_crm_token_signs_a_demo_staff_user_in_to_the_pool(server: LocalServer) -> None:
    # When
    printed = crm_token(server, "demo-manager")
    # Then one line: the manager's ID token, which the server accepts
    assert printed.returncode == 0, printed.stderr
    token = printed.stdout.strip()
    assert printed.stdout.count("\n") == 1
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["custom:user_id"], claims["cognito:groups"]) == ("demo-manager", ["manager"])
    assert claims["exp"] - claims["iat"] == 3600
    assert server.get("/leads", token, params={"limit": "1"}).status_code == 200


def test_crm_token_mints_a_vendor_credential_the_server_accepts(server: LocalServer) -> None:
    # When
    printed = crm_token(server, "demo-vendor-1", "--ttl", "120")
    # Then
    assert printed.returncode == 0, printed.stderr
    token = printed.stdout.strip()
    claims = jwt.decode(token, TEST_SECRET, algorithms=["HS256"], audience="crm-api", issuer="crm")
    assert (claims["sub"], claims["exp"] - claims["iat"]) == ("demo-vendor-1", 120)
    assert server.get("/leads", token, params={"limit": "1"}).status_code == 200


def test_crm_token_refuses_a_lifetime_for_a_staff_user(server: LocalServer) -> None:
    printed = crm_token(server, "demo-admin", "--ttl", "120")
    assert printed.returncode == 2
    assert printed.stdout == ""
    assert "--ttl applies to vendor credentials" in printed.stderr


def test_demo_leads_block_duplicates_like_posted_ones(server: LocalServer) -> None:
    # Given a recent demo lead of another vendor
    demo = list_all(server, staff_token("demo-admin"), vendor="V002")[0]
    # When a vendor posts the same person
    response = server.request(
        "POST",
        "/leads",
        token=make_token("demo-vendor-1"),
        json={"email": demo["email"], "tcpa_consent": True},
    )
    # Then it is a duplicate, and staff learn which lead it matched
    assert response.status_code == 409
    assert response.json()["reason_code"] == "DUPLICATE"
    staff = server.request(
        "POST",
        "/leads",
        token=staff_token("demo-admin"),
        json={"email": demo["email"], "vendor_code": "V003", "tcpa_consent": True},
    )
    assert staff.json()["lead_id"] == demo["lead_id"]


@pytest.mark.parametrize("method", ["PUT", "TRACE", "CONNECT", "PROPFIND"])
def test_a_method_the_resource_lacks_is_405_naming_the_methods_it_has(
    server: LocalServer, method: str
) -> None:
    response = server.request(method, "/admin/stats", token=None)
    assert response.status_code == 405
    assert response.headers["Allow"] == "GET, OPTIONS"
    assert response.json()["error"]["code"] == "METHOD_NOT_ALLOWED"


@pytest.mark.parametrize("method", ["GET", "TRACE", "PROPFIND"])
def test_any_method_on_a_path_no_resource_has_is_a_json_404(server: LocalServer, method: str) -> None:
    response = server.request(method, "/admin/nothing-here", token=None)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"


def test_concurrent_requests_to_different_functions_never_see_each_others_request(
    server: LocalServer,
) -> None:
    # Given requests from two origins to two functions, at the same time, many times
    from concurrent.futures import ThreadPoolExecutor

    token = staff_token("demo-admin")
    calls = [
        (origin, path)
        for _ in range(12)
        for origin, path in ((ALLOWED_ORIGIN, "/admin/stats"), (SECOND_ORIGIN, "/leads?limit=1"))
    ]

    def call(origin: str, path: str) -> str | None:
        return server.get(path, token, origin=origin).headers.get("Access-Control-Allow-Origin")

    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda args: call(*args), calls))
    # Then every response answers its own request's origin
    assert answers == [origin for origin, _ in calls]


def test_cached_reads_say_whether_they_hit_the_cache_and_browsers_may_read_it(server: LocalServer) -> None:
    # Given a list no one has read yet, as an admin
    admin = staff_token("demo-admin")
    params = {"limit": "3", "campaign": "x-cache-probe"}
    # When it is read twice
    first = server.get("/leads", admin, params=params)
    second = server.get("/leads", admin, params=params)
    # Then the first read was loaded and the second served from the cache
    assert (first.status_code, second.status_code) == (200, 200)
    assert (first.headers["X-Cache"], second.headers["X-Cache"]) == ("miss", "hit")
    assert first.json() == second.json()
    assert "X-Cache" in first.headers["Access-Control-Expose-Headers"]


def test_a_lead_change_reloads_only_the_lists_that_show_the_lead(server: LocalServer) -> None:
    # Given the staff's, V001's and V002's lists read and cached
    readers = {
        "staff": staff_token("demo-admin"),
        "V001": make_token("demo-vendor-1"),
        "V002": make_token("demo-vendor-2"),
    }

    def cache_status_of_each_list() -> dict[str, str]:
        return {
            name: server.get("/leads", token, params={"limit": "2"}).headers["X-Cache"]
            for name, token in readers.items()
        }

    cache_status_of_each_list()
    assert cache_status_of_each_list() == {"staff": "hit", "V001": "hit", "V002": "hit"}
    # When a V001 lead is posted (a write reads nothing through the cache)
    posted = server.request(
        "POST",
        "/leads",
        readers["staff"],
        json={"email": "x-cache@example.com", "vendor_code": "V001", "tcpa_consent": True},
    )
    assert posted.status_code == 201, posted.text
    assert "X-Cache" not in posted.headers
    # Then the lists that can show it are loaded again, and V002's is still served from the cache
    assert cache_status_of_each_list() == {"staff": "miss", "V001": "miss", "V002": "hit"}


# -- HTTP/1.1 framing and connections ---------------------------------------------------------------
def raw_exchange(server: LocalServer, request: bytes, timeout: float = 60) -> tuple[int, Message, bytes]:
    """Sends `request` as written on a connection of its own; the status, headers and body read back."""
    address = urlsplit(server.base_url)
    with socket.create_connection((address.hostname, address.port), timeout=timeout) as connection:
        connection.sendall(request)
        response = http.client.HTTPResponse(connection)
        response.begin()
        return response.status, response.headers, response.read()


def post_request(body: bytes, *headers: str) -> bytes:
    head = [
        "POST /leads HTTP/1.1",
        "Host: 127.0.0.1",
        f"Origin: {ALLOWED_ORIGIN}",
        "Content-Type: application/json",
        "Connection: close",
        *headers,
    ]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def test_a_hundred_simultaneous_posts_are_each_answered_by_the_function(server: LocalServer) -> None:
    # Given 100 clients that connect and post at the same moment (without a token: the function
    # answers at once, and no lead is written)
    body = b'{"email": "x-simultaneous@example.com", "tcpa_consent": true}'
    request = post_request(body, f"Content-Length: {len(body)}")
    start = threading.Barrier(100, timeout=60)

    def post(_: int) -> tuple[int, str] | str:
        start.wait()
        try:
            status, _headers, answer = raw_exchange(server, request)
        except OSError as exc:  # a reset, a refused or timed-out connection
            return type(exc).__name__
        return status, json.loads(answer)["error"]["code"]

    # When
    with ThreadPoolExecutor(100) as pool:
        answers = list(pool.map(post, range(100)))
    # Then each one reached the function, which answered it
    assert Counter(answers) == {(401, "UNAUTHORIZED"): 100}


HEAD_LINES = f"Host: 127.0.0.1\r\nOrigin: {ALLOWED_ORIGIN}\r\nConnection: close\r\n"
UNREADABLE_REQUESTS = {
    "content-length-not-a-number": (
        f"POST /leads HTTP/1.1\r\n{HEAD_LINES}Content-Length: abc\r\n\r\n{{}}",
        400,
    ),
    "negative-content-length": (f"POST /leads HTTP/1.1\r\n{HEAD_LINES}Content-Length: -1\r\n\r\n{{}}", 400),
    "two-different-content-lengths": (
        f"POST /leads HTTP/1.1\r\n{HEAD_LINES}Content-Length: 2\r\nContent-Length: 3\r\n\r\n{{}}",
        400,
    ),
    "garbage-request-line": (f"GARBAGE\r\n{HEAD_LINES}\r\n", 400),
    "headers-over-64-kb": (f"GET /leads HTTP/1.1\r\n{HEAD_LINES}X-Padding: {'a' * 65536}\r\n\r\n", 431),
}


@pytest.mark.parametrize("case", sorted(UNREADABLE_REQUESTS))
def test_a_request_that_cannot_be_read_gets_the_gateways_json_error(server: LocalServer, case: str) -> None:
    # Given a request whose framing is broken, sent with an allowed Origin
    request, expected = UNREADABLE_REQUESTS[case]
    # When
    status, headers, body = raw_exchange(server, request.encode(), timeout=30)
    # Then it is answered as API Gateway answers a request it rejects: DEFAULT_4XX's body and headers,
    # with no Origin mapped from a request that could not be read
    assert status == expected
    assert headers["Content-Type"] == "application/json"
    error = json.loads(body)["error"]
    assert error["code"] == "GATEWAY_ERROR"
    assert isinstance(error["message"], str)
    assert error["message"]
    assert "Access-Control-Allow-Origin" not in headers
    assert headers["Vary"] == "Origin"


def test_a_chunked_lead_is_read_like_the_same_body_with_a_content_length(server: LocalServer) -> None:
    # Given a lead posted with a chunked body and an Idempotency-Key
    token = make_token("demo-vendor-1")
    key = f"chunked-{uuid.uuid4()}"
    body = json.dumps(
        {"email": f"x-{key}@example.com", "first_name": "Chunk", "state": "TX", "tcpa_consent": True}
    ).encode()
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(part), part) for part in (body[:10], body[10:25], body[25:]))
    chunked = raw_exchange(
        server,
        post_request(
            chunks + b"0\r\n\r\n",
            "Transfer-Encoding: chunked",
            f"Authorization: Bearer {token}",
            f"Idempotency-Key: {key}",
        ),
    )
    # When the same bytes are posted again with a Content-Length and the same key
    sized = server.request(
        "POST",
        "/leads",
        token=token,
        data=body,
        headers={"Content-Type": "application/json", "Idempotency-Key": key},
    )
    # Then the lead was created from the chunked body, and the retry gets its answer again
    # (a key reused with other bytes would be a 422)
    status, _headers, answer = chunked
    assert status == 201, answer
    accepted = json.loads(answer)
    assert accepted["outcome"] == "accepted"
    assert (accepted["lead"]["email"], accepted["lead"]["first_name"]) == (f"x-{key}@example.com", "Chunk")
    assert (sized.status_code, sized.json()) == (201, accepted)


def test_head_is_answered_without_a_body_on_a_kept_alive_connection(server: LocalServer) -> None:
    address = urlsplit(server.base_url)
    connection = http.client.HTTPConnection(address.hostname or "", address.port, timeout=30)
    try:
        connection.request("GET", "/no-such-route")
        get = connection.getresponse()
        error = get.read()
        connection.request("HEAD", "/no-such-route")
        head = connection.getresponse()
        assert head.read() == b""
        # The connection still frames the next response: no body followed the HEAD answer.
        connection.request("GET", "/openapi.json")
        document = connection.getresponse()
        assert json.loads(document.read())["openapi"].startswith("3.")
    finally:
        connection.close()
    assert (get.status, head.status, document.status) == (404, 404, 200)
    assert head.headers["Content-Length"] == str(len(error))


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT])
def test_serve_logs_each_request_and_stops_cleanly_on_a_signal(stop: signal.Signals) -> None:
    # Given `crm serve` without --quiet
    local = start_server(extra_args=("--no-seed",), quiet=False)
    try:
        # When it answers a request and an unreadable one
        assert local.get("/openapi.json").status_code == 200
        raw_exchange(local, b"GARBAGE\r\n\r\n", timeout=30)
        # Then each gets a line on its output
        expected = [
            r"GET /openapi.json -> 200 \(\d+\.\d ms\)",
            r"invalid request \(.*\) -> 400 \(\d+\.\d ms\)",
        ]

        def logged() -> list[bool]:
            return [any(re.fullmatch(pattern, line) for line in local.output) for pattern in expected]

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not all(logged()):
            time.sleep(0.05)
        assert logged() == [True, True], local.output
        # And when the signal comes (SIGTERM from a supervisor, SIGINT from Ctrl-C), it exits cleanly
        local.process.send_signal(stop)
        assert local.process.wait(timeout=30) == 0
    finally:
        stop_server(local)
