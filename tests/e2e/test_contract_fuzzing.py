"""Contract fuzzing: schemathesis against the merged OpenAPI document of a running local server.

Every check is on (server errors, status codes, content types, headers, response schemas,
acceptance of valid and rejection of invalid data, undeclared methods, ignored auth, ...), as an
admin and as a vendor, with a fixed seed and a bounded number of examples per operation, so a run
is repeatable and its failures reproducible (`st replay`). What the fuzzer is taught beyond the
document is in `fuzz_hooks`. The reports land in test-artifacts/schemathesis/.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from crm.seed import VENDORS
from tests.e2e.conftest import PROJECT_ROOT, LocalServer, start_server, stop_server
from tests.helpers import token_for

SEED = 20261127
MAX_EXAMPLES = 10
# The fuzzer checks answers, not their latency (`crm bench` measures that): under `make test` its
# server shares the machine with the other worker's servers and browser, so an answer walking a
# month of empty audit days can take longer than schemathesis's default 10 s, the limit of both
# its request timeout and its response-time check.
RESPONSE_TIME_LIMIT_SECONDS = 60
ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "schemathesis"
SCHEMATHESIS = Path(sys.executable).parent / "st"


@pytest.fixture(scope="module")
def fuzzed_server() -> Iterator[LocalServer]:
    """A server of its own: the fuzzer creates agencies, agents and leads."""
    local = start_server()
    yield local
    stop_server(local)


PASSES = {"admin": ("demo-admin", None), "vendor": ("demo-vendor-1", VENDORS[0][0])}


def fuzz(server: LocalServer, user: str, own_vendor_code: str | None) -> subprocess.Popen[str]:
    """Starts schemathesis against `server` as `user`; its output goes to the pass's report dir."""
    reports = ARTIFACTS / user
    reports.mkdir(parents=True, exist_ok=True)
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.e2e.fuzz_hooks",
        "FUZZ_VENDOR_CODES": ",".join(code for code, _, _ in VENDORS),
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    if own_vendor_code:
        env["FUZZ_OWN_VENDOR_CODE"] = own_vendor_code
    return subprocess.Popen(
        [
            str(SCHEMATHESIS),
            "run",
            f"{server.base_url}/openapi.json",
            "--header",
            f"Authorization: Bearer {token_for(user)}",
            "--checks",
            "all",
            "--seed",
            str(SEED),
            "--max-examples",
            str(MAX_EXAMPLES),
            "--request-timeout",
            str(RESPONSE_TIME_LIMIT_SECONDS),
            "--max-response-time",
            str(RESPONSE_TIME_LIMIT_SECONDS),
            "--workers",
            "1",
            "--generation-database",
            "none",
            "--no-color",
            "--report",
            "junit",
            "--report-dir",
            str(reports),
        ],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=(reports / "output.txt").open("w", encoding="utf-8"),
        stderr=subprocess.STDOUT,
        text=True,
    )


@pytest.fixture(scope="module")
def fuzz_runs(fuzzed_server: LocalServer) -> dict[str, tuple[int, str]]:
    """Both passes, run at the same time (each is one client, mostly waiting on the server or on
    its own generation): pass -> (exit status, output)."""
    running = {name: fuzz(fuzzed_server, *how) for name, how in PASSES.items()}
    results = {}
    for name, process in running.items():
        try:
            status = process.wait(timeout=900)
        except subprocess.TimeoutExpired:
            process.kill()
            status = process.wait()
        user = PASSES[name][0]
        results[name] = (status, (ARTIFACTS / user / "output.txt").read_text(encoding="utf-8"))
    return results


@pytest.mark.timeout(900)  # the first pass's item waits for both (its fixture runs them)
@pytest.mark.parametrize("name", sorted(PASSES))
def test_the_api_keeps_its_openapi_contract(
    fuzzed_server: LocalServer, fuzz_runs: dict[str, tuple[int, str]], name: str
) -> None:
    status, output = fuzz_runs[name]
    assert status == 0, output[-8000:]
    # And every operation of the document was exercised
    document = requests.get(f"{fuzzed_server.base_url}/openapi.json", timeout=30).json()
    operations = sum(len(item) for item in document["paths"].values())
    assert f"Tested: {operations}" in output
