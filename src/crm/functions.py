"""Runs the template's Lambda functions as Lambda runs them: in execution environments.

An execution environment (`ExecutionEnvironment`) is a worker process of its own, with its own
memory. It runs the function's init (imports the handler module) once, when it starts, then serves
one invocation at a time for as long as it lives. A function (`LocalFunction`) gets up to
`concurrency` environments, started on demand: an invocation takes an idle environment (the most
recently used, as Lambda reuses warm ones) or, when none is idle and the function has fewer than
`concurrency`, starts one (a cold start, logged with its `Init Duration` as Lambda's REPORT line
has it); past that it waits for one to be free. Functions never wait for each other: the stats
consumer runs beside the API's functions.

The template's `Timeout` is enforced: an invocation that runs longer is stopped with its
environment, which is replaced by the next invocation, and the caller gets `FunctionTimedOut`. So
module-level state (a per-process cache, a counter) lives and dies with one environment, exactly
as in AWS: two concurrent requests of one function never share memory, and anything the
environments must agree on goes through a shared service (Redis, DynamoDB).

An environment is a fresh interpreter (`python -m crm.environment`) with the function's
environment variables, reached over a socket pair of its own; what the function prints goes to the
runner's output, as a function's logs go to CloudWatch.
"""

from __future__ import annotations

import logging
import os
import socket
import subprocess  # nosec B404  # runs this interpreter with fixed arguments
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

from crm.environment import LocalLambdaContext, load_handler
from crm.template import Template

# Not under "crm": that is the functions' own (Powertools) logger, at their log level.
log = logging.getLogger("local.functions")

# How long a stopping environment gets before it is killed.
STOP_GRACE_SECONDS = 2.0


def default_concurrency() -> int:
    """Environments per function unless told otherwise: one per core, at least two, so that
    concurrent requests of one function always reach distinct processes."""
    return max(2, os.cpu_count() or 1)


@dataclass(frozen=True)
class FunctionSpec:
    """What the template says about one function."""

    logical_id: str
    name: str
    handler_path: str
    memory: int
    timeout: int


class FunctionError(Exception):
    """The function raised (or its init failed): Lambda answers such an invocation with an error."""


class FunctionTimedOut(FunctionError):
    """The invocation ran past the function's Timeout (or, `by_caller`, past the shorter time its
    caller would wait); its environment was stopped."""

    def __init__(self, message: str, by_caller: bool = False) -> None:
        super().__init__(message)
        self.by_caller = by_caller


class ExecutionEnvironment:
    """One worker process of a function (see the module docstring)."""

    def __init__(self, spec: FunctionSpec, environment: Mapping[str, str], number: int) -> None:
        self.spec = spec
        self.number = number
        ours, theirs = socket.socketpair()
        with ours, theirs:
            self.process = subprocess.Popen(  # nosec B603  # this interpreter, fixed arguments
                [sys.executable, "-m", "crm.environment", str(theirs.fileno()), spec.handler_path,
                 spec.name, str(spec.memory), str(spec.timeout)],
                env=dict(environment),
                pass_fds=[theirs.fileno()],
            )  # fmt: skip
            self._connection = Connection(ours.detach())
        self.invocations = 0

    @property
    def pid(self) -> int:
        return self.process.pid

    def is_alive(self) -> bool:
        return self.process.poll() is None

    def invoke(self, event: dict[str, Any], caller_timeout: float | None = None) -> Any:
        """Runs one invocation. Raises FunctionError if the function raised, FunctionTimedOut (the
        environment stopped) if it ran past the function's Timeout or `caller_timeout` seconds."""
        request_id = str(uuid.uuid4())
        timeout = float(self.spec.timeout)
        by_caller = caller_timeout is not None and caller_timeout < timeout
        if by_caller:
            assert caller_timeout is not None
            timeout = caller_timeout
        try:
            self._connection.send((request_id, event))
            if not self._connection.poll(timeout):
                self.stop(grace=0)
                raise FunctionTimedOut(
                    f"{self.spec.name}: Task timed out after {timeout:.2f} seconds (RequestId {request_id})",
                    by_caller,
                )
            kind, payload, report = self._connection.recv()
        except (EOFError, OSError, BrokenPipeError) as exc:
            self.stop(grace=0)
            raise FunctionError(f"{self.spec.name}: the execution environment exited ({exc!r})") from exc
        self.invocations += 1
        self._log_report(request_id, report)
        if kind == "error":
            raise FunctionError(f"{self.spec.name} failed (RequestId {request_id}):\n{payload}")
        return payload

    def _log_report(self, request_id: str, report: dict[str, Any]) -> None:
        line = (
            f"REPORT {self.spec.logical_id}#{self.number} RequestId: {request_id} "
            f"Duration: {report['duration_ms']:.2f} ms "
            f"Memory Size: {self.spec.memory} MB Max Memory Used: {report['max_memory_mb']} MB"
        )
        if report["init_ms"] is None:
            log.debug(line)
        else:
            log.info("%s Init Duration: %.2f ms", line, report["init_ms"])

    def stop(self, grace: float = STOP_GRACE_SECONDS) -> None:
        """Closes the connection (the environment then exits), killing it after `grace` seconds."""
        self._connection.close()
        try:
            self.process.wait(grace)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


class LocalFunction:
    """A function of the template with its pool of execution environments."""

    def __init__(self, spec: FunctionSpec, environment: Mapping[str, str], concurrency: int) -> None:
        if concurrency < 1:
            raise ValueError("a function needs at least one execution environment")
        self.spec = spec
        self.environment = dict(environment)
        self.concurrency = concurrency
        self._idle: list[ExecutionEnvironment] = []
        self._running = 0  # environments started and not yet stopped, idle or busy
        self._started = 0
        self._available = threading.Condition()
        self._stopped = False

    @property
    def logical_id(self) -> str:
        return self.spec.logical_id

    @property
    def cold_starts(self) -> int:
        return self._started

    def invoke(self, event: dict[str, Any], caller_timeout: float | None = None) -> Any:
        """One invocation in an environment of this function (see `ExecutionEnvironment.invoke`)."""
        with self.environment_for_invocation() as environment:
            return environment.invoke(event, caller_timeout)

    def in_process(self) -> Callable[[dict[str, Any]], Any]:
        """The handler called in this process, with a context like an environment's: for measuring
        the function's own work without the process boundary (`crm bench`)."""
        handler = load_handler(self.spec.handler_path)
        spec = self.spec

        def invoke(event: dict[str, Any]) -> Any:
            context = LocalLambdaContext(
                spec.name, spec.memory, spec.timeout, str(uuid.uuid4()), started=time.monotonic()
            )
            return handler(event, context)

        return invoke

    @contextmanager
    def environment_for_invocation(self) -> Iterator[ExecutionEnvironment]:
        """An environment for this caller alone until the block ends: an idle one, a new one while
        the function has fewer than `concurrency`, else the next one to be free."""
        environment = self._take_idle_or_reserve()
        if environment is None:
            try:
                environment = self._start_environment()
            except BaseException:
                self._release(None)
                raise
        try:
            yield environment
        finally:
            self._release(environment)

    def _take_idle_or_reserve(self) -> ExecutionEnvironment | None:
        with self._available:
            while not self._stopped and not self._idle and self._running >= self.concurrency:
                self._available.wait()
            if self._stopped:
                raise FunctionError(f"{self.spec.name}: the local runner is stopping")
            if self._idle:
                return self._idle.pop()
            self._running += 1
            self._started += 1
            return None

    def _start_environment(self) -> ExecutionEnvironment:
        return ExecutionEnvironment(self.spec, self.environment, self._started)

    def _release(self, environment: ExecutionEnvironment | None) -> None:
        with self._available:
            if environment is not None and environment.is_alive() and not self._stopped:
                self._idle.append(environment)
            else:
                self._running -= 1
                if environment is not None and environment.is_alive():
                    environment.stop(grace=0)
            self._available.notify()

    def stop(self) -> None:
        """Stops every idle environment; busy ones stop when their invocation ends."""
        with self._available:
            self._stopped = True
            idle, self._idle = self._idle, []
            self._running -= len(idle)
            self._available.notify_all()
        for environment in idle:
            environment.stop()


class FunctionRegistry:
    """Every function of the template, each with its own environments."""

    def __init__(
        self,
        template: Template,
        environment: Mapping[str, str] | None = None,
        concurrency: int | None = None,
    ) -> None:
        globals_ = template.raw.get("Globals", {}).get("Function", {})
        environment = dict(os.environ if environment is None else environment)
        concurrency = concurrency or default_concurrency()
        self.functions: dict[str, LocalFunction] = {}
        for logical_id, properties in template.functions().items():
            spec = FunctionSpec(
                logical_id=logical_id,
                name=str(template.resolve(properties.get("FunctionName", logical_id))),
                handler_path=properties["Handler"],
                memory=int(properties.get("MemorySize", globals_.get("MemorySize", 128))),
                timeout=int(properties.get("Timeout", globals_.get("Timeout", 3))),
            )
            own = template.function_environment(logical_id)  # e.g. its POWERTOOLS_SERVICE_NAME
            self.functions[logical_id] = LocalFunction(spec, {**environment, **own}, concurrency)

    def __getitem__(self, logical_id: str) -> LocalFunction:
        return self.functions[logical_id]

    def stop(self) -> None:
        for function in self.functions.values():
            function.stop()
