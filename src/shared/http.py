"""HTTP plumbing shared by the API functions: the resolver factory (CORS from configuration),
the single error-to-HTTP mapping, the request body limit, route declaration with roles, and the
handling of one request with its audit record.

Cold start: a function's first event builds its resolver here (`shared.entrypoints`), without
Powertools' OpenAPI machinery. Request validation (`OpenAPIRequestValidationMiddleware`, the
pydantic fields it builds from a route's signature) is imported when that request reaches it;
the OpenAPI schema's models only by `openapi_schema` (`crm openapi`, the local runner's
/openapi.json and /docs), never on a request's path."""

from __future__ import annotations

import contextlib
import inspect
import re
import time
from collections.abc import Callable, Iterable
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, TypeVar

import simplejson
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, CORSConfig, Response
from aws_lambda_powertools.event_handler.middlewares.base import BaseMiddlewareHandler
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from pydantic import BaseModel

from shared import dependencies
from shared.audit import build_record
from shared.cache import request_cache_status, start_request_lookups
from shared.config import get_settings
from shared.entrypoints import OnFirstUse
from shared.errors import (
    ApiError,
    BodyNestedTooDeep,
    Forbidden,
    PayloadTooLarge,
    check_body_depth,
    check_body_size,
)
from shared.observability import logger
from shared.responses import ErrorBody, ErrorInfo
from shared.security import Role, current_principal_or_none, set_current_principal

if TYPE_CHECKING:
    from aws_lambda_powertools.event_handler.api_gateway import Router
    from aws_lambda_powertools.event_handler.middlewares import NextMiddleware
    from aws_lambda_powertools.event_handler.openapi.models import OpenAPI

JSON = "application/json"
CSV = "text/csv"
# A CSV page's next cursor (the JSON carries it in `pagination`).
NEXT_CURSOR_HEADER = "X-Next-Cursor"
ALLOWED_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key"]
EXPOSED_HEADERS = ["WWW-Authenticate", "Retry-After", "Content-Disposition", "X-Cache", "X-Next-Cursor"]
CACHE_STATUS_HEADER = "X-Cache"  # hit or miss, on an answer read through the query cache
PREFLIGHT_MAX_AGE = 600
BEARER_AUTH = "bearerAuth"
REQUEST_SCHEMA_EXTENSION = "x-request-schema"  # names a model of REQUEST_MODELS
REQUEST_MODELS: dict[str, type[BaseModel]] = {}  # bodies routes parse themselves, by model name
BODY_ERRORS = {"POST": (413, 415), "PUT": (413, 415), "PATCH": (413, 415)}  # too large, not JSON
F = TypeVar("F", bound=Callable[..., Any])


def _is_json(content_type: str | None) -> bool:
    """No Content-Type, or application/json with any parameters (`; charset=utf-8`)."""
    return not content_type or content_type.split(";")[0].strip().lower() == JSON


class _OnFirstUse(BaseMiddlewareHandler):
    """A middleware built by `build` when the first request reaches it: Powertools' validation
    middlewares import the OpenAPI machinery, which only a request needs."""

    def __init__(self, build: Callable[[], BaseMiddlewareHandler]) -> None:
        self._middleware = OnFirstUse(build)

    def handler(self, app: Any, next_middleware: NextMiddleware) -> Response[Any]:
        return self._middleware.get().handler(app, next_middleware)


def _request_validation() -> BaseMiddlewareHandler:
    from aws_lambda_powertools.event_handler.middlewares.openapi_validation import (
        OpenAPIRequestValidationMiddleware,
    )

    return OpenAPIRequestValidationMiddleware()


def _response_validation() -> BaseMiddlewareHandler:
    from aws_lambda_powertools.event_handler.middlewares.openapi_validation import (
        OpenAPIResponseValidationMiddleware,
    )

    return OpenAPIResponseValidationMiddleware(
        validation_serializer=None, has_response_validation_error=False
    )


class _BodyLimitThenValidation(BaseMiddlewareHandler):
    """Powertools' request validation (the first thing a route runs, and the one that reads a
    body), preceded by four checks: that the route is the resource API Gateway matched (else
    405), how deep the body nests (every parser reads it recursively: past the limit it is
    refused on every route, to every caller, before anything reads it), the body limit, and the
    body's media type (JSON only, where Powertools would also parse forms and multipart). A route
    that parses its own body (`request_model`) checks the size itself, to answer in its own shape,
    and reads the body as JSON whatever its media type (lead posting: many posting systems label
    JSON text/plain)."""

    def __init__(self) -> None:
        self._validation = _OnFirstUse(_request_validation)

    def handler(self, app: Any, next_middleware: NextMiddleware) -> Response[Any]:
        route = app.context.get("_route")
        resource = app.current_event.resource
        declared = route in (*app._static_routes, *app._dynamic_routes)  # not a preflight or 404
        if declared and resource and _resource(route.path) != resource:
            # Matched by path only: PUT /pricing/quote is not PUT /pricing/{vendor_code}.
            raise MethodNotAllowed(_methods_of_resource(app))
        event = app.current_event
        check_body_depth(event.body, bool(event.is_base64_encoded))
        if REQUEST_SCHEMA_EXTENSION not in (getattr(route, "openapi_extensions", None) or {}):
            check_body_size(event.body, bool(event.is_base64_encoded))
            if event.http_method in BODY_ERRORS and not _is_json(event.headers.get("Content-Type")):
                raise RequestUnsupportedContentType("Unsupported content type", errors=[])
        return self._validation.handler(app, next_middleware)


def dumps(value: Any) -> str:
    """JSON with Decimals written as-is, so money keeps its two decimals."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="python")
    return simplejson.dumps(value, use_decimal=True, separators=(",", ":"))


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response[Any]:
    return Response(status_code=status, content_type=JSON, body=dumps(body), headers=headers)


def error_response(
    status: int,
    code: str,
    message: str,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response[Any]:
    body = ErrorBody(error=ErrorInfo(code=code, message=message, details=details or []))
    return json_response(body, status=status, headers=headers)


def _handle_api_error(exc: ApiError) -> Response[Any]:
    return error_response(exc.status, exc.code, exc.message, exc.details, exc.headers)


def _validation_error_response(exc: RequestValidationError) -> Response[Any]:
    details = []
    for error in exc.errors():
        location = [str(part) for part in error.get("loc", ())]
        json_error = error.get("type") == "json_invalid"
        details.append(
            {
                "field": "body" if json_error else (location[-1] if location else None),
                "location": location[0] if location else None,
                "message": error.get("msg", "invalid value"),
                "type": error.get("type", "value_error"),
            }
        )
    if any(detail["type"] == "json_invalid" for detail in details):
        return error_response(400, "BAD_REQUEST", "The request body is not valid JSON", details)
    return error_response(422, "VALIDATION_ERROR", "The request is not valid", details)


def _handle_unexpected(exc: Exception) -> Response[Any]:
    logger.exception("unhandled error")
    return error_response(500, "INTERNAL_ERROR", "Internal server error")


class MethodNotAllowed(ApiError):
    status = 405
    code = "METHOD_NOT_ALLOWED"

    def __init__(self, methods: set[str]) -> None:
        allow = ", ".join(sorted(methods | {"OPTIONS"}))
        super().__init__(
            f"This resource answers {allow}",
            [{"field": "method", "allowed": allow.split(", ")}],
            headers={"Allow": allow},
        )


def _resource(route_path: str) -> str:
    """A Powertools route path as API Gateway names the resource: /leads/<id> -> /leads/{id}."""
    return re.sub(r"<(\w+)>", r"{\1}", route_path)


def _methods_of_resource(app: APIGatewayRestResolver) -> set[str]:
    """The methods the app serves on the request's resource (API Gateway's `resource`; the path
    when the event has none)."""
    routes = [*app._static_routes, *app._dynamic_routes]
    resource = app.current_event.resource
    if resource:
        return {route.method for route in routes if _resource(route.path) == resource}
    return {route.method for route in routes if route.rule.match(app.current_event.path)}


def _not_found_or_not_allowed(app: APIGatewayRestResolver) -> Callable[[Exception], Response[Any]]:
    """No route for the request: 405 with `Allow` when the resource is served with other methods
    (API Gateway brings any method through the resource's ANY event), else 404."""

    def answer(exc: Exception) -> Response[Any]:
        methods = _methods_of_resource(app)
        if not methods:
            return error_response(404, "NOT_FOUND", "No such route")
        return _handle_api_error(MethodNotAllowed(methods))

    return answer


def cors_config() -> CORSConfig:
    origins = get_settings().cors_allow_origins
    # Powertools takes one origin in `allow_origin` (a list there silently disables CORS) and the
    # rest in `extra_origins`; an Origin outside the list gets no CORS headers at all.
    return CORSConfig(
        allow_origin=origins[0],
        extra_origins=list(origins[1:]),
        allow_headers=ALLOWED_HEADERS,
        expose_headers=EXPOSED_HEADERS,
        max_age=PREFLIGHT_MAX_AGE,
    )


API_TITLE = "Lead CRM API"
API_VERSION = "0.1.0"


def openapi_schema(app: APIGatewayRestResolver) -> OpenAPI:
    """The OpenAPI document of one function's routes (`crm openapi` merges them). The OpenAPI
    models are imported here, never on a request's path."""
    from aws_lambda_powertools.event_handler.openapi.models import HTTPBearer

    app.configure_openapi(
        title=API_TITLE,
        version=API_VERSION,
        security_schemes={BEARER_AUTH: HTTPBearer(bearerFormat="JWT")},
    )
    return app.get_openapi_schema()


def create_app() -> APIGatewayRestResolver:
    """The resolver of an API function, with validation on. Constructed without it, then turned on,
    so that Powertools does not import its validation middlewares here: every route's middleware
    stack starts with `_BodyLimitThenValidation` and ends with the response validation, both of
    which import the OpenAPI machinery on the first request (Powertools builds each route's
    stack on its first call, from these two attributes)."""
    app = APIGatewayRestResolver(cors=cors_config())
    assert hasattr(app, "_enable_validation"), "Powertools moved its validation switch"
    app._enable_validation = True
    # Powertools types these as its own middlewares; any middleware handler fits in the stack.
    app._request_validation_middleware = _BodyLimitThenValidation()  # type: ignore[assignment]
    app._response_validation_middleware = _OnFirstUse(_response_validation)  # type: ignore[assignment]
    _handle_refused_requests(app)
    app.exception_handler(Exception)(_handle_unexpected)
    app.not_found(_not_found_or_not_allowed(app))
    return app


def _check_caller(app: APIGatewayRestResolver) -> None:
    """The matched route's authorization: identifies the caller, or raises 401/403."""
    route = app.context.get("_route")
    for middleware in getattr(route, "middlewares", None) or []:
        if isinstance(middleware, Authorize):
            middleware.check(app)


def _handle_refused_requests(app: APIGatewayRestResolver) -> None:
    """The answers to requests refused before their route runs."""
    app.exception_handler(ApiError)(_handle_api_error)

    def authorized_or_error(respond: Callable[[], Response[Any]]) -> Response[Any]:
        """Powertools reads and validates the request before any route middleware runs; an
        anonymous or unauthorised caller gets 401/403 first and learns nothing about the route."""
        try:
            _check_caller(app)
        except ApiError as auth_error:
            return _handle_api_error(auth_error)
        return respond()

    @app.exception_handler(RequestValidationError)
    def _handle_validation_error(exc: RequestValidationError) -> Response[Any]:
        return authorized_or_error(lambda: _validation_error_response(exc))

    @app.exception_handler(PayloadTooLarge)
    def _handle_refused_body(exc: ApiError) -> Response[Any]:
        return authorized_or_error(lambda: _handle_api_error(exc))

    @app.exception_handler(BodyNestedTooDeep)
    def _handle_unreadable_body(exc: ApiError) -> Response[Any]:
        """Refused to everyone, whoever asks: the answer says nothing about the route or its data.
        The caller is still identified when it can be, for the audit record."""
        with contextlib.suppress(ApiError):
            _check_caller(app)
        return _handle_api_error(exc)

    @app.exception_handler(RequestUnsupportedContentType)
    def _handle_unsupported_content_type(exc: RequestUnsupportedContentType) -> Response[Any]:
        content_type = app.current_event.headers.get("Content-Type")  # case-insensitive in Powertools 3
        return authorized_or_error(
            lambda: error_response(
                415,
                "UNSUPPORTED_MEDIA_TYPE",
                "Send the request body as application/json",
                [{"field": "Content-Type", "message": f"{content_type} is not accepted"}],
            )
        )

    @app.exception_handler(UnicodeDecodeError)
    def _handle_undecodable_body(exc: UnicodeDecodeError) -> Response[Any]:
        if not app.current_event.is_base64_encoded:  # not the body's bytes: a fault of ours
            return _handle_unexpected(exc)
        return authorized_or_error(
            lambda: error_response(
                400,
                "BAD_REQUEST",
                "The request body is not valid JSON",
                [{"field": "body", "message": "not UTF-8 text"}],
            )
        )


def _error_responses(codes: Iterable[int]) -> dict[int, Any]:
    return {
        code: {"description": HTTPStatus(code).phrase, "content": {JSON: {"model": ErrorBody}}}
        for code in codes
    }


class Authorize:
    """Route middleware: authenticate the bearer token, then require one of `roles`.

    Powertools validates request parameters before any route middleware runs; the validation
    error handler calls `check` first, so an anonymous or unauthorised caller learns nothing
    about a route's parameters (401/403, never 422)."""

    def __init__(self, roles: frozenset[Role]) -> None:
        self.roles = roles
        self.__name__ = f"authorize({','.join(sorted(roles))})"  # Powertools names each middleware

    def check(self, app: APIGatewayRestResolver) -> None:
        principal = dependencies.authenticator().authenticate(app.current_event.headers.get("Authorization"))
        set_current_principal(principal)
        logger.append_keys(user=principal.user_id, role=principal.role.value)
        if principal.role not in self.roles:
            method = app.current_event.http_method
            raise Forbidden(f"Role {principal.role.value} may not {method} this resource")

    def __call__(self, app: APIGatewayRestResolver, next_middleware: NextMiddleware) -> Response[Any]:
        self.check(app)
        return next_middleware(app)


def endpoint(
    router: Router,
    method: str,
    rule: str,
    *,
    roles: Iterable[Role],
    response_model: type[BaseModel] | None,
    status: int = 200,
    errors: Iterable[int] = (),
    tags: list[str] | None = None,
    request_model: type[BaseModel] | None = None,
    text_media_types: Iterable[str] = (),
) -> Callable[[F], F]:
    """Declares an authenticated route. There is no way to declare one without roles: a route
    is closed to everyone it does not name. Its summary is the first line of the handler's
    docstring, which every route must have; the rest of the docstring, if any, follows the roles
    in the route's description. `request_model` documents a body the route parses
    itself (published as the operation's requestBody by `crm openapi`); `text_media_types` are
    other representations of the success response (e.g. text/csv), published as strings."""
    allowed = frozenset(roles)
    if not allowed:
        raise ValueError(f"{method} {rule}: at least one role must be allowed")
    success: dict[str, Any] = {"description": HTTPStatus(status).phrase}
    if response_model is not None:
        success["content"] = {JSON: {"model": response_model}}
    for media_type in text_media_types:
        success.setdefault("content", {})[media_type] = {"schema": {"type": "string"}}
    responses: dict[int, Any] = {
        status: success,
        **_error_responses(sorted({400, 401, 403, 422, 500, *BODY_ERRORS.get(method.upper(), ()), *errors})),
    }

    def declare(handler: F) -> F:
        summary, _, rules = inspect.cleandoc(handler.__doc__ or "").partition("\n")
        if not summary:
            raise ValueError(f"{method} {rule}: the handler's docstring is the route's summary")
        roles_line = f"Roles: {', '.join(sorted(role.value for role in allowed))}."
        route = router.route(
            rule,
            method.upper(),
            summary=summary,
            description="\n\n".join(part for part in (roles_line, rules.strip()) if part),
            responses=responses,
            tags=tags,
            security=[{BEARER_AUTH: []}],
            middlewares=[Authorize(allowed)],
            openapi_extensions={
                "x-roles": sorted(role.value for role in allowed),
                **({REQUEST_SCHEMA_EXTENSION: _request_model_name(request_model)} if request_model else {}),
            },
        )
        return route(handler)

    return declare


def _request_model_name(model: type[BaseModel]) -> str:
    """Records a body model a route parses itself; `crm openapi` publishes its JSON schema (built
    there, not at every cold start)."""
    REQUEST_MODELS.setdefault(model.__name__, model)
    if REQUEST_MODELS[model.__name__] is not model:
        raise ValueError(f"two request models are named {model.__name__}")
    return model.__name__


def _add_cache_status(response: dict[str, Any]) -> None:
    """`X-Cache: hit|miss` on an answer that read through the query cache."""
    status = request_cache_status()
    if status is None:
        return
    if response.get("multiValueHeaders") is not None:
        response["multiValueHeaders"][CACHE_STATUS_HEADER] = [status]
    else:
        response["headers"] = {**(response.get("headers") or {}), CACHE_STATUS_HEADER: status}


def _vary_on_origin(response: dict[str, Any]) -> None:
    """`Vary: Origin` on every answer, whatever the request's Origin: its CORS headers depend on
    it (the origin itself when allowed, none otherwise), so a shared cache in front of the API
    must never hand one origin's answer to another. Powertools sets no `Vary`; one a route sets
    keeps its fields, with Origin added once."""
    headers: dict[str, list[str]] = response.setdefault("multiValueHeaders", {})  # the REST form
    name = next((key for key in headers if key.lower() == "vary"), "Vary")
    fields = [field.strip() for value in headers.get(name, []) for field in value.split(",") if field.strip()]
    if not any(field.lower() in ("origin", "*") for field in fields):
        headers[name] = [", ".join([*fields, "Origin"])]


def handle_request(app: APIGatewayRestResolver, event: dict[str, Any], context: Any) -> dict[str, Any]:
    """One API request (the Lambda handler, `shared.entrypoints.HttpFunction`, adds the logging
    context and flushes the metrics): the route's answer, and one audit record."""
    started = time.perf_counter()
    set_current_principal(None)
    start_request_lookups()
    try:
        response: dict[str, Any] = app.resolve(event, context)
    finally:
        principal = current_principal_or_none()
        set_current_principal(None)
    _add_cache_status(response)
    _vary_on_origin(response)
    duration_ms = (time.perf_counter() - started) * 1000
    record = build_record(event, response["statusCode"], duration_ms, principal)
    dependencies.audit_log().record(record, str(event.get("httpMethod", "")))
    return response
