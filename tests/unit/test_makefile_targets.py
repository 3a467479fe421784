"""The Makefile's targets for running and operating the stack, as `make -n` prints them (the
deploy targets need an AWS account, so only their commands are checked here)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def planned(*args: str) -> list[str]:
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", *args],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return done.stdout.splitlines()


def test_make_run_passes_its_ports_to_crm_serve() -> None:
    assert (
        planned("run", "PORT=3100", "AWS_PORT=8100")[-1] == ".venv/bin/crm serve --port 3100 --aws-port 8100"
    )
    assert planned("run")[-1] == ".venv/bin/crm serve --port 3000 --aws-port 8000"


@pytest.mark.parametrize(
    ("target", "commands"),
    [
        (
            ["deploy"],
            [
                ".venv/bin/sam validate --lint",
                ".venv/bin/sam build",
                ".venv/bin/sam deploy --config-env default",
            ],
        ),
        (["deploy", "GUIDED=1"], [".venv/bin/sam deploy --config-env default --guided"]),
        (["delete", "CONFIG_ENV=prod"], [".venv/bin/sam delete --config-env prod"]),
        (["logs"], [".venv/bin/sam logs --config-env default --tail"]),
        (
            ["logs", "FUNCTION=LeadsFunction"],
            [".venv/bin/sam logs --config-env default --tail --name LeadsFunction"],
        ),
    ],
)
def test_deploy_delete_and_logs_run_sam_with_samconfig(target: list[str], commands: list[str]) -> None:
    assert planned(*target)[-len(commands) :] == commands
