"""The local gateway (`crm.gateway.ApiGateway`) over HTTP/1.1, served by uvicorn with its h11
protocol: the standard library's `http.server` kept a listen queue of 5 (connections beyond it were
reset), and misread framing it does not check (a bad, negative or doubled Content-Length, chunked
bodies). h11 reads the framing as RFC 9112 says; what it cannot read is answered here as API
Gateway answers a request it rejects: the template's DEFAULT_4XX gateway response, a JSON error
body (400, or 431 for headers over MAX_HEADER_BYTES) whose headers map nothing from the request,
which was not read: no Access-Control-Allow-Origin.

Each request's body is read in full, then `ApiGateway.handle` runs in a worker thread (it blocks
for as long as the function takes), so many requests are served at once.
"""

from __future__ import annotations

import asyncio
import logging
import socket
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from concurrent.futures import Executor, Future
from functools import partial
from http import HTTPStatus
from queue import SimpleQueue
from typing import Any, ParamSpec, TypeVar, cast

import h11
import uvicorn
from uvicorn.config import Config
from uvicorn.protocols.http.h11_impl import H11Protocol
from uvicorn.server import ServerState

from crm.gateway import MAX_PAYLOAD_BYTES, ApiGateway

# Not under "crm": that is the functions' own (Powertools) logger, at their log level.
log = logging.getLogger("local.http")

# Connections waiting to be accepted (the kernel caps it at net.core.somaxconn).
BACKLOG = 2048
# Requests handled at once; more wait for a thread, none is refused.
WORKER_THREADS = 128
# The request line and headers together; more is a 431 (http.server allowed 64 KB a line).
MAX_HEADER_BYTES = 64 * 1024
# An idle keep-alive connection is closed after this; a longer wait than uvicorn's 5 s makes a
# client's reuse of a connection the server is closing at that very moment rarer.
KEEP_ALIVE_SECONDS = 60
# On SIGTERM/Ctrl-C, requests still running get this long to finish.
GRACEFUL_SHUTDOWN_SECONDS = 5
# Framing headers are the server's to write, as API Gateway drops a function's.
FRAMING_HEADERS = frozenset({"content-length", "connection", "transfer-encoding"})
# The scope key of the request's headers with their names as sent (see _GatewayProtocol).
HEADERS_AS_SENT = "crm.headers_as_sent"

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Mapping[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]
Params = ParamSpec("Params")
Result = TypeVar("Result")


class DaemonThreadPool(Executor):
    """Up to `size` daemon threads, started as needed. The standard ThreadPoolExecutor joins its
    threads at interpreter exit, so a request still waiting on a function would hold up
    `crm serve`'s exit; ThreadingHTTPServer's request threads were daemons too."""

    def __init__(self, size: int, name: str) -> None:
        self._size = size
        self._name = name
        self._jobs: SimpleQueue[Callable[[], None] | None] = SimpleQueue()
        self._idle = threading.Semaphore(0)
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def submit(
        self, fn: Callable[Params, Result], /, *args: Params.args, **kwargs: Params.kwargs
    ) -> Future[Result]:
        future: Future[Result] = Future()

        def job() -> None:
            if not future.set_running_or_notify_cancel():
                return
            try:
                result = fn(*args, **kwargs)
            except BaseException as exc:
                future.set_exception(exc)
            else:
                future.set_result(result)

        self._jobs.put(job)
        if not self._idle.acquire(blocking=False):
            with self._lock:
                if len(self._threads) < self._size:
                    thread = threading.Thread(
                        target=self._work, name=f"{self._name}-{len(self._threads)}", daemon=True
                    )
                    self._threads.append(thread)
                    thread.start()
        return future

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            job()
            self._idle.release()

    def shutdown(self, wait: bool = True, *, cancel_futures: bool = False) -> None:
        """Ends each thread once the jobs already queued are done; never waits for them."""
        with self._lock:
            for _ in self._threads:
                self._jobs.put(None)
            self._threads.clear()


class GatewayApp:
    """ASGI application: each HTTP request to `ApiGateway.handle`, in a worker thread."""

    def __init__(self, gateway: ApiGateway, log_requests: bool, workers: Executor) -> None:
        self.gateway = gateway
        self.log_requests = log_requests
        self.workers = workers

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":  # no lifespan or websocket support is configured
            return
        started = time.perf_counter()
        body = await _read_body(receive)
        if body is None:  # the client went away
            return
        query = scope["query_string"].decode("latin-1")
        target = scope["raw_path"].decode("latin-1") + (f"?{query}" if query else "")
        client = scope.get("client")
        header_pairs = _header_pairs(scope)
        call = partial(self._handle, scope["method"], target, header_pairs, body, client[0] if client else "")
        try:
            status, headers, data = await asyncio.get_running_loop().run_in_executor(self.workers, call)
        except asyncio.CancelledError:
            # The server is stopping and this request outlasted GRACEFUL_SHUTDOWN_SECONDS: it is
            # answered, as API Gateway answers when it gives up on a function, and ends quietly.
            status, headers, data = self.gateway.gateway_response(
                "DEFAULT_5XX", 503, "Service Unavailable", header_pairs
            )
        headers = [(name, value) for name, value in headers if name.lower() not in FRAMING_HEADERS]
        headers.append(("Content-Length", str(len(data))))
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers],
            }
        )
        # uvicorn sends no body for HEAD, and keeps the Content-Length of the GET.
        await send({"type": "http.response.body", "body": data})
        self.log_line(f"{scope['method']} {target}", status, started)

    def _handle(
        self, method: str, target: str, header_pairs: list[tuple[str, str]], body: bytes, source_ip: str
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        try:
            return self.gateway.handle(method, target, header_pairs, body, source_ip)
        except Exception:
            # The gateway answers a function's failure itself; this is the runner's own.
            log.exception("%s %s failed in the local gateway", method, target.split("?")[0])
            return self.gateway.gateway_response("DEFAULT_5XX", 500, "Internal server error", header_pairs)

    def log_line(self, request: str, status: int, started: float) -> None:
        if self.log_requests:
            elapsed = (time.perf_counter() - started) * 1000
            sys.stderr.write(f"{request} -> {status} ({elapsed:.1f} ms)\n")


async def _read_body(receive: Receive) -> bytes | None:
    """The request body (h11 has undone any chunked coding), or None if the client went away.
    Reading stops one byte past API Gateway's limit: the gateway answers 413 to that much, and
    uvicorn discards the rest."""
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        body += message.get("body", b"")
        if not message.get("more_body", False) or len(body) > MAX_PAYLOAD_BYTES:
            return bytes(body)


def _header_pairs(scope: Scope) -> list[tuple[str, str]]:
    """The headers with their names as the client wrote them, as API Gateway passes them on."""
    as_sent: list[tuple[str, str]] | None = scope.get(HEADERS_AS_SENT)
    if as_sent is not None:
        return as_sent
    return [(name.decode("latin-1"), value.decode("latin-1")) for name, value in scope["headers"]]


class _Connection(h11.Connection):
    """h11's connection, keeping what uvicorn's protocol does not pass on: the request's headers
    with the names as sent (ASGI lowercases them), and the error that made a request unreadable."""

    headers_as_sent: list[tuple[str, str]]
    error: h11.RemoteProtocolError | None = None

    def next_event(self) -> h11.Event | type[h11.NEED_DATA] | type[h11.PAUSED]:
        try:
            event = super().next_event()
        except h11.RemoteProtocolError as exc:
            self.error = exc
            raise
        if isinstance(event, h11.Request):
            raw = event.headers.raw_items()
            # h11 bounds only a head still incomplete in its buffer; one that arrived whole is
            # bounded here, to the same size.
            size = len(event.method) + len(event.target) + sum(len(name) + len(value) for name, value in raw)
            if size > MAX_HEADER_BYTES:
                self.error = h11.RemoteProtocolError("request head too large", error_status_hint=431)
                raise self.error
            self.headers_as_sent = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in raw]
        return event


class _GatewayProtocol(H11Protocol):
    """uvicorn's h11 protocol, answering a request it cannot read with the gateway's JSON error
    (uvicorn's own answer is a plain-text 400)."""

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.conn = _Connection(h11.SERVER, max_incomplete_event_size=MAX_HEADER_BYTES)
        assert isinstance(config.app, GatewayApp)
        self.gateway_app = config.app
        self.app = cast(Any, self._with_headers_as_sent)

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        # uvicorn writes a response's headers and body separately; without TCP_NODELAY, Nagle's
        # algorithm and the client's delayed ACK add ~40 ms to each keep-alive response. asyncio
        # sets it only on sockets made with proto=IPPROTO_TCP, which a listening socket passed in
        # (as here) need not be.
        connection = transport.get_extra_info("socket")
        if connection is not None:
            connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        super().connection_made(transport)

    async def _with_headers_as_sent(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Called as this connection's request starts: h11 reads no next request on the connection
        # until this one is answered, so the connection's headers are this request's.
        conn = cast(_Connection, self.conn)
        await self.gateway_app({**scope, HEADERS_AS_SENT: conn.headers_as_sent}, receive, send)

    def send_400_response(self, msg: str) -> None:
        started = time.perf_counter()
        error = cast(_Connection, self.conn).error
        status = 431 if error is not None and error.error_status_hint == 431 else 400
        # The request's headers were not read (or are a previous request's): none is mapped, so
        # the answer has no Access-Control-Allow-Origin.
        status, headers, body = self.gateway_app.gateway.gateway_response(
            "DEFAULT_4XX", status, HTTPStatus(status).phrase, []
        )
        headers = [*headers, ("Content-Length", str(len(body))), ("Connection", "close")]
        encoded = [(name.encode("latin-1"), value.encode("latin-1")) for name, value in headers]
        try:
            for event in (
                h11.Response(
                    status_code=status,
                    headers=[*self.server_state.default_headers, *encoded],
                    reason=HTTPStatus(status).phrase,
                ),
                h11.Data(data=body),
                h11.EndOfMessage(),
            ):
                self.transport.write(self.conn.send(event) or b"")
        except h11.LocalProtocolError:
            pass  # an answer had already begun: closing the connection is all there is left
        self.transport.close()
        self.gateway_app.log_line(f"invalid request ({error})", status, started)


class LocalHttpServer:
    """`gateway` over HTTP on `address`. The socket listens from construction (a request made
    before `serve_forever` waits in the backlog); `serve_forever` serves until `shutdown`, or
    until SIGINT/SIGTERM when run on the main thread (uvicorn raises the signal again once it has
    stopped, for the handler that was in place before)."""

    def __init__(self, address: tuple[str, int], gateway: ApiGateway, log_requests: bool = True) -> None:
        self.gateway = gateway
        self.socket = socket.create_server(address, backlog=BACKLOG)
        self.server_address: tuple[str, int] = self.socket.getsockname()[:2]
        self._workers = DaemonThreadPool(WORKER_THREADS, name="crm-http")
        config = Config(
            GatewayApp(gateway, log_requests, self._workers),
            http=_GatewayProtocol,
            ws="none",
            lifespan="off",
            loop="asyncio",
            interface="asgi3",
            # The client address is the TCP peer's, as API Gateway's sourceIp: no X-Forwarded-For.
            proxy_headers=False,
            server_header=False,
            access_log=False,  # the one-line log above instead
            log_config=None,  # crm's logging configuration stays as it is
            log_level=logging.ERROR,  # uvicorn's warnings are about requests answered above
            backlog=BACKLOG,
            timeout_keep_alive=KEEP_ALIVE_SECONDS,
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
            h11_max_incomplete_event_size=MAX_HEADER_BYTES,
        )
        self._server = uvicorn.Server(config)
        self._stopped = threading.Event()

    def serve_forever(self) -> None:
        try:
            self._server.run(sockets=[self.socket])
        finally:
            self._stopped.set()

    def shutdown(self) -> None:
        """Stops `serve_forever` running in another thread, and waits until it has returned."""
        self._server.should_exit = True
        self._stopped.wait(timeout=GRACEFUL_SHUTDOWN_SECONDS + 5)

    def server_close(self) -> None:
        self.socket.close()
        self._workers.shutdown(wait=False)
