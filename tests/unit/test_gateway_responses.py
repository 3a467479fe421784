"""API Gateway's own answers (template.yaml's GatewayResponses) as the template defines them and
as the local gateway (`crm.gateway`) gives them: CORS for whichever origin asked, `Vary: Origin`."""

from __future__ import annotations

from typing import Any

import pytest

from crm.gateway import ApiGateway
from crm.template import HeaderMapping, Template, load_raw
from tests.helpers import ALLOWED_ORIGIN, DISALLOWED_ORIGIN, SECOND_ORIGIN

KINDS = ("DEFAULT_4XX", "DEFAULT_5XX", "MISSING_AUTHENTICATION_TOKEN")


def gateway_responses_as_written() -> dict[str, Any]:
    api = next(
        resource
        for resource in load_raw()["Resources"].values()
        if resource["Type"] == "AWS::Serverless::Api"
    )
    responses: dict[str, Any] = api["Properties"]["GatewayResponses"]
    return responses


def routeless_gateway() -> ApiGateway:
    """The template's gateway responses in front of no route: every path is unknown."""
    template = Template.load({"CorsAllowOrigins": f"{ALLOWED_ORIGIN},{SECOND_ORIGIN}"})
    return ApiGateway([], None, template.gateway_responses(), "test")  # type: ignore[arg-type]


def unknown_route(headers: list[tuple[str, str]]) -> tuple[int, dict[str, str], bytes]:
    status, pairs, body = routeless_gateway().handle("GET", "/no-such-route", headers, b"", "127.0.0.1")
    return status, dict(pairs), body


@pytest.mark.parametrize("kind", KINDS)
def test_each_gateway_response_echoes_the_request_origin_and_varies_on_it(kind: str) -> None:
    headers = gateway_responses_as_written()[kind]["ResponseParameters"]["Headers"]
    # The one mapping API Gateway offers that serves every origin: the request's own Origin header
    assert headers["Access-Control-Allow-Origin"] == "method.request.header.Origin"
    assert headers["Vary"] == "'Origin'"
    # and nothing that would let a page send credentials along
    assert "Access-Control-Allow-Credentials" not in headers


@pytest.mark.parametrize("origin", [ALLOWED_ORIGIN, SECOND_ORIGIN])
def test_an_unknown_route_answers_each_allowed_origin_with_its_own(origin: str) -> None:
    # When
    status, headers, body = unknown_route([("Host", "api.test"), ("Origin", origin)])
    # Then
    assert status == 404
    assert b'"NOT_FOUND"' in body
    assert headers["Access-Control-Allow-Origin"] == origin
    assert headers["Vary"] == "Origin"


def test_an_unknown_route_echoes_a_disallowed_origin_as_api_gateway_does() -> None:
    # A gateway response cannot test the origin (docs/decisions.md): the local gateway echoes it too
    status, headers, _ = unknown_route([("Origin", DISALLOWED_ORIGIN)])
    assert status == 404
    assert headers["Access-Control-Allow-Origin"] == DISALLOWED_ORIGIN
    assert "Access-Control-Allow-Credentials" not in headers


def test_a_request_without_origin_gets_no_allow_origin() -> None:
    status, headers, _ = unknown_route([("Host", "api.test")])
    assert status == 404
    assert "Access-Control-Allow-Origin" not in headers
    assert headers["Vary"] == "Origin"


def test_the_header_is_mapped_by_its_name_as_written_and_the_last_value_wins() -> None:
    _, lowercase, _ = unknown_route([("origin", SECOND_ORIGIN)])
    _, repeated, _ = unknown_route([("Origin", ALLOWED_ORIGIN), ("Origin", SECOND_ORIGIN)])
    assert "Access-Control-Allow-Origin" not in lowercase  # the strict reading: never kinder than AWS
    assert repeated["Access-Control-Allow-Origin"] == SECOND_ORIGIN


def test_a_body_over_api_gateways_limit_is_refused_with_the_origin_echoed() -> None:
    # When a body one byte over 10 MB reaches the gateway
    gateway = routeless_gateway()
    status, pairs, body = gateway.handle(
        "POST", "/leads", [("Origin", SECOND_ORIGIN)], b"x" * (10 * 1024 * 1024 + 1), "127.0.0.1"
    )
    # Then it is DEFAULT_4XX's 413, readable by the origin that sent it
    assert status == 413
    assert b'"GATEWAY_ERROR"' in body
    assert dict(pairs)["Access-Control-Allow-Origin"] == SECOND_ORIGIN


@pytest.mark.parametrize(
    "expression", ["context.requestId", "method.request.querystring.origin", "stageVariables.origin", "'a"]
)
def test_a_mapping_the_local_gateway_cannot_give_is_refused_when_the_template_is_read(
    expression: str,
) -> None:
    with pytest.raises(ValueError, match="cannot map"):
        HeaderMapping.parse("DEFAULT_4XX", "X-Example", expression)


def test_a_static_value_is_given_as_written() -> None:
    mapping = HeaderMapping.parse("DEFAULT_4XX", "Vary", "'Origin'")
    assert mapping.value([]) == "Origin"
    assert mapping.value([("Vary", "Accept")]) == "Origin"
