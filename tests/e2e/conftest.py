"""End-to-end fixtures: `crm serve` in a child process, reached over real HTTP."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests

from tests.helpers import ALLOWED_ORIGIN, SECOND_ORIGIN, TEST_SECRET
from tests.integration.conftest import free_port

PROJECT_ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 30.0


def crm_command(*args: str) -> list[str]:
    """The command line of `crm ARGS` in a child interpreter.

    When this test run measures coverage, the child runs under `coverage run` and writes its own
    data file next to this process's, where the run combines it. Only the `crm` process itself is
    measured: the moto server that `crm serve` starts runs in a plain interpreter."""
    import coverage

    current = coverage.Coverage.current()
    if current is None:
        return [sys.executable, "-m", "crm.cli", *args]
    measure = [sys.executable, "-m", "coverage", "run", "--parallel-mode"]
    measure.append(f"--data-file={os.path.abspath(current.config.data_file)}")
    if current.config.config_file:
        measure.append(f"--rcfile={os.path.abspath(current.config.config_file)}")
    return [*measure, "-m", "crm.cli", *args]


@dataclass
class LocalServer:
    base_url: str
    aws_endpoint: str
    process: subprocess.Popen[str]
    banner: list[str] = field(default_factory=list)
    startup_seconds: float = 0.0
    extra_env: dict[str, str] = field(default_factory=dict)  # what it was started with (REDIS_URL...)
    output: list[str] = field(default_factory=list)  # what it printed after the banner

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

    def dynamodb(self) -> object:
        """A client for the server's tables through the documented local endpoint."""
        return boto3.client(
            "dynamodb",
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
    server = LocalServer(
        f"http://127.0.0.1:{port}",
        f"http://127.0.0.1:{aws_port}",
        process,
        banner,
        time.monotonic() - started,
        dict(extra_env or {}),
    )
    # Keep further output, so the child never blocks on a full pipe.
    threading.Thread(
        target=lambda: [server.output.append(line.rstrip("\n")) for line in process.stdout or []], daemon=True
    ).start()
    return server


def stop_server(server: LocalServer) -> None:
    server.process.terminate()
    try:
        server.process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        server.process.kill()


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
