"""Posting, changing and deleting leads over real HTTP, as vendors' servers and the dashboard do:
every outcome of the posting contract, mass assignment, Idempotency-Key replays, the role matrix
of every lead route, the disposition lifecycle with optimistic locking and agent capacity, and
soft delete. Each test creates its own leads (unique emails) on the shared `crm serve` and deletes
the ones it accepted afterwards, so agents' capacity is left for the other tests."""

from __future__ import annotations

import csv
import io
import json
import re
import secrets
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import requests

from shared.acceptance import WEEK
from tests.e2e.conftest import LocalServer
from tests.helpers import ALLOWED_ORIGIN, token_for

ULID_PATTERN = r"^[0-9A-HJKMNP-TV-Z]{26}$"
ADMIN = "demo-admin"
MANAGER = "demo-manager"
AGENTS = [f"demo-agent-{n}" for n in range(1, 6)]
VENDOR_1, VENDOR_2, VENDOR_4 = "demo-vendor-1", "demo-vendor-2", "demo-vendor-4"
VENDORS_TABLE = "crm-local-vendors"
USERS_TABLE = "crm-local-users"
POST_KEYS = {"outcome", "reason_code", "reason", "lead_id", "price"}


# -- helpers --------------------------------------------------------------------------------------
def token(user: str | None) -> str | None:
    return token_for(user) if user else None


def unique_email(tag: str = "lead") -> str:
    return f"e2e-{tag}-{uuid.uuid4().hex}@example.com"


def unique_phone() -> str:
    """A valid US number (NANP: exchange 200-999) in a space the demo data does not use."""
    return f"+1212{200 + secrets.randbelow(800)}{secrets.randbelow(10_000):04d}"


def dynamodb(server: LocalServer) -> Any:
    return server.dynamodb()


def open_leads(server: LocalServer, agent: str) -> int:
    item = dynamodb(server).get_item(
        TableName=USERS_TABLE, Key={"user_id": {"S": agent}}, ConsistentRead=True
    )["Item"]
    return int(item["open_leads"]["N"])


def assert_cors(response: requests.Response) -> None:
    assert response.headers.get("Access-Control-Allow-Origin") == ALLOWED_ORIGIN


def assert_post_result(
    response: requests.Response, status: int, outcome: str, reason_code: str | None, error_code: str | None
) -> dict[str, Any]:
    """The posting contract: the same keys whatever the outcome, plus `lead` or `error`."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    assert_cors(response)
    body: dict[str, Any] = response.json()
    assert set(body) >= POST_KEYS
    assert body["outcome"] == outcome
    assert body["reason_code"] == reason_code
    if outcome == "accepted":
        assert body["reason"] is None
        assert body["lead"] is not None
        assert body.get("error") is None
    else:
        assert isinstance(body["reason"], str)
        assert body["reason"]
        assert body.get("lead") is None
        assert set(body["error"]) == {"code", "message", "details"}
        assert body["error"]["code"] == error_code
        assert body["error"]["message"]
        assert isinstance(body["error"]["details"], list)
    return body


def assert_error(response: requests.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert_cors(response)
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    return error


def detail_fields(body: dict[str, Any]) -> set[str]:
    return {detail["field"] for detail in body["error"]["details"]}


def list_all(server: LocalServer, user: str, **params: str) -> list[dict[str, Any]]:
    """Every page of `user`'s GET /leads."""
    items: list[dict[str, Any]] = []
    query: dict[str, str] = {"limit": "200", **params}
    while True:
        response = server.get("/leads", token(user), params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        items += body["data"]
        if not body["pagination"]["hasMore"]:
            return items
        query["cursor"] = body["pagination"]["cursor"]


def find_listed(server: LocalServer, user: str, lead_id: str, **params: str) -> dict[str, Any] | None:
    """The lead as it appears in `user`'s GET /leads pages, or None."""
    return next((lead for lead in list_all(server, user, **params) if lead["lead_id"] == lead_id), None)


@dataclass
class Leads:
    """Posts and changes leads over HTTP; remembers what it created so it can be deleted."""

    server: LocalServer
    created: list[str] = field(default_factory=list)

    def post(
        self,
        user: str | None,
        body: dict[str, Any] | None = None,
        *,
        raw: str | bytes | None = None,
        key: str | None = None,
        consent: bool = True,
    ) -> requests.Response:
        """Posts `body` (with `tcpa_consent: true` unless it says otherwise or `consent` is False:
        the vendors' rules require consent by default), or `raw` as it is."""
        headers = {"Content-Type": "application/json"}
        if key is not None:
            headers["Idempotency-Key"] = key
        if body is not None and consent:
            body = {"tcpa_consent": True, **body}
        data = raw if raw is not None else json.dumps(body)
        response = self.server.request("POST", "/leads", token=token(user), headers=headers, data=data)
        if response.status_code == 201:
            self.created.append(response.json()["lead_id"])
        return response

    def accepted(self, user: str = VENDOR_1, **fields: Any) -> dict[str, Any]:
        """A new lead (by default from V001, email only), as the 201 body returns it."""
        response = self.post(user, {"email": unique_email(), **fields})
        assert response.status_code == 201, response.text
        lead: dict[str, Any] = response.json()["lead"]
        return lead

    def assigned(self) -> dict[str, Any]:
        lead = self.accepted()
        assert lead["assigned_agent"] in AGENTS, "no demo agent could take the lead"
        return lead

    def get(self, lead_id: str, user: str | None = ADMIN) -> requests.Response:
        return self.server.get(f"/leads/{lead_id}", token(user))

    def patch(self, lead_id: str, user: str | None, changes: dict[str, Any]) -> requests.Response:
        return self.server.request("PATCH", f"/leads/{lead_id}", token=token(user), json=changes)

    def delete(self, lead_id: str, user: str | None = ADMIN) -> requests.Response:
        return self.server.request("DELETE", f"/leads/{lead_id}", token=token(user))

    def clean_up(self) -> None:
        for lead_id in self.created:
            assert self.delete(lead_id).status_code in (204, 404)
        self.created.clear()


@pytest.fixture
def leads(server: LocalServer) -> Iterator[Leads]:
    posted = Leads(server)
    yield posted
    posted.clean_up()


@dataclass(frozen=True)
class FreshVendor:
    vendor_code: str
    user_id: str


def add_vendor(server: LocalServer, tag: str, **attributes: dict[str, Any]) -> FreshVendor:
    """A vendor item and its vendor user, written straight into the local tables."""
    suffix = uuid.uuid4().hex[:8].upper()
    vendor = FreshVendor(vendor_code=f"V{tag}{suffix}", user_id=f"e2e-vendor-{tag.lower()}-{suffix}")
    client = dynamodb(server)
    client.put_item(
        TableName=VENDORS_TABLE,
        Item={
            "vendor_code": {"S": vendor.vendor_code},
            "name": {"S": f"E2E {tag} vendor"},
            "status": {"S": "active"},
            "dedupe_window_days": {"N": "30"},
            "test_mode": {"BOOL": False},
            **attributes,
        },
    )
    client.put_item(
        TableName=USERS_TABLE,
        Item={
            "user_id": {"S": vendor.user_id},
            "role": {"S": "vendor"},
            "status": {"S": "active"},
            "name": {"S": f"E2E {tag} integration"},
            "vendor_code": {"S": vendor.vendor_code},
        },
    )
    return vendor


# -- 1. every outcome of the posting contract ---------------------------------------------------------
def test_accepted_lead_is_priced_scored_normalised_and_assigned(server: LocalServer, leads: Leads) -> None:
    # Given
    local = f"E2E-Accept-{uuid.uuid4().hex}"
    phone = unique_phone()
    national = f"({phone[2:5]}) {phone[5:8]}-{phone[8:]}"
    load_before = {agent: open_leads(server, agent) for agent in AGENTS}
    # When
    response = leads.post(
        VENDOR_1,
        {
            "email": f"  {local}@Example.COM ",
            "phone": national,
            "first_name": "Ada",
            "last_name": "Lovelace",
            "state": "ca",
            "zip": "90012",
            "tcpa_consent": True,
            "campaign_source": "google-search",
        },
    )
    # Then
    body = assert_post_result(response, 201, "accepted", None, None)
    lead = body["lead"]
    assert body["lead_id"] == lead["lead_id"]
    assert re.match(ULID_PATTERN, body["lead_id"])
    assert '"price":40.00' in response.text
    assert '"lead_value":40.00' in response.text
    assert Decimal(str(body["price"])) == Decimal("40.00")
    assert lead["vendor_code"] == "V001"
    assert lead["created_by"] == VENDOR_1
    assert lead["email"] == f"{local}@example.com".lower()
    assert lead["phone"] == phone
    assert lead["state"] == "CA"
    assert isinstance(lead["quality_score"], int)
    assert 1 <= lead["quality_score"] <= 10
    assert lead["disposition"] == "new"
    assert lead["version"] == 1
    assert lead["is_test"] is False
    assert lead["assigned_agent"] in AGENTS
    assert lead["created_at"].endswith("Z")
    assert [entry["action"] for entry in lead["update_history"]] == ["created"]
    assert lead["update_history"][0]["user"] == VENDOR_1
    # and the lead is stored as returned, and its agent carries one more open lead
    stored = leads.get(lead["lead_id"], VENDOR_1)
    assert stored.status_code == 200
    assert stored.json() == lead
    load_after = {agent: open_leads(server, agent) for agent in AGENTS}
    assert load_after[lead["assigned_agent"]] == load_before[lead["assigned_agent"]] + 1


@pytest.mark.parametrize(
    ("field_name", "sent", "stored"),
    [
        ("state", " ca ", "CA"),
        ("zip", " 90012 ", "90012"),
        ("zip", "90012-1234", "90012-1234"),
        ("first_name", "  Ada \t  Mae ", "Ada Mae"),
        ("ip_address", " 203.0.113.9 ", "203.0.113.9"),
    ],
    ids=["state", "zip", "zip-plus-4", "first_name", "ip_address"],
)
def test_contact_fields_are_stored_normalised(leads: Leads, field_name: str, sent: str, stored: str) -> None:
    # When
    response = leads.post(VENDOR_1, {"email": unique_email("normal"), field_name: sent})
    # Then
    result = assert_post_result(response, 201, "accepted", None, None)
    assert result["lead"][field_name] == stored
    assert leads.get(result["lead_id"]).json()[field_name] == stored


def test_concurrent_posts_of_one_email_accept_exactly_one(leads: Leads) -> None:
    # Given
    email = unique_email("race")
    users = [VENDOR_1, VENDOR_2, VENDOR_1, VENDOR_2, VENDOR_1, VENDOR_2]
    # When
    with ThreadPoolExecutor(max_workers=len(users)) as pool:
        responses = list(pool.map(lambda user: leads.post(user, {"email": email}), users))
    # Then
    statuses = sorted(response.status_code for response in responses)
    assert statuses == [201] + [409] * (len(users) - 1)


def test_same_email_from_another_vendor_is_a_duplicate_only_staff_learn_the_original_of(
    leads: Leads,
) -> None:
    # Given
    email = unique_email("dup")
    original = leads.accepted(VENDOR_1, email=email)
    # When
    by_vendor = leads.post(VENDOR_2, {"email": email.upper()})
    by_admin = leads.post(ADMIN, {"email": email, "vendor_code": "V003"})
    by_manager = leads.post(MANAGER, {"email": email, "vendor_code": "V005"})
    # Then
    vendor_view = assert_post_result(by_vendor, 409, "duplicate", "DUPLICATE", "DUPLICATE")
    assert vendor_view["lead_id"] is None
    assert vendor_view["price"] is None
    assert original["lead_id"] not in by_vendor.text
    for staff_response in (by_admin, by_manager):
        staff_view = assert_post_result(staff_response, 409, "duplicate", "DUPLICATE", "DUPLICATE")
        assert staff_view["lead_id"] == original["lead_id"]


def test_same_phone_in_another_format_is_a_duplicate(leads: Leads) -> None:
    # Given
    phone = unique_phone()
    leads.accepted(VENDOR_1, phone=phone, email=None)
    # When
    response = leads.post(VENDOR_2, {"phone": f"{phone[2:5]}.{phone[5:8]}.{phone[8:]}"})
    # Then
    assert_post_result(response, 409, "duplicate", "DUPLICATE", "DUPLICATE")


@pytest.mark.parametrize(
    ("body", "field_name"),
    [
        ({"email": "not-an-email"}, "email"),
        ({"email": "e2e-bad-phone@example.com", "phone": "123"}, "phone"),
        ({"phone": "+1 202 555 0123 ext. 4"}, "phone"),
        ({"first_name": "Nobody", "state": "CA"}, "email"),
        ({"email": "e2e-bad-state@example.com", "state": "California"}, "state"),
        ({"email": "e2e-bad-zip@example.com", "zip": "9001"}, "zip"),
    ],
    ids=["bad-email", "bad-phone", "phone-with-extension", "neither-email-nor-phone", "bad-state", "bad-zip"],
)
def test_invalid_lead_data_is_a_data_error_naming_the_field(
    leads: Leads, body: dict[str, Any], field_name: str
) -> None:
    # Given a body whose email, if any, is unique to this run
    if "email" in body and body["email"].startswith("e2e-"):
        body = {**body, "email": unique_email(field_name)}
    # When
    response = leads.post(VENDOR_1, body)
    # Then
    result = assert_post_result(response, 422, "rejected", "DATA_ERROR", "DATA_ERROR")
    assert result["lead_id"] is None
    assert result["price"] is None
    assert detail_fields(result) == {field_name}
    assert result["details"] == result["error"]["details"]
    assert all(detail["message"] for detail in result["error"]["details"])


def test_every_bad_field_is_reported_at_once(leads: Leads) -> None:
    # When
    response = leads.post(VENDOR_1, {"email": "nope", "phone": "12", "zip": "x", "lead_value": 1})
    # Then
    result = assert_post_result(response, 422, "rejected", "DATA_ERROR", "DATA_ERROR")
    assert detail_fields(result) == {"email", "phone", "zip", "lead_value"}


def test_paused_vendor_is_refused(server: LocalServer, leads: Leads) -> None:
    # Given
    client = dynamodb(server)
    client.update_item(
        TableName=VENDORS_TABLE,
        Key={"vendor_code": {"S": "V004"}},
        UpdateExpression="SET #status = :paused",
        ExpressionAttributeNames={"#status": "status"},
        ExpressionAttributeValues={":paused": {"S": "paused"}},
    )
    try:
        # When
        response = leads.post(VENDOR_4, {"email": unique_email("paused")})
    finally:
        client.update_item(
            TableName=VENDORS_TABLE,
            Key={"vendor_code": {"S": "V004"}},
            UpdateExpression="SET #status = :active",
            ExpressionAttributeNames={"#status": "status"},
            ExpressionAttributeValues={":active": {"S": "active"}},
        )
    # Then
    result = assert_post_result(response, 403, "rejected", "VENDOR_PAUSED", "VENDOR_PAUSED")
    assert result["lead_id"] is None
    # and the vendor may post again once active
    assert leads.post(VENDOR_4, {"email": unique_email("unpaused")}).status_code == 201


@pytest.mark.parametrize("cap", ["hourly_cap", "daily_cap", "monthly_cap"])
def test_vendor_over_its_cap_is_refused(server: LocalServer, leads: Leads, cap: str) -> None:
    # Given a vendor allowed two leads
    vendor = add_vendor(server, "CAP", **{cap: {"N": "2"}})
    for _ in range(2):
        assert leads.post(vendor.user_id, {"email": unique_email("cap")}).status_code == 201
    # When
    response = leads.post(vendor.user_id, {"email": unique_email("cap")})
    # Then
    result = assert_post_result(response, 429, "rejected", "OVER_CAP", "OVER_CAP")
    assert result["lead_id"] is None
    # and a refused lead is not counted: it is still refused, and no lead was stored for it
    assert leads.post(vendor.user_id, {"email": unique_email("cap")}).status_code == 429
    listed = server.get("/leads", token(ADMIN), params={"vendor": vendor.vendor_code, "limit": "10"})
    assert listed.json()["pagination"]["count"] == 2


# -- acceptance rules and consent evidence --------------------------------------------------------
CERT = "https://cert.trustedform.com/" + "ab" * 20
RULES = {
    "required_fields": ["zip"],
    "allowed_states": ["TX", "OK"],
    "max_lead_age_minutes": 10,
}


def ruled_vendor(server: LocalServer, tag: str, rules: dict[str, Any]) -> FreshVendor:
    """A fresh vendor whose acceptance rules an admin sets through PATCH /agencies/{code}."""
    vendor = add_vendor(server, tag)
    changed = server.request(
        "PATCH", f"/agencies/{vendor.vendor_code}", token=token(ADMIN), json={"acceptance": rules}
    )
    assert changed.status_code == 200, changed.text
    return vendor


def minutes_ago(minutes: int) -> str:
    return (datetime.now(UTC) - timedelta(minutes=minutes)).isoformat()


@pytest.fixture(scope="module")
def rules_vendor(server: LocalServer) -> FreshVendor:
    return ruled_vendor(server, "R", RULES)


@pytest.fixture(scope="module")
def closed_vendor(server: LocalServer) -> FreshVendor:
    """A vendor whose hours are closed today and tomorrow (UTC): any post now is outside them."""
    today = datetime.now(UTC).weekday()
    days = [day for n, day in enumerate(WEEK) if n not in (today, (today + 1) % 7)]
    return ruled_vendor(
        server, "H", {"hours": {"time_zone": "UTC", "days": days, "from": "00:00", "to": "00:00"}}
    )


def test_a_lead_without_consent_is_refused_by_default(leads: Leads) -> None:
    # Given a demo vendor with the default rules (consent required)
    email = unique_email("no-consent")
    # When it posts a lead without consent, and one with consent false
    absent = leads.post(VENDOR_1, {"email": email}, consent=False)
    refused = leads.post(VENDOR_1, {"email": email, "tcpa_consent": False})
    # Then both are NO_CONSENT, naming the field
    for response in (absent, refused):
        result = assert_post_result(response, 422, "rejected", "NO_CONSENT", "NO_CONSENT")
        assert detail_fields(result) == {"tcpa_consent"}
    # and nothing was written: the same person with consent is accepted, not a duplicate
    assert leads.post(VENDOR_1, {"email": email}).status_code == 201


@pytest.mark.parametrize(
    ("body", "reason_code", "fields"),
    [
        pytest.param({"state": "TX", "submitted_at": "now"}, "MISSING_FIELD", {"zip"}, id="missing-zip"),
        pytest.param({"zip": "73301"}, "MISSING_FIELD", {"state", "submitted_at"}, id="rules-require-fields"),
        pytest.param(
            {"zip": "94105", "state": "CA", "submitted_at": "now"}, "STATE_NOT_ALLOWED", {"state"}, id="state"
        ),
        pytest.param(
            {"zip": "73301", "state": "TX", "submitted_at": 11},
            "LEAD_TOO_OLD",
            {"submitted_at"},
            id="too-old",
        ),
    ],
)
def test_each_failed_rule_is_refused_with_its_reason_code_before_any_write(
    server: LocalServer,
    leads: Leads,
    rules_vendor: FreshVendor,
    body: dict[str, Any],
    reason_code: str,
    fields: set[str],
) -> None:
    # Given a lead of a vendor with rules (submitted now, or so many minutes ago)
    email = unique_email("rules")
    if "submitted_at" in body:
        age = 0 if body["submitted_at"] == "now" else body["submitted_at"]
        body = {**body, "submitted_at": minutes_ago(age)}
    # When it is posted
    response = leads.post(rules_vendor.user_id, {"email": email, **body})
    # Then it is refused with the rule's reason code, naming the fields concerned
    result = assert_post_result(response, 422, "rejected", reason_code, reason_code)
    assert detail_fields(result) == fields
    assert result["lead_id"] is None
    # and nothing was written: no lead, no dedupe claim (the person is accepted once the lead is fixed)
    assert email not in {lead["email"] for lead in list_all(server, ADMIN, vendor=rules_vendor.vendor_code)}
    fixed = {"email": email, "zip": "73301", "state": "TX", "submitted_at": minutes_ago(1)}
    assert_post_result(leads.post(rules_vendor.user_id, fixed), 201, "accepted", None, None)


def test_a_post_outside_the_hours_is_refused(leads: Leads, closed_vendor: FreshVendor) -> None:
    response = leads.post(closed_vendor.user_id, {"email": unique_email("hours")})
    result = assert_post_result(response, 422, "rejected", "OUTSIDE_HOURS", "OUTSIDE_HOURS")
    assert "UTC" in result["reason"]


def test_rules_are_applied_in_their_documented_order(leads: Leads, rules_vendor: FreshVendor) -> None:
    # A lead failing every rule is answered for consent first, then for its missing field
    body = {"email": unique_email("order"), "state": "CA", "submitted_at": minutes_ago(60)}
    assert leads.post(rules_vendor.user_id, body, consent=False).json()["reason_code"] == "NO_CONSENT"
    assert leads.post(rules_vendor.user_id, body).json()["reason_code"] == "MISSING_FIELD"
    assert (
        leads.post(rules_vendor.user_id, {**body, "zip": "94105"}).json()["reason_code"]
        == "STATE_NOT_ALLOWED"
    )


def test_consent_evidence_is_kept_with_the_lead(leads: Leads) -> None:
    # When a lead is posted with a TrustedForm certificate and a Jornaya LeadiD
    evidence = {
        "trustedform_cert_url": CERT.upper().replace(
            "HTTPS://CERT.TRUSTEDFORM.COM", "https://cert.trustedform.com"
        ),
        "jornaya_leadid": "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
        "consent_text": "I agree to be contacted.",
    }
    lead = leads.accepted(**evidence)
    # Then both are stored normalised and returned by GET /leads/{lead_id}
    stored = leads.get(lead["lead_id"]).json()
    assert stored["trustedform_cert_url"] == CERT
    assert stored["jornaya_leadid"] == "3F2504E0-4F89-11D3-9A0C-0305E82C3301"
    assert stored["tcpa_consent"] is True


def test_consent_evidence_is_exported_page_by_page_to_its_vendor_only(
    server: LocalServer, leads: Leads
) -> None:
    # Given two leads of a vendor of their own, with consent evidence
    vendor = add_vendor(server, "EXP")
    jornaya = ["3F2504E0-4F89-11D3-9A0C-0305E82C330" + digit for digit in "12"]
    posted = [
        leads.accepted(
            vendor.user_id, trustedform_cert_url=CERT, jornaya_leadid=leadid, consent_text="=I agree"
        )
        for leadid in jornaya
    ]
    # When the vendor exports its leads as CSV, one a page
    rows: list[dict[str, str]] = []
    cursor = None
    for _ in posted:
        params = {"format": "csv", "limit": "1", **({"cursor": cursor} if cursor else {})}
        page = server.get("/leads", token(vendor.user_id), params=params)
        assert page.status_code == 200, page.text
        assert page.headers["Content-Type"].startswith("text/csv")
        assert "attachment" in page.headers["Content-Disposition"]
        rows += list(csv.DictReader(io.StringIO(page.text)))
        cursor = page.headers.get("X-Next-Cursor")
    # Then every lead is there once with its evidence, and a formula-like cell is neutralised
    assert sorted(row["lead_id"] for row in rows) == sorted(lead["lead_id"] for lead in posted)
    assert {row["trustedform_cert_url"] for row in rows} == {CERT}
    assert sorted(row["jornaya_leadid"] for row in rows) == jornaya
    assert {(row["tcpa_consent"], row["consent_text"], row["vendor_code"]) for row in rows} == {
        ("True", "'=I agree", vendor.vendor_code)
    }
    # And another vendor's export does not have them
    other = server.get("/leads", token(VENDOR_1), params={"format": "csv", "limit": "200"})
    assert not {row["lead_id"] for row in csv.DictReader(io.StringIO(other.text))} & {
        lead["lead_id"] for lead in posted
    }


@pytest.mark.parametrize(
    ("field_name", "value"),
    [
        pytest.param("trustedform_cert_url", "https://cert.trustedform.com/abc123", id="short-certificate"),
        pytest.param("trustedform_cert_url", "https://example.com/" + "ab" * 20, id="not-trustedform"),
        pytest.param("jornaya_leadid", "not-a-leadid", id="bad-leadid"),
        pytest.param("submitted_at", "2026-03-01T09:30:00", id="time-without-zone"),
    ],
)
def test_bad_consent_evidence_is_a_data_error_naming_the_field(
    leads: Leads, field_name: str, value: str
) -> None:
    response = leads.post(VENDOR_1, {"email": unique_email("evidence"), field_name: value})
    result = assert_post_result(response, 422, "rejected", "DATA_ERROR", "DATA_ERROR")
    assert detail_fields(result) == {field_name}


def test_test_mode_vendor_gets_real_answers_but_its_leads_are_test_and_unassigned(
    server: LocalServer, leads: Leads
) -> None:
    # Given
    vendor = add_vendor(server, "TEST", test_mode={"BOOL": True})
    # When
    response = leads.post(vendor.user_id, {"email": unique_email("test-mode"), "first_name": "Tess"})
    invalid = leads.post(vendor.user_id, {"email": "not-an-email"})
    # Then
    result = assert_post_result(response, 201, "accepted", None, None)
    assert result["lead"]["is_test"] is True
    assert result["lead"]["assigned_agent"] is None
    assert result["lead"]["vendor_code"] == vendor.vendor_code
    assert_post_result(invalid, 422, "rejected", "DATA_ERROR", "DATA_ERROR")


def test_test_mode_leads_do_not_block_real_leads_with_the_same_email(
    server: LocalServer, leads: Leads
) -> None:
    # Given
    vendor = add_vendor(server, "TEST", test_mode={"BOOL": True})
    email = unique_email("test-then-real")
    assert leads.post(vendor.user_id, {"email": email}).status_code == 201
    # When
    again_in_test = leads.post(vendor.user_id, {"email": email})
    real = leads.post(VENDOR_1, {"email": email})
    # Then
    assert_post_result(again_in_test, 409, "duplicate", "DUPLICATE", "DUPLICATE")
    assert_post_result(real, 201, "accepted", None, None)


def test_body_over_256_kb_is_413(leads: Leads) -> None:
    # When
    response = leads.post(VENDOR_1, {"email": unique_email("big"), "consent_text": "x" * (300 * 1024)})
    # Then
    result = assert_post_result(response, 413, "rejected", "DATA_ERROR", "PAYLOAD_TOO_LARGE")
    assert result["lead_id"] is None


@pytest.mark.parametrize(
    "raw", ['{"email": "a@example.com"', "not json", '{"email": }'], ids=["truncated", "text", "bad-value"]
)
def test_malformed_json_is_400(leads: Leads, raw: str) -> None:
    # When
    response = leads.post(VENDOR_1, raw=raw)
    # Then
    result = assert_post_result(response, 400, "rejected", "DATA_ERROR", "BAD_REQUEST")
    assert detail_fields(result) == {"body"}


@pytest.mark.parametrize(
    ("raw", "field_name"),
    [("", "body"), ("[]", "body"), ('"a string"', "body")],
    ids=["empty", "array", "string"],
)
def test_body_that_is_not_an_object_is_a_data_error(leads: Leads, raw: str, field_name: str) -> None:
    # When
    response = leads.post(VENDOR_1, raw=raw)
    # Then
    result = assert_post_result(response, 422, "rejected", "DATA_ERROR", "DATA_ERROR")
    assert detail_fields(result) == {field_name}


# -- posting as whom ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("user", "extra", "status", "vendor_code", "field_name"),
    [
        (ADMIN, {"vendor_code": "V002"}, 201, "V002", None),
        (MANAGER, {"vendor_code": "V003", "notes": "Called in"}, 201, "V003", None),
        (VENDOR_1, {"vendor_code": "V001"}, 201, "V001", None),
        (VENDOR_1, {"vendor_code": "V002"}, 422, None, "vendor_code"),
        (VENDOR_1, {"notes": "from the vendor"}, 422, None, "notes"),
        (ADMIN, {}, 422, None, "vendor_code"),
        (MANAGER, {"vendor_code": "NOPE"}, 422, None, "vendor_code"),
    ],
    ids=[
        "admin-for-a-vendor",
        "manager-with-notes",
        "vendor-naming-itself",
        "vendor-as-another-vendor",
        "vendor-with-notes",
        "staff-without-vendor",
        "staff-unknown-vendor",
    ],
)
def test_who_may_post_for_which_vendor(
    leads: Leads,
    user: str,
    extra: dict[str, Any],
    status: int,
    vendor_code: str | None,
    field_name: str | None,
) -> None:
    # When
    response = leads.post(user, {"email": unique_email("as"), **extra})
    # Then
    if status == 201:
        result = assert_post_result(response, 201, "accepted", None, None)
        assert result["lead"]["vendor_code"] == vendor_code
        assert result["lead"]["created_by"] == user
    else:
        result = assert_post_result(response, status, "rejected", "DATA_ERROR", "DATA_ERROR")
        assert field_name in detail_fields(result)


# -- 2. mass assignment ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("field_name", "value", "message"),
    [
        ("lead_value", 1.00, "may not be set"),
        ("quality_score", 10, "may not be set"),
        ("assigned_agent", "demo-agent-1", "may not be set"),
        ("disposition", "closed", "may not be set"),
        ("created_by", "demo-admin", "may not be set"),
        ("update_history", [], "may not be set"),
        ("is_test", True, "may not be set"),
        ("version", 7, "may not be set"),
        ("favourite_colour", "teal", "unknown field"),
    ],
    ids=[
        "lead_value",
        "quality_score",
        "assigned_agent",
        "disposition",
        "created_by",
        "update_history",
        "is_test",
        "version",
        "unknown-field",
    ],
)
def test_vendor_cannot_set_fields_the_service_computes(
    leads: Leads, field_name: str, value: Any, message: str
) -> None:
    # Given
    email = unique_email("mass")
    # When
    response = leads.post(VENDOR_1, {"email": email, field_name: value})
    # Then
    result = assert_post_result(response, 422, "rejected", "DATA_ERROR", "DATA_ERROR")
    named = [detail for detail in result["error"]["details"] if detail["field"] == field_name]
    assert named, result
    assert message in named[0]["message"]
    # and nothing was stored: the same email is still new
    assert leads.post(VENDOR_1, {"email": email}).status_code == 201


# -- 3. Idempotency-Key ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"first_name": "Ida"}, 201),
        ({"email": "broken", "first_name": "Ida"}, 422),
    ],
    ids=["accepted", "rejected"],
)
def test_retry_with_the_same_key_and_body_replays_the_first_answer(
    server: LocalServer, leads: Leads, body: dict[str, Any], status: int
) -> None:
    # Given
    key = f"e2e-{uuid.uuid4()}"
    body = {"email": unique_email("idem"), **body}
    first = leads.post(VENDOR_1, body, key=key)
    assert first.status_code == status, first.text
    # When
    retry = leads.post(VENDOR_1, body, key=key)
    # Then
    assert retry.status_code == first.status_code
    assert retry.json() == first.json()
    assert retry.text == first.text
    assert_cors(retry)
    if status == 201:
        lead_id = first.json()["lead_id"]
        assert leads.get(lead_id, VENDOR_1).status_code == 200
        mine = [lead["lead_id"] for lead in list_all(server, VENDOR_1) if lead["email"] == body["email"]]
        assert mine == [lead_id]


def test_same_key_with_another_body_is_refused(leads: Leads) -> None:
    # Given
    key = f"e2e-{uuid.uuid4()}"
    assert leads.post(VENDOR_1, {"email": unique_email("idem")}, key=key).status_code == 201
    # When
    response = leads.post(VENDOR_1, {"email": unique_email("idem-other")}, key=key)
    # Then
    assert response.status_code == 422, response.text
    assert_cors(response)
    body = response.json()
    assert set(body) >= POST_KEYS
    assert body["outcome"] == "rejected"
    assert body["lead_id"] is None
    assert body["error"]["code"] == "IDEMPOTENCY_KEY_REUSED"
    assert len(leads.created) == 1


def test_the_same_key_from_two_vendors_is_two_posts(leads: Leads) -> None:
    # Given
    key = f"e2e-{uuid.uuid4()}"
    # When
    first = leads.post(VENDOR_1, {"email": unique_email("idem-v1")}, key=key)
    second = leads.post(VENDOR_2, {"email": unique_email("idem-v2")}, key=key)
    # Then
    assert first.status_code == 201, first.text
    assert second.status_code == 201, second.text
    assert first.json()["lead_id"] != second.json()["lead_id"]
    assert second.json()["lead"]["vendor_code"] == "V002"


def test_idempotency_key_over_128_characters_is_400(leads: Leads) -> None:
    # When
    response = leads.post(VENDOR_1, {"email": unique_email("idem-long")}, key="k" * 129)
    # Then
    assert_error(response, 400, "BAD_REQUEST")
    assert leads.created == []


# -- 4. role matrix ---------------------------------------------------------------------------------------
ACTORS = ["admin", "manager", "owner-agent", "other-agent", "owner-vendor", "other-vendor", "anonymous"]
EXPECTED = {
    "list": [200, 200, 200, 200, 200, 200, 401],
    "post": [201, 201, 403, 403, 201, 201, 401],
    "get": [200, 200, 200, 404, 200, 404, 401],
    "patch": [200, 200, 200, 404, 403, 403, 401],
    "delete": [204, 403, 403, 403, 403, 403, 401],
}
MATRIX = [
    (route, actor, statuses[n]) for route, statuses in EXPECTED.items() for n, actor in enumerate(ACTORS)
]


def actor_user(actor: str, lead: dict[str, Any]) -> str | None:
    """The user playing `actor` towards `lead` (posted by demo-vendor-1 and assigned)."""
    owner = lead["assigned_agent"]
    return {
        "admin": ADMIN,
        "manager": MANAGER,
        "owner-agent": owner,
        "other-agent": next(agent for agent in AGENTS if agent != owner),
        "owner-vendor": VENDOR_1,
        "other-vendor": VENDOR_2,
        "anonymous": None,
    }[actor]


@pytest.fixture(scope="module")
def matrix_lead(server: LocalServer) -> Iterator[dict[str, Any]]:
    shared = Leads(server)
    lead = shared.assigned()
    yield lead
    shared.clean_up()


def call_lead_route(
    server: LocalServer, leads: Leads, route: str, actor: str, user: str | None, lead_id: str
) -> requests.Response:
    """One request of the role matrix: `route` of the lead routes, on `lead_id`, as `user`."""
    if route == "list":
        return server.get("/leads", token(user), params={"limit": "5"})
    if route == "post":
        body = {"email": unique_email("matrix")}
        if actor in ("admin", "manager"):
            body["vendor_code"] = "V001"
        return leads.post(user, body)
    if route == "get":
        return leads.get(lead_id, user)
    if route == "patch":
        version = leads.get(lead_id).json()["version"]
        return leads.patch(lead_id, user, {"version": version, "notes": f"checked by {actor}"})
    return leads.delete(lead_id, user)


@pytest.mark.parametrize(("route", "actor", "status"), MATRIX, ids=[f"{r}-{a}-{s}" for r, a, s in MATRIX])
def test_role_matrix_of_the_lead_routes(
    server: LocalServer, leads: Leads, matrix_lead: dict[str, Any], route: str, actor: str, status: int
) -> None:
    # Given
    lead = leads.assigned() if route == "delete" else matrix_lead
    user = actor_user(actor, lead)
    lead_id = lead["lead_id"]
    # When
    response = call_lead_route(server, leads, route, actor, user, lead_id)
    # Then
    assert response.status_code == status, response.text
    assert_cors(response)
    if status == 200 and route == "get":
        assert response.json()["lead_id"] == lead_id
    if status == 200 and route == "patch":
        assert response.json()["notes"] == f"checked by {actor}"
        assert response.json()["update_history"][-1]["user"] == user
    if status == 204:
        assert response.text == ""
        assert leads.get(lead_id).status_code == 404
    if route == "delete" and status != 204:
        assert leads.get(lead_id).status_code == 200
    if status in (401, 403, 404):
        assert (
            response.json()["error"]["code"]
            == {401: "UNAUTHORIZED", 403: "FORBIDDEN", 404: "NOT_FOUND"}[status]
        )


@pytest.mark.parametrize(
    ("actor", "listed"),
    [
        ("admin", True),
        ("manager", True),
        ("owner-agent", True),
        ("other-agent", False),
        ("owner-vendor", True),
        ("other-vendor", False),
    ],
)
def test_a_lead_is_listed_exactly_for_those_who_may_see_it(
    server: LocalServer, matrix_lead: dict[str, Any], actor: str, listed: bool
) -> None:
    # Given (staff search V001's leads rather than page through every lead)
    user = actor_user(actor, matrix_lead)
    assert user is not None
    staff_filter = {"vendor": "V001"} if actor in ("admin", "manager") else {}
    # When
    found = find_listed(server, user, matrix_lead["lead_id"], **staff_filter)
    # Then
    assert (found is not None) is listed


# -- 5. lifecycle -----------------------------------------------------------------------------------------
def test_lead_moves_from_new_to_closed_with_history_and_a_sale(leads: Leads) -> None:
    # Given
    lead = leads.assigned()
    agent = lead["assigned_agent"]
    # When
    moves = []
    version = lead["version"]
    for change in (
        {"disposition": "contacted", "last_contact": "2030-01-02T03:04:05+01:00"},
        {"disposition": "qualified"},
        {"disposition": "closed", "sale_amount": 1234.5},
    ):
        response = leads.patch(lead["lead_id"], agent, {"version": version, **change})
        assert response.status_code == 200, response.text
        moves.append(response.json())
        version = response.json()["version"]
    # Then
    assert [move["disposition"] for move in moves] == ["contacted", "qualified", "closed"]
    assert [move["version"] for move in moves] == [2, 3, 4]
    assert [len(move["update_history"]) for move in moves] == [2, 3, 4]
    closed = moves[-1]
    assert closed["closed_date"] is not None
    assert closed["closed_date"].endswith("Z")
    assert Decimal(str(closed["sale_amount"])) == Decimal("1234.50")
    assert closed["last_contact"] == "2030-01-02T02:04:05.000Z"
    history = closed["update_history"][1:]
    assert {entry["user"] for entry in history} == {agent}
    assert {entry["action"] for entry in history} == {"updated"}
    assert [entry["changes"]["disposition"] for entry in history] == [
        {"from": "new", "to": "contacted"},
        {"from": "contacted", "to": "qualified"},
        {"from": "qualified", "to": "closed"},
    ]
    assert "sale_amount" in history[-1]["changes"]
    assert "closed_date" in history[-1]["changes"]
    assert leads.get(lead["lead_id"]).json() == closed


@pytest.mark.parametrize(
    ("path", "wanted", "allowed"),
    [
        ([], "closed", ["contacted", "lost"]),
        ([], "qualified", ["contacted", "lost"]),
        (["contacted"], "closed", ["lost", "qualified"]),
        (["lost"], "qualified", ["contacted"]),
        (["contacted", "qualified", "closed"], "lost", []),
    ],
    ids=["new-to-closed", "new-to-qualified", "contacted-to-closed", "lost-to-qualified", "closed-to-lost"],
)
def test_disallowed_move_is_409_listing_the_allowed_moves(
    leads: Leads, path: list[str], wanted: str, allowed: list[str]
) -> None:
    # Given
    lead = leads.assigned()
    version = lead["version"]
    for step in path:
        response = leads.patch(lead["lead_id"], MANAGER, {"version": version, "disposition": step})
        assert response.status_code == 200, response.text
        version = response.json()["version"]
    # When
    response = leads.patch(lead["lead_id"], MANAGER, {"version": version, "disposition": wanted})
    # Then
    error = assert_error(response, 409, "INVALID_TRANSITION")
    detail = next(detail for detail in error["details"] if detail["field"] == "disposition")
    assert detail["to"] == wanted
    assert detail["from"] == (path[-1] if path else "new")
    assert detail["allowed"] == allowed
    assert leads.get(lead["lead_id"]).json()["version"] == version


def test_lost_lead_can_be_reopened_and_loads_its_agent_again(server: LocalServer, leads: Leads) -> None:
    # Given
    lead = leads.assigned()
    agent = lead["assigned_agent"]
    lost = leads.patch(lead["lead_id"], agent, {"version": 1, "disposition": "lost"})
    assert lost.status_code == 200, lost.text
    load_while_lost = open_leads(server, agent)
    # When
    reopened = leads.patch(lead["lead_id"], agent, {"version": 2, "disposition": "contacted"})
    # Then
    assert reopened.status_code == 200, reopened.text
    assert reopened.json()["disposition"] == "contacted"
    assert open_leads(server, agent) == load_while_lost + 1


def test_stale_version_is_409_version_conflict(leads: Leads) -> None:
    # Given a lead someone else changed after we read it
    lead = leads.assigned()
    first = leads.patch(lead["lead_id"], MANAGER, {"version": 1, "notes": "first"})
    assert first.status_code == 200, first.text
    # When
    response = leads.patch(lead["lead_id"], lead["assigned_agent"], {"version": 1, "notes": "second"})
    # Then
    error = assert_error(response, 409, "VERSION_CONFLICT")
    assert {"field": "version", "current": 2} in error["details"]
    assert leads.get(lead["lead_id"]).json()["notes"] == "first"


@pytest.mark.parametrize(
    "changes",
    [
        {"notes": "no version"},
        {"version": 1},
        {"version": 1, "disposition": "won"},
        {"version": 1, "lead_value": 1},
        {"version": 1, "disposition": "contacted", "sale_amount": 10},
        {"version": 1, "last_contact": "2030-01-01T00:00:00"},
    ],
    ids=[
        "no-version",
        "nothing-to-change",
        "unknown-disposition",
        "computed-field",
        "sale-with-a-move-elsewhere",
        "time-without-zone",
    ],
)
def test_invalid_change_is_a_422_and_changes_nothing(leads: Leads, changes: dict[str, Any]) -> None:
    # Given
    lead = leads.assigned()
    # When
    response = leads.patch(lead["lead_id"], MANAGER, changes)
    # Then
    assert_error(response, 422, "VALIDATION_ERROR")
    assert leads.get(lead["lead_id"]).json() == lead


def test_a_sale_amount_on_a_lead_that_is_not_closed_is_a_409_and_changes_nothing(leads: Leads) -> None:
    # Given an open lead
    lead = leads.assigned()
    # When a sale amount is set without closing it
    response = leads.patch(lead["lead_id"], MANAGER, {"version": 1, "sale_amount": 10})
    # Then the lead's state refuses it
    error = assert_error(response, 409, "LEAD_NOT_CLOSED")
    assert error["details"] == [{"field": "sale_amount", "message": "close the lead first"}]
    assert leads.get(lead["lead_id"]).json() == lead


def test_agent_cannot_reassign_its_lead(leads: Leads) -> None:
    # Given
    lead = leads.assigned()
    other = next(agent for agent in AGENTS if agent != lead["assigned_agent"])
    # When
    response = leads.patch(lead["lead_id"], lead["assigned_agent"], {"version": 1, "assigned_agent": other})
    # Then (refused by name, like a vendor's mass assignment: 422 since commit 2944726)
    error = assert_error(response, 422, "VALIDATION_ERROR")
    assert [detail["field"] for detail in error["details"]] == ["assigned_agent"]
    assert leads.get(lead["lead_id"]).json()["assigned_agent"] == lead["assigned_agent"]


def test_manager_reassigns_a_lead_and_its_load_moves_with_it(server: LocalServer, leads: Leads) -> None:
    # Given
    lead = leads.assigned()
    owner = lead["assigned_agent"]
    other = next(agent for agent in AGENTS if agent != owner)
    before = {owner: open_leads(server, owner), other: open_leads(server, other)}
    # When
    response = leads.patch(lead["lead_id"], MANAGER, {"version": 1, "assigned_agent": other})
    # Then
    assert response.status_code == 200, response.text
    assert response.json()["assigned_agent"] == other
    assert open_leads(server, owner) == before[owner] - 1
    assert open_leads(server, other) == before[other] + 1
    assert leads.get(lead["lead_id"], owner).status_code == 404
    assert leads.get(lead["lead_id"], other).status_code == 200


def test_reassigning_to_someone_who_is_not_an_agent_is_409(leads: Leads) -> None:
    # Given
    lead = leads.assigned()
    # When
    response = leads.patch(lead["lead_id"], MANAGER, {"version": 1, "assigned_agent": VENDOR_1})
    # Then
    assert_error(response, 409, "CONFLICT")
    assert leads.get(lead["lead_id"]).json()["assigned_agent"] == lead["assigned_agent"]


@pytest.mark.parametrize("final", ["closed", "lost"])
def test_closing_or_losing_a_lead_frees_its_agents_capacity(
    server: LocalServer, leads: Leads, final: str
) -> None:
    # Given a lead one step from `final`
    lead = leads.assigned()
    agent = lead["assigned_agent"]
    version = 1
    for step in ("contacted", "qualified"):
        response = leads.patch(lead["lead_id"], agent, {"version": version, "disposition": step})
        assert response.status_code == 200, response.text
        version = response.json()["version"]
    before = open_leads(server, agent)
    # When
    response = leads.patch(lead["lead_id"], agent, {"version": version, "disposition": final})
    # Then
    assert response.status_code == 200, response.text
    assert open_leads(server, agent) == before - 1


# -- 6. delete ---------------------------------------------------------------------------------------------
def test_deleted_lead_is_gone_from_reads_lists_and_its_agents_load(server: LocalServer, leads: Leads) -> None:
    # Given
    lead = leads.assigned()
    agent = lead["assigned_agent"]
    assert find_listed(server, ADMIN, lead["lead_id"], vendor="V001") is not None
    before = open_leads(server, agent)
    # When
    response = leads.delete(lead["lead_id"])
    # Then
    assert response.status_code == 204
    assert response.text == ""
    assert_cors(response)
    for user in (ADMIN, MANAGER, VENDOR_1, agent):
        assert_error(leads.get(lead["lead_id"], user), 404, "NOT_FOUND")
    assert find_listed(server, ADMIN, lead["lead_id"], vendor="V001") is None
    assert find_listed(server, VENDOR_1, lead["lead_id"]) is None
    assert find_listed(server, agent, lead["lead_id"]) is None
    assert open_leads(server, agent) == before - 1
    assert_error(leads.patch(lead["lead_id"], ADMIN, {"version": 2, "notes": "late"}), 404, "NOT_FOUND")
    assert_error(leads.delete(lead["lead_id"]), 404, "NOT_FOUND")


def test_deleting_an_unknown_lead_is_404(leads: Leads) -> None:
    # When
    response = leads.delete("01ARZ3NDEKTSV4RRFFQ69G5FAV")
    # Then
    assert_error(response, 404, "NOT_FOUND")
