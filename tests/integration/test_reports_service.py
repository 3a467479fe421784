"""The reports in-process against moto over HTTP: roles and a vendor's own data, CSV parsed back
equal to JSON, totals equal to the dashboard's and to sums over the seeded leads (before and after
`crm stats rebuild`), cohort rates never above 100 %, range rules, and a constant number of reads."""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

import reports.app
import stats.app
from crm.bench_timing import DynamoCounter
from crm.cli import main as crm
from crm.seed import SeedTables, demo_leads, seed_demo_data
from crm.stack import MotoServer
from leads.models import Lead
from leads.repository import LeadRepository
from shared import dependencies
from shared.buckets import VENDORS
from shared.cache import BUCKET_NAMESPACES
from shared.dynamo import dynamodb_client
from shared.http import openapi_schema
from stats.dependencies import stats_store
from stats.rebuild import rebuild
from tests.helpers import (
    DISALLOWED_ORIGIN,
    SECOND_ORIGIN,
    FakeLambdaContext,
    api_event,
    header,
    response_json,
    token_for,
)
from tests.integration.conftest import fresh_stack

KINDS = ["daily", "vendors", "agents", "campaigns"]


@pytest.fixture(scope="module")
def seeded(moto_server: MotoServer) -> Iterator[list[Lead]]:
    """One seeded stack for the module, and its leads: these tests only read (the rebuild test
    restores what it removes)."""
    fresh_stack(moto_server)
    stats_store.cache_clear()
    tables = SeedTables.configured()
    seed_demo_data(tables, lead_count=0)
    sample = demo_leads(400)
    LeadRepository(tables.leads).put_many(sample)
    zone = ZoneInfo(dependencies.get_settings().business_timezone)
    rebuild((LeadRepository.to_item(lead) for lead in sample), stats_store(), zone)
    yield sample
    stats_store.cache_clear()
    dependencies.reset()


def get(
    module: Any,
    path: str,
    user: str | None = "demo-admin",
    query: dict[str, str] | None = None,
    **event: Any,
) -> dict[str, Any]:
    request = api_event("GET", path, token=token_for(user) if user else None, query=query, **event)
    return dict(module.lambda_handler(request, FakeLambdaContext()))


def report(kind: str, user: str = "demo-admin", **query: str) -> tuple[int, Any]:
    response = get(reports.app, f"/reports/{kind}", user, query)
    return response["statusCode"], response_json(response)


@pytest.mark.parametrize(
    ("kind", "user", "status"),
    [
        (kind, user, status)
        for kind in KINDS
        for user, status in {
            "demo-admin": 200,
            "demo-manager": 200,
            "demo-agent-1": 403,
            "demo-vendor-1": 200 if kind in ("daily", "vendors") else 403,
            None: 401,
        }.items()
    ],
)
def test_role_matrix(seeded: list[Lead], kind: str, user: str | None, status: int) -> None:
    response = get(reports.app, f"/reports/{kind}", user)
    assert response["statusCode"] == status, response.get("body")


@pytest.mark.parametrize("kind", ["daily", "vendors"])
def test_a_vendor_sees_only_its_own_rows_and_may_not_ask_for_another(seeded: list[Lead], kind: str) -> None:
    status, own = report(kind, "demo-vendor-1")
    assert status == 200
    assert own["vendor"] == "V001"
    assert {row["vendor_code"] for row in own["rows"]} == {"V001"}
    status, error = report(kind, "demo-vendor-1", vendor="V002")
    assert status == 403
    assert error["error"]["code"] == "FORBIDDEN"


@pytest.mark.parametrize(
    ("kind", "vendor"),
    # every report, and each with a vendor filter but the agents report, which has none
    [*((kind, None) for kind in KINDS), *((kind, "V003") for kind in KINDS if kind != "agents")],
)
def test_csv_parsed_back_equals_the_json_report(seeded: list[Lead], kind: str, vendor: str | None) -> None:
    query = {"from": "2026-08-01", **({"vendor": vendor} if vendor else {})}
    status, as_json = report(kind, **query)
    assert status == 200
    response = get(reports.app, f"/reports/{kind}", query={**query, "format": "csv"})
    assert response["statusCode"] == 200
    assert header(response, "Content-Type") == "text/csv; charset=utf-8"
    disposition = header(response, "Content-Disposition") or ""
    assert disposition.startswith("attachment; filename=")
    assert disposition.endswith('.csv"')
    parsed = list(csv.DictReader(io.StringIO(response["body"])))
    assert as_json["rows"], "the seeded period has rows"
    assert len(parsed) == len(as_json["rows"])
    for line, row in zip(parsed, as_json["rows"], strict=True):
        assert list(line) == list(row)  # the header row names the JSON fields, in order
        for name, value in row.items():
            expected = "" if value is None else str(value)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and line[name]:
                assert Decimal(line[name]) == Decimal(str(value)), name
            else:
                assert line[name] == expected, name


def test_a_csv_download_is_granted_to_the_origin_that_asked_and_varies_on_it(seeded: list[Lead]) -> None:
    query = {"from": "2026-08-01", "format": "csv"}
    # When the second allowed origin and a disallowed one download the same report
    allowed = get(reports.app, "/reports/daily", query=query, origin=SECOND_ORIGIN)
    refused = get(reports.app, "/reports/daily", query=query, origin=DISALLOWED_ORIGIN)
    # Then the allowed origin may read it, its file name included; the other may not
    assert allowed["statusCode"] == refused["statusCode"] == 200
    assert header(allowed, "Access-Control-Allow-Origin") == SECOND_ORIGIN
    assert "Content-Disposition" in (header(allowed, "Access-Control-Expose-Headers") or "")
    assert header(refused, "Access-Control-Allow-Origin") is None
    # And both say the answer depends on the Origin, for a shared cache in front of the API
    assert header(allowed, "Vary") == header(refused, "Vary") == "Origin"


@pytest.mark.parametrize(("period", "days"), [("7d", 7), ("30d", 30), ("90d", 90)])
@pytest.mark.parametrize("kind", KINDS)
def test_totals_equal_the_dashboard_for_the_same_days(
    seeded: list[Lead], kind: str, period: str, days: int
) -> None:
    dashboard = response_json(get(stats.app, "/admin/stats", query={"period": period}))
    today = datetime.now(UTC).date()
    status, body = report(
        kind, **{"from": (today - timedelta(days=days - 1)).isoformat(), "to": today.isoformat()}
    )
    assert status == 200
    assert body["totals"]["revenue"] == dashboard["revenue"]["total"]
    assert body["totals"]["leads"] == dashboard["conversion"]["leads"]
    assert body["totals"]["conversions"] == dashboard["conversion"]["conversions"]
    rows = body["rows"]
    count = "lead_count" if kind == "daily" else "leads"
    assert sum(row[count] for row in rows) == body["totals"]["leads"]
    assert sum(row["conversions"] for row in rows) == body["totals"]["conversions"]
    assert round(sum(Decimal(str(row["revenue"])) for row in rows), 2) == Decimal(
        str(body["totals"]["revenue"])
    )


@pytest.mark.parametrize(
    ("query", "status", "code"),
    [
        ({"from": "2024-01-01", "to": "2026-01-01"}, 400, "RANGE_TOO_LARGE"),
        ({"from": "2026-11-02", "to": "2026-11-01"}, 400, "BAD_REQUEST"),
        ({"from": "2026-02-30"}, 400, "BAD_REQUEST"),
        ({"from": "yesterday"}, 422, "VALIDATION_ERROR"),
        ({"format": "xlsx"}, 422, "VALIDATION_ERROR"),
        ({"vendor": "V0'01 OR 1=1"}, 422, "VALIDATION_ERROR"),
    ],
)
def test_bad_parameters_are_a_clear_4xx(
    seeded: list[Lead], query: dict[str, str], status: int, code: str
) -> None:
    answer_status, body = report("vendors", **query)
    assert answer_status == status
    assert body["error"]["code"] == code


def test_the_agents_report_has_no_vendor_filter(seeded: list[Lead]) -> None:
    # Agents work every vendor's leads: a vendor given is not a parameter of this report
    _, everyone = report("agents")
    status, body = report("agents", vendor="V001")
    assert status == 200
    assert body == everyone
    parameters = openapi_schema(reports.app.lambda_handler.app).paths["/reports/agents"].get.parameters  # type: ignore[index,union-attr]
    assert "vendor" not in {parameter.name for parameter in parameters}


def test_a_report_reads_the_same_at_30_and_400_days_of_history(seeded: list[Lead]) -> None:
    counter = DynamoCounter()
    client = dynamodb_client()
    client.meta.events.register("before-call.dynamodb", counter.started)
    client.meta.events.register("after-call.dynamodb", counter.finished)
    try:
        calls = {}
        for first in ("2026-10-28", "2025-10-23"):
            dependencies.query_cache.cache_clear()
            counter.reset()
            status, _ = report("campaigns", **{"from": first, "to": "2026-11-26"})
            calls[first], _, _ = counter.reset()
            assert status == 200
    finally:
        client.meta.events.unregister("before-call.dynamodb", counter.started)
        client.meta.events.unregister("after-call.dynamodb", counter.finished)
    # the caller's user record, then one Query per partition read: totals, campaigns, vendors
    assert calls["2026-10-28"] == calls["2025-10-23"] == 4


# -- the same numbers straight from the seeded leads -----------------------------------------------
CENT, TENTH = Decimal("0.01"), Decimal("0.1")
MEASURES = ("leads", "revenue", "converted", "conversions", "sales")
GROUP_OF = {
    "vendors": lambda lead: lead.vendor_code,
    "campaigns": lambda lead: lead.campaign_source or None,
    "agents": lambda lead: lead.assigned_agent,
}
KEY_OF_ROW = {"vendors": "vendor_code", "campaigns": "campaign", "agents": "agent"}


def business_day(moment: str) -> str:
    return (
        datetime.fromisoformat(moment.replace("Z", "+00:00"))
        .astimezone(dependencies.business_zone())
        .date()
        .isoformat()
    )


def counted(leads: list[Lead], days: set[str]) -> dict[str, Decimal]:
    """Leads, spend and the converted cohort by creation day; conversions and sales by close day."""
    created = [lead for lead in leads if business_day(lead.created_at) in days]
    closed = [lead for lead in leads if lead.closed_date and business_day(lead.closed_date) in days]
    return {
        "leads": Decimal(len(created)),
        "revenue": sum((lead.lead_value for lead in created), Decimal(0)),
        "converted": Decimal(sum(1 for lead in created if lead.disposition == "closed")),
        "conversions": Decimal(len(closed)),
        "sales": sum((lead.sale_amount or Decimal(0) for lead in closed), Decimal(0)),
    }


def rates(sums: dict[str, Decimal]) -> dict[str, Decimal | None]:
    """The documented definitions, recomputed here: cohort rate, CPA, return on spend."""
    leads, spend, conversions = sums["leads"], sums["revenue"], sums["conversions"]
    return {
        "conversion_rate": (sums["converted"] / leads * 100).quantize(TENTH, ROUND_HALF_UP)
        if leads
        else None,
        "cpa": (spend / conversions).quantize(CENT, ROUND_HALF_UP) if leads and conversions else None,
        "return_on_spend": (sums["sales"] / spend).quantize(CENT, ROUND_HALF_UP) if spend else None,
    }


def assert_matches(row: dict[str, Any], sums: dict[str, Decimal], where: str) -> None:
    count = "lead_count" if "lead_count" in row else "leads"
    got = {name: Decimal(str(row[count if name == "leads" else name])) for name in MEASURES}
    assert got == {
        name: value.quantize(CENT) if name in ("revenue", "sales") else value for name, value in sums.items()
    }, where
    for name, expected in rates(sums).items():
        assert (None if row[name] is None else Decimal(str(row[name]))) == expected, (where, name)


def window(days: int) -> tuple[dict[str, str], set[str]]:
    today = datetime.now(dependencies.business_zone()).date()
    listed = {(today - timedelta(days=n)).isoformat() for n in range(days)}
    return {"from": min(listed), "to": today.isoformat()}, listed


@pytest.mark.parametrize("kind", ["vendors", "campaigns", "agents"])
def test_rows_and_totals_equal_sums_over_the_seeded_leads(seeded: list[Lead], kind: str) -> None:
    query, days = window(30)
    status, body = report(kind, **query)
    assert status == 200
    assert_matches(body["totals"], counted(seeded, days), "totals")
    group = GROUP_OF[kind]
    keys = {group(lead) for lead in seeded}
    rows = {row[KEY_OF_ROW[kind]]: row for row in body["rows"]}
    for key in keys:
        expected = counted([lead for lead in seeded if group(lead) == key], days)
        if any(expected.values()):
            assert_matches(rows.pop(key), expected, f"{kind} {key}")
    assert rows == {}, "no row without leads or conversions"


def test_daily_rows_count_each_day_s_cohort(seeded: list[Lead]) -> None:
    query, _ = window(7)
    _, body = report("daily", **query)
    assert body["rows"]
    for row in body["rows"]:
        mine = [lead for lead in seeded if lead.vendor_code == row["vendor_code"]]
        assert_matches(row, counted(mine, {row["date"]}), f"{row['date']} {row['vendor_code']}")


@pytest.mark.parametrize("days", [1, 4, 7, 30, 90, 365])
def test_no_conversion_rate_is_above_100_percent_or_has_no_leads(seeded: list[Lead], days: int) -> None:
    query, _ = window(days)
    for kind in KINDS:
        _, body = report(kind, **query)
        for row in [*body["rows"], body["totals"]]:
            leads = row.get("leads", row.get("lead_count"))
            assert (row["conversion_rate"] is None) == (leads == 0), row
            assert row["conversion_rate"] is None or 0 <= row["conversion_rate"] <= 100, row
            assert row["converted"] <= leads
            assert (row["return_on_spend"] is None) == (row["revenue"] == 0), row


def test_a_rebuild_changes_no_report_and_restores_lost_buckets(seeded: list[Lead]) -> None:
    query, days = window(90)
    before = {kind: report(kind, **query)[1] for kind in KINDS}
    # lose the vendors' counters of every day, as if the consumer had never applied them
    client = dynamodb_client()
    table = dependencies.get_settings().stats_table
    lost = client.query(
        TableName=table,
        KeyConditionExpression="pk = :pk",
        ExpressionAttributeValues={":pk": {"S": VENDORS}},
        ProjectionExpression="pk, sk",
    )["Items"]
    assert lost
    for item in lost:
        client.delete_item(TableName=table, Key=item)
    dependencies.query_cache().invalidate_namespaces(BUCKET_NAMESPACES)
    assert report("vendors", **query)[1]["rows"] == []

    assert crm(["stats", "rebuild"]) == 0

    after = {kind: report(kind, **query)[1] for kind in KINDS}
    assert after == before
    assert_matches(after["vendors"]["totals"], counted(seeded, days), "totals after the rebuild")
