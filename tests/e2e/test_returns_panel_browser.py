"""The dashboard's pending returns panel in a real browser (Debian's chromium, headless, through
Playwright), on a `crm serve --dashboard` of this module's own: an admin sees every agency's pending
returns, each value as the API gives it, approves one and rejects another (the list is read again:
each leaves it and the API has it decided), and is told when a return was decided elsewhere in the
meantime; a manager sees the list without the buttons."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from playwright.sync_api import Locator, Page, expect

from tests.e2e.conftest import LocalServer, sign_in_as, start_server, stop_server
from tests.e2e.test_dashboard_browser import (
    ARTIFACTS,
    READY,
    admin_token,
    check_every_value_against_the_api,
    record_answers,
)
from tests.e2e.test_lead_returns import ask, decide, post_lead
from tests.integration.conftest import free_port

VENDOR = "V001"  # of demo-vendor-1, who posts the leads below
# A note is shown as text: markup in it is never markup on the page.
MARKUP_NOTE = '<img src=x onerror="document.body.dataset.injected=1"> not the right <b>person</b>'


@pytest.fixture(scope="module")
def dashboard_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def server(dashboard_port: int) -> Iterator[LocalServer]:
    local = start_server(extra_args=("--dashboard", "--dashboard-port", str(dashboard_port)))
    yield local
    stop_server(local)


@pytest.fixture(scope="module")
def dashboard(server: LocalServer, dashboard_port: int) -> str:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return f"http://127.0.0.1:{dashboard_port}"


def returned_lead(server: LocalServer, **body: Any) -> dict[str, Any]:
    """A fresh lead of V001 with a pending return."""
    lead = post_lead(server)
    asked = ask(server, lead["lead_id"], **body)
    assert asked.status_code == 201, asked.text
    return lead


def open_dashboard(page: Page, dashboard: str, user_id: str) -> None:
    sign_in_as(page, dashboard, user_id)
    # The first load after the server starts waits for the functions' cold starts.
    page.wait_for_selector(READY, state="attached", timeout=90_000)
    expect(page.locator("#app")).to_be_visible()


def row_of(page: Page, lead: dict[str, Any]) -> Locator:
    return page.locator(f'#returns-table tbody tr[data-lead-id="{lead["lead_id"]}"]')


def the_return(server: LocalServer, lead: dict[str, Any]) -> dict[str, Any]:
    read = server.get(f"/leads/{lead['lead_id']}/return", admin_token())
    assert read.status_code == 200, read.text
    return dict(read.json())


def test_an_admin_approves_one_return_and_rejects_another_from_the_panel(
    server: LocalServer, page: Page, dashboard: str
) -> None:
    # Given two leads of V001 with a pending return each, one with a note holding markup
    approved = returned_lead(server, reason_code="BAD_PHONE")
    rejected = returned_lead(server, reason_code="OTHER", note=MARKUP_NOTE)
    received = record_answers(page, server.base_url)
    # When the admin opens the dashboard
    open_dashboard(page, dashboard, "demo-admin")
    # Then the panel lists both, newest first, with who, why and when, and the buttons
    rows = page.locator("#returns-table tbody tr")
    expect(row_of(page, approved)).to_be_visible()
    assert rows.nth(0).get_attribute("data-lead-id") == rejected["lead_id"]
    assert rows.nth(1).get_attribute("data-lead-id") == approved["lead_id"]
    expect(page.locator("#returns-table thead th")).to_have_text(
        ["Lead", "Vendor", "Reason", "Note", "Requested", "Decision"]
    )
    pending = the_return(server, rejected)
    expect(row_of(page, rejected).locator("td")).to_have_text(
        [rejected["lead_id"], VENDOR, "OTHER", MARKUP_NOTE, pending["requested_at"], "ApproveReject"]
    )
    expect(row_of(page, approved).locator("td").nth(3)).to_have_text("\u2013")  # no note
    # And the note's markup is text, not elements
    expect(page.locator("#returns-table img, #returns-table b")).to_have_count(0)
    assert page.evaluate("document.body.dataset.injected") is None
    # And every value on the page (the panel's too) is the API's
    check_every_value_against_the_api(page, server, received)
    page.screenshot(path=str(ARTIFACTS / "pending-returns.png"), full_page=True)

    # Given a return asked for after the panel was read
    later = returned_lead(server, reason_code="DUPLICATE")
    expect(row_of(page, later)).to_have_count(0)
    # When the admin approves the first
    row_of(page, approved).get_by_role("button", name="Approve").click()
    # Then the list is read again: the row leaves the panel, the later return joins it
    expect(row_of(page, approved)).to_have_count(0)
    expect(row_of(page, later)).to_be_visible()
    # And the API has it approved, crediting the lead's price
    decided = the_return(server, approved)
    assert (decided["status"], decided["decided_by"]) == ("approved", "demo-admin")
    assert float(decided["credit"]) == float(approved["lead_value"])
    expect(row_of(page, rejected)).to_be_visible()

    # When the admin rejects the other
    row_of(page, rejected).get_by_role("button", name="Reject").click()
    # Then it leaves too, rejected without a credit, and no message was shown
    expect(row_of(page, rejected)).to_have_count(0)
    decided = the_return(server, rejected)
    assert (decided["status"], decided["credit"]) == ("rejected", None)
    expect(page.locator("#returns-message")).to_be_hidden()
    expect(page.locator("#error")).to_be_hidden()
    assert the_return(server, later)["status"] == "pending"


def test_a_return_decided_elsewhere_is_said_in_the_panel_and_leaves_it(
    server: LocalServer, page: Page, dashboard: str
) -> None:
    # Given a pending return on the admin's screen
    lead = returned_lead(server)
    open_dashboard(page, dashboard, "demo-admin")
    expect(row_of(page, lead)).to_be_visible()
    # And another admin approves it meanwhile
    assert decide(server, lead["lead_id"], "approved").status_code == 200
    # When the admin rejects it on the dashboard
    row_of(page, lead).get_by_role("button", name="Reject").click()
    # Then the panel says it was decided already, the row is gone, and it stays approved
    message = page.locator("#returns-message")
    expect(message).to_be_visible()
    expect(message).to_have_text(
        f"Could not reject the return of lead {lead['lead_id']}: "
        f"The return of lead {lead['lead_id']} is approved already"
    )
    expect(row_of(page, lead)).to_have_count(0)
    assert the_return(server, lead)["status"] == "approved"
    page.screenshot(path=str(ARTIFACTS / "return-decided-elsewhere.png"), full_page=True)


def test_a_manager_sees_the_pending_returns_without_the_buttons(
    server: LocalServer, page: Page, dashboard: str
) -> None:
    # Given a pending return
    lead = returned_lead(server)
    # When a manager opens the dashboard
    open_dashboard(page, dashboard, "demo-manager")
    # Then the return is listed, read-only: no button to decide, and the panel says who decides
    expect(row_of(page, lead)).to_be_visible()
    expect(page.locator("#returns-table button")).to_have_count(0)
    expect(page.get_by_role("button", name="Approve")).to_have_count(0)
    expect(page.locator("#returns-table thead th", has_text="Decision")).to_have_count(0)
    expect(page.locator("#returns-readonly")).to_be_visible()
    assert the_return(server, lead)["status"] == "pending"
