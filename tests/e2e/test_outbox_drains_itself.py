"""The outbox drains itself: on `crm serve`, over HTTP, the bus refuses puts for a while (its bus
is deleted on the local AWS endpoint, so every PutEvents fails) while leads are posted and
changed; then the bus comes back as the template provisions it. With no operator command, the
scheduled outbox publisher sends every refused event, and the stats equal a full rebuild."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest

from crm.stack import provision
from crm.template import Template
from tests.e2e.conftest import LocalServer, eventually, start_server, stop_server
from tests.helpers import make_token, staff_token

# The publisher every half second, leaving new events to the request path for a second, backing
# off from thirty seconds up to a minute: the template's minute and its back-off, the grace scaled
# down. After a refusal an event waits at least fifteen seconds (half of each wait is fixed); the
# test gives the bus back with its rules only while every event's next send is at least
# RECOVERY_MARGIN away (a bus created again has no rules until they are put; what it took
# meanwhile would match none, which AWS never does), a margin that holds on a busy machine.
FAST_OUTBOX = {
    "OUTBOX_GRACE_SECONDS": "1",
    "OUTBOX_RETRY_BASE_SECONDS": "30",
    "OUTBOX_RETRY_MAX_SECONDS": "60",
}
RECOVERY_MARGIN = timedelta(seconds=8)


@pytest.fixture(scope="module")
def server() -> Iterator[LocalServer]:
    local = start_server(
        extra_env=FAST_OUTBOX, extra_args=("--schedule-interval", "0.5", "--seed-leads", "40")
    )
    yield local
    stop_server(local)


def local_template() -> Template:
    from crm.stack import local_template

    return local_template({})  # the server's stage: start_server clears STAGE


def client(server: LocalServer, service: str) -> Any:
    return boto3.client(
        service,  # type: ignore[call-overload]
        endpoint_url=server.aws_endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",
    )


def outbox_count(server: LocalServer) -> int:
    name = next(table.name for table in local_template().tables() if table.logical_id == "OutboxTable")
    return int(client(server, "dynamodb").scan(TableName=name, Select="COUNT")["Count"])


def dead_letters(server: LocalServer) -> int:
    sqs = client(server, "sqs")
    name = next(q.name for q in local_template().queues() if q.logical_id == "StatsConsumerDeadLetterQueue")
    url = sqs.get_queue_url(QueueName=name)["QueueUrl"]
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=names)["Attributes"]
    return sum(int(value) for value in attributes.values())


def outbox_items(server: LocalServer) -> list[dict[str, Any]]:
    name = next(table.name for table in local_template().tables() if table.logical_id == "OutboxTable")
    items = client(server, "dynamodb").scan(TableName=name, ConsistentRead=True)["Items"]
    return [item for item in items if "detail_type" in item]


def earliest_next_attempt(server: LocalServer) -> datetime:
    times = [item.get("next_attempt_at", {}).get("S") for item in outbox_items(server)]
    if not times or None in times:
        return datetime.now(UTC)  # one not refused yet: it may be sent at any moment
    return min(datetime.fromisoformat(str(at).replace("Z", "+00:00")) for at in times)


def next_send_far_enough(server: LocalServer) -> bool:
    """Whether every waiting event was refused once and none is tried again in the next moments."""
    return earliest_next_attempt(server) - datetime.now(UTC) > RECOVERY_MARGIN


def applied_versions(server: LocalServer, leads: list[dict[str, Any]]) -> bool:
    """Whether the stats have applied the version each lead has now (deleted ones included)."""
    dynamodb = client(server, "dynamodb")
    tables = {table.logical_id: table.name for table in local_template().tables()}
    for lead in leads:
        key = {"lead_id": {"S": lead["lead_id"]}}
        stored = dynamodb.get_item(TableName=tables["LeadsTable"], Key=key, ConsistentRead=True)["Item"]
        state = dynamodb.get_item(TableName=tables["StatsStateTable"], Key=key, ConsistentRead=True).get(
            "Item"
        )
        if state is None or state["version"] != stored["version"]:
            return False
    return True


def post_lead(server: LocalServer, vendor: str) -> dict[str, Any]:
    posted = server.request(
        "POST",
        "/leads",
        token=make_token(vendor),
        json={"email": f"outbox-{uuid.uuid4().hex[:10]}@example.com", "tcpa_consent": True},
    )
    assert posted.status_code == 201, posted.text
    return dict(posted.json()["lead"])


def test_events_the_bus_refused_reach_the_stats_once_it_recovers_with_no_command(server: LocalServer) -> None:
    # Given the dashboard once every earlier change has reached it, and the publisher running
    admin = staff_token("demo-admin")
    assert any(line.startswith("  scheduled: OutboxPublisherFunction every 0.5s") for line in server.banner)
    leads_before = server.settled_get("/admin/stats", admin, params={"period": "7d"}).json()["conversion"][
        "leads"
    ]
    # And a bus that refuses every put
    bus = local_template().bus_names()[0]
    client(server, "events").delete_event_bus(Name=bus)
    # When vendors post four leads and staff move two of them and delete one meanwhile
    leads = [post_lead(server, f"demo-vendor-{n}") for n in (1, 2, 3, 1)]
    for lead in leads[:2]:
        moved = server.request(
            "PATCH",
            f"/leads/{lead['lead_id']}",
            token=admin,
            json={"version": lead["version"], "disposition": "contacted"},
        )
        assert moved.status_code == 200, moved.text
    deleted = server.request("DELETE", f"/leads/{leads[3]['lead_id']}", token=admin)
    # Then every change is accepted and each one's event waits in the outbox
    assert deleted.ok, deleted.text
    assert outbox_count(server) == 7
    # When the bus is back, as the template provisions it (the bus, its rules and targets), while
    # every event waits for its next attempt
    first_next_attempt = eventually(lambda: next_send_far_enough(server), True, seconds=60)
    assert first_next_attempt is True
    deadline = earliest_next_attempt(server)
    provision(local_template(), server.aws_endpoint)
    assert datetime.now(UTC) < deadline, "the bus came back after the next send: the test proves nothing"
    # Then, with no command, the outbox empties
    assert eventually(lambda: outbox_count(server), 0, seconds=120) == 0

    # And the stats consumer comes to apply each lead's last version (the events the publisher sent
    # last may still be on their way through the queue when the outbox is empty)
    assert eventually(lambda: applied_versions(server, leads), True, seconds=90) is True
    # And the dashboard counts the three leads still there
    stats = server.settled_get("/admin/stats", admin, params={"period": "7d"}).json()
    assert stats["conversion"]["leads"] == leads_before + 3
    # And a full rebuild finds nothing to repair: every event was applied, none twice
    rebuilt = server.run_cli("stats", "rebuild")
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert "0 day bucket(s) rewritten, 0 removed, 0 lead state(s) reset" in rebuilt.stdout
    assert "outbox: 0 of 0 pending event(s) sent" in rebuilt.stdout
    # And nothing reached the dead-letter queue
    assert dead_letters(server) == 0
