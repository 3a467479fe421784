"""Swagger UI at /docs in a real browser (Debian's chromium, headless, through Playwright), served
by `crm serve` with no network: every operation of /openapi.json is listed, Authorize takes a
bearer token, and "Try it out" calls the local API with it. Screenshots go to
test-artifacts/swagger/."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from playwright.sync_api import ConsoleMessage, Locator, Page, expect

from tests.e2e.conftest import PROJECT_ROOT, LocalServer
from tests.helpers import staff_token

ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "swagger"
HTTP_METHODS = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
WAIT_MS = 30_000  # a bound, not an expectation: the first call starts the function


@pytest.fixture(scope="module")
def document(server: LocalServer) -> dict[str, Any]:
    return server.get("/openapi.json").json()


@pytest.fixture
def errors(page: Page) -> list[str]:
    """What the page reports as going wrong: console errors (a refused script or style, a failed
    load) and uncaught exceptions."""
    seen: list[str] = []

    def on_console(message: ConsoleMessage) -> None:
        if message.type == "error":
            seen.append(message.text)

    page.on("console", on_console)
    page.on("pageerror", lambda error: seen.append(f"uncaught: {error}"))
    return seen


def operation_block(page: Page, document: dict[str, Any], path: str, method: str) -> Locator:
    """Swagger UI's block for one operation (its id is `operations-TAG-OPERATIONID`)."""
    operation = document["paths"][path][method]
    tag = (operation.get("tags") or ["default"])[0]
    return page.locator(f"#operations-{tag}-{operation['operationId']}")


def open_docs(page: Page, server: LocalServer, document: dict[str, Any]) -> None:
    """Opens /docs and waits until every operation of the document is listed."""
    operations = sum(method in HTTP_METHODS for item in document["paths"].values() for method in item)
    page.goto(f"{server.base_url}/docs")
    expect(page.locator(".opblock")).to_have_count(operations, timeout=WAIT_MS)


def authorize(page: Page, token: str) -> None:
    page.locator(".auth-wrapper .authorize").click()
    page.locator(".auth-container input").fill(token)
    page.locator(".auth-btn-wrapper .authorize").click()
    page.locator(".btn-done").click()
    expect(page.locator(".auth-wrapper .authorize")).to_have_class(re.compile(r"\blocked\b"))


def execute(block: Locator, query: dict[str, str] | None = None) -> tuple[str, Locator, Any]:
    """Expands the operation, Try it out, fills the `query` parameters, Execute: the request URL,
    the status and the response body (parsed) that Swagger UI shows."""
    block.locator(".opblock-summary").click()
    block.locator(".try-out__btn").click()
    for name, value in (query or {}).items():
        block.locator(f'tr[data-param-name="{name}"][data-param-in="query"] input').fill(value)
    block.locator(".execute").click()
    response = block.locator(".live-responses-table .response")
    status = response.locator(".response-col_status")
    expect(status).to_have_text(re.compile(r"^\d{3}$"), timeout=WAIT_MS)
    body = response.locator(".response-col_description pre").first.inner_text()
    return block.locator(".request-url pre").inner_text(), status, json.loads(body)


def test_docs_lists_every_operation_with_no_error(
    server: LocalServer, document: dict[str, Any], page: Page, errors: list[str]
) -> None:
    # Given the page, its script and its stylesheet as the API serves them
    docs = server.get("/docs", origin=None)
    assert docs.headers["Content-Type"].startswith("text/html")
    policy = docs.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy
    assert "'unsafe-inline'" not in policy
    for asset in re.findall(r'(?:src|href)="(/docs/[^"]+)"', docs.text):
        served = server.get(asset, origin=None)
        assert served.status_code == 200, asset
        expected = "text/css" if asset.endswith(".css") else "text/javascript"
        assert served.headers["Content-Type"].startswith(expected), asset
    # When chromium opens /docs
    open_docs(page, server, document)
    # Then every operation of /openapi.json is listed, with the document's title, and nothing failed
    expect(page.locator(".info .title")).to_contain_text(document["info"]["title"])
    for path, item in document["paths"].items():
        for method in HTTP_METHODS & set(item):
            expect(operation_block(page, document, path, method)).to_have_count(1)
    page.screenshot(path=str(ARTIFACTS / "operations.png"))
    assert errors == []


def test_try_it_out_with_a_token_calls_the_local_api(
    server: LocalServer, document: dict[str, Any], page: Page, errors: list[str]
) -> None:
    # Given /docs, authorized with an admin's bearer token
    open_docs(page, server, document)
    authorize(page, staff_token("demo-admin"))
    # When the admin tries GET /leads
    url, status, body = execute(operation_block(page, document, "/leads", "get"), {"limit": "5"})
    # Then the local API answered 200 with the leads it gives that token
    assert url == f"{server.base_url}/leads?limit=5"
    expect(status).to_have_text("200")
    expected = server.get(url.removeprefix(server.base_url), staff_token("demo-admin")).json()
    assert len(body["data"]) == 5
    assert [lead["lead_id"] for lead in body["data"]] == [lead["lead_id"] for lead in expected["data"]]
    page.screenshot(path=str(ARTIFACTS / "try-it-out.png"), full_page=True)
    assert errors == []


def test_try_it_out_without_a_token_is_refused(
    server: LocalServer, document: dict[str, Any], page: Page
) -> None:
    # Given /docs, not authorized
    open_docs(page, server, document)
    # When GET /leads is tried
    _, status, body = execute(operation_block(page, document, "/leads", "get"), {"limit": "5"})
    # Then the API's own refusal is shown
    expect(status).to_have_text("401")
    assert body["error"]["code"] == "UNAUTHORIZED"
