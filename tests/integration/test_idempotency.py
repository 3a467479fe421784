"""Idempotent posting (Powertools idempotency over the moto idempotency table): a retry replays
the first answer byte for byte, a reused key with another body is refused, and a retry while the
first request is still running is told to wait."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

import leads.posting
from crm.seed import SeedTables, seed_demo_data
from shared import dependencies
from shared.security import Principal, Role
from tests.helpers import FakeLambdaContext

VENDOR = Principal("demo-vendor-1", Role.VENDOR, vendor_code="V001")
OTHER_VENDOR = Principal("demo-vendor-2", Role.VENDOR, vendor_code="V002")


@pytest.fixture
def seeded(aws: dict[str, str]) -> None:
    seed_demo_data(SeedTables.configured(), lead_count=0)
    leads.posting._idempotent_post.cache_clear()


def body(email: str) -> str:
    return json.dumps({"email": email, "first_name": "Ida", "tcpa_consent": True})


def test_a_retry_replays_the_first_answer_byte_for_byte(seeded: None) -> None:
    # When the same key and body are sent twice
    first = leads.posting.post_with_key(VENDOR, "key-1", body("ida@example.com"), FakeLambdaContext())
    second = leads.posting.post_with_key(VENDOR, "key-1", body("ida@example.com"), FakeLambdaContext())
    # Then the second is the first, and one lead exists
    assert first["status"] == 201
    assert second == first
    stored = [
        item for item in dependencies.leads_table().scan_all() if item.get("email") == "ida@example.com"
    ]
    assert len(stored) == 1


def test_a_key_reused_with_another_body_is_refused(seeded: None) -> None:
    leads.posting.post_with_key(VENDOR, "key-2", body("ann@example.com"), FakeLambdaContext())
    reused = leads.posting.post_with_key(VENDOR, "key-2", body("bob@example.com"), FakeLambdaContext())
    assert reused["status"] == 422
    assert json.loads(reused["body"])["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"


def test_keys_belong_to_their_caller(seeded: None) -> None:
    mine = leads.posting.post_with_key(VENDOR, "shared-key", body("cy@example.com"), FakeLambdaContext())
    theirs = leads.posting.post_with_key(
        OTHER_VENDOR, "shared-key", body("dee@example.com"), FakeLambdaContext()
    )
    assert mine["status"] == theirs["status"] == 201
    assert json.loads(mine["body"])["lead_id"] != json.loads(theirs["body"])["lead_id"]


def test_a_retry_while_the_first_is_in_flight_is_a_409(seeded: None, monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a first request that is still being processed
    started, release = threading.Event(), threading.Event()
    real_post = leads.posting.post

    def slow_post(principal: Principal, raw: str | None) -> dict[str, Any]:
        started.set()
        release.wait(10)
        return real_post(principal, raw)

    monkeypatch.setattr(leads.posting, "post", slow_post)
    results: list[dict[str, Any]] = []
    first = threading.Thread(
        target=lambda: results.append(
            leads.posting.post_with_key(VENDOR, "key-3", body("eve@example.com"), FakeLambdaContext())
        )
    )
    first.start()
    assert started.wait(10)
    # When the retry arrives
    retry = leads.posting.post_with_key(VENDOR, "key-3", body("eve@example.com"), FakeLambdaContext())
    release.set()
    first.join(10)
    # Then it is told the first is in flight, and the first still succeeds
    assert retry["status"] == 409
    assert json.loads(retry["body"])["error"]["code"] == "IDEMPOTENCY_IN_PROGRESS"
    assert results[0]["status"] == 201
    # And once the first is complete, a later retry replays it
    assert (
        leads.posting.post_with_key(VENDOR, "key-3", body("eve@example.com"), FakeLambdaContext())
        == results[0]
    )


def test_leads_per_minute_counts_each_accepted_lead_once(
    seeded: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    from shared.observability import metrics

    # Given metrics kept (as in AWS)
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    metrics.clear_metrics()
    try:
        # When a lead is posted, retried with its key, and posted again under another key
        first = leads.posting.post_with_key(VENDOR, "count-1", body("eve@example.com"), FakeLambdaContext())
        leads.posting.post_with_key(VENDOR, "count-1", body("eve@example.com"), FakeLambdaContext())
        duplicate = leads.posting.post_with_key(
            VENDOR, "count-2", body("eve@example.com"), FakeLambdaContext()
        )
        # Then the dashboard's leads per minute counts the one lead accepted: not the replay,
        # nor the duplicate
        assert (first["status"], duplicate["status"]) == (201, 409)
        assert metrics.metric_set["LeadsAccepted"]["Value"] == [1.0]
    finally:
        metrics.clear_metrics()
