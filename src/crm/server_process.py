"""`crm serve` in a child process, for the tools that measure it (`crm bench --burst`,
`loadtest/run.py`): on free ports, its stdout and stderr in files, reached only over HTTP and
through its local AWS endpoint. Whatever the server runs inside (worker processes, a Redis of
its own) stays its own business: it is stopped by its process group."""

from __future__ import annotations

import os
import signal
import subprocess  # nosec B404  # runs this interpreter with fixed arguments
import sys
import time
import urllib.request
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from crm.stack import free_port

READY_PATH = "/openapi.json"  # served by the runner itself: up once the gateway listens
# Not passed on: the server must build its own local stack (its table names from the local
# stage, its own endpoint and fake credentials), whatever this process was configured for.
NOT_INHERITED_PREFIXES = ("AWS_",)
NOT_INHERITED = frozenset({"STAGE", "POWERTOOLS_METRICS_DISABLED"})


def server_environment(environ: Mapping[str, str], metrics: bool) -> dict[str, str]:
    """The child's environment: this one without the AWS and stage settings, with unbuffered
    output, and Powertools metrics printed (EMF, one line per invocation) when `metrics`."""
    env = {
        name: value
        for name, value in environ.items()
        if name not in NOT_INHERITED and not name.startswith(NOT_INHERITED_PREFIXES)
    }
    env["PYTHONUNBUFFERED"] = "1"
    env["POWERTOOLS_METRICS_DISABLED"] = "false" if metrics else "true"
    return env


@dataclass
class ServerProcess:
    process: subprocess.Popen[bytes]
    base_url: str
    aws_endpoint: str
    stdout: Path
    stderr: Path

    @classmethod
    def start(
        cls, serve_args: Sequence[str], out: Path, env: Mapping[str, str], name: str = "server"
    ) -> ServerProcess:
        """`crm serve --quiet SERVE_ARGS` on free ports; its output goes to OUT/NAME.log and
        OUT/NAME.err.log. Call `wait_until_ready` before using it."""
        port, aws_port = free_port(), free_port()
        while aws_port == port:
            aws_port = free_port()
        out.mkdir(parents=True, exist_ok=True)
        stdout, stderr = out / f"{name}.log", out / f"{name}.err.log"
        command = [sys.executable, "-m", "crm.cli", "serve", "--quiet", "--no-record"]
        command += ["--port", str(port), "--aws-port", str(aws_port), *serve_args]
        with stdout.open("wb") as out_file, stderr.open("wb") as err_file:
            # A session of its own: stopping it stops everything it started, and nothing else.
            process = subprocess.Popen(  # nosec B603  # this interpreter, fixed arguments
                command, stdout=out_file, stderr=err_file, env=dict(env), start_new_session=True
            )
        return cls(process, f"http://127.0.0.1:{port}", f"http://127.0.0.1:{aws_port}", stdout, stderr)

    def wait_until_ready(self, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"crm serve exited with code {self.process.returncode}; see {self.stderr}")
            try:
                with urllib.request.urlopen(self.base_url + READY_PATH, timeout=2) as response:  # noqa: S310  # nosec B310  # http://127.0.0.1 only
                    if response.status == 200:
                        return
            except OSError:
                time.sleep(0.25)
        self.stop()
        raise RuntimeError(f"crm serve did not answer within {timeout:.0f} s; see {self.stderr}")

    def stop(self) -> None:
        """SIGTERM (the server then stops what it started), SIGKILL to its group if it lingers."""
        if self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)
