"""Lead returns over HTTP, on a `crm serve` of this module's own: who may ask, the window, one
return per lead (also when requests race), the decision, what a vendor sees, and credits in the
dashboard, agency performance and the vendor report, equal after `crm stats rebuild`."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal
from typing import Any

import pytest

from tests.e2e.conftest import LocalServer, start_server, stop_server
from tests.helpers import make_token, staff_token, token_for

ADMIN, MANAGER = "demo-admin", "demo-manager"
OWN_VENDOR, OTHER_VENDOR = "demo-vendor-1", "demo-vendor-2"  # of V001 and V002
RACERS = 8


@pytest.fixture(scope="module")
def api() -> Iterator[LocalServer]:
    local = start_server()
    yield local
    stop_server(local)


def post_lead(api: LocalServer, vendor_user: str = OWN_VENDOR) -> dict[str, Any]:
    posted = api.request(
        "POST",
        "/leads",
        token=make_token(vendor_user),
        json={"email": f"ret-{uuid.uuid4().hex}@example.com", "tcpa_consent": True},
    )
    assert posted.status_code == 201, posted.text
    return dict(posted.json()["lead"])


def ask(api: LocalServer, lead_id: str, user: str = ADMIN, **body: Any) -> Any:
    payload = {"reason_code": "BAD_PHONE", **body}
    return api.request("POST", f"/leads/{lead_id}/return", token=token_for(user), json=payload)


def decide(api: LocalServer, lead_id: str, status: str, user: str = ADMIN) -> Any:
    return api.request(
        "PATCH",
        f"/leads/{lead_id}/return",
        token=token_for(user),
        json={"status": status, "note": "checked"},
    )


def test_a_return_inside_the_window_is_pending_and_staff_see_who_asked(api: LocalServer) -> None:
    lead = post_lead(api)
    asked = ask(api, lead["lead_id"], MANAGER, reason_code="OTHER", note="  wrong person  ")
    assert asked.status_code == 201, asked.text
    body = asked.json()
    assert {key: body[key] for key in ("lead_id", "status", "reason_code", "note", "requested_by")} == {
        "lead_id": lead["lead_id"],
        "status": "pending",
        "reason_code": "OTHER",
        "note": "wrong person",
        "requested_by": MANAGER,
    }
    assert body["return_id"]
    assert body["requested_at"]
    read = api.get(f"/leads/{lead['lead_id']}/return", staff_token(ADMIN))
    assert read.status_code == 200
    assert read.json() == body


def test_the_lead_vendor_sees_the_return_without_who_asked_and_no_other_vendor_sees_it(
    api: LocalServer,
) -> None:
    lead = post_lead(api)
    assert ask(api, lead["lead_id"], reason_code="FRAUD").status_code == 201
    own = api.get(f"/leads/{lead['lead_id']}/return", make_token(OWN_VENDOR))
    assert own.status_code == 200
    assert own.json()["reason_code"] == "FRAUD"
    assert "requested_by" not in own.json()
    assert "decided_by" not in own.json()
    assert api.get(f"/leads/{lead['lead_id']}/return", make_token(OTHER_VENDOR)).status_code == 404
    assert api.get(f"/leads/{lead['lead_id']}/return", staff_token("demo-agent-1")).status_code == 403
    listed = api.get("/agencies/V001/returns", make_token(OWN_VENDOR), params={"limit": "200"})
    assert listed.status_code == 200
    mine = [entry for entry in listed.json()["data"] if entry["lead_id"] == lead["lead_id"]]
    assert len(mine) == 1
    assert "requested_by" not in mine[0]
    assert all(entry["vendor_code"] == "V001" for entry in listed.json()["data"])
    assert api.get("/agencies/V001/returns", make_token(OTHER_VENDOR)).status_code == 404
    staff = api.get("/agencies/V001/returns", staff_token(MANAGER), params={"limit": "200"}).json()["data"]
    assert [entry["requested_by"] for entry in staff if entry["lead_id"] == lead["lead_id"]] == [ADMIN]


def test_a_lead_without_a_return_is_a_404_and_other_needs_a_note(api: LocalServer) -> None:
    lead = post_lead(api)
    missing = api.get(f"/leads/{lead['lead_id']}/return", staff_token(ADMIN))
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "NOT_FOUND"
    refused = ask(api, lead["lead_id"], reason_code="OTHER")
    assert refused.status_code == 422
    assert refused.json()["error"]["details"][0]["field"] == "note"
    assert ask(api, lead["lead_id"], reason_code="NOT_A_REASON").status_code == 422


def test_a_return_outside_the_window_is_refused_with_the_reason(api: LocalServer) -> None:
    # A demo lead created well before the default 7-day window
    before = (datetime.now(UTC) - timedelta(days=20)).date().isoformat()
    old = api.get("/leads", staff_token(ADMIN), params={"to": before, "limit": "1"}).json()["data"][0]
    refused = ask(api, old["lead_id"])
    assert refused.status_code == 409
    error = refused.json()["error"]
    assert error["code"] == "RETURN_NOT_ALLOWED"
    assert error["details"][0]["reason"] == "OUTSIDE_WINDOW"
    # A vendor whose window is 0 days takes no return even of a lead of today
    assert (
        api.request(
            "PATCH", "/agencies/V003", token=staff_token(ADMIN), json={"return_window_days": 0}
        ).json()["return_window_days"]
        == 0
    )
    fresh = post_lead(api, "demo-vendor-3")
    assert ask(api, fresh["lead_id"]).json()["error"]["code"] == "RETURN_NOT_ALLOWED"


def test_a_second_request_is_refused_also_when_requests_race(api: LocalServer) -> None:
    lead = post_lead(api)
    assert ask(api, lead["lead_id"]).status_code == 201
    again = ask(api, lead["lead_id"], reason_code="DUPLICATE")
    assert again.status_code == 409
    assert again.json()["error"]["details"][0]["reason"] == "ALREADY_REQUESTED"
    # Racing requests for a fresh lead make exactly one return
    racing = post_lead(api)
    with ThreadPoolExecutor(RACERS) as pool:
        statuses = sorted(pool.map(lambda _: ask(api, racing["lead_id"]).status_code, range(RACERS)))
    assert statuses == [201] + [409] * (RACERS - 1)


def test_the_lead_agent_may_ask_and_another_agent_may_not(api: LocalServer) -> None:
    lead = post_lead(api)
    agent = lead["assigned_agent"]
    assert agent, "the demo data has online agents with room"
    other = next(f"demo-agent-{n}" for n in range(1, 6) if f"demo-agent-{n}" != agent)
    hidden = ask(api, lead["lead_id"], other)
    assert hidden.status_code == 404  # another agent's lead does not exist for it
    assert ask(api, lead["lead_id"], OWN_VENDOR).status_code == 403
    assert ask(api, lead["lead_id"], agent).status_code == 201


def test_only_an_admin_decides_and_only_once(api: LocalServer) -> None:
    lead = post_lead(api)
    assert ask(api, lead["lead_id"]).status_code == 201
    assert decide(api, lead["lead_id"], "approved", MANAGER).status_code == 403
    rejected = decide(api, lead["lead_id"], "rejected")
    assert rejected.status_code == 200
    assert (rejected.json()["status"], rejected.json()["credit"], rejected.json()["decided_by"]) == (
        "rejected",
        None,
        ADMIN,
    )
    again = decide(api, lead["lead_id"], "approved")
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "RETURN_ALREADY_DECIDED"
    stored = api.get(f"/leads/{lead['lead_id']}", staff_token(ADMIN)).json()
    assert (stored["return_status"], stored["credit"], stored["version"]) == ("rejected", None, 2)
    assert decide(api, post_lead(api)["lead_id"], "approved").status_code == 404  # no return to decide
    listed = api.get("/agencies/V001/returns", staff_token(ADMIN), params={"status": "rejected"}).json()
    assert lead["lead_id"] in {entry["lead_id"] for entry in listed["data"]}
    assert {entry["status"] for entry in listed["data"]} == {"rejected"}


def money(value: Any) -> Decimal:
    return Decimal(str(value))


def without_change(block: dict[str, Any]) -> dict[str, Any]:
    return {name: value for name, value in block.items() if name != "change"}


def figures(api: LocalServer) -> dict[str, Any]:
    """The figures returns move: the dashboard's, V001's performance and its vendor report row
    (as staff and as the vendor itself), each once every event so far has reached the stats."""
    admin = staff_token(ADMIN)
    stats = api.settled_get("/admin/stats", admin, params={"period": "7d"}).json()
    agency = api.settled_get("/agencies/V001", admin).json()["performance"]
    report = api.settled_get("/reports/vendors", admin, params={"vendor": "V001"}).json()["totals"]
    own = api.settled_get("/reports/vendors", make_token(OWN_VENDOR), params={"vendor": "V001"}).json()
    return {"stats": stats, "agency": agency, "report": report, "own": own["totals"]}


def test_an_approved_return_credits_the_price_and_spend_and_cpa_are_net_of_it_after_a_rebuild(
    api: LocalServer,
) -> None:
    # Given a returned lead of V001, and the figures before the decision
    lead = post_lead(api)
    price = money(lead["lead_value"])
    assert ask(api, lead["lead_id"], reason_code="BAD_EMAIL").status_code == 201
    api.wait_for_the_bus()
    assert api.run_cli("stats", "rebuild").returncode == 0  # the demo data's buckets, as a rebuild has them
    before = figures(api)
    # When an admin approves it
    approved = decide(api, lead["lead_id"], "approved")
    assert approved.status_code == 200
    assert money(approved.json()["credit"]) == price
    # Then the vendor is credited its price everywhere, spend stays, and net spend is spend - credits
    after = figures(api)
    revenue, stats_before = after["stats"]["revenue"], before["stats"]["revenue"]
    assert money(revenue["credits"]) - money(stats_before["credits"]) == price
    assert revenue["returns"] == stats_before["returns"] + 1
    assert money(revenue["total"]) == money(stats_before["total"])
    assert money(revenue["netSpend"]) == money(revenue["total"]) - money(revenue["credits"])
    conversions = after["stats"]["conversion"]["conversions"]
    if conversions:
        assert money(after["stats"]["cpa"]["average"]) == (money(revenue["netSpend"]) / conversions).quantize(
            Decimal("0.01"), rounding=ROUND_HALF_UP
        )
    agency = after["agency"]
    assert money(agency["credits"]) - money(before["agency"]["credits"]) == price
    assert agency["returns"] == before["agency"]["returns"] + 1
    assert money(agency["netSpend"]) == money(agency["revenue"]) - money(agency["credits"])
    for name in ("report", "own"):
        row = after[name]
        assert money(row["credits"]) - money(before[name]["credits"]) == price
        assert money(row["net_spend"]) == money(row["revenue"]) - money(row["credits"])
        if row["conversions"]:
            assert money(row["cpa"]) == (money(row["net_spend"]) / row["conversions"]).quantize(
                Decimal("0.01"), rounding=ROUND_HALF_UP
            )
    assert after["own"] == after["report"]
    stored = api.get(f"/leads/{lead['lead_id']}", make_token(OWN_VENDOR)).json()
    assert (stored["return_status"], money(stored["credit"]), stored["disposition"]) == (
        "approved",
        price,
        lead["disposition"],  # the lead keeps its disposition
    )
    # And a rebuild from the leads table finds the buckets already right: the same numbers
    rebuilt = api.run_cli("stats", "rebuild")
    assert rebuilt.returncode == 0, rebuilt.stdout + rebuilt.stderr
    assert "0 day bucket(s) rewritten, 0 removed" in rebuilt.stdout, rebuilt.stdout
    # (all but `change`, which compares today with the same elapsed share of a day a week ago and
    # so moves with the clock between two reads)
    assert without_change(figures(api)["stats"]["revenue"]) == without_change(revenue)
