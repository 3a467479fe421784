"""Where `crm serve` records itself for the operator commands, and how a stale record is read."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from crm.targets import ServeRecord, read_record, record_path, remove_record, write_record


def record(pid: int) -> ServeRecord:
    return ServeRecord(
        pid=pid,
        aws_endpoint="http://127.0.0.1:8100",
        stage="local",
        redis_url="redis://127.0.0.1:6390/0",
        api_url="http://127.0.0.1:3100",
    )


def test_the_record_lives_in_the_runtime_directory_when_there_is_one(tmp_path: Path) -> None:
    environ = {"XDG_RUNTIME_DIR": str(tmp_path)}
    assert record_path(environ) == tmp_path / "crm" / "serve.json"
    assert record_path({}).parts[-2:] == (".crm", "serve.json")


def test_a_running_servers_record_is_read_back_and_private(tmp_path: Path) -> None:
    # Given
    environ = {"XDG_RUNTIME_DIR": str(tmp_path)}
    # When
    path = write_record(record(os.getpid()), environ)
    # Then
    assert read_record(environ) == record(os.getpid())
    assert path is not None
    assert path.stat().st_mode & 0o077 == 0


def test_the_record_of_a_server_that_no_longer_runs_is_ignored(tmp_path: Path) -> None:
    # Given the record of a process that has exited (a server killed before it could remove it)
    environ = {"XDG_RUNTIME_DIR": str(tmp_path)}
    finished = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True, check=True
    )
    write_record(record(int(finished.stdout)), environ)
    # Then
    assert read_record(environ) is None


def test_a_server_stopping_leaves_the_record_of_a_later_one(tmp_path: Path) -> None:
    # Given a record of this (running) process, as if a later server replaced an earlier one's
    environ = {"XDG_RUNTIME_DIR": str(tmp_path)}
    write_record(record(os.getpid()), environ)
    # When the earlier one stops
    remove_record(os.getpid() + 1, environ)
    # Then the record stays; its own stop removes it
    assert read_record(environ) is not None
    remove_record(os.getpid(), environ)
    assert not record_path(environ).exists()
