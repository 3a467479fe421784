"""Hosts the template's Lambda functions in this process, one warm instance per function.

One lock, `ONE_AT_A_TIME`, serialises every invocation of every function: only one handler runs
at a time in the whole process, as in a Lambda execution environment. A Powertools resolver keeps
per-request state on the app object (`app.context`, cleared after each request), and the request
itself on its base class (`BaseRouter.current_event` and `lambda_context`), where every resolver
in the process reads it. Two concurrent invocations, even of different functions, would read each
other's request (headers and token included), so a lock per function would not be enough.
"""

from __future__ import annotations

import importlib
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from crm.template import Template

Handler = Callable[[dict[str, Any], Any], Any]
ONE_AT_A_TIME = threading.Lock()


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


class LocalFunction:
    def __init__(self, logical_id: str, name: str, handler_path: str, memory: int, timeout: int) -> None:
        self.logical_id = logical_id
        self.name = name
        self.handler_path = handler_path
        self.memory = memory
        self.timeout = timeout
        self._handler: Handler | None = None

    def load(self) -> Handler:
        if self._handler is None:
            module_name, _, attribute = self.handler_path.rpartition(".")
            self._handler = getattr(importlib.import_module(module_name), attribute)
        return self._handler

    def invoke(self, event: dict[str, Any]) -> Any:
        handler = self.load()
        context = LocalLambdaContext(
            function_name=self.name,
            memory_limit_in_mb=self.memory,
            timeout_seconds=self.timeout,
            aws_request_id=str(uuid.uuid4()),
            started=time.monotonic(),
        )
        with ONE_AT_A_TIME:
            return handler(event, context)


class FunctionRegistry:
    def __init__(self, template: Template) -> None:
        globals_ = template.raw.get("Globals", {}).get("Function", {})
        self.functions: dict[str, LocalFunction] = {}
        for logical_id, properties in template.functions().items():
            self.functions[logical_id] = LocalFunction(
                logical_id=logical_id,
                name=str(template.resolve(properties.get("FunctionName", logical_id))),
                handler_path=properties["Handler"],
                memory=int(properties.get("MemorySize", globals_.get("MemorySize", 128))),
                timeout=int(properties.get("Timeout", globals_.get("Timeout", 3))),
            )

    def __getitem__(self, logical_id: str) -> LocalFunction:
        return self.functions[logical_id]

    def load_all(self) -> None:
        """Imports every handler now, so a request never pays a cold start."""
        for function in self.functions.values():
            function.load()
