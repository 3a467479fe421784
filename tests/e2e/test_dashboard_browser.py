"""The reference dashboard in a real browser (Debian's chromium, headless, through Playwright),
served by `crm serve --dashboard` on an origin of its own so every API call is cross-origin:
sign in, see the API's numbers, move a lead and see the stats follow, and see a disallowed origin
refused. Screenshots go to test-artifacts/dashboard/."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from crm.dashboard import serve_dashboard
from tests.e2e.conftest import (
    CHROMIUM,
    PROJECT_ROOT,
    LocalServer,
    eventually,
    start_server,
    stop_server,
)
from tests.helpers import make_token
from tests.integration.conftest import free_port

ARTIFACTS = PROJECT_ROOT / "test-artifacts" / "dashboard"
ADMIN = make_token("demo-admin")


@pytest.fixture(scope="module")
def dashboard_port() -> int:
    return free_port()


@pytest.fixture(scope="module")
def server(dashboard_port: int) -> Iterator[LocalServer]:
    local = start_server(extra_args=("--dashboard", "--dashboard-port", str(dashboard_port)))
    yield local
    stop_server(local)


def sign_in(page: Page, dashboard: str, api: str, token: str) -> None:
    page.goto(f"{dashboard}/?api={api}")
    page.fill("#token", token)
    page.click("#login")


def dollars(value: Any) -> str:
    return f"${Decimal(str(value)):,.2f}"


def test_signed_in_dashboard_shows_the_api_numbers(
    server: LocalServer, page: Page, dashboard_port: int
) -> None:
    # Given the numbers the API gives an admin
    stats = server.get("/admin/stats", ADMIN, params={"period": "30d"}).json()
    agencies = server.get("/agencies", ADMIN, params={"limit": "200"}).json()["data"]
    # When the admin signs in on the dashboard's own origin
    sign_in(page, f"http://127.0.0.1:{dashboard_port}", server.base_url, ADMIN)
    # Then the stats, the charts, the leads and the agencies are there, equal to the API's
    expect(page.locator("#app")).to_be_visible()
    expect(page.locator("#revenue-total")).to_have_text(dollars(stats["revenue"]["total"]))
    expect(page.locator("#leads-count")).to_have_text(f"{stats['conversion']['leads']:,}")
    expect(page.locator("#conversions-count")).to_have_text(f"{stats['conversion']['conversions']:,}")
    expect(page.locator("#agents-online")).to_have_text(
        f"{stats['agents']['online']} / {stats['agents']['total']}"
    )
    expect(page.locator("#revenue-chart polyline")).to_have_attribute("data-points", "30")
    expect(page.locator("#analytics-chart")).to_have_attribute("data-bars", "30")
    expect(page.locator("#insights li").first).to_be_visible()
    expect(page.locator("#leads-table tbody tr")).to_have_count(25)
    expect(page.locator("#agencies-table tbody tr")).to_have_count(len(agencies))
    first = agencies[0]["performance"]
    expect(
        page.locator(f'#agencies-table tr[data-vendor="{agencies[0]["vendor_code"]}"] .goal')
    ).to_contain_text(f"{first['leadsThisMonth']} / {first['monthlyGoal']}")
    # And another period reloads the chart with its own number of points
    page.select_option("#analytics-period", "90d")
    expect(page.locator("#analytics-chart")).to_have_attribute("data-bars", "14")
    page.screenshot(path=str(ARTIFACTS / "signed-in.png"), full_page=True)


def test_moving_a_lead_updates_the_stats(server: LocalServer, page: Page, dashboard_port: int) -> None:
    sign_in(page, f"http://127.0.0.1:{dashboard_port}", server.base_url, ADMIN)
    expect(page.locator("#app")).to_be_visible()
    # Given the new leads listed, and the funnel's count of contacted leads
    page.select_option("#filter-disposition", "new")
    page.click("#lead-filters button")
    row = page.locator("#leads-table tbody tr").first
    expect(row.locator("select.disposition")).to_have_value("new")
    lead_id = row.get_attribute("data-lead-id")
    before = server.settled_get("/admin/stats", ADMIN, params={"period": "30d"}).json()["conversion"][
        "funnel"
    ]
    expect(page.locator("#funnel-contacted")).to_have_text(
        f"contacted: {before['contacted']}", timeout=15_000
    )
    # When the admin moves the first one to contacted
    row.locator("select.disposition").select_option("contacted")
    # Then the lead is contacted in the API, and the dashboard's funnel moved with it
    expect(page.locator(f'#leads-table tr[data-lead-id="{lead_id}"]')).to_have_attribute(
        "data-updated", "true"
    )
    moved = server.get(f"/leads/{lead_id}", ADMIN).json()
    assert moved["disposition"] == "contacted"
    created = datetime.fromisoformat(moved["created_at"].replace("Z", "+00:00"))
    if (datetime.now(UTC) - created).days < 29:  # well inside the 30 days shown
        # stats follow lead events; the dashboard refreshes until they have (within seconds)
        contacted = before["contacted"] + 1

        def contacted_now() -> int:
            funnel = server.get("/admin/stats", ADMIN, params={"period": "30d"}).json()["conversion"][
                "funnel"
            ]
            return int(funnel["contacted"])

        assert eventually(contacted_now, contacted) == contacted
        expect(page.locator("#funnel-contacted")).to_have_text(f"contacted: {contacted}", timeout=15_000)
    page.screenshot(path=str(ARTIFACTS / "lead-moved.png"), full_page=True)
    # And a move the lifecycle forbids is refused with the allowed moves
    page.locator(f'#leads-table tr[data-lead-id="{lead_id}"] select.disposition').select_option("new")
    expect(page.locator("#error")).to_contain_text("allowed")


def test_the_dashboards_origin_reads_api_gateways_own_answers(
    server: LocalServer, page: Page, dashboard_port: int
) -> None:
    # Given the dashboard's origin, allowed but not the first of CORS_ALLOW_ORIGINS
    page.goto(f"http://127.0.0.1:{dashboard_port}/")
    # When its page asks for a path no route serves (API Gateway answers it, not a function)
    answer = page.evaluate(
        "async (api) => { try { const r = await fetch(api + '/no-such-route'); "
        "return [r.status, (await r.json()).error.code]; } catch (e) { return [0, e.name]; } }",
        server.base_url,
    )
    # Then the browser lets the page read the gateway's error
    assert answer == [404, "NOT_FOUND"]


def test_an_origin_the_api_does_not_allow_cannot_read_it(server: LocalServer, page: Page) -> None:
    # Given the same dashboard served from an origin missing from CORS_ALLOW_ORIGINS
    port = free_port()
    elsewhere = serve_dashboard("127.0.0.1", port)
    try:
        # When someone signs in there with a valid token
        sign_in(page, f"http://127.0.0.1:{port}", server.base_url, ADMIN)
        # Then the browser refuses the API's answers: nothing is shown but the error
        expect(page.locator("#error")).to_contain_text("Cannot reach the API")
        expect(page.locator("#app")).to_be_hidden()
        blocked = page.evaluate(
            "async ([api, token]) => { try { await fetch(api + '/admin/stats', "
            "{headers: {Authorization: 'Bearer ' + token}}); return 'read'; } catch (e) { return e.name; } }",
            [server.base_url, ADMIN],
        )
        assert blocked == "TypeError"
        page.screenshot(path=str(ARTIFACTS / "disallowed-origin.png"), full_page=True)
    finally:
        elsewhere.shutdown()
        elsewhere.server_close()


def test_roles_other_than_staff_are_told_the_dashboard_is_not_for_them(
    server: LocalServer, page: Page, dashboard_port: int
) -> None:
    sign_in(page, f"http://127.0.0.1:{dashboard_port}", server.base_url, make_token("demo-agent-1"))
    expect(page.locator("#error")).to_have_text("This dashboard is for admins and managers.")
    expect(page.locator("#app")).to_be_hidden()


def test_chromium_is_the_one_from_debian() -> None:
    assert shutil.which("chromium") == CHROMIUM
