"""The suppression list against moto over HTTP: entries keyed by the normalised value, posting
refused inside the lead's own transaction (race-free with dedupe and with an add), previews,
removal, and the admins' paged list."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import pytest

from leads.dependencies import lead_writer, suppression_admin
from leads.models import CreateOutcome, Lead, LeadSubmission, Outcome, ReasonCode, SuppressionCreate
from leads.repository import LeadRepository
from leads.suppression import EntryNotFound
from shared import dependencies
from shared.dynamo import Write
from shared.errors import InvalidCursor
from shared.security import Principal, Role
from tests.integration.local_stack import EVENTS_QUEUE, Stack, local_stack

ADMIN = Principal("admin-1", Role.ADMIN)
RACERS = 20


def vendor(code: str) -> Principal:
    return Principal(f"vendor-{code}", Role.VENDOR, vendor_code=code)


def submission(code: str, **contact: str) -> LeadSubmission:
    return LeadSubmission(vendor_code=code, tcpa_consent=True, **contact)


@pytest.fixture
def stack(aws: dict[str, str]) -> Stack:
    stack = local_stack(aws[EVENTS_QUEUE])
    stack.pricing.put({"price_key": "SETTINGS", "default_price": 40})
    stack.add_vendors("V01", "V02")
    return stack


def suppress(**body: str) -> dict[str, Any]:
    entry, created = suppression_admin().add(ADMIN, SuppressionCreate(reason="asked", **body))
    assert created
    return entry


def assert_suppressed(outcome: CreateOutcome) -> None:
    assert (outcome.outcome, outcome.reason_code) == (Outcome.REJECTED, ReasonCode.SUPPRESSED), outcome
    # Neither the list nor the field that matched is named.
    assert outcome.details == []
    assert outcome.reason is not None
    assert "email" not in outcome.reason
    assert "phone" not in outcome.reason


def test_an_entry_refuses_the_person_by_either_contact_until_it_is_removed(stack: Stack) -> None:
    # Given a listed phone, written the way people write it
    entry = suppress(phone="(202) 555-0147")
    assert (entry["phone"], entry["email"]) == ("+12025550147", None)
    writer = lead_writer()
    # When a vendor posts the person with that phone in another format and a fresh email
    refused = writer.create(vendor("V01"), submission("V01", email="fresh@example.com", phone="+12025550147"))
    # Then the post is refused, nothing is stored, and the email was not claimed either
    assert_suppressed(refused)
    assert stack.stored_leads() == []
    assert list(stack.dedupe.scan_all()) == []
    # When the entry is removed, the same post is accepted
    suppression_admin().remove(entry["entry_id"])
    assert (
        writer.create(
            vendor("V01"), submission("V01", email="fresh@example.com", phone="+12025550147")
        ).outcome
        is Outcome.ACCEPTED
    )


def test_a_suppressed_person_is_refused_before_being_a_duplicate_and_to_test_vendors(stack: Stack) -> None:
    # Given a lead of the person, then the person's email listed in another case
    stack.add_vendors("T01", test_mode=True)
    writer = lead_writer()
    assert (
        writer.create(vendor("V01"), submission("V01", email="ann@example.com")).outcome is Outcome.ACCEPTED
    )
    suppress(email="  Ann@Example.COM ")
    # When the person is posted again, by another vendor and by a test-mode vendor
    again = writer.create(vendor("V02"), submission("V02", email="ann@example.com"))
    testing = writer.create(vendor("T01"), submission("T01", email="ann@example.com"))
    # Then both are SUPPRESSED (not DUPLICATE, which would say the person is known)
    assert_suppressed(again)
    assert_suppressed(testing)


def test_a_preview_says_suppressed_and_writes_nothing(stack: Stack) -> None:
    suppress(email="bob@example.com")
    # When
    preview = lead_writer().preview(ADMIN, submission("V01", email="bob@example.com"))
    # Then
    assert_suppressed(preview)
    assert stack.stored_leads() == []


def test_adding_a_listed_value_again_keeps_the_first_entry(stack: Stack) -> None:
    # Given
    first = suppress(email="carol@example.com")
    # When the same address is added again, written otherwise, for another reason
    second, created = suppression_admin().add(
        ADMIN, SuppressionCreate(email="CAROL@example.com", reason="again")
    )
    # Then the first entry is the one listed, once
    assert (second, created) == (first, False)
    page = suppression_admin().page(None, 50, None)
    assert [entry["entry_id"] for entry in page["data"]] == [first["entry_id"]]


def test_removing_an_entry_that_is_not_listed_is_not_found(stack: Stack) -> None:
    entry = suppress(email="dan@example.com")
    suppression_admin().remove(entry["entry_id"])
    with pytest.raises(EntryNotFound):
        suppression_admin().remove(entry["entry_id"])


def test_the_list_pages_through_every_entry_once_and_filters_by_kind(stack: Stack) -> None:
    # Given 5 emails and 4 phones
    emails = {suppress(email=f"p{n}@example.com")["entry_id"] for n in range(5)}
    phones = {suppress(phone=f"+1202555{n:04d}")["entry_id"] for n in range(100, 104)}
    admin = suppression_admin()

    def every(kind: Any) -> list[str]:
        seen, cursor = [], None
        while True:
            page = admin.page(kind, 2, cursor)
            assert page["pagination"]["count"] == len(page["data"]) <= 2
            seen += [entry["entry_id"] for entry in page["data"]]
            if not page["pagination"]["hasMore"]:
                return seen
            cursor = page["pagination"]["cursor"]

    # When / Then
    everything = every(None)
    assert sorted(everything) == sorted(emails | phones)
    assert sorted(every("email")) == sorted(emails)
    assert sorted(every("phone")) == sorted(phones)
    # A cursor is for its own filter only
    cursor = admin.page("email", 2, None)["pagination"]["cursor"]
    with pytest.raises(InvalidCursor):
        admin.page("phone", 2, cursor)


def test_an_entry_added_after_the_post_was_drafted_still_refuses_it(stack: Stack) -> None:
    """The list is checked by the lead's transaction itself: an entry added after the post was
    validated, priced and drafted, just before its transaction runs, refuses it (a check read
    before the write would have let it through)."""

    class AddsTheEntryFirst(LeadRepository):
        def put_new(self, lead: Lead) -> Write:
            suppress(email="late@example.com")
            return super().put_new(lead)

    writer = lead_writer(leads=AddsTheEntryFirst(dependencies.leads_table()))
    # When
    outcome = writer.create(vendor("V01"), submission("V01", email="late@example.com"))
    # Then
    assert_suppressed(outcome)
    assert stack.stored_leads() == []


# -- the race with an add --------------------------------------------------------------------------
@dataclass(frozen=True)
class Post:
    started: float
    outcome: CreateOutcome


def test_posts_racing_an_add_never_leave_the_person_accepted_after_the_add_returned(stack: Stack) -> None:
    """20 threads post one person twice in a row (dedupe-distinct posts: their vendors' window is
    0 days, so only the list can refuse them) while one add of the person's email runs as soon as
    a first post has come back. Every post that started after the add returned is refused; every
    accepted one started before it returned; and once it has returned, 20 further concurrent
    posts are all refused."""
    # Given vendors whose dedupe window does not block the person twice
    codes = [f"R{n:02d}" for n in range(RACERS)]
    stack.add_vendors(*codes, dedupe_window_days=0)
    writer = lead_writer()
    admin = suppression_admin()
    person = {"email": "racer@example.com"}
    barrier = threading.Barrier(RACERS + 1)
    a_post_returned = threading.Event()
    add_returned: list[float] = []

    def post_twice(code: str) -> list[Post]:
        barrier.wait(timeout=30)
        posts = []
        for _ in range(2):
            started = time.monotonic()
            posts.append(Post(started, writer.create(vendor(code), submission(code, **person))))
            a_post_returned.set()
        return posts

    def add() -> None:
        barrier.wait(timeout=30)
        assert a_post_returned.wait(timeout=60)  # the add lands while posts are in flight
        admin.add(ADMIN, SuppressionCreate(email="Racer@Example.com", reason="race"))
        add_returned.append(time.monotonic())

    # When 20 threads post while the add runs
    with ThreadPoolExecutor(RACERS + 1) as pool:
        adding = pool.submit(add)
        raced = [post for posts in pool.map(post_twice, codes) for post in posts]
        adding.result()
    (returned,) = add_returned
    # Then each racing post is accepted (having started before the add returned) or refused
    for racer in raced:
        assert racer.outcome.outcome in (Outcome.ACCEPTED, Outcome.REJECTED, Outcome.DUPLICATE), racer
        if racer.outcome.outcome is Outcome.ACCEPTED:
            assert racer.started < returned
        if racer.started > returned:
            assert_suppressed(racer.outcome)
    accepted = {r.outcome.lead.lead_id for r in raced if r.outcome.lead is not None}
    # When 20 more posts of the person come after the add returned
    after = run_together(
        [lambda code=code: writer.create(vendor(code), submission(code, **person)) for code in codes]
    )
    # Then every one is refused, and the only stored leads of the person are the racers' accepted ones
    for outcome in after:
        assert_suppressed(outcome)
    stored = {item["lead_id"] for item in stack.stored_leads() if item.get("email") == person["email"]}
    assert stored == accepted
    outcomes = Counter(str(r.outcome.reason_code or "ACCEPTED") for r in raced)
    print(
        f"racing posts: {dict(outcomes)}; started after the add returned: "
        f"{sum(r.started > returned for r in raced)}"
    )


def run_together(calls: list[Callable[[], CreateOutcome]]) -> list[CreateOutcome]:
    barrier = threading.Barrier(len(calls))

    def run(call: Callable[[], CreateOutcome]) -> CreateOutcome:
        barrier.wait(timeout=30)
        return call()

    with ThreadPoolExecutor(len(calls)) as pool:
        return list(pool.map(run, calls))
