"""The reference dashboard (`dashboard/`, static files, no build step) and what it needs to know:
`config.json` beside `index.html` names the API, the Cognito endpoint of the staff user pool and
its dashboard client. `index.html`'s Content-Security-Policy lets the page connect to exactly those
origins (and its own), so the same files serve locally and in AWS with only these two changed.

- `crm serve --dashboard` serves the dashboard on an origin of its own (the browser then calls the
  API cross-origin, as a deployed frontend does), with the configuration of the local pool.
- `crm dashboard --stack NAME --out DIR` writes the files for a deployed stack, the configuration
  taken from its outputs (`ApiUrl`, `UserPoolIssuer`, `UserPoolClientId`), ready to upload."""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from io import BytesIO
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

DASHBOARD_DIR = Path(__file__).resolve().parents[2] / "dashboard"
# The stack outputs the configuration is made of.
CONFIG_OUTPUTS = ("ApiUrl", "UserPoolIssuer", "UserPoolClientId")
_POLICY_META = re.compile(r'(<meta http-equiv="Content-Security-Policy" content=")([^"]*)(">)')


@dataclass(frozen=True)
class DashboardConfig:
    """What the dashboard reads from `config.json` before it shows the sign-in form."""

    api_url: str  # the API's base URL, without a trailing slash
    cognito_endpoint: str  # where Cognito's JSON API answers: https://cognito-idp.<region>.amazonaws.com/
    client_id: str  # the staff user pool's dashboard client (public: no secret)

    @classmethod
    def from_stack_outputs(cls, outputs: Mapping[str, str]) -> DashboardConfig:
        """From a deployed stack's outputs. The pool's issuer is its Cognito endpoint followed by
        the pool id: `https://cognito-idp.<region>.amazonaws.com/<pool id>`."""
        missing = [name for name in CONFIG_OUTPUTS if not outputs.get(name)]
        if missing:
            names = ", ".join(missing)
            raise ValueError(f"the stack has no output {names}: deploy this version of template.yaml")
        issuer = urlsplit(outputs["UserPoolIssuer"])
        return cls(
            api_url=outputs["ApiUrl"].rstrip("/"),
            cognito_endpoint=f"{issuer.scheme}://{issuer.netloc}/",
            client_id=outputs["UserPoolClientId"],
        )

    def as_json(self) -> str:
        body = {"api": self.api_url, "cognitoEndpoint": self.cognito_endpoint, "clientId": self.client_id}
        return json.dumps(body, indent=2) + "\n"


def _origin(url: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"not an http(s) URL: {url!r}")
    return f"{parts.scheme}://{parts.netloc}"


def content_security_policy(config: DashboardConfig) -> str:
    """The page's policy: its own scripts, styles and `config.json`, requests to the API and to
    Cognito, nothing else (no inline script or style, no other origin, no form posts)."""
    connect = dict.fromkeys(["'self'", _origin(config.api_url), _origin(config.cognito_endpoint)])
    return "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self'",
            f"connect-src {' '.join(connect)}",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )


def index_html(config: DashboardConfig, directory: Path = DASHBOARD_DIR) -> str:
    """`index.html` with its Content-Security-Policy naming the configured origins."""
    page = (directory / "index.html").read_text(encoding="utf-8")
    policy = content_security_policy(config)
    written, found = _POLICY_META.subn(lambda match: f"{match[1]}{policy}{match[3]}", page, count=1)
    if not found:
        raise ValueError(f"{directory / 'index.html'} has no Content-Security-Policy meta element")
    return written


def write_dashboard(config: DashboardConfig, out: Path, directory: Path = DASHBOARD_DIR) -> list[Path]:
    """Writes the dashboard's files into `out` (created if needed), configured. Returns them."""
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for source in sorted(directory.iterdir()):
        if source.is_file() and source.name != "index.html":
            target = out / source.name
            target.write_bytes(source.read_bytes())
            written.append(target)
    (out / "index.html").write_text(index_html(config, directory), encoding="utf-8")
    (out / "config.json").write_text(config.as_json(), encoding="utf-8")
    return [*written, out / "index.html", out / "config.json"]


class DashboardHandler(SimpleHTTPRequestHandler):
    """The dashboard's files from its directory; `index.html` and `config.json` configured."""

    def __init__(self, *args: Any, pages: Mapping[str, bytes], **kwargs: Any) -> None:
        self.pages = pages
        super().__init__(*args, **kwargs)

    def send_head(self) -> Any:
        path = urlsplit(self.path).path
        page = self.pages.get("/index.html" if path == "/" else path)
        if page is None:
            return super().send_head()
        self.send_response(HTTPStatus.OK)
        content_type = "application/json" if path.endswith(".json") else "text/html; charset=utf-8"
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(page)))
        # Made for this run: the local pool's ids are new at each start of `crm serve`.
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        return BytesIO(page)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def serve_dashboard(
    host: str, port: int, config: DashboardConfig, directory: Path = DASHBOARD_DIR
) -> ThreadingHTTPServer:
    """Serves the dashboard, configured with `config`, on host:port from a background thread; the
    caller shuts it down."""
    pages = {
        "/index.html": index_html(config, directory).encode(),
        "/config.json": config.as_json().encode(),
    }
    handler = partial(DashboardHandler, pages=pages, directory=str(directory))
    server = ThreadingHTTPServer((host, port), handler)
    threading.Thread(target=server.serve_forever, name="dashboard", daemon=True).start()
    return server


def cmd_dashboard(args: Any) -> int:
    """`crm dashboard --stack NAME --out DIR`: the dashboard's files for a deployed stack."""
    from crm.targets import StackUnavailable, describe_stack

    stack = describe_stack(args.stack)
    outputs = {item["OutputKey"]: item["OutputValue"] for item in stack.get("Outputs", [])}
    try:
        config = DashboardConfig.from_stack_outputs(outputs)
    except ValueError as problem:
        raise StackUnavailable(f"stack {args.stack}: {problem}") from None
    out = Path(args.out)
    write_dashboard(config, out)
    print(f"{out}/: the dashboard for stack {args.stack}; config.json:")
    print(config.as_json(), end="")
    print(f"Upload every file of {out}/ to the dashboard's origin, an origin of CorsAllowOrigins.")
    return 0
