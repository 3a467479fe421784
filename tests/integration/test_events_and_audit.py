"""The event bus and the audit table against moto over HTTP: events published by the shared
publisher reach the stats consumer through the template's rule, queue and event source mapping,
and mutating requests are stored in the audit table."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime

import boto3
import pytest

from crm.bus import QueuePoller
from crm.functions import FunctionRegistry
from crm.stack import LOCAL_MAX_VISIBILITY_TIMEOUT
from shared import dependencies
from shared.audit import AuditLog, build_record, stored_record
from shared.dynamo import Table
from shared.errors import MAX_BODY_DEPTH
from shared.events import EventPublisher, PublishFailed
from shared.security import Principal, Role
from stats.dependencies import stats_store
from tests.helpers import api_event
from tests.integration.conftest import test_template
from tests.integration.local_stack import EVENTS_QUEUE


def drain(queue_url: str, seconds: float = 2.0) -> list[dict[str, object]]:
    sqs = boto3.client("sqs")
    messages: list[dict[str, object]] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        received = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=0)
        for message in received.get("Messages", []):
            messages.append(message)
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
        if messages:
            return messages
        time.sleep(0.05)
    return messages


def test_lead_events_match_the_template_rule_and_others_do_not(aws: dict[str, str]) -> None:
    # Given the publisher on the template's bus
    publisher = dependencies.event_publisher()
    # When a lead event and an event of another source are published
    publisher.publish("LeadCreated", {"lead_id": "01ARZ3NDEKTSV4RRFFQ69G5FAV", "version": 1})
    publisher.publish("LeadCreated", {"lead_id": "x", "version": 1}, source="crm.other")
    # Then only the lead event reaches the rule's target, the stats events queue
    messages = drain(aws[EVENTS_QUEUE])
    assert len(messages) == 1
    assert '"source": "crm.leads"' in str(messages[0]["Body"])


STATS_VIEW = {
    "vendor_code": "V001",
    "campaign_source": "google",
    "assigned_agent": None,
    "disposition": "new",
    "lead_value": "35.00",
    "quality_score": 6,
    "created_at": "2026-11-27T09:30:00.000Z",
    "closed_date": None,
    "sale_amount": None,
    "is_test": False,
    "deleted": False,
}


def test_the_consumer_applies_events_from_the_bus_in_an_execution_environment_of_its_own(
    aws: dict[str, str],
) -> None:
    # Given the stats consumer polling its queue as `crm serve` wires it, in a worker process
    template = test_template()
    functions = FunctionRegistry(template, os.environ, concurrency=1)
    (mapping,) = [m for m in template.event_source_mappings() if m.function == "StatsConsumerFunction"]
    poller = QueuePoller(mapping, aws[mapping.queue], functions[mapping.function], boto3.client("sqs"))
    poller.start()
    lead_id = "01ARZ3NDEKTSV4RRFFQ69G5FAV"
    day = STATS_VIEW["created_at"][:10]

    def publish_and_wait(detail_type: str, detail: dict[str, object], records: int) -> int:
        dependencies.event_publisher().publish(detail_type, {"lead_id": lead_id, **detail})
        deadline = time.monotonic() + 10
        while poller.delivered + poller.failed < records and time.monotonic() < deadline:
            time.sleep(0.05)
        return int(stats_store().buckets(day, day)[day]["leads"])

    try:
        # When a lead is created, then changed in a way no stat depends on (a notes-only edit)
        after_creation = publish_and_wait(
            "LeadCreated", {"version": 1, "before": None, "after": STATS_VIEW}, 1
        )
        after_edit = publish_and_wait(
            "LeadUpdated", {"version": 2, "before": STATS_VIEW, "after": STATS_VIEW}, 2
        )
    finally:
        poller.stop()
        poller.join(timeout=5)
        functions.stop()
    # Then the consumer took each event, in one environment, and counted the lead once
    assert (poller.delivered, poller.failed) == (2, 0)
    assert functions[mapping.function].cold_starts == 1
    assert (after_creation, after_edit) == (1, 1)


def test_publishing_to_a_missing_bus_raises_after_retries(aws: dict[str, str]) -> None:
    publisher = EventPublisher("no-such-bus", attempts=2)
    with pytest.raises(PublishFailed):
        publisher.publish("LeadCreated", {"lead_id": "x", "version": 1})


def test_mutating_requests_are_stored_in_the_audit_table(aws: dict[str, str]) -> None:
    # Given
    table = Table(dependencies.get_settings().audit_table)
    audit = AuditLog(table)
    principal = Principal("demo-admin", Role.ADMIN)
    post = api_event("POST", "/leads", body={"email": "jane@example.com", "phone": "+12025550123"})
    get = api_event("GET", "/leads")
    now = datetime.now(UTC)
    # When
    audit.record(build_record(post, 201, 12.5, principal, now=now), "POST")
    audit.record(build_record(get, 200, 3.0, principal, now=now), "GET")
    # Then only the POST is stored, masked
    stored = list(table.scan_all())
    assert len(stored) == 1
    item = stored[0]
    assert item["day"] == now.strftime("%Y-%m-%d")
    assert item["user"] == "demo-admin"
    assert item["action"] == "POST /leads"
    assert item["status"] == 201
    assert stored_record(item)["request"]["body"]["email"] == "j***@example.com"
    assert "0123" not in str(item)


def test_a_body_nested_past_dynamodbs_depth_limit_is_stored_and_read_back(aws: dict[str, str]) -> None:
    # Given a request body nested as deep as the API accepts (32 levels: inside the record's
    # `request` map that is past DynamoDB's 32), with keys that look like DynamoDB type names
    table = Table(dependencies.get_settings().audit_table)
    audit = AuditLog(table)
    body: dict[str, object] = {"S": "x", "M": {"N": "1"}}
    for _ in range(MAX_BODY_DEPTH - 2):
        body = {"M": body}
    post = api_event("POST", "/leads", body=body)
    # When it is audited
    audit.record(build_record(post, 422, 1.0, Principal("demo-admin", Role.ADMIN)), "POST")
    # Then the record is stored and reads back as it was built
    (item,) = table.scan_all()
    assert stored_record(item)["request"]["body"] == body


def test_a_body_nested_past_the_apis_limit_is_stored_as_its_summary(aws: dict[str, str]) -> None:
    # Given a request refused for its nesting (once a RecursionError that lost the record)
    table = Table(dependencies.get_settings().audit_table)
    body = '{"a":' + "[" * 10_000 + "]" * 10_000 + "}"
    post = api_event("POST", "/agencies", body=body)
    # When it is audited
    AuditLog(table).record(build_record(post, 400, 1.0, None), "POST")
    # Then the record is stored, with the body's size in place of the body
    (item,) = table.scan_all()
    assert stored_record(item)["request"]["body"] == (
        f"<{len(body)} bytes, nested deeper than {MAX_BODY_DEPTH} levels>"
    )
    assert (item["status"], item.get("user")) == (400, None)


def test_local_stack_has_exactly_the_template_tables_and_indexes(aws: dict[str, str]) -> None:
    client = boto3.client("dynamodb")
    template_tables = {table.name: table for table in test_template().tables()}
    assert set(client.list_tables()["TableNames"]) == set(template_tables)
    for name, spec in template_tables.items():
        described = client.describe_table(TableName=name)["Table"]
        assert [(k["AttributeName"], k["KeyType"]) for k in described["KeySchema"]] == list(spec.keys)
        indexes = {
            index["IndexName"]: tuple((k["AttributeName"], k["KeyType"]) for k in index["KeySchema"])
            for index in described.get("GlobalSecondaryIndexes", [])
        }
        assert indexes == {index.name: index.keys for index in spec.indexes}


def test_local_stack_has_the_template_queues_and_rules(aws: dict[str, str]) -> None:
    template = test_template()
    sqs, events = boto3.client("sqs"), boto3.client("events")
    # Every queue of the template, by its name
    specs = {spec.logical_id: spec for spec in template.queues()}
    assert set(aws) == set(specs)
    assert EVENTS_QUEUE in specs
    attributes = {
        logical_id: sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        for logical_id, url in aws.items()
    }
    arns = {logical_id: found["QueueArn"] for logical_id, found in attributes.items()}
    for logical_id, spec in specs.items():
        assert arns[logical_id].endswith(f":{spec.name}")
        # with the template's visibility timeout, shortened locally
        assert int(attributes[logical_id]["VisibilityTimeout"]) == min(
            spec.visibility_timeout, LOCAL_MAX_VISIBILITY_TIMEOUT
        )
        # and the template's redrive policy
        redrive = json.loads(attributes[logical_id].get("RedrivePolicy", "null"))
        expected = (
            None
            if spec.dead_letter_queue is None
            else {
                "deadLetterTargetArn": arns[spec.dead_letter_queue],
                "maxReceiveCount": spec.max_receive_count,
            }
        )
        assert redrive == expected
    assert specs[EVENTS_QUEUE].dead_letter_queue is not None
    # And every rule on its bus, with the template's pattern, targeting the template's queues
    for rule in template.rules():
        described = events.describe_rule(Name=rule.name, EventBusName=rule.bus_name)
        assert json.loads(described["EventPattern"]) == rule.pattern
        targets = events.list_targets_by_rule(Rule=rule.name, EventBusName=rule.bus_name)["Targets"]
        assert [(target["Id"], target["Arn"]) for target in targets] == [
            (target.id, arns[target.queue]) for target in rule.targets
        ]
