"""The local AWS endpoint: moto's server application, with DynamoDB requests one at a time.

DynamoDB applies each write, condition checks included, atomically. moto checks a condition and
then applies the write in two Python steps, so two concurrent requests could both pass the same
condition; serialising DynamoDB requests restores the guarantee that the lead service's race-free
dedupe, caps and assignment rely on. Other services (SQS long polls) are left concurrent.
Run as `python -m crm.local_aws --host H --port P`.
"""

from __future__ import annotations

import argparse
import os
import threading
from collections.abc import Callable, Iterable
from typing import Any

from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app
from moto.server import MotoRequestHandler
from werkzeug.serving import run_simple

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def serialised(app: WsgiApp) -> WsgiApp:
    lock = threading.Lock()

    def application(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        if not str(environ.get("HTTP_X_AMZ_TARGET", "")).startswith("DynamoDB_"):
            return app(environ, start_response)
        with lock:
            # Materialise the body inside the lock: the work happens while it is produced.
            return list(app(environ, start_response))

    return application


def main() -> None:
    parser = argparse.ArgumentParser(description="moto server with serialised requests")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    args = parser.parse_args()
    os.environ.setdefault("MOTO_PORT", str(args.port))
    app = DomainDispatcherApplication(create_backend_app)
    run_simple(args.host, args.port, serialised(app), threaded=True, request_handler=MotoRequestHandler)


if __name__ == "__main__":
    main()
