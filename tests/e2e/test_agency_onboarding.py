"""Agencies over real HTTP on a `crm serve` of their own (these tests pause, cap and revoke): the
onboarding flow, pausing, caps, test mode, and the new routes' CORS."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from tests.e2e.conftest import LocalServer, eventually, start_server, stop_server
from tests.helpers import ALLOWED_ORIGIN, DISALLOWED_ORIGIN, staff_token

USER_CACHE_SECONDS = 2  # revocation takes effect within this (60 s at most in any configuration)
ADMIN = staff_token("demo-admin")


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    local = start_server({"USER_CACHE_SECONDS": str(USER_CACHE_SECONDS)})
    yield local
    stop_server(local)


def new_agency(server: LocalServer, **fields: Any) -> str:
    code = f"T{uuid.uuid4().hex[:6].upper()}"
    response = server.request(
        "POST", "/agencies", ADMIN, json={"vendor_code": code, "name": f"Agency {code}", **fields}
    )
    assert response.status_code == 201, response.text
    return code


def credential(server: LocalServer, code: str) -> dict[str, Any]:
    response = server.request("POST", f"/agencies/{code}/credentials", ADMIN)
    assert response.status_code == 201, response.text
    assert response.headers["Cache-Control"] == "no-store"
    body: dict[str, Any] = response.json()
    return body


def post_lead(server: LocalServer, token: str) -> requests.Response:
    lead = {"email": f"onboard-{uuid.uuid4().hex}@example.com", "first_name": "Dana", "tcpa_consent": True}
    return server.request("POST", "/leads", token, json=lead)


def test_onboarding_create_issue_post_revoke(server: LocalServer) -> None:
    # Given a new agency and an integration token issued for it
    code = new_agency(server)
    issued = credential(server, code)
    # When its system posts a lead with that token
    posted = post_lead(server, issued["token"])
    # Then the lead is the agency's, and its performance counts it
    assert posted.status_code == 201, posted.text
    assert posted.json()["lead"]["vendor_code"] == code
    counted = eventually(
        lambda: performance(server, code, issued["token"]), {"leads": 1, "leadsThisMonth": 1}
    )
    assert counted == {"leads": 1, "leadsThisMonth": 1}
    # When the credential is revoked
    revoked = server.request("DELETE", f"/agencies/{code}/credentials/{issued['user_id']}", ADMIN)
    assert revoked.status_code == 204
    # Then the same token is refused within the user cache time, by every function (each
    # execution environment trusts a user it loaded for at most that long)
    deadline = time.monotonic() + USER_CACHE_SECONDS + 3

    def statuses() -> tuple[int, int]:
        return post_lead(server, issued["token"]).status_code, server.get(
            f"/agencies/{code}", issued["token"]
        ).status_code

    while (status := statuses()) != (401, 401) and time.monotonic() < deadline:
        time.sleep(0.25)
    assert status == (401, 401)


def test_a_paused_agency_is_refused_until_resumed(server: LocalServer) -> None:
    code = new_agency(server)
    token = credential(server, code)["token"]
    assert server.request("PATCH", f"/agencies/{code}", ADMIN, json={"status": "paused"}).status_code == 200
    refused = post_lead(server, token)
    assert refused.status_code == 403
    assert refused.json()["reason_code"] == "VENDOR_PAUSED"
    assert server.request("PATCH", f"/agencies/{code}", ADMIN, json={"status": "active"}).status_code == 200
    assert post_lead(server, token).status_code == 201


def test_a_monthly_cap_of_two_refuses_the_third_post(server: LocalServer) -> None:
    code = new_agency(server)
    token = credential(server, code)["token"]
    assert server.request("PATCH", f"/agencies/{code}", ADMIN, json={"monthly_cap": 2}).status_code == 200
    assert [post_lead(server, token).status_code for _ in range(2)] == [201, 201]
    third = post_lead(server, token)
    assert third.status_code == 429
    assert third.json()["reason_code"] == "OVER_CAP"


def test_test_mode_posts_are_accepted_but_absent_from_stats(server: LocalServer) -> None:
    # Given an agency in test mode
    code = new_agency(server, test_mode=True)
    token = credential(server, code)["token"]
    # When it posts a lead, then goes live and posts another
    posted = post_lead(server, token)
    assert posted.status_code == 201
    assert posted.json()["lead"]["is_test"] is True
    assert server.request("PATCH", f"/agencies/{code}", ADMIN, json={"test_mode": False}).status_code == 200
    live = post_lead(server, token)
    assert live.json()["lead"]["is_test"] is False
    # Then its performance counts the live lead only, once the consumer has applied both
    assert eventually(lambda: performance(server, code)["leads"], 1) == 1
    assert performance(server, code)["leadsThisMonth"] == 1


def test_agency_performance_follows_a_lead_event_within_the_freshness_interval(server: LocalServer) -> None:
    code = new_agency(server)
    token = credential(server, code)["token"]
    assert server.get("/agencies?limit=200", ADMIN).status_code == 200  # cached
    assert post_lead(server, token).status_code == 201

    def listed_leads() -> int:
        listed = server.get("/agencies?limit=200", ADMIN).json()["data"]
        return int(next(agency for agency in listed if agency["vendor_code"] == code)["performance"]["leads"])

    assert eventually(listed_leads, 1) == 1


def performance(server: LocalServer, code: str, token: str = ADMIN) -> dict[str, int]:
    body = server.get(f"/agencies/{code}", token).json()["performance"]
    return {"leads": body["leads"], "leadsThisMonth": body["leadsThisMonth"]}


@pytest.mark.parametrize("path", ["/agencies", "/agencies/V001", "/pricing/settings", "/agents/demo-agent-1"])
def test_new_routes_answer_preflight_without_auth_and_only_to_allowed_origins(
    server: LocalServer, path: str
) -> None:
    headers = {
        "Access-Control-Request-Method": "PATCH",
        "Access-Control-Request-Headers": "authorization,content-type",
    }
    allowed = server.request("OPTIONS", path, headers=headers)
    assert allowed.status_code in (200, 204)
    assert allowed.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    denied = server.request("OPTIONS", path, origin=DISALLOWED_ORIGIN, headers=headers)
    assert "Access-Control-Allow-Origin" not in denied.headers
    # An anonymous GET: 401, or 405 where the resource has no GET; either way an allowed origin
    # can read the error.
    refused = server.get(path, None)
    assert refused.status_code == (405 if path == "/pricing/settings" else 401)
    assert refused.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN


@pytest.mark.parametrize(
    ("method", "path", "body", "schema"),
    [
        ("GET", "/agencies", None, "AgencyPage"),
        ("GET", "/agencies/V001", None, "AgencyWithPerformance"),
        ("GET", "/pricing", None, "PricingView"),
        ("POST", "/pricing/quote", {"vendor_code": "V002", "quality_score": 6}, "QuoteResponse"),
        ("GET", "/agents", None, "AgentPage"),
        ("GET", "/agents/demo-agent-1", None, "Agent"),
    ],
)
def test_responses_validate_against_the_published_schema(
    server: LocalServer, method: str, path: str, body: Any, schema: str
) -> None:
    import jsonschema

    document = server.get("/openapi.json").json()
    answer = server.request(method, path, ADMIN, json=body)
    assert answer.status_code == 200, answer.text
    jsonschema.validate(
        answer.json(),
        {**document, "$ref": f"#/components/schemas/{schema}"},
        cls=jsonschema.Draft202012Validator,
    )
