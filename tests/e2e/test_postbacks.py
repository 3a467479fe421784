"""Signed postbacks over HTTP, on a `crm serve` of this module's own (retries a second apart
instead of the deployed back-off) with a receiver on this machine: registration and who may
manage it, signatures the `standardwebhooks` library verifies, a receiver that fails before it
answers, the attempt log, a retry by hand, the refused destinations, and lead posting while a
receiver hangs."""

from __future__ import annotations

import json
import statistics
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from standardwebhooks import Webhook

from tests.e2e.conftest import LocalServer, start_server, stop_server
from tests.helpers import make_token, staff_token, token_for

ADMIN, MANAGER, AGENT = "demo-admin", "demo-manager", "demo-agent-1"
OWN_VENDOR, OTHER_VENDOR = "demo-vendor-1", "demo-vendor-2"  # of V001 and V002
RETRY_SECONDS = "1,1,1"  # three retries a second apart, then the dead-letter queue


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: str


@dataclass
class Receiver:
    """A vendor's endpoint on this machine: answers each path with its planned codes in turn
    (then 200), and holds every request while `hold` is cleared."""

    plans: dict[str, list[int]] = field(default_factory=dict)
    received: list[Received] = field(default_factory=list)
    hold: threading.Event = field(default_factory=threading.Event)
    lock: threading.Lock = field(default_factory=threading.Lock)
    port: int = 0

    def url(self, path: str) -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def answer(self, path: str, headers: dict[str, str], body: str) -> int:
        self.hold.wait(60)
        with self.lock:
            self.received.append(Received(path, headers, body))
            plan = self.plans.get(path, [])
            return plan.pop(0) if plan else 200

    def at(self, path: str) -> list[Received]:
        with self.lock:
            return [request for request in self.received if request.path == path]


@pytest.fixture(scope="module")
def receiver() -> Iterator[Receiver]:
    state = Receiver()
    state.hold.set()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0))).decode()
            code = state.answer(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
            self.send_response(code)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.port = server.server_address[1]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield state
    state.hold.set()
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def api() -> Iterator[LocalServer]:
    local = start_server({"POSTBACK_RETRY_SECONDS": RETRY_SECONDS})
    yield local
    stop_server(local)


def register(api: LocalServer, code: str, url: str, events: list[str], user: str = ADMIN) -> Any:
    return api.request(
        "PUT", f"/agencies/{code}/webhook", token=token_for(user), json={"url": url, "events": events}
    )


def rotate(api: LocalServer, code: str, url: str) -> str:
    body = {"url": url, "events": ["lead.accepted", "lead.status_changed"], "rotate_secret": True}
    rotated = api.request("PUT", f"/agencies/{code}/webhook", token=staff_token(ADMIN), json=body)
    assert rotated.status_code == 200, rotated.text
    return str(rotated.json()["secret"])


def post_lead(api: LocalServer, vendor_user: str = OWN_VENDOR) -> dict[str, Any]:
    posted = api.request(
        "POST",
        "/leads",
        token=make_token(vendor_user),
        json={"email": f"pb-{uuid.uuid4().hex}@example.com", "tcpa_consent": True},
    )
    assert posted.status_code == 201, posted.text
    return dict(posted.json()["lead"])


def deliveries(api: LocalServer, code: str = "V001", user: str = OWN_VENDOR) -> list[dict[str, Any]]:
    listed = api.get(f"/agencies/{code}/webhook/deliveries", token_for(user), params={"limit": "200"})
    assert listed.status_code == 200, listed.text
    return list(listed.json()["data"])


def delivery_of(
    api: LocalServer, lead_id: str, event: str, status: str, seconds: float = 60
) -> dict[str, Any]:
    """The lead's delivery of `event` once it has `status` (bounded polling)."""
    deadline = time.monotonic() + seconds
    while True:
        found = [
            d
            for d in deliveries(api)
            if d["event_type"] == event and d["payload"]["data"]["lead_id"] == lead_id
        ]
        if found and found[0]["status"] == status:
            return found[0]
        assert time.monotonic() < deadline, f"{event} of {lead_id}: {found}"
        time.sleep(0.2)


def test_a_vendor_registers_once_sees_the_secret_once_and_nobody_else_manages_it(
    api: LocalServer, receiver: Receiver
) -> None:
    first = register(api, "V002", receiver.url("/v2"), ["lead.accepted"], user=OTHER_VENDOR)
    assert first.status_code == 200, first.text
    assert first.headers["Cache-Control"] == "no-store"
    secret = first.json()["secret"]
    assert secret.startswith("whsec_")
    again = register(api, "V002", receiver.url("/v2b"), ["lead.accepted", "lead.returned"], user=OTHER_VENDOR)
    assert again.status_code == 200
    assert "secret" not in again.json()
    shown = api.get("/agencies/V002/webhook", staff_token(ADMIN)).json()
    assert (shown["url"], shown["events"], "secret" in shown) == (
        receiver.url("/v2b"),
        ["lead.accepted", "lead.returned"],
        False,
    )
    # Another vendor, staff other than admins, and agents cannot read or change it
    assert api.get("/agencies/V002/webhook", make_token(OWN_VENDOR)).status_code == 404
    assert register(api, "V002", receiver.url("/x"), ["lead.accepted"], user=OWN_VENDOR).status_code == 404
    assert api.get("/agencies/V002/webhook", staff_token(MANAGER)).status_code == 403
    assert register(api, "V002", receiver.url("/x"), ["lead.accepted"], user=AGENT).status_code == 403
    assert api.get("/agencies/V002/webhook/deliveries", make_token(OWN_VENDOR)).status_code == 404
    # A rotation shows the new secret once
    rotated = api.request(
        "PUT",
        "/agencies/V002/webhook",
        token=make_token(OTHER_VENDOR),
        json={"url": receiver.url("/v2b"), "events": ["lead.accepted"], "rotate_secret": True},
    )
    assert rotated.status_code == 200
    assert rotated.json()["secret"] not in (secret, None)
    # And removing it stops its postbacks
    assert api.request("DELETE", "/agencies/V002/webhook", token=make_token(OTHER_VENDOR)).status_code == 204
    gone = api.get("/agencies/V002/webhook", make_token(OTHER_VENDOR))
    assert (gone.status_code, gone.json()["error"]["code"]) == (404, "POSTBACK_NOT_REGISTERED")


@pytest.mark.parametrize(
    ("url", "why"),
    [
        ("https://10.1.2.3/hook", "non-public"),
        ("https://169.254.169.254/latest/meta-data/", "non-public"),
        ("https://192.168.0.10/hook", "non-public"),
        ("http://[::ffff:10.0.0.1]/hook", "https"),
        ("ftp://127.0.0.1/hook", "https://host"),
        ("https://user:pw@127.0.0.1/hook", "credentials"),
        ("https://no-such-host.invalid/hook", "does not resolve"),
    ],
)
def test_a_private_or_unreadable_destination_is_refused(api: LocalServer, url: str, why: str) -> None:
    refused = register(api, "V003", url, ["lead.accepted"])
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert (error["code"], error["details"][0]["field"]) == ("POSTBACK_URL_REFUSED", "url")
    assert why in error["message"]


def test_a_receiver_gets_signed_accepted_and_status_changed_postbacks(
    api: LocalServer, receiver: Receiver
) -> None:
    # Given V001's endpoint on this machine
    registered = register(
        api, "V001", receiver.url("/v1"), ["lead.accepted", "lead.status_changed"], OWN_VENDOR
    )
    assert registered.status_code == 200, registered.text
    secret = registered.json().get("secret") or rotate(api, "V001", receiver.url("/v1"))
    # When a lead is posted and an admin works it to a sale
    lead = post_lead(api)
    accepted = delivery_of(api, lead["lead_id"], "lead.accepted", "delivered")
    moved = api.request(
        "PATCH",
        f"/leads/{lead['lead_id']}",
        token=staff_token(ADMIN),
        json={"version": 1, "disposition": "contacted"},
    )
    assert moved.status_code == 200, moved.text
    changed = delivery_of(api, lead["lead_id"], "lead.status_changed", "delivered")
    # Then each arrived once, signed so that the standardwebhooks library verifies it
    wanted = {accepted["delivery_id"], changed["delivery_id"]}
    arrived = [request for request in receiver.at("/v1") if request.headers["webhook-id"] in wanted]
    assert len(arrived) == 2
    bodies = {
        request.headers["webhook-id"]: Webhook(secret).verify(request.body, request.headers)
        for request in arrived
    }
    assert bodies[accepted["delivery_id"]]["type"] == "lead.accepted"
    assert bodies[accepted["delivery_id"]]["data"]["lead_id"] == lead["lead_id"]
    status_body = bodies[changed["delivery_id"]]
    assert (status_body["type"], status_body["data"]["status"], status_body["data"]["previous_status"]) == (
        "lead.status_changed",
        "contacted",
        "new",
    )
    assert "sale_amount" not in json.dumps(status_body)
    # And the attempt log says how each went
    (attempt,) = accepted["attempt_log"]
    assert (attempt["outcome"], attempt["response_code"], attempt["attempt"]) == ("delivered", 200, 1)
    assert attempt["latency_ms"] >= 0
    assert accepted["next_attempt_at"] is None


def test_a_decided_return_is_told_with_the_reason_and_the_credit(
    api: LocalServer, receiver: Receiver
) -> None:
    assert register(api, "V001", receiver.url("/returns"), ["lead.returned"], OWN_VENDOR).status_code == 200
    lead = post_lead(api)
    asked = api.request(
        "POST",
        f"/leads/{lead['lead_id']}/return",
        token=staff_token(ADMIN),
        json={"reason_code": "BAD_EMAIL"},
    )
    assert asked.status_code == 201, asked.text
    decided = api.request(
        "PATCH", f"/leads/{lead['lead_id']}/return", token=staff_token(ADMIN), json={"status": "approved"}
    )
    assert decided.status_code == 200, decided.text
    returned = delivery_of(api, lead["lead_id"], "lead.returned", "delivered")
    data = returned["payload"]["data"]
    assert (data["status"], data["reason_code"], data["credit"], data["vendor_code"]) == (
        "approved",
        "BAD_EMAIL",
        lead["lead_value"],
        "V001",
    )
    assert "requested_by" not in json.dumps(returned["payload"])


def test_a_receiver_that_fails_first_gets_the_event_later_and_a_dead_one_can_be_retried(
    api: LocalServer, receiver: Receiver
) -> None:
    # Given an endpoint that answers 500, then 503, then 200
    receiver.plans["/flaky"] = [500, 503]
    assert register(api, "V001", receiver.url("/flaky"), ["lead.accepted"], OWN_VENDOR).status_code == 200
    lead = post_lead(api)
    # Then the third attempt delivers it, and the log holds all three
    delivered = delivery_of(api, lead["lead_id"], "lead.accepted", "delivered")
    assert [(a["attempt"], a["outcome"], a["response_code"]) for a in delivered["attempt_log"]] == [
        (1, "failed", 500),
        (2, "failed", 503),
        (3, "delivered", 200),
    ]
    ids = {request.headers["webhook-id"] for request in receiver.at("/flaky")}
    assert ids == {delivered["delivery_id"]}  # one id on every attempt: the receiver can dedupe
    # Given an endpoint that always fails: after 1 + 3 attempts the delivery is failed
    receiver.plans["/down"] = [500] * 4
    assert register(api, "V001", receiver.url("/down"), ["lead.accepted"], OWN_VENDOR).status_code == 200
    dead = delivery_of(api, post_lead(api)["lead_id"], "lead.accepted", "failed")
    assert [a["response_code"] for a in dead["attempt_log"]] == [500, 500, 500, 500]
    assert dead_letters(api) >= 1
    # When the vendor retries it by hand once the receiver is back
    retried = api.request(
        "POST",
        f"/agencies/V001/webhook/deliveries/{dead['delivery_id']}/retry",
        token=make_token(OWN_VENDOR),
    )
    assert retried.status_code == 202, retried.text
    assert retried.json()["status"] == "pending"
    again = delivery_of(api, dead["payload"]["data"]["lead_id"], "lead.accepted", "delivered")
    assert (again["attempt_log"][-1]["manual"], again["attempt_log"][-1]["response_code"]) == (True, 200)
    # Another vendor cannot retry it, and there is no retrying a delivery that does not exist
    retry = f"/agencies/V001/webhook/deliveries/{dead['delivery_id']}/retry"
    assert api.request("POST", retry, token=make_token(OTHER_VENDOR)).status_code == 404
    missing = f"/agencies/V001/webhook/deliveries/msg_{'0' * 26}/retry"
    assert api.request("POST", missing, token=staff_token(ADMIN)).status_code == 404


def dead_letters(api: LocalServer) -> int:
    from crm.stack import local_template

    (spec,) = [
        queue for queue in local_template({}).queues() if queue.logical_id == "PostbackDeadLetterQueue"
    ]
    sqs = api.sqs()
    url = sqs.get_queue_url(QueueName=spec.name)["QueueUrl"]
    return int(
        sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])["Attributes"][
            "ApproximateNumberOfMessages"
        ]
    )


def test_lead_posting_does_not_wait_for_a_hanging_receiver(api: LocalServer, receiver: Receiver) -> None:
    # Given V001's receiver, answering at once: the posting latency beside it
    assert register(api, "V001", receiver.url("/slow"), ["lead.accepted"], OWN_VENDOR).status_code == 200
    before = [timed_post(api) for _ in range(10)]
    # When the receiver hangs (it holds every request until released)
    receiver.hold.clear()
    try:
        during = [timed_post(api) for _ in range(10)]
        held = [lead for lead, _ in during]
        # Then every post was answered while the first postback still hangs
        assert all(lead["lead_id"] for lead in held)
        waiting = [d for d in deliveries(api) if d["payload"]["data"]["lead_id"] == held[0]["lead_id"]]
        assert [d["status"] for d in waiting] in ([], ["pending"])
    finally:
        receiver.hold.set()
    for lead, _ in during:
        delivery_of(api, lead["lead_id"], "lead.accepted", "delivered", seconds=120)
    answering, hanging = (statistics.median(t for _, t in timed) * 1000 for timed in (before, during))
    print(f"\nPOST /leads median: {answering:.0f} ms, receiver answering; {hanging:.0f} ms, receiver hanging")


def timed_post(api: LocalServer) -> tuple[dict[str, Any], float]:
    started = time.perf_counter()
    lead = post_lead(api)
    return lead, time.perf_counter() - started
