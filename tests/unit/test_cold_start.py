"""A handler module imports nothing that not every call needs (each checked in a fresh interpreter)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

ONLY_SOME_CALLS_NEED = {
    "redis": "only with REDIS_URL",
    "phonenumbers": "only when a lead is posted",
    "email_validator": "only when a lead is posted",
    "aws_xray_sdk": "never: traces come from Lambda's active tracing",
    "aws_lambda_powertools.utilities.idempotency": "only with an Idempotency-Key",
    "aws_lambda_powertools.utilities.parameters": "only with JWT_SECRET_ARN",
}


@pytest.mark.parametrize(
    "module", ["leads.app", "stats.app", "stats.consumer", "agencies.app", "reports.app"]
)
def test_handler_module_imports_only_what_every_call_needs(module: str) -> None:
    lazy = sorted(ONLY_SOME_CALLS_NEED)
    probe = f"import sys, {module}; print(sorted(m for m in {lazy!r} if m in sys.modules))"
    done = subprocess.run(
        [sys.executable, "-c", probe],
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert done.stdout.strip() == "[]", done.stdout
