"""Postbacks without a table or a network: which lead events make which postbacks, signatures a
receiver verifies with the `standardwebhooks` library, where a postback may go, and the back-off."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from agencies.webhooks import (
    DestinationRefused,
    PostbackEvent,
    check_destination,
    delivery_id,
    is_public,
    new_secret,
    next_delay,
    notices,
    payload,
    signed_headers,
)
from shared.config import DEFAULT_POSTBACK_RETRY_SECONDS, Settings
from tests.helpers import base_env

AT = datetime(2026, 12, 2, 9, 30, tzinfo=UTC)


def view(**values: Any) -> dict[str, Any]:
    return {
        "vendor_code": "V001",
        "disposition": "new",
        "lead_value": 25,
        "created_at": "2026-12-02T09:30:00.000Z",
        "is_test": False,
        "deleted": False,
        "sale_amount": None,
        "assigned_agent": "agent-1",
        "return_status": None,
        "credit": None,
        "campaign_source": "google-search",
        **values,
    }


def event(before: dict[str, Any] | None, after: dict[str, Any]) -> dict[str, Any]:
    return {"lead_id": "01JLEAD", "version": 2, "before": before, "after": after}


# -- which postbacks -----------------------------------------------------------------------------
def test_a_new_lead_is_accepted_with_its_price_and_nothing_about_the_agent() -> None:
    (notice,) = notices("LeadCreated", event(None, view()))
    assert (notice.event, notice.vendor_code) == (PostbackEvent.ACCEPTED, "V001")
    assert notice.data == {
        "lead_id": "01JLEAD",
        "campaign_source": "google-search",
        "is_test": False,
        "status": "new",
        "price": 25.0,
        "created_at": "2026-12-02T09:30:00.000Z",
    }


@pytest.mark.parametrize(
    ("before", "after", "told"),
    [
        ("new", "contacted", "contacted"),
        ("contacted", "qualified", "qualified"),
        ("qualified", "closed", "converted"),
        ("new", "lost", "lost"),
    ],
)
def test_a_change_of_disposition_is_told_without_the_sale_amount(before: str, after: str, told: str) -> None:
    (notice,) = notices(
        "LeadUpdated", event(view(disposition=before), view(disposition=after, sale_amount=900))
    )
    assert notice.event is PostbackEvent.STATUS_CHANGED
    assert notice.data["status"] == told
    assert "sale_amount" not in json.dumps(notice.data)
    assert "agent" not in json.dumps(notice.data)


def test_other_changes_tell_nothing() -> None:
    same = view(disposition="contacted")
    assert notices("LeadUpdated", event(same, {**same, "assigned_agent": "agent-2"})) == []
    assert notices("LeadUpdated", event(view(disposition="contacted"), view(disposition="new"))) == []
    assert notices("LeadDeleted", event(same, {**same, "deleted": True})) == []
    assert notices("LeadUpdated", event(view(return_status=None), view(return_status="pending"))) == []
    decided = view(return_status="approved", credit=25)
    assert notices("LeadUpdated", event(decided, {**decided, "assigned_agent": "agent-2"})) == []


def test_a_decided_return_is_told_with_its_decision_and_the_credit() -> None:
    (approved,) = notices("LeadUpdated", event(view(), view(return_status="approved", credit=25)))
    assert (approved.event, approved.data["status"], approved.data["credit"]) == (
        PostbackEvent.RETURNED,
        "approved",
        25.0,
    )
    (rejected,) = notices("LeadUpdated", event(view(), view(return_status="rejected")))
    assert (rejected.data["status"], rejected.data["credit"]) == ("rejected", None)


# -- signing --------------------------------------------------------------------------------------
def test_a_signed_postback_verifies_with_the_standardwebhooks_library() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    (notice,) = notices("LeadCreated", event(None, view()))
    now = datetime.now(UTC)
    body = payload(notice, now)
    message_id = delivery_id("event-1", notice.event, now)
    headers = signed_headers([secret], message_id, now, body)
    verified = Webhook(secret).verify(body, headers)
    assert verified["type"] == "lead.accepted"
    assert verified["data"]["vendor_code"] == "V001"
    assert headers["webhook-id"] == message_id
    with pytest.raises(WebhookVerificationError):
        Webhook(new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body.replace("25.0", "1.0"), headers)


def test_after_a_rotation_both_secrets_verify() -> None:
    old, new = new_secret(), new_secret()
    now = datetime.now(UTC)
    headers = signed_headers([new, old], "msg_x", now, "{}")
    assert len(headers["webhook-signature"].split(" ")) == 2
    for secret in (old, new):
        Webhook(secret).verify("{}", headers)


def test_a_delivery_id_is_the_same_for_one_event_and_type_and_orders_by_time() -> None:
    first = delivery_id("event-1", PostbackEvent.ACCEPTED, AT)
    assert first == delivery_id("event-1", PostbackEvent.ACCEPTED, AT)
    assert first != delivery_id("event-1", PostbackEvent.STATUS_CHANGED, AT)
    assert first != delivery_id("event-2", PostbackEvent.ACCEPTED, AT)
    assert first < delivery_id("event-0", PostbackEvent.ACCEPTED, AT + timedelta(milliseconds=1))


# -- where a postback may go ---------------------------------------------------------------------
def resolver(*addresses: str) -> Any:
    return lambda host, port: list(addresses)


@pytest.mark.parametrize(
    ("url", "addresses", "reason"),
    [
        ("http://hooks.example.com/x", ["93.184.216.34"], "https"),
        ("ftp://hooks.example.com/x", ["93.184.216.34"], "https://host"),
        ("https://user:pw@hooks.example.com/x", ["93.184.216.34"], "credentials"),
        ("https://hooks.example.com/x", ["10.0.0.5"], "non-public"),
        ("https://hooks.example.com/x", ["192.168.1.1"], "non-public"),
        ("https://hooks.example.com/x", ["172.16.0.1"], "non-public"),
        ("https://hooks.example.com/x", ["127.0.0.1"], "non-public"),
        ("https://hooks.example.com/x", ["169.254.169.254"], "non-public"),  # instance metadata
        ("https://hooks.example.com/x", ["100.64.0.1"], "non-public"),  # shared (carrier NAT)
        ("https://hooks.example.com/x", ["fd00:ec2::254"], "non-public"),  # metadata over IPv6
        ("https://hooks.example.com/x", ["::ffff:10.0.0.1"], "non-public"),
        ("https://hooks.example.com/x", ["::1"], "non-public"),
        ("https://hooks.example.com/x", ["93.184.216.34", "10.0.0.5"], "non-public"),
        ("https://hooks.example.com/x", [], "does not resolve"),
    ],
)
def test_deployed_only_https_to_public_addresses_is_called(
    url: str, addresses: list[str], reason: str
) -> None:
    with pytest.raises(DestinationRefused, match=reason):
        check_destination(url, allow_loopback=False, resolver=resolver(*addresses))


def test_a_public_https_destination_is_called_on_its_checked_address() -> None:
    found = check_destination(
        "https://hooks.example.com:8443/in?x=1", allow_loopback=False, resolver=resolver("93.184.216.34")
    )
    assert (found.scheme, found.host, found.port, found.target, found.address) == (
        "https",
        "hooks.example.com",
        8443,
        "/in?x=1",
        "93.184.216.34",
    )


def test_the_local_stack_may_call_loopback_and_nothing_else_private() -> None:
    local = check_destination(
        "http://127.0.0.1:9000/hook", allow_loopback=True, resolver=resolver("127.0.0.1")
    )
    assert (local.address, local.port) == ("127.0.0.1", 9000)
    with pytest.raises(DestinationRefused):
        check_destination("http://10.0.0.5/hook", allow_loopback=True, resolver=resolver("10.0.0.5"))
    with pytest.raises(DestinationRefused):
        check_destination("http://127.0.0.1:9000/hook", allow_loopback=False, resolver=resolver("127.0.0.1"))


def test_the_real_resolver_answers_for_a_literal_address() -> None:
    with pytest.raises(DestinationRefused, match="non-public"):
        check_destination("https://169.254.169.254/latest/meta-data", allow_loopback=False)
    assert is_public("93.184.216.34")
    assert not is_public("224.0.0.1")


# -- back-off -------------------------------------------------------------------------------------
def test_the_default_back_off_grows_and_ends_within_a_day() -> None:
    delays = DEFAULT_POSTBACK_RETRY_SECONDS
    assert list(delays) == sorted(delays)
    assert delays[0] <= 5
    assert 20 * 3600 <= sum(delays) <= 24 * 3600
    assert [next_delay(delays, n) for n in (1, 2)] == [5, 30]
    assert next_delay(delays, len(delays)) == delays[-1]
    assert next_delay(delays, len(delays) + 1) is None  # spent: dead-lettered


def test_a_back_off_longer_than_a_day_is_refused() -> None:
    environment = {**base_env(), "POSTBACK_RETRY_SECONDS": "86400,1"}
    with pytest.raises(ValueError, match="24 hours"):
        Settings.from_env(environment)
    assert Settings.from_env({**base_env(), "POSTBACK_RETRY_SECONDS": "1, 2"}).postback_retry_seconds == (
        1,
        2,
    )


def test_only_the_local_stack_calls_loopback_addresses() -> None:
    from crm.stack import function_environment, local_template
    from crm.template import Template

    assert "POSTBACK_ALLOW_LOOPBACK" not in Template.load().environment()  # deployed: never
    assert Settings.from_env(base_env()).postback_allow_loopback is False
    local = function_environment(local_template({}), "http://127.0.0.1:8000", {})
    assert Settings.from_env({**base_env(), **local}).postback_allow_loopback is True
