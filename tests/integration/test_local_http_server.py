"""The local runner's HTTP server (`crm.http_server`) in this process, in front of a gateway that
records what each request brought: what an HTTP client cannot see from outside `crm serve`
(tests/e2e/test_local_api.py covers framing errors, chunked posts and concurrency end to end)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from crm.gateway import ApiGateway
from crm.http_server import LocalHttpServer
from tests.helpers import ALLOWED_ORIGIN, DISALLOWED_ORIGIN, SECOND_ORIGIN
from tests.integration.conftest import test_template


@dataclass
class Received:
    method: str
    raw_path: str
    header_pairs: list[tuple[str, str]]
    body: bytes
    source_ip: str


class RecordingGateway(ApiGateway):
    """The template's gateway responses; every request answered 200 with its own body, after
    `wait` has returned."""

    def __init__(self, wait: Callable[[], object] = lambda: None) -> None:
        super().__init__([], None, test_template().gateway_responses(), "test")  # type: ignore[arg-type]
        self.wait = wait
        self.received: list[Received] = []

    def handle(self, *request: Any) -> tuple[int, list[tuple[str, str]], bytes]:
        self.received.append(Received(*request))
        self.wait()
        # A function's own Content-Length is replaced by the server's, as API Gateway does.
        return 200, [("Content-Type", "application/octet-stream"), ("Content-Length", "1")], request[3]


@pytest.fixture
def serve() -> Iterator[Callable[[ApiGateway], str]]:
    """Serves a gateway on a free port from a thread; gives its base URL."""
    servers: list[LocalHttpServer] = []

    def start(gateway: ApiGateway) -> str:
        server = LocalHttpServer(("127.0.0.1", 0), gateway, log_requests=False)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_address[1]}"

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_requests_wait_on_their_functions_in_parallel(serve: Callable[[ApiGateway], str]) -> None:
    # Given a gateway whose every call waits until 64 calls are running at once
    together = threading.Barrier(64, timeout=30)
    base_url = serve(RecordingGateway(wait=together.wait))
    # When 64 clients call it at the same time
    with ThreadPoolExecutor(64) as pool:
        statuses = list(
            pool.map(lambda n: requests.get(f"{base_url}/x/{n}", timeout=60).status_code, range(64))
        )
    # Then all were running together (a smaller pool would break the barrier: 500s)
    assert statuses == [200] * 64


def test_headers_reach_the_gateway_as_sent_with_the_peer_as_source(
    serve: Callable[[ApiGateway], str],
) -> None:
    # Given
    gateway = RecordingGateway()
    base_url = serve(gateway)
    port = int(base_url.rsplit(":", 1)[1])
    request = (
        b"GET /leads?limit=5&x=%2F HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"X-Mixed-Case: 1\r\nauthorization: Bearer t\r\n"
        b"X-Forwarded-For: 203.0.113.9\r\nAccept: a\r\nAccept: b\r\nConnection: close\r\n\r\n"
    )
    # When
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        connection.sendall(request)
        assert connection.makefile("rb").readline().startswith(b"HTTP/1.1 200")
    # Then names keep their case, repeated headers stay in order, and X-Forwarded-For is only a header
    (received,) = gateway.received
    assert (received.method, received.raw_path) == ("GET", "/leads?limit=5&x=%2F")
    assert received.header_pairs == [
        ("Host", "127.0.0.1"),
        ("X-Mixed-Case", "1"),
        ("authorization", "Bearer t"),
        ("X-Forwarded-For", "203.0.113.9"),
        ("Accept", "a"),
        ("Accept", "b"),
        ("Connection", "close"),
    ]
    assert received.source_ip == "127.0.0.1"


def test_a_binary_chunked_body_reaches_the_gateway_byte_for_byte(serve: Callable[[ApiGateway], str]) -> None:
    # Given
    gateway = RecordingGateway()
    base_url = serve(gateway)
    body = bytes(range(256)) * 1000
    # When it is posted in chunks (requests sends an iterator chunked)
    response = requests.post(f"{base_url}/upload", data=iter([body[:1000], body[1000:]]), timeout=30)
    # Then the gateway read all of it, and the answer is framed by the server
    assert gateway.received[0].body == body
    assert dict(gateway.received[0].header_pairs)["Transfer-Encoding"] == "chunked"
    assert response.content == body
    assert response.headers["Content-Length"] == str(len(body))


def test_a_failure_in_the_gateway_is_a_json_500_with_cors(serve: Callable[[ApiGateway], str]) -> None:
    # Given a gateway that fails on its own (a function's failure is the gateway's 502)
    def fail() -> None:
        raise RuntimeError("boom")

    base_url = serve(RecordingGateway(wait=fail))
    # When
    response = requests.get(f"{base_url}/leads", headers={"Origin": ALLOWED_ORIGIN}, timeout=30)
    # Then
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "INTERNAL_ERROR"
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    assert response.headers["Vary"] == "Origin"


@pytest.mark.parametrize("origin", [ALLOWED_ORIGIN, SECOND_ORIGIN, DISALLOWED_ORIGIN])
def test_an_unknown_route_echoes_the_request_origin_over_http(
    serve: Callable[[ApiGateway], str], origin: str
) -> None:
    # Given the template's gateway responses in front of no route
    base_url = serve(ApiGateway([], None, test_template().gateway_responses(), "test"))  # type: ignore[arg-type]
    # When a browser-like client asks for a path no resource has
    response = requests.get(f"{base_url}/no-such-route", headers={"Origin": origin}, timeout=30)
    without_origin = requests.get(f"{base_url}/no-such-route", timeout=30)
    # Then each origin gets its own, as API Gateway's mapping of the Origin header gives it
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "NOT_FOUND"
    assert response.headers["Access-Control-Allow-Origin"] == origin
    assert response.headers["Vary"] == "Origin"
    assert "Access-Control-Allow-Credentials" not in response.headers
    assert without_origin.status_code == 404
    assert "Access-Control-Allow-Origin" not in without_origin.headers
