"""The suppression list over real HTTP on the shared `crm serve`: admins add and remove emails and
phones (normalised like lead fields), a vendor's post of a listed person is refused with 422
`SUPPRESSED` without saying what matched, `crm import suppressions` lists a file's values, and
every change is audited. Each test lists values no other test posts (unique emails, phones in a
range of their own)."""

from __future__ import annotations

import secrets
import uuid
from pathlib import Path
from typing import Any

import pytest
import requests

from tests.e2e.conftest import LocalServer
from tests.helpers import ALLOWED_ORIGIN, make_token, staff_token

ADMIN = staff_token("demo-admin")
VENDOR = make_token("demo-vendor-1")
ROUTE = "/admin/suppressions"


def unique_email() -> str:
    return f"e2e-supp-{uuid.uuid4().hex}@example.com"


def unique_line() -> str:
    """The last seven digits of a valid US number in an exchange range the demo data does not use."""
    return f"{600 + secrets.randbelow(300)}{secrets.randbelow(10_000):04d}"


def add(server: LocalServer, body: dict[str, Any], token: str = ADMIN) -> requests.Response:
    return server.request("POST", ROUTE, token=token, json=body)


def remove(server: LocalServer, entry_id: str) -> requests.Response:
    return server.request("DELETE", f"{ROUTE}/{entry_id}", token=ADMIN)


def post_lead(server: LocalServer, **contact: str) -> requests.Response:
    return server.request("POST", "/leads", token=VENDOR, json={"tcpa_consent": True, **contact})


def assert_suppressed(response: requests.Response) -> None:
    assert response.status_code == 422, response.text
    body = response.json()
    assert (body["outcome"], body["reason_code"], body["error"]["code"]) == (
        "rejected",
        "SUPPRESSED",
        "SUPPRESSED",
    )
    # The vendor learns neither which list nor which field matched.
    assert body["details"] == body["error"]["details"] == []
    assert body["lead_id"] is None
    assert not {"email", "phone", "suppression", "suppressed"} & set(body["reason"].lower().split())


def every_entry(server: LocalServer, **params: str) -> list[dict[str, Any]]:
    entries: list[dict[str, Any]] = []
    query = {"limit": "200", **params}
    while True:
        response = server.get(ROUTE, ADMIN, params=query)
        assert response.status_code == 200, response.text
        body = response.json()
        entries += body["data"]
        if not body["pagination"]["hasMore"]:
            return entries
        query["cursor"] = body["pagination"]["cursor"]


def test_add_refuses_the_post_then_delete_lets_it_through(server: LocalServer) -> None:
    # Given a phone listed as people write it
    line = unique_line()
    added = add(server, {"phone": f"(415) {line[:3]}-{line[3:]}", "reason": "asked to be removed"})
    assert added.status_code == 201, added.text
    assert added.headers["Access-Control-Allow-Origin"] == ALLOWED_ORIGIN
    entry = added.json()
    assert entry["phone"] == f"+1415{line}"
    assert (entry["email"], entry["reason"], entry["created_by"]) == (
        None,
        "asked to be removed",
        "demo-admin",
    )
    # When a vendor posts the person, the phone written another way
    refused = post_lead(server, email=unique_email(), phone=f"415.{line[:3]}.{line[3:]}")
    # Then it is refused with SUPPRESSED and nothing is stored
    assert_suppressed(refused)
    # When the entry is removed
    removed = remove(server, entry["entry_id"])
    assert removed.status_code == 204, removed.text
    assert entry["entry_id"] not in {listed["entry_id"] for listed in every_entry(server, kind="phone")}
    # Then the same post is accepted
    accepted = post_lead(server, email=unique_email(), phone=f"+1 415 {line}")
    assert accepted.status_code == 201, accepted.text
    server.request("DELETE", f"/leads/{accepted.json()['lead_id']}", token=ADMIN)
    # And removing it again is a 404
    again = remove(server, entry["entry_id"])
    assert again.status_code == 404
    assert again.json()["error"]["code"] == "NOT_FOUND"


@pytest.mark.parametrize(
    ("listed", "posted"),
    [
        pytest.param("  Jane.{tag}@EXAMPLE.com ", "jane.{tag}@example.com", id="email-case-and-spaces"),
        pytest.param("jane.{tag}@example.com", "JANE.{tag}@Example.COM", id="email-posted-in-capitals"),
    ],
)
def test_emails_are_listed_and_matched_whatever_their_case(
    server: LocalServer, listed: str, posted: str
) -> None:
    tag = uuid.uuid4().hex[:12]
    added = add(server, {"email": listed.format(tag=tag), "reason": "complaint"})
    assert added.status_code == 201, added.text
    assert added.json()["email"] == f"jane.{tag}@example.com"
    assert_suppressed(post_lead(server, email=posted.format(tag=tag)))


@pytest.mark.parametrize(
    "written",
    ["+1202{line}", "(202) {a}-{b}", "202-{a}-{b}", "1 202 {a} {b}", "202.{a}.{b}"],
)
def test_phones_in_any_format_are_one_entry(server: LocalServer, written: str) -> None:
    # Given a phone listed in one format
    line = unique_line()
    first = add(server, {"phone": f"+1202{line}", "reason": "do not call"})
    assert first.status_code == 201, first.text
    # When the same number is added in another format
    again = add(server, {"phone": written.format(line=line, a=line[:3], b=line[3:]), "reason": "again"})
    # Then it is the same entry, unchanged
    assert again.status_code == 201, again.text
    assert again.json() == first.json()
    # And a post with the number in that format is refused
    assert_suppressed(post_lead(server, phone=written.format(line=line, a=line[:3], b=line[3:])))


@pytest.mark.parametrize(
    ("body", "field"),
    [
        pytest.param({"reason": "no contact"}, "body", id="neither"),
        pytest.param({"email": "a@example.com", "phone": "+12025550123", "reason": "x"}, "body", id="both"),
        pytest.param({"email": "not-an-address", "reason": "x"}, "email", id="bad-email"),
        pytest.param({"phone": "12", "reason": "x"}, "phone", id="bad-phone"),
        pytest.param({"phone": "202-555-CALL", "reason": "x"}, "phone", id="letters"),
        pytest.param({"email": None, "reason": "x"}, "email", id="null-email"),
        pytest.param({"email": "b@example.com"}, "reason", id="no-reason"),
        pytest.param({"email": "b@example.com", "reason": " "}, "reason", id="blank-reason"),
        pytest.param({"email": "b@example.com", "reason": "x", "list": "dnc"}, "list", id="unknown-field"),
    ],
)
def test_a_bad_entry_is_a_422_naming_the_field(server: LocalServer, body: dict[str, Any], field: str) -> None:
    response = add(server, body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "VALIDATION_ERROR"
    fields = {str(detail.get("field", "")) for detail in error["details"]}
    assert field in fields, error


@pytest.mark.parametrize(
    "entry_id", ["email-abc", "lead-" + "0" * 64, "EMAIL-" + "a" * 64, "email:" + "a" * 64]
)
def test_a_malformed_entry_id_is_refused_before_any_lookup(server: LocalServer, entry_id: str) -> None:
    response = remove(server, entry_id)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["details"][0]["field"] == "entry_id"


def test_the_list_filters_by_kind_and_its_changes_are_audited(server: LocalServer) -> None:
    # Given one email and one phone listed
    email = add(server, {"email": unique_email(), "reason": "kind check"}).json()
    phone = add(server, {"phone": f"+1312{unique_line()}", "reason": "kind check"}).json()
    # When the list is read by kind
    emails = {entry["entry_id"] for entry in every_entry(server, kind="email")}
    phones = {entry["entry_id"] for entry in every_entry(server, kind="phone")}
    # Then each entry is under its own kind only
    assert email["entry_id"] in emails - phones
    assert phone["entry_id"] in phones - emails
    assert server.get(ROUTE, ADMIN, params={"kind": "fax"}).status_code == 422
    # And the adds are in the audit trail, the address masked
    trail = server.get("/admin/audit", ADMIN, params={"user": "demo-admin", "limit": "20"}).json()["data"]
    adds = [record for record in trail if record["action"] == f"POST {ROUTE}" and record["status"] == 201]
    assert {"email": "e***@example.com", "reason": "kind check"} in [
        record["request"]["body"] for record in adds
    ]
    assert email["email"] not in str(trail)


def test_import_lists_valid_rows_reports_invalid_ones_and_a_second_run_adds_nothing(
    server: LocalServer, tmp_path: Path
) -> None:
    # Given a file with an email, a phone, a row with both, a bad row, a row with neither
    email, other = unique_email(), unique_email()
    line, both_line = unique_line(), unique_line()
    path = tmp_path / "dnc.csv"
    path.write_text(
        "email,phone,reason\n"
        f"{email.upper()},,complaint\n"
        f",(646) {line[:3]}-{line[3:]},\n"
        f"{other},646{both_line},litigator\n"
        "not-an-address,12,bad\n"
        ",,nothing\n",
        encoding="utf-8",
    )
    # When the operator runs a dry run first
    dry = server.run_cli("import", "suppressions", str(path), "--dry-run", "--quiet")
    # Then it counts what it would do and writes nothing
    assert "5 rows: 3 accepted, 0 exists, 2 rejected" in dry.stdout, dry.stdout + dry.stderr
    earlier = post_lead(server, email=email)
    assert earlier.status_code == 201, earlier.text
    server.request("DELETE", f"/leads/{earlier.json()['lead_id']}", token=ADMIN)
    # When it imports the file
    done = server.run_cli("import", "suppressions", str(path), "--quiet")
    # Then the good rows are listed, normalised, and the bad ones reported by row and field
    assert done.returncode == 1, done.stdout + done.stderr
    assert "5 rows: 3 accepted, 0 exists, 2 rejected" in done.stdout
    errors = (tmp_path / "dnc.errors.csv").read_text().splitlines()
    assert errors[0] == "row,outcome,field,reason"
    assert {line.split(",")[:3][2] for line in errors[1:] if line.startswith("5,")} == {"email", "phone"}
    assert [line.split(",")[:3] for line in errors[1:] if line.startswith("6,")] == [
        ["6", "rejected", "email/phone"]
    ]
    listed = {(entry["email"], entry["phone"]): entry for entry in every_entry(server)}
    assert listed[(email, None)]["reason"] == "complaint"
    assert listed[(None, f"+1646{line}")]["reason"] == "imported"
    assert (other, None) in listed
    assert (None, f"+1646{both_line}") in listed
    # And posts of those people are refused
    assert_suppressed(post_lead(server, phone=f"646-{line[:3]}-{line[3:]}"))
    assert_suppressed(post_lead(server, email=other.upper()))
    # When the file is imported again, nothing changes
    again = server.run_cli("import", "suppressions", str(path), "--quiet")
    assert "5 rows: 0 accepted, 3 exists, 2 rejected" in again.stdout, again.stdout + again.stderr
