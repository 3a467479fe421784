"""Test-wide configuration: every test process starts from the same environment, set before any
function module is imported (function modules build their resolver at import, as in Lambda)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import base_env

os.environ.update(base_env())
# Never reach a real AWS endpoint from a test: integration tests point boto3 at moto.
os.environ.pop("AWS_PROFILE", None)

E2E_TESTS = Path(__file__).parent / "e2e"
POOL_VARIABLES = ("USER_POOL_ID", "USER_POOL_CLIENT_ID", "USER_POOL_ISSUER")


@pytest.fixture(autouse=True)
def _staff_pool_of_the_test(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unit and integration tests sign and verify staff tokens for the test pool (`base_env`),
    whatever ran before them in this process: an e2e test's server points the environment at the
    pool it created (`tests.e2e.conftest.use_server_pool`) for the rest of the session."""
    if request.path.is_relative_to(E2E_TESTS):
        return
    pool = base_env()
    for name in POOL_VARIABLES:
        monkeypatch.setenv(name, pool[name])
