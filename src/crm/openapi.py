"""The whole API's OpenAPI document, merged from each function's resolver, and Swagger UI.

Swagger UI (`crm serve`'s /docs) is Swagger's own distribution layout: a static page that loads the
bundle and stylesheet Powertools ships, and an initializer that reads the document from
/openapi.json. Every file comes from the API's own origin, so it works offline, and the page runs
no inline script: its Content-Security-Policy allows scripts and requests to that origin only."""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayRestResolver
from aws_lambda_powertools.event_handler.openapi import swagger_ui
from aws_lambda_powertools.event_handler.openapi.merge import OpenAPIMerge
from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

from crm.template import Template
from shared.entrypoints import HttpFunction
from shared.errors import MAX_BODY_BYTES, MAX_BODY_DEPTH
from shared.http import (
    API_TITLE,
    API_VERSION,
    BEARER_AUTH,
    REQUEST_MODELS,
    REQUEST_SCHEMA_EXTENSION,
    openapi_schema,
)

SWAGGER_ASSETS = Path(swagger_ui.__file__).parent
DESCRIPTION = (
    "Lead CRM REST API. Every route takes `Authorization: Bearer <JWT>`. Request bodies are JSON"
    f" of at most {MAX_BODY_BYTES // 1024} KB (413 `PAYLOAD_TOO_LARGE`) that nest objects and"
    f" arrays at most {MAX_BODY_DEPTH} levels deep (400 `NESTING_TOO_DEEP`); both are checked"
    " before the body is read, and a caller without a valid token gets 401 first."
)


def function_apps(template: Template) -> dict[str, APIGatewayRestResolver]:
    """The resolver of every API function in the template (their handler module's `app`)."""
    apps = {}
    for logical_id, properties in template.functions().items():
        module_name, _, attribute = properties["Handler"].rpartition(".")
        handler = getattr(importlib.import_module(module_name), attribute)
        if isinstance(handler, HttpFunction):
            apps[logical_id] = handler.app
    return apps


def _merger(template: Template) -> OpenAPIMerge:
    merge = OpenAPIMerge(
        title=API_TITLE,
        version=API_VERSION,
        description=DESCRIPTION,
        security_schemes={BEARER_AUTH: HTTPBearer(bearerFormat="JWT")},
        on_conflict="error",
    )
    for app in function_apps(template).values():
        merge.add_schema(openapi_schema(app).model_dump(mode="json", by_alias=True, exclude_none=True))
    return merge


def _publish_request_bodies(document: dict[str, Any]) -> dict[str, Any]:
    """A route that parses its own body (to answer in its own error shape) declares the body's
    model in an extension; publish it as a proper requestBody with a named schema."""
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for item in document.get("paths", {}).values():
        for operation in item.values():
            name = operation.pop(REQUEST_SCHEMA_EXTENSION, None) if isinstance(operation, dict) else None
            if name is None:
                continue
            schema = REQUEST_MODELS[name].model_json_schema()
            schemas[schema["title"]] = schema
            operation["requestBody"] = {
                "required": True,
                "content": {
                    "application/json": {"schema": {"$ref": f"#/components/schemas/{schema['title']}"}}
                },
            }
    return document


def _empty_no_content_responses(document: dict[str, Any]) -> dict[str, Any]:
    """A 204 has no body; the resolver would describe one from the handler's return type."""
    for item in document.get("paths", {}).values():
        for operation in item.values():
            no_content = operation.get("responses", {}).get("204") if isinstance(operation, dict) else None
            if no_content is not None:
                no_content.pop("content", None)
    return document


def merged_document(template: Template) -> dict[str, Any]:
    document = json.loads(_merger(template).get_openapi_json_schema())
    return _empty_no_content_responses(_publish_request_bodies(document))


def document_json(template: Template) -> str:
    return json.dumps(merged_document(template), indent=2)


DOCS_PATH = "/docs"
DOCS_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Lead CRM API</title>
  <link rel="icon" href="data:,">
  <link rel="stylesheet" href="/docs/swagger-ui.min.css">
</head>
<body>
  <div id="swagger-ui">Loading...</div>
  <script src="/docs/swagger-ui-bundle.min.js"></script>
  <script src="/docs/swagger-initializer.js"></script>
</body>
</html>
"""
# Authorize takes the bearer token (`crm token USER`); "Try it out" then sends it to this origin,
# the document's only server. persistAuthorization keeps it in the browser across reloads.
DOCS_INITIALIZER = """window.ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  presets: [SwaggerUIBundle.presets.apis],
  layout: "BaseLayout",
  docExpansion: "list",
  deepLinking: true,
  filter: true,
  persistAuthorization: true,
  validatorUrl: null
});
"""
# The page has no inline script or style and every file it loads is on this origin: the policy
# allows nothing else (data: only for the images inside the stylesheet).
DOCS_HEADERS = {
    "Content-Security-Policy": "; ".join(
        [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "img-src 'self' data:",
            "connect-src 'self'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        ]
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


def docs_files() -> dict[str, tuple[str, bytes]]:
    """Swagger UI's files by path under /docs, each with its content type."""
    return {
        DOCS_PATH: ("text/html; charset=utf-8", DOCS_PAGE.encode()),
        f"{DOCS_PATH}/swagger-initializer.js": ("text/javascript; charset=utf-8", DOCS_INITIALIZER.encode()),
        f"{DOCS_PATH}/swagger-ui-bundle.min.js": (
            "text/javascript; charset=utf-8",
            (SWAGGER_ASSETS / "swagger-ui-bundle.min.js").read_bytes(),
        ),
        f"{DOCS_PATH}/swagger-ui.min.css": (
            "text/css; charset=utf-8",
            (SWAGGER_ASSETS / "swagger-ui.min.css").read_bytes(),
        ),
    }
