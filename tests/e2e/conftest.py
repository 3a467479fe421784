"""End-to-end fixtures: `crm serve` in a child process, reached over real HTTP, and Debian's
chromium (headless, through Playwright) for the browser tests."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import boto3
import pytest
import requests
from playwright.sync_api import Browser, Page, sync_playwright

from crm.stack import local_token
from tests.helpers import ALLOWED_ORIGIN, SECOND_ORIGIN, TEST_SECRET, base_env
from tests.integration.conftest import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")
START_TIMEOUT = 30.0
CHROMIUM = "/usr/bin/chromium"


def crm_command(*args: str) -> list[str]:
    """The command line of `crm ARGS` in a child interpreter (measured by coverage when this run is:
    see `patch` in pyproject.toml)."""
    return [sys.executable, "-m", "crm.cli", *args]


@dataclass
class LocalServer:
    base_url: str
    aws_endpoint: str
    process: subprocess.Popen[str]
    banner: list[str] = field(default_factory=list)
    startup_seconds: float = 0.0
    extra_env: dict[str, str] = field(default_factory=dict)  # what it was started with (REDIS_URL...)
    output: list[str] = field(default_factory=list)  # what it printed after the banner
    runtime_dir: str = ""  # its XDG_RUNTIME_DIR, where it records itself for the operator commands

    def get(
        self, path: str, token: str | None = None, origin: str | None = ALLOWED_ORIGIN, **kwargs: Any
    ) -> requests.Response:
        return self.request("GET", path, token=token, origin=origin, **kwargs)

    def request(
        self,
        method: str,
        path: str,
        token: str | None = None,
        origin: str | None = ALLOWED_ORIGIN,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> requests.Response:
        all_headers = dict(headers or {})
        if token:
            all_headers["Authorization"] = f"Bearer {token}"
        if origin:
            all_headers["Origin"] = origin
        return requests.request(method, self.base_url + path, headers=all_headers, timeout=30, **kwargs)  # type: ignore[arg-type]

    def run_cli(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        """`crm ARGS` configured like the functions, against this server's local AWS endpoint."""
        from crm.stack import function_environment, local_template

        environ = {"CORS_ALLOW_ORIGINS": f"{ALLOWED_ORIGIN},{SECOND_ORIGIN}"}
        env = {
            **os.environ,
            **function_environment(local_template(environ), self.aws_endpoint, environ),
            **self.extra_env,
        }
        return subprocess.run(
            crm_command(*args),
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def sqs(self) -> Any:
        return boto3.client(
            "sqs",
            endpoint_url=self.aws_endpoint,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )

    def wait_for_the_bus(self, seconds: float = 30.0) -> None:
        """Waits until the stats events queue holds no message (none waiting, none being
        applied): every lead event published so far has been applied or dead-lettered."""
        from crm.stack import local_template

        queues = local_template({}).queues()  # the server's stage: start_server clears STAGE
        (spec,) = [queue for queue in queues if queue.logical_id == "StatsEventsQueue"]
        sqs = self.sqs()
        url = sqs.get_queue_url(QueueName=spec.name)["QueueUrl"]
        names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
        deadline = time.monotonic() + seconds
        empty_readings = 0
        while empty_readings < 2:
            assert time.monotonic() < deadline, "the stats events queue did not drain"
            counts = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
            empty_readings = empty_readings + 1 if not any(int(n) for n in counts.values()) else 0
            time.sleep(0.05)

    def settled_get(self, path: str, token: str, seconds: float = 30.0, **kwargs: Any) -> requests.Response:
        """A GET that reflects every lead event published so far: once the bus is drained, the
        first answer computed afresh (`X-Cache: miss`) rather than served from the cache."""
        self.wait_for_the_bus(seconds)
        deadline = time.monotonic() + seconds
        while (response := self.get(path, token, **kwargs)).headers.get("X-Cache") != "miss":
            assert time.monotonic() < deadline, f"{path} was never computed afresh"
            time.sleep(0.1)
        return response

    def dynamodb(self) -> object:
        """A client for the server's tables through the documented local endpoint."""
        return self.boto("dynamodb")

    def boto(self, service: str) -> Any:
        """A client of `service` on the server's local AWS endpoint."""
        return boto3.client(
            service,  # type: ignore[call-overload]
            endpoint_url=self.aws_endpoint,
            region_name="us-east-1",
            aws_access_key_id="local",
            aws_secret_access_key="local",
        )


def start_server(
    extra_env: dict[str, str] | None = None, extra_args: tuple[str, ...] = (), quiet: bool = True
) -> LocalServer:
    port, aws_port = free_port(), free_port()
    env = {key: value for key, value in os.environ.items() if not key.startswith(("AWS_", "POWERTOOLS_"))}
    for name in (
        "LEADS_TABLE",
        "USERS_TABLE",
        "VENDORS_TABLE",
        "PRICING_TABLE",
        "AUDIT_TABLE",
        "EVENT_BUS_NAME",
        "STAGE",
        "REDIS_URL",
        "USER_CACHE_SECONDS",
    ):
        env.pop(name, None)
    env.update(
        {
            "JWT_SECRET": TEST_SECRET,
            "CORS_ALLOW_ORIGINS": f"{ALLOWED_ORIGIN},{SECOND_ORIGIN}",
            "PYTHONUNBUFFERED": "1",
            # Stats reads refresh by expiry: a short interval keeps the tests' polls short.
            "STATS_FRESHNESS_SECONDS": "1",
            # Where it records its ports (crm.targets): a directory of its own, so a test server never
            # replaces the record of another, or of the developer's own `make run`.
            "XDG_RUNTIME_DIR": tempfile.mkdtemp(prefix="crm-serve-"),
            **(extra_env or {}),
        }
    )
    quiet_flag = ("--quiet",) if quiet else ()  # --quiet: no line per request
    started = time.monotonic()
    process = subprocess.Popen(
        crm_command("serve", "--port", str(port), "--aws-port", str(aws_port), *quiet_flag, *extra_args),
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    banner: list[str] = []
    assert process.stdout is not None
    while time.monotonic() - started < START_TIMEOUT:
        line = process.stdout.readline()
        if not line:
            if process.poll() is not None:
                raise RuntimeError("crm serve exited:\n" + "".join(banner))
            continue
        banner.append(line.rstrip("\n"))
        if line.startswith("  curl "):
            break
    else:
        process.terminate()
        raise RuntimeError("crm serve did not become ready:\n" + "\n".join(banner))
    use_server_pool(banner)
    server = LocalServer(
        f"http://127.0.0.1:{port}",
        f"http://127.0.0.1:{aws_port}",
        process,
        banner,
        time.monotonic() - started,
        dict(extra_env or {}),
        runtime_dir=env["XDG_RUNTIME_DIR"],
    )
    # Keep further output, so the child never blocks on a full pipe.
    threading.Thread(
        target=lambda: [server.output.append(line.rstrip("\n")) for line in process.stdout or []], daemon=True
    ).start()
    return server


# The staff user pool of the servers this process started (the same for every server: the local
# endpoint derives a pool's ids from its name and settings), as USER_POOL_* variables.
SERVER_POOL: dict[str, str] = {}


def use_server_pool(banner: list[str]) -> None:
    """Points `tests.helpers.staff_token` at the staff user pool a server created, until the end
    of the test module (`_server_pool_within_the_module`)."""
    for line in banner:
        found = re.match(r"\s*staff user pool: (\S+)\s+dashboard client: (\S+)$", line)
        if found:
            pool_id, client_id = found.groups()
            SERVER_POOL.update(
                USER_POOL_ID=pool_id,
                USER_POOL_ISSUER=f"https://cognito-idp.us-east-1.amazonaws.com/{pool_id}",
                USER_POOL_CLIENT_ID=client_id,
            )
            os.environ.update(SERVER_POOL)
            return
    raise AssertionError("no user pool in the banner:\n" + "\n".join(banner))


@pytest.fixture(scope="module", autouse=True)
def _server_pool_within_the_module() -> Iterator[None]:
    """An e2e module signs staff in to its servers' pool; the tests that run after it in this
    process (a unit or integration module, with pytest-xdist) get the test pool back."""
    os.environ.update(SERVER_POOL)
    yield
    test_pool = base_env()
    os.environ.update({name: test_pool[name] for name in SERVER_POOL})


def pool_sign_in(server: LocalServer, user_id: str) -> str:
    """The ID token the server's staff user pool issues to a demo staff user signing in with its
    documented password (as the dashboard signs in)."""
    return local_token(user_id, environ={}, aws_endpoint=server.aws_endpoint)  # the server's stage: local


def eventually(read: Callable[[], T], expected: object, seconds: float = 30.0) -> T:
    """Polls `read` until it returns `expected`, for at most `seconds`, and returns what it read
    last. A write is answered before the stats consumer applies it, as in AWS: what it moves shows
    after the bus delivers it and the cached reads expire (STATS_FRESHNESS_SECONDS)."""
    deadline = time.monotonic() + seconds
    value = read()
    while value != expected and time.monotonic() < deadline:
        time.sleep(0.1)
        value = read()
    return value


def stop_server(server: LocalServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()
    shutil.rmtree(server.runtime_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def server() -> Iterator[LocalServer]:
    local = start_server()
    yield local
    stop_server(local)


def banner_token(server: LocalServer) -> str:
    for line in server.banner:
        found = re.match(r"\s*export TOKEN=(\S+)$", line)
        if found:
            return found.group(1)
    raise AssertionError("no token in the banner:\n" + "\n".join(server.banner))


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    # A missing browser fails the suite (never skips it): `make test` installs Debian's chromium.
    assert Path(CHROMIUM).exists(), (
        f"{CHROMIUM} is missing: run `make system-deps` (apt-get install chromium)"
    )
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=CHROMIUM, headless=True, args=["--no-sandbox", "--headless", "--disable-gpu"]
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    """A fresh browser context (no storage, no cookies) and its page, for one test."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    opened = context.new_page()
    yield opened
    context.close()


def demo_sign_in(user_id: str) -> tuple[str, str]:
    """The email and password a demo staff user signs in with (README, "Staff sign-in")."""
    from crm.seed import demo_staff

    accounts = {user.user_id: (user.email, password) for user, password in demo_staff()}
    return accounts[user_id]


def sign_in(page: Page, dashboard: str, email: str, password: str) -> None:
    """Opens the dashboard and sends its sign-in form (the form shows once config.json is read)."""
    page.goto(f"{dashboard}/")
    page.fill("#email", email)
    page.fill("#password", password)
    page.click("#login")


def sign_in_as(page: Page, dashboard: str, user_id: str) -> None:
    """Signs in on the dashboard as a demo staff user, with the user's email and password."""
    sign_in(page, dashboard, *demo_sign_in(user_id))
