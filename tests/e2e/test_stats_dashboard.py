"""The executive dashboard over HTTP: who may read it, and that it follows lead changes."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from tests.e2e.conftest import LocalServer, eventually, start_server, stop_server
from tests.helpers import ALLOWED_ORIGIN, make_token, staff_token, token_for


@pytest.mark.parametrize(
    ("user", "status"),
    [("demo-admin", 200), ("demo-manager", 200), ("demo-agent-1", 403), ("demo-vendor-1", 403), (None, 401)],
)
def test_only_staff_read_the_dashboard(server: LocalServer, user: str | None, status: int) -> None:
    response = server.get("/admin/stats", token_for(user) if user else None)
    assert response.status_code == status
    assert response.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN


def test_dashboard_has_the_seed_shape_over_the_demo_data(server: LocalServer) -> None:
    body = server.get("/admin/stats", staff_token("demo-manager"), params={"period": "90d"}).json()
    assert set(body) == {"period", "revenue", "sales", "cpa", "agents", "conversion"}
    assert set(body["period"]) == {"from", "to", "days", "partial", "elapsed"}
    assert set(body["revenue"]) == {
        "total",
        "change",
        "trend",
        "forecast",
        "forecastRange",
        "returns",
        "credits",
        "netSpend",
    }
    assert set(body["revenue"]["forecastRange"]) == {"low", "high", "method"}
    assert set(body["sales"]) == {"total", "change", "returnOnSpend", "returnOnSpendChange"}
    assert set(body["cpa"]) == {"average", "change", "breakdown"}
    assert set(body["agents"]) == {"total", "online", "utilization", "topPerformers"}
    assert set(body["conversion"]) == {
        "leads",
        "converted",
        "rate",
        "change",
        "conversions",
        "funnel",
        "velocity",
    }
    assert body["revenue"]["total"] > 0
    assert len(body["revenue"]["trend"]) == 90
    assert body["agents"]["total"] == 5
    assert sum(body["conversion"]["funnel"].values()) > 0


def test_an_unknown_period_is_a_422(server: LocalServer) -> None:
    assert server.get("/admin/stats", staff_token("demo-admin"), params={"period": "5y"}).status_code == 422


def stats(server: LocalServer) -> dict[str, Any]:
    response = server.get("/admin/stats", staff_token("demo-admin"), params={"period": "7d"})
    assert response.status_code == 200
    return dict(response.json())


def test_posting_and_closing_a_lead_moves_revenue_funnel_and_conversions(server: LocalServer) -> None:
    # Given the dashboard once every earlier change has reached it
    admin = staff_token("demo-admin")
    before = server.settled_get("/admin/stats", admin, params={"period": "7d"}).json()
    # When a vendor posts a lead
    posted = server.request(
        "POST",
        "/leads",
        token=make_token("demo-vendor-1"),
        json={"email": f"dash-{uuid.uuid4().hex[:10]}@example.com", "tcpa_consent": True},
    )
    assert posted.status_code == 201
    lead = posted.json()["lead"]
    price = Decimal(str(posted.json()["price"]))
    # Then the dashboard shows it within the freshness interval: revenue and the funnel's "new" grow
    leads_before = before["conversion"]["leads"]
    assert eventually(lambda: stats(server)["conversion"]["leads"], leads_before + 1) == leads_before + 1
    after_post = stats(server)
    assert Decimal(str(after_post["revenue"]["total"])) - Decimal(str(before["revenue"]["total"])) == price
    assert after_post["conversion"]["funnel"]["new"] == before["conversion"]["funnel"]["new"] + 1
    assert after_post["conversion"]["leads"] == before["conversion"]["leads"] + 1
    # When it is worked to a sale
    version = lead["version"]
    for disposition in ("contacted", "qualified", "closed"):
        changed = server.request(
            "PATCH",
            f"/leads/{lead['lead_id']}",
            token=staff_token("demo-admin"),
            json={
                "version": version,
                "disposition": disposition,
                **({"sale_amount": 1500} if disposition == "closed" else {}),
            },
        )
        assert changed.status_code == 200, changed.text
        version = changed.json()["version"]
    # Then conversions, the funnel and velocity follow
    conversions = after_post["conversion"]["conversions"]
    assert eventually(lambda: stats(server)["conversion"]["conversions"], conversions + 1) == conversions + 1
    closed = stats(server)
    assert closed["conversion"]["funnel"]["closed"] == after_post["conversion"]["funnel"]["closed"] + 1
    assert closed["conversion"]["conversions"] == after_post["conversion"]["conversions"] + 1
    assert closed["conversion"]["funnel"]["new"] == after_post["conversion"]["funnel"]["new"] - 1
    assert closed["conversion"]["converted"] == after_post["conversion"]["converted"] + 1
    assert closed["conversion"]["rate"] > after_post["conversion"]["rate"]
    assert closed["conversion"]["velocity"] is not None


@pytest.mark.parametrize(("period", "buckets"), [("7d", 7), ("30d", 30), ("90d", 14), ("12m", 13)])
def test_analytics_has_a_point_per_bucket_and_insights(
    server: LocalServer, period: str, buckets: int
) -> None:
    response = server.get("/admin/analytics", staff_token("demo-manager"), params={"period": period})
    assert response.status_code == 200
    body = response.json()
    series = ("labels", "leads", "revenue", "conversions", "sales", "converted", "partial")
    assert [len(body[name]) for name in series] == [buckets] * len(series)
    assert (body["period"], body["vendor"]) == (period, None)
    assert body["partial"][-1] is True  # the bucket holding today
    assert sum(body["leads"]) > 0
    assert body["insights"]
    assert all(isinstance(line, str) and line.endswith(".") for line in body["insights"])


@pytest.mark.parametrize(("user", "status"), [("demo-agent-2", 403), ("demo-vendor-2", 403), (None, 401)])
def test_only_staff_read_analytics(server: LocalServer, user: str | None, status: int) -> None:
    assert server.get("/admin/analytics", token_for(user) if user else None).status_code == status


@pytest.mark.parametrize(
    ("path", "params", "schema"),
    [
        ("/admin/stats", {"period": "30d"}, "DashboardStats"),
        ("/admin/analytics", {"period": "90d"}, "Analytics"),
        ("/admin/audit", {"limit": "5"}, "AuditPage"),
        ("/leads", {"limit": "20"}, "LeadPage"),
    ],
)
def test_admin_responses_validate_against_the_published_schema(
    server: LocalServer, path: str, params: dict[str, str], schema: str
) -> None:
    import jsonschema

    # Given the OpenAPI document the server publishes (numbers read as decimals, so that whole
    # cents are checked exactly: 2431.49 is a multiple of 0.01, though not in binary floating point)
    document = json.loads(server.get("/openapi.json").text, parse_float=Decimal)
    assert path in document["paths"]
    # When / Then the response validates against the schema it names
    body = json.loads(server.get(path, staff_token("demo-admin"), params=params).text, parse_float=Decimal)
    jsonschema.validate(
        body, {**document, "$ref": f"#/components/schemas/{schema}"}, cls=jsonschema.Draft202012Validator
    )


@pytest.fixture(scope="module")
def slow_refresh_server() -> Iterator[LocalServer]:
    """A server whose stats entries live 4 s: several consumer batches (1 s window) fit in one."""
    local = start_server({"STATS_FRESHNESS_SECONDS": str(SLOW_FRESHNESS)})
    yield local
    stop_server(local)


SLOW_FRESHNESS = 4


def test_posts_recompute_the_dashboard_at_most_once_per_freshness_interval_and_show_within_it(
    slow_refresh_server: LocalServer,
) -> None:
    server = slow_refresh_server
    admin, vendor = staff_token("demo-admin"), make_token("demo-vendor-2")
    # Given the dashboard just computed
    before = server.settled_get("/admin/stats", admin, params={"period": "7d"}).json()
    computed = time.monotonic()
    # When leads are posted for three seconds, each post followed by a dashboard read
    results, posted = [], 0
    while time.monotonic() - computed < SLOW_FRESHNESS - 1:
        body = {"email": f"burst-{uuid.uuid4().hex[:10]}@example.com", "tcpa_consent": True}
        assert server.request("POST", "/leads", token=vendor, json=body).status_code == 201
        posted += 1
        results.append(server.get("/admin/stats", admin, params={"period": "7d"}).headers["X-Cache"])
    elapsed = time.monotonic() - computed
    # Then the dashboard was recomputed at most once per interval, however many events the
    # consumer applied meanwhile (in batches of about a second)
    assert results.count("miss") <= elapsed // SLOW_FRESHNESS
    assert results.count("hit") + results.count("miss") == posted
    # And every post shows within the interval after it is applied
    expected = before["conversion"]["leads"] + posted
    leads = eventually(lambda: stats(server)["conversion"]["leads"], expected, seconds=SLOW_FRESHNESS + 20)
    assert leads == expected
