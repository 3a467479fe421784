"""A local stand-in for API Gateway (REST API, Lambda proxy integration), modelled on the way
`sam local start-api` and Chalice's local server behave:

- routes come from the template's `Api` events; the path is matched without a stage prefix;
- each request becomes a REST (v1) proxy event for the route's function, and the function's
  `headers` and `multiValueHeaders` are merged the way API Gateway merges them;
- a method the resource does not declare goes to its ANY event (the function answers 405), an
  unknown path gets the template's MISSING_AUTHENTICATION_TOKEN gateway response,
  a function that fails or runs past its Timeout gets DEFAULT_5XX (502, as API Gateway answers a
  Lambda error), an integration past API Gateway's 29 s gets INTEGRATION_TIMEOUT (504), and a
  body over API Gateway's 10 MB limit gets a 413 through DEFAULT_4XX;
- a response is sent as soon as the function answers: what the change publishes reaches its
  consumers afterwards, through the bus, as in AWS.

A few paths are served by the runner itself on GET and are not API routes: /openapi.json, and
Swagger UI at /docs with its files under /docs/.
"""

from __future__ import annotations

import base64
import logging
import uuid
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from crm.functions import FunctionRegistry, FunctionTimedOut
from crm.template import GatewayResponse, Route

# Not under "crm": that is the functions' own (Powertools) logger, at their log level.
log = logging.getLogger("local.gateway")

MAX_PAYLOAD_BYTES = 10 * 1024 * 1024
# A REST API gives up on its integration after 29 s (504), whatever the function's own Timeout.
# A function whose Timeout is shorter times out first: Lambda answers with an error (502).
INTEGRATION_TIMEOUT_SECONDS = 29.0
LocalPage = tuple[int, dict[str, str], bytes]  # status, headers, body


class ApiGateway:
    def __init__(
        self,
        routes: list[Route],
        functions: FunctionRegistry,
        gateway_responses: dict[str, GatewayResponse],
        stage: str,
        local_pages: dict[str, LocalPage] | None = None,
    ) -> None:
        self.routes = routes
        self.functions = functions
        self.gateway_responses = gateway_responses
        self.stage = stage
        self.local_pages = local_pages or {}

    def match(self, method: str, path: str) -> tuple[Route, dict[str, str]] | None:
        """As API Gateway: the most specific resource matching the path (literal segments before
        `{parameters}`), then its route for `method`, else its ANY route."""
        candidates = [route for route in self.routes if route.pattern.match(path)]
        if not candidates:
            return None
        resource = min({route.path for route in candidates}, key=lambda template: template.count("{"))
        on_resource = {route.method: route for route in candidates if route.path == resource}
        route = on_resource.get(method) or on_resource.get("ANY")
        if route is None:
            return None
        found = route.pattern.match(path)
        assert found is not None
        return route, {name: unquote(value) for name, value in found.groupdict().items()}

    def build_event(
        self,
        route: Route,
        path: str,
        path_parameters: dict[str, str],
        method: str,
        query: str,
        header_pairs: list[tuple[str, str]],
        body: bytes,
        source_ip: str,
    ) -> dict[str, Any]:
        multi_headers = _grouped(header_pairs)
        headers = {name: values[-1] for name, values in multi_headers.items()}
        multi_query = _grouped(parse_qsl(query, keep_blank_values=True))
        text_body, is_base64 = _event_body(body)
        now = datetime.now(UTC)
        return {
            "resource": route.path,
            "path": path,
            "httpMethod": method,
            "headers": headers or None,
            "multiValueHeaders": multi_headers or None,
            "queryStringParameters": {name: values[-1] for name, values in multi_query.items()} or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": path_parameters or None,
            "stageVariables": None,
            "requestContext": {
                "resourcePath": route.path,
                "httpMethod": method,
                "path": f"/{self.stage}{path}",
                "stage": self.stage,
                "requestId": str(uuid.uuid4()),
                "extendedRequestId": str(uuid.uuid4()),
                "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "requestTimeEpoch": int(now.timestamp() * 1000),
                "identity": {"sourceIp": source_ip, "userAgent": headers.get("User-Agent")},
                "accountId": "123456789012",
                "apiId": "local",
                "domainName": headers.get("Host", "localhost"),
                "protocol": "HTTP/1.1",
            },
            "body": text_body,
            "isBase64Encoded": is_base64,
        }

    @staticmethod
    def merge_headers(response: dict[str, Any]) -> list[tuple[str, str]]:
        """API Gateway merges `headers` and `multiValueHeaders`; for a name present in both, only
        the multi-value entries are sent."""
        multi = {name: list(values) for name, values in (response.get("multiValueHeaders") or {}).items()}
        lowered = {name.lower() for name in multi}
        pairs = [
            (name, str(value))
            for name, value in (response.get("headers") or {}).items()
            if name.lower() not in lowered
        ]
        pairs += [(name, str(value)) for name, values in multi.items() for value in values]
        return pairs

    def gateway_response(
        self, kind: str, default_status: int, message: str, header_pairs: list[tuple[str, str]]
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        """The template's gateway response of `kind` (else its DEFAULT_4XX/5XX), its headers mapped
        from the request's `header_pairs` (empty when the request could not be read)."""
        fallback = "DEFAULT_5XX" if default_status >= 500 else "DEFAULT_4XX"
        spec = self.gateway_responses.get(kind) or self.gateway_responses.get(fallback)
        if spec is None:
            return (
                default_status,
                [("Content-Type", "application/json")],
                b'{"message": "%s"}' % message.encode(),
            )
        body = (spec.body or "").replace("$context.error.messageString", f'"{message}"')
        headers = [("Content-Type", "application/json"), *spec.headers_for(header_pairs)]
        return spec.status or default_status, headers, body.encode()

    def handle(
        self, method: str, raw_path: str, header_pairs: list[tuple[str, str]], body: bytes, source_ip: str
    ) -> tuple[int, list[tuple[str, str]], bytes]:
        parts = urlsplit(raw_path)
        path = parts.path or "/"
        if method == "GET" and path in self.local_pages:
            status, headers, page = self.local_pages[path]
            return status, list(headers.items()), page
        if len(body) > MAX_PAYLOAD_BYTES:
            return self.gateway_response("REQUEST_TOO_LARGE", 413, "Request Too Long", header_pairs)
        matched = self.match(method, path)
        if matched is None:
            return self.gateway_response(
                "MISSING_AUTHENTICATION_TOKEN", 403, "Missing Authentication Token", header_pairs
            )
        route, path_parameters = matched
        event = self.build_event(
            route, path, path_parameters, method, parts.query, header_pairs, body, source_ip
        )
        try:
            response = self.functions[route.function].invoke(event, INTEGRATION_TIMEOUT_SECONDS)
            status = int(response["statusCode"])
            payload = response.get("body") or ""
            data = base64.b64decode(payload) if response.get("isBase64Encoded") else payload.encode()
        except FunctionTimedOut as exc:
            if exc.by_caller:
                log.error("%s; answering as API Gateway does for a timed-out integration", exc)
                return self.gateway_response(
                    "INTEGRATION_TIMEOUT", 504, "Endpoint request timed out", header_pairs
                )
            log.error("%s; answering as API Gateway does for a Lambda error", exc)
            return self.gateway_response("DEFAULT_5XX", 502, "Internal server error", header_pairs)
        except Exception:
            log.exception("%s failed; answering as API Gateway does for a Lambda error", route.function)
            return self.gateway_response("DEFAULT_5XX", 502, "Internal server error", header_pairs)
        return status, self.merge_headers(response), data


def _grouped(pairs: list[tuple[str, str]]) -> dict[str, list[str]]:
    """Every value of each name, in order (API Gateway's multi-value form; the last is the single one)."""
    grouped: dict[str, list[str]] = {}
    for name, value in pairs:
        grouped.setdefault(name, []).append(value)
    return grouped


def _event_body(body: bytes) -> tuple[str | None, bool]:
    """The event's `body` and `isBase64Encoded`: text when it is UTF-8, else base64."""
    try:
        return (body.decode("utf-8") if body else None), False
    except UnicodeDecodeError:
        return base64.b64encode(body).decode(), True
