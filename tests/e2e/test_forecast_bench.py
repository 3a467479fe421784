"""`crm bench --forecast`: the forecast's backtest table, over the fixed series and over the day
buckets of a running local stack."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from crm.bench_forecast import backtest, daily_revenue, render
from shared.dynamo import from_item
from tests.e2e.conftest import PROJECT_ROOT, LocalServer, crm_command


def table_rows(output: str) -> list[list[str]]:
    """The cells of each row of the printed table (not its header or rule)."""
    lines = [line for line in output.splitlines() if line.startswith("| ")][1:]
    return [[cell.strip() for cell in line.strip("|").split("|")] for line in lines if "---" not in line]


def test_forecast_bench_prints_each_series_and_horizon_beside_the_straight_lines() -> None:
    # When the backtest runs over its fixed series, with no stack at all
    done = subprocess.run(
        crm_command("bench", "--forecast"),
        cwd=PROJECT_ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    # Then it prints a row per series and horizon, with the method's MAPE, bias and range
    # coverage beside both lines' MAPE and bias
    assert done.returncode == 0, done.stderr[-2000:]
    assert "| weekday-trend MAPE | bias | in range | window's line MAPE |" in done.stdout
    rows = table_rows(done.stdout)
    series = {row[0] for row in rows}
    assert {"demo seed, 300 leads", "demo seed, 3,000 leads", "flat + weekly shape"} <= series
    horizons = {(row[0], row[1]) for row in rows}
    assert horizons >= {("flat + weekly shape", f"{days} d") for days in (7, 28, 91)}
    assert all(row[3].endswith(" %") and row[6].endswith(" %") for row in rows)


def test_forecast_bench_live_backtests_the_running_stack_s_buckets(server: LocalServer) -> None:
    # Given the demo stack's daily revenue, read from its buckets here
    yesterday = datetime.now(UTC).date() - timedelta(days=1)
    first = yesterday - timedelta(days=364)
    items = server.dynamodb().query(  # type: ignore[attr-defined]
        TableName="crm-local-stats",
        KeyConditionExpression="pk = :all AND sk BETWEEN :first AND :last",
        ExpressionAttributeValues={
            ":all": {"S": "all"},
            ":first": {"S": first.isoformat()},
            ":last": {"S": yesterday.isoformat()},
        },
    )["Items"]
    buckets = {item["sk"]["S"]: {"revenue": Decimal(from_item(item).get("revenue", 0))} for item in items}
    series = daily_revenue(buckets, first, yesterday)
    # When the operator backtests the running stack
    done = server.run_cli("bench", "--forecast", "--live")
    # Then the table is the backtest of those days, and nothing else
    assert done.returncode == 0, done.stdout + done.stderr
    expected = render(backtest(f"configured environment, {len(series)} days", series))
    assert expected in done.stdout
    assert len(table_rows(done.stdout)) >= 2  # the demo's 90 days hold out a week and four weeks
