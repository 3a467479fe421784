"""One execution environment of a function, the worker process `crm.functions` starts:
`python -m crm.environment FD HANDLER NAME MEMORY TIMEOUT`.

It runs the function's init (imports the handler module) once, then serves invocations one at a
time over the connection on file descriptor FD until that closes: it receives `(request id,
event)` and answers `("ok", response, report)` or `("error", traceback, report)`, the report
holding the invocation's duration, the init's duration on the first one, and the process's peak
memory. Anything the function prints goes to the runner's own output, as a function's logs go to
CloudWatch.
"""

from __future__ import annotations

import importlib
import resource
import signal
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

Handler = Callable[[dict[str, Any], Any], Any]


@dataclass
class LocalLambdaContext:
    function_name: str
    memory_limit_in_mb: int
    timeout_seconds: int
    aws_request_id: str
    started: float
    function_version: str = "$LATEST"
    log_group_name: str = ""
    log_stream_name: str = "local"

    @property
    def invoked_function_arn(self) -> str:
        return f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"

    def get_remaining_time_in_millis(self) -> int:
        elapsed = time.monotonic() - self.started
        return max(0, int((self.timeout_seconds - elapsed) * 1000))


def load_handler(handler_path: str) -> Handler:
    module_name, _, attribute = handler_path.rpartition(".")
    handler: Handler = getattr(importlib.import_module(module_name), attribute)
    return handler


def serve(connection: Connection, handler_path: str, name: str, memory: int, timeout: int) -> None:
    """Init, then one invocation at a time until the connection closes."""
    started = time.perf_counter()
    handler: Handler | None = None
    try:
        handler = load_handler(handler_path)
    except Exception:
        init_error = traceback.format_exc()
    init_ms: float | None = (time.perf_counter() - started) * 1000
    while True:
        try:
            request_id, event = connection.recv()
        except (EOFError, OSError):
            return
        began = time.perf_counter()
        outcome: tuple[str, Any]
        if handler is None:
            outcome = ("error", f"Runtime.ImportModuleError: {init_error}")
        else:
            context = LocalLambdaContext(name, memory, timeout, request_id, started=time.monotonic())
            try:
                outcome = ("ok", handler(event, context))
            except Exception:
                outcome = ("error", traceback.format_exc())
        report = {
            "duration_ms": (time.perf_counter() - began) * 1000,
            "init_ms": init_ms,
            "max_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024,
        }
        init_ms = None
        connection.send((*outcome, report))


def main(argv: list[str]) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C stops the runner, which stops this
    fd, handler_path, name, memory, timeout = argv
    serve(Connection(int(fd)), handler_path, name, int(memory), int(timeout))


if __name__ == "__main__":
    main(sys.argv[1:])
