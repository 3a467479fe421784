"""The reference dashboard (`dashboard/`, static files) on an origin of its own, for `crm serve
--dashboard`: the browser then calls the API cross-origin, as a deployed frontend does."""

from __future__ import annotations

import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

DASHBOARD_DIR = Path(__file__).resolve().parents[2] / "dashboard"


class QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_dashboard(host: str, port: int, directory: Path = DASHBOARD_DIR) -> ThreadingHTTPServer:
    """Serves `directory` on host:port from a background thread; the caller shuts it down."""
    server = ThreadingHTTPServer((host, port), partial(QuietHandler, directory=str(directory)))
    threading.Thread(target=server.serve_forever, name="dashboard", daemon=True).start()
    return server
