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
ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "schemathesis"
SCHEMATHESIS = Path(sys.executable).parent / "st"


@pytest.fixture(scope="module")
def fuzzed_server() -> Iterator[LocalServer]:
    """A server of its own: the fuzzer creates agencies, agents and leads."""
    local = start_server()
    yield local
    stop_server(local)


@pytest.mark.parametrize(
    ("user", "own_vendor_code"),
    [("demo-admin", None), ("demo-vendor-1", VENDORS[0][0])],
    ids=["admin", "vendor"],
)
def test_the_api_keeps_its_openapi_contract(
    fuzzed_server: LocalServer, user: str, own_vendor_code: str | None
) -> None:
    reports = ARTIFACTS / user
    env = {
        **os.environ,
        "SCHEMATHESIS_HOOKS": "tests.e2e.fuzz_hooks",
        "FUZZ_VENDOR_CODES": ",".join(code for code, _, _ in VENDORS),
        "PYTHONPATH": str(PROJECT_ROOT),
    }
    if own_vendor_code:
        env["FUZZ_OWN_VENDOR_CODE"] = own_vendor_code
    done = subprocess.run(
        [
            str(SCHEMATHESIS),
            "run",
            f"{fuzzed_server.base_url}/openapi.json",
            "--header",
            f"Authorization: Bearer {token_for(user)}",
            "--checks",
            "all",
            "--seed",
            str(SEED),
            "--max-examples",
            str(MAX_EXAMPLES),
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
        capture_output=True,
        text=True,
        timeout=900,
    )
    reports.mkdir(parents=True, exist_ok=True)
    (reports / "output.txt").write_text(done.stdout + done.stderr, encoding="utf-8")
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]
    # And every operation of the document was exercised
    document = requests.get(f"{fuzzed_server.base_url}/openapi.json", timeout=30).json()
    operations = sum(len(item) for item in document["paths"].values())
    assert f"Tested: {operations}" in done.stdout
