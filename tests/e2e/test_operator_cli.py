"""Operator commands against a running local stack, configured the way the functions are."""

from __future__ import annotations

import json
import os
import subprocess

from shared.dynamo import from_item
from tests.e2e.conftest import PROJECT_ROOT, LocalServer, crm_command


def test_outbox_send_delivers_events_the_bus_refused_earlier(server: LocalServer) -> None:
    # Given an event left in the outbox (as when the bus was down after a lead was stored)
    dynamodb = server.dynamodb()
    detail = {
        "lead_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV",
        "version": 1,
        "before": None,
        "after": None,
        "event_id": "01ARZ3NDEKTSV4RRFFQ69G5FEV",
    }
    dynamodb.put_item(  # type: ignore[attr-defined]
        TableName="crm-local-outbox",
        Item={
            "event_id": {"S": "01ARZ3NDEKTSV4RRFFQ69G5FEV"},
            "detail_type": {"S": "LeadCreated"},
            "source": {"S": "crm.leads"},
            "detail": {"S": json.dumps(detail)},
            "created_at": {"S": "2026-11-01T12:00:00.000Z"},
        },
    )
    # When the operator sends what is pending
    done = server.run_cli("outbox", "send")
    # Then it went out and the outbox is empty
    assert done.returncode == 0, done.stdout + done.stderr
    assert "sent 1 pending event(s), 0 still refused" in done.stdout
    assert dynamodb.scan(TableName="crm-local-outbox")["Count"] == 0  # type: ignore[attr-defined]


def test_stats_rebuild_restores_a_lost_bucket_and_says_which(server: LocalServer) -> None:
    # Given a day bucket lost (as if its events never arrived)
    dynamodb = server.dynamodb()
    day = dynamodb.query(  # type: ignore[attr-defined]
        TableName="crm-local-stats",
        KeyConditionExpression="pk = :all",
        ExpressionAttributeValues={":all": {"S": "all"}},
        Limit=1,
    )["Items"][0]
    dynamodb.delete_item(TableName="crm-local-stats", Key={"pk": day["pk"], "sk": day["sk"]})  # type: ignore[attr-defined]
    # When the operator rebuilds
    done = server.run_cli("stats", "rebuild")
    # Then that day is rewritten, named in the report, and equal to what it was
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"rewritten {day['sk']['S']}" in done.stdout
    restored = dynamodb.get_item(TableName="crm-local-stats", Key={"pk": day["pk"], "sk": day["sk"]})["Item"]  # type: ignore[attr-defined]
    assert from_item(restored) == from_item(day)
    # And a second rebuild has nothing to change
    again = server.run_cli("stats", "rebuild")
    assert "0 day bucket(s) rewritten, 0 removed" in again.stdout


def test_bench_prints_a_row_per_request_at_each_size() -> None:
    # When the benchmark runs at a tiny size, one request per scenario
    done = subprocess.run(
        crm_command("bench", "--sizes", "40", "--requests", "2"),
        cwd=PROJECT_ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("AWS_")},
        capture_output=True,
        text=True,
        timeout=600,
    )
    # Then it prints the table, with the stats reads and the scan baseline side by side
    assert done.returncode == 0, done.stderr[-2000:]
    rows = [line for line in done.stdout.splitlines() if line.startswith("| 40 |")]
    names = {row.split("|")[2].strip().strip("`") for row in rows}
    assert {
        "GET /admin/stats?period=30d",
        "GET /admin/analytics?period=12m",
        "GET /leads?limit=50",
        "scan-and-aggregate baseline (30d dashboard)",
        "POST /leads",
    } <= names
    assert "| handler module" in done.stdout
    assert "| `crm serve` start-up | seconds |" in done.stdout
