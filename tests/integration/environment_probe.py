"""Handlers for the execution environment tests (`test_execution_environments.py`), found by their
import path as a template's handlers are. Each runs in a worker process of its own."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any

# Module-level state: one per execution environment, as in Lambda.
INVOCATIONS = 0


def count(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Counts this environment's invocations and says which process served them; never answers
    when the event says `hang`, raises when it says `fail`."""
    global INVOCATIONS
    INVOCATIONS += 1
    if event.get("hang"):
        threading.Event().wait()
    if event.get("fail"):
        raise RuntimeError("the handler failed")
    return {"pid": os.getpid(), "invocations": INVOCATIONS, "request_id": context.aws_request_id}


def meet(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Leaves a mark in `event["folder"]`, then waits (at most `event["within"]` seconds) until
    `event["parties"]` marks are there: it returns only if that many invocations run at once."""
    folder = Path(event["folder"])
    (folder / str(os.getpid())).touch()
    deadline = time.monotonic() + event["within"]
    while len(list(folder.iterdir())) < event["parties"]:
        if time.monotonic() > deadline:
            raise TimeoutError("the other invocations never ran beside this one")
        time.sleep(0.01)
    return count(event, context)
