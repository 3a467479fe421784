"""The Lambda entry points of the API functions, light to import.

A function's module (`leads.app`, ...) is imported in the cold start of each execution
environment, before its first event. It imports this module, which brings the logger and the
metrics (`shared.observability`) and wraps the handler in them; the function's code (Powertools'
resolver with CORS from the validated `Settings`, the routes, their services and models) is
imported and built by the first event, once per environment, inside that logging context.
`crm bench --cold-start` measures the import against the built artifact, and
`tests/unit/test_cold_start.py` keeps the heavy modules out of it."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from aws_lambda_powertools.logging import correlation_paths

from shared.observability import logger, metrics

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler import APIGatewayRestResolver

Handler = Callable[[dict[str, Any], Any], dict[str, Any]]
T = TypeVar("T")


class OnFirstUse(Generic[T]):
    """`build()` called once, by the first caller of `get` (the others wait for it)."""

    def __init__(self, build: Callable[[], T]) -> None:
        self._build = build
        self._value: T | None = None
        self._lock = threading.Lock()

    def get(self) -> T:
        if self._value is None:
            with self._lock:
                if self._value is None:
                    self._value = self._build()
        return self._value


class HttpFunction:
    """The Lambda handler of an API function whose resolver `build_app` returns (it imports the
    routes). `app` is that resolver, built on first use (also by `crm openapi`)."""

    def __init__(self, build_app: Callable[[], APIGatewayRestResolver]) -> None:
        self._app = OnFirstUse(build_app)
        self._handler: Handler = logger.inject_lambda_context(
            correlation_id_path=correlation_paths.API_GATEWAY_REST, clear_state=True
        )(metrics.log_metrics(self._handle))

    @property
    def app(self) -> APIGatewayRestResolver:
        return self._app.get()

    def _handle(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        from shared.http import handle_request

        return handle_request(self.app, event, context)

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        return self._handler(event, context)


def api_function(routes_module: str) -> HttpFunction:
    """The handler of an API function serving the `router` of `routes_module`."""

    def build_app() -> APIGatewayRestResolver:
        import importlib

        from shared.http import create_app

        app = create_app()
        app.include_router(importlib.import_module(routes_module).router)
        return app

    return HttpFunction(build_app)
