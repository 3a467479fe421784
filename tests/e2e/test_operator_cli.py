"""Operator commands against a running local stack, configured the way the functions are."""

from __future__ import annotations

import json
import os
import re
import subprocess
from datetime import UTC, datetime, timedelta

import boto3

from shared.dates import iso_timestamp
from shared.dynamo import from_item, to_item
from shared.outbox import OutboxEvent
from stats.rebuild import counts_of
from tests.e2e.conftest import PROJECT_ROOT, LocalServer, crm_command
from tests.helpers import staff_token


def test_outbox_send_delivers_events_the_bus_refused_earlier(server: LocalServer) -> None:
    # Given an event the bus refused earlier (as when it was down after a lead was stored), its
    # next attempt an hour away: the scheduled publisher leaves it until then, the operator's
    # command sends every pending event now
    dynamodb = server.dynamodb()
    event = OutboxEvent(
        event_id="01ARZ3NDEKTSV4RRFFQ69G5FEV",
        detail_type="LeadCreated",
        detail={
            "lead_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV",
            "version": 1,
            "before": None,
            "after": None,
            "event_id": "01ARZ3NDEKTSV4RRFFQ69G5FEV",
        },
        created_at="2026-11-01T12:00:00.000Z",
    )
    refused = {
        **event.to_item(),
        "attempts": 1,
        "next_attempt_at": iso_timestamp(datetime.now(UTC) + timedelta(hours=1)),
    }
    dynamodb.put_item(TableName="crm-local-outbox", Item=to_item(refused))  # type: ignore[attr-defined]
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
    assert counts_of(from_item(restored)) == counts_of(from_item(day))
    # And a second rebuild has nothing to change
    again = server.run_cli("stats", "rebuild")
    assert "0 day bucket(s) rewritten, 0 removed" in again.stdout


def test_leads_reindex_makes_leads_stored_before_name_search_findable(server: LocalServer) -> None:
    # Given a lead stored as before first names were searchable: no first-name key, and its last
    # name key in lower case only
    dynamodb = server.dynamodb()
    token = staff_token("demo-admin")
    listed = server.get("/leads", token, params={"limit": "1"}).json()["data"][0]
    lead = {
        **listed,
        "lead_id": "01ARZ3NDEKTSV4RRFFQ69G5REX",
        "first_name": "Ingrid",
        "last_name": "Øberg-Nyström",
        "email": "reindex.me@example.org",
        "phone": "+16175550142",
    }
    old_keys = {"ix_all": "LEAD", "ix_vendor": lead["vendor_code"], "ix_name": "øberg-nyström"}
    dynamodb.put_item(TableName="crm-local-leads", Item=to_item({**lead, **old_keys}))  # type: ignore[attr-defined]
    assert server.get("/leads", token, params={"q": "ingrid"}).json()["data"] == []
    # When the operator reindexes
    done = server.run_cli("leads", "reindex")
    # Then that lead alone was rewritten, and the API finds it by its first name at once
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.search(r"\d+ leads read; 1 reindexed$", done.stdout.strip()), done.stdout
    found = server.get("/leads", token, params={"q": "INGRID OBERG"}).json()["data"]
    assert [item["lead_id"] for item in found] == [lead["lead_id"]]
    # And a second run has nothing to change
    again = server.run_cli("leads", "reindex")
    assert again.stdout.strip().endswith("; 0 reindexed"), again.stdout


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
    assert "| function | import ms | import ÷ baseline |" in done.stdout
    assert "| `crm serve` start-up | seconds |" in done.stdout


# ------------------------------------------------------------------ which stack a command works on
def operator_env(**settings: str) -> dict[str, str]:
    """An operator's shell: none of the functions' variables, no AWS endpoint, plus `settings`."""
    from crm.stack import local_template

    variables = set(local_template({}).environment())
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in variables and not name.startswith(("AWS_", "XDG_RUNTIME_DIR"))
    }
    return {**env, **settings}


def run_operator(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        crm_command(*args), cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=600
    )


def test_stats_rebuild_finds_the_running_local_stack_with_no_flags(server: LocalServer) -> None:
    # Given an operator's shell on the machine where crm serve runs (it recorded its ports)
    env = operator_env(XDG_RUNTIME_DIR=server.runtime_dir)
    # When
    done = run_operator(env, "stats", "rebuild")
    # Then it worked on that server's tables
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.match(rf"local stack at {server.aws_endpoint}: \d+ leads read", done.stdout), done.stdout


def test_stats_rebuild_of_a_stack_that_does_not_exist_is_one_line(server: LocalServer) -> None:
    # Given CloudFormation (the local endpoint answers it too) without that stack
    env = operator_env(
        AWS_ENDPOINT_URL=server.aws_endpoint,
        AWS_ACCESS_KEY_ID="local",
        AWS_SECRET_ACCESS_KEY="local",
        AWS_DEFAULT_REGION="us-east-1",
    )
    # When
    done = run_operator(env, "stats", "rebuild", "--stack", "nosuch")
    # Then one line says so, and nothing was done
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "crm stats rebuild: stack nosuch (us-east-1): Stack with id nosuch does not exist"
    ]


def test_stats_rebuild_of_a_deployed_stack_reads_the_names_from_its_outputs(server: LocalServer) -> None:
    # Given a stack whose outputs name the server's tables, bus and secret (as a deployment's do)
    from crm.stack import local_template

    template = local_template({})
    names = template.environment()
    outputs = {
        output: {"Value": names[variable]} for variable, output in template.outputs_of_variables().items()
    }
    env = operator_env(
        AWS_ENDPOINT_URL=server.aws_endpoint,
        AWS_ACCESS_KEY_ID="local",
        AWS_SECRET_ACCESS_KEY="local",
        AWS_DEFAULT_REGION="us-east-1",
    )
    cloudformation = boto3.client(
        "cloudformation",
        endpoint_url=server.aws_endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )
    # and the parameters of a deployment: sam local's NoEcho secret reads back masked
    parameters = {"Stage": "local", "JwtIssuer": "crm", "LocalJwtSecret": "****"}
    body = {
        "Parameters": {name: {"Type": "String"} for name in parameters},
        "Resources": {"Placeholder": {"Type": "AWS::CloudFormation::WaitConditionHandle"}},
        "Outputs": outputs,
    }
    cloudformation.create_stack(
        StackName="crm-operated",
        TemplateBody=json.dumps(body),
        Parameters=[{"ParameterKey": key, "ParameterValue": value} for key, value in parameters.items()],
    )
    # When
    done = run_operator(env, "stats", "rebuild", "--stack", "crm-operated")
    # Then it worked on those tables
    assert done.returncode == 0, done.stdout + done.stderr
    assert re.match(r"stack crm-operated: \d+ leads read", done.stdout), done.stdout


def test_an_operator_command_with_nothing_answering_is_one_line() -> None:
    # Given no local stack on that port
    from tests.integration.conftest import free_port

    port = free_port()
    # When
    done = run_operator(operator_env(), "outbox", "send", "--aws-port", str(port))
    # Then
    assert done.returncode == 2
    assert done.stderr.splitlines() == [
        f"crm outbox send: no local stack answers at http://127.0.0.1:{port}; start one with "
        "`make run` (crm serve), or name one with --aws-port PORT or --stack NAME"
    ]
