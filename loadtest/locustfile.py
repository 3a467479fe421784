"""Load profile for the Lead CRM API: executives on the dashboard and vendors posting leads.

Run through `make loadtest` (see loadtest/run.py), or directly against a running API:

    .venv-load/bin/locust -f loadtest/locustfile.py --host http://127.0.0.1:3000 \
        --headless -u 20 -r 2 -t 3m

Tokens: `CRM_TOKEN_<USER_ID>` (e.g. `CRM_TOKEN_DEMO_ADMIN`, `CRM_TOKEN_DEMO_VENDOR_1`) when set,
else one `crm token USER_ID` per demo user at the start of the test (`CRM_BIN` names the `crm`
executable; default `.venv/bin/crm` of this repository). They must be signed with the server's
secret: the local runner's, unless the server was started with another `JWT_SECRET`.

A request succeeds only with the status it should get (200, or 201 for an accepted post); every
other status is a failure. Vendor posts are new people (unique email and phone), so a 409
duplicate is a failure too.
"""

# ruff: noqa: S311  # random picks shape the load; nothing here is a secret

from __future__ import annotations

import itertools
import json
import os
import random
import subprocess
import threading
import time
import uuid
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from locust import HttpUser, between, events, task

REPO = Path(__file__).resolve().parent.parent
STAFF_USERS = ("demo-admin", "demo-manager")
VENDOR_USERS = tuple(f"demo-vendor-{n}" for n in range(1, 6))
PERIODS = ("7d", "30d", "90d", "12m")
DISPOSITIONS = ("new", "contacted", "qualified", "closed", "lost")
VENDOR_CODES = ("V001", "V002", "V003", "V004", "V005")
CAMPAIGNS = ("google-search", "facebook-ads", "tiktok-ads", "email-newsletter", "affiliate-network")
# The move an executive makes from each open state (see src/leads/lifecycle.py).
NEXT_MOVE = {"new": "contacted", "contacted": "qualified", "qualified": "closed"}

FIRST_NAMES = ("Ava", "Ben", "Chloe", "Diego", "Elena", "Farah", "Grace", "Hiro", "Isla", "Jamal")
LAST_NAMES = ("Adams", "Baker", "Chen", "Diaz", "Evans", "Foster", "Gupta", "Hughes", "Ito", "Jones")
STATES = (("TX", "73301"), ("NY", "10001"), ("FL", "33101"), ("CA", "94105"), ("IL", "60601"))
AREA_CODES = ("212", "213", "305", "312", "404", "512", "602", "704", "720", "206")

TOKENS: dict[str, str] = {}
_people = itertools.count(1)
_vendor_slots = itertools.count(0)
_phones_used: set[str] = set()
_phones_lock = threading.Lock()
RUN_ID = f"{int(time.time()):x}{os.getpid():x}"


def _token(user_id: str) -> str:
    configured = os.environ.get("CRM_TOKEN_" + user_id.upper().replace("-", "_"))
    if configured:
        return configured
    crm = os.environ.get("CRM_BIN", str(REPO / ".venv" / "bin" / "crm"))
    result = subprocess.run(  # noqa: S603  # fixed arguments
        [crm, "token", user_id, "--ttl", "21600"], capture_output=True, text=True, check=True
    )
    return result.stdout.strip()


@events.test_start.add_listener
def _issue_tokens(environment: Any, **kwargs: Any) -> None:
    for user_id in (*STAFF_USERS, *VENDOR_USERS):
        TOKENS[user_id] = _token(user_id)


@events.test_stop.add_listener
def _write_results(environment: Any, **kwargs: Any) -> None:
    """Writes the final per-request figures to `LOADTEST_RESULTS` (JSON) once every user has
    stopped: the --csv files are rewritten only every few seconds and miss the last requests."""
    path = os.environ.get("LOADTEST_RESULTS")
    if not path:
        return
    stats = environment.stats
    entries = sorted(stats.entries.values(), key=lambda entry: (entry.name, entry.method))
    rows = [
        {
            "method": entry.method or "",
            "name": entry.name,
            "count": entry.num_requests,
            "failures": entry.num_failures,
            **{
                f"p{round(q * 100)}": entry.get_response_time_percentile(q) if entry.num_requests else None
                for q in (0.5, 0.95, 0.99)
            },
            "rps": entry.total_rps,
        }
        for entry in [*entries, stats.total]
    ]
    Path(path).write_text(json.dumps(rows, indent=2) + "\n")


def _expect(response: Any, *statuses: int) -> None:
    """Marks the request failed unless its status is one of `statuses`."""
    if response.status_code in statuses:
        response.success()
    else:
        body = (response.text or "")[:200].replace("\n", " ")
        response.failure(f"HTTP {response.status_code}: {body}")


def _new_phone() -> str:
    # Seeded demo leads use 555-01xx numbers; these never do, and none repeats within a run.
    with _phones_lock:
        while True:
            exchange = random.randint(200, 999)
            if exchange == 555 or exchange % 100 == 11:
                continue
            phone = f"({random.choice(AREA_CODES)}) {exchange}-{random.randint(0, 9999):04d}"
            if phone not in _phones_used:
                _phones_used.add(phone)
                return phone


class DashboardUser(HttpUser):
    """An executive or manager with the dashboard open: the overview first, then drilling into
    leads, agencies and reports, reading for a few seconds between clicks."""

    weight = 3
    wait_time = between(3, 10)

    def on_start(self) -> None:
        self.user_id = random.choice(STAFF_USERS)
        self.client.headers["Authorization"] = f"Bearer {TOKENS[self.user_id]}"
        self.lead_ids: list[str] = []

    def _get(self, path: str, name: str, params: dict[str, Any] | None = None) -> Any:
        with self.client.get(path, params=params, name=name, catch_response=True) as response:
            _expect(response, 200)
            return response

    def _list(self, params: dict[str, Any], name: str) -> list[dict[str, Any]]:
        response = self._get("/leads", name, params)
        if response.status_code != 200:
            return []
        leads = response.json().get("data", [])
        if leads:
            self.lead_ids = [lead["lead_id"] for lead in leads]
        return leads

    @task(6)
    def stats(self) -> None:
        period = random.choices(PERIODS, weights=(2, 6, 2, 1))[0]
        self._get("/admin/stats", f"/admin/stats?period={period}", {"period": period})

    @task(4)
    def analytics(self) -> None:
        period = random.choices(PERIODS, weights=(3, 4, 2, 1))[0]
        self._get("/admin/analytics", f"/admin/analytics?period={period}", {"period": period})

    @task(3)
    def leads_page(self) -> None:
        self._list({"limit": 50}, "/leads?limit=50")

    @task(3)
    def leads_by_disposition(self) -> None:
        self._list({"disposition": random.choice(DISPOSITIONS), "limit": 50}, "/leads?disposition=[d]")

    @task(2)
    def leads_by_vendor(self) -> None:
        self._list({"vendor": random.choice(VENDOR_CODES), "limit": 50}, "/leads?vendor=[code]")

    @task(1)
    def leads_by_campaign(self) -> None:
        self._list({"campaign": random.choice(CAMPAIGNS), "limit": 50}, "/leads?campaign=[c]")

    @task(1)
    def leads_last_week(self) -> None:
        today = date.today()
        params = {"from": (today - timedelta(days=7)).isoformat(), "to": today.isoformat(), "limit": 50}
        self._list(params, "/leads?from&to")

    @task(3)
    def one_lead(self) -> None:
        if not self.lead_ids:
            self.leads_page()
            return
        self._get(f"/leads/{random.choice(self.lead_ids)}", "/leads/[id]")

    @task(2)
    def agencies(self) -> None:
        self._get("/agencies", "/agencies")

    @task(1)
    def report(self) -> None:
        kind = random.choice(("vendors", "daily", "agents", "campaigns"))
        today = date.today()
        params = {"from": (today - timedelta(days=29)).isoformat(), "to": today.isoformat()}
        self._get(f"/reports/{kind}", f"/reports/{kind}", params)

    @task(1)
    def move_a_lead(self) -> None:
        """Reads an open lead and moves it one step along (new → contacted → ...)."""
        disposition = random.choices(tuple(NEXT_MOVE), weights=(3, 2, 1))[0]
        leads = self._list({"disposition": disposition, "limit": 50}, "/leads?disposition=[d]")
        if not leads:
            return
        lead_id = random.choice(leads)["lead_id"]
        response = self._get(f"/leads/{lead_id}", "/leads/[id]")
        if response.status_code != 200:
            return
        lead = response.json()
        move = NEXT_MOVE.get(lead.get("disposition", ""))
        if move is None:
            return  # moved by someone else since the list was read
        body: dict[str, Any] = {"version": lead["version"], "disposition": move, "notes": "called back"}
        if move == "closed":
            body["sale_amount"] = random.choice((250, 400, 650, 900))
        with self.client.patch(
            f"/leads/{lead_id}", json=body, name="/leads/[id]", catch_response=True
        ) as patched:
            _expect(patched, 200)


class VendorUser(HttpUser):
    """A vendor's server posting new leads as they arrive, now and then reading its own leads
    and daily report."""

    weight = 1
    wait_time = between(2, 6)

    def on_start(self) -> None:
        self.user_id = VENDOR_USERS[next(_vendor_slots) % len(VENDOR_USERS)]
        self.client.headers["Authorization"] = f"Bearer {TOKENS[self.user_id]}"

    @task(8)
    def post_lead(self) -> None:
        n = next(_people)
        first, last = random.choice(FIRST_NAMES), random.choice(LAST_NAMES)
        state, zip_code = random.choice(STATES)
        body = {
            "first_name": first,
            "last_name": last,
            "email": f"{first}.{last}.{RUN_ID}.{n}@example.com".lower(),
            "phone": _new_phone(),
            "state": state,
            "zip": zip_code,
            "campaign_source": random.choice(CAMPAIGNS),
            "tcpa_consent": True,
            "consent_text": "I agree to be contacted by phone, text and email.",
            "ip_address": f"203.0.113.{random.randint(1, 254)}",
            "landing_page_url": "https://offers.example.com/quote",
        }
        headers = {"Idempotency-Key": str(uuid.uuid4())}
        with self.client.post(
            "/leads", json=body, headers=headers, name="/leads", catch_response=True
        ) as response:
            _expect(response, 201)

    @task(2)
    def own_leads(self) -> None:
        with self.client.get(
            "/leads", params={"limit": 20}, name="/leads?limit=20 (vendor)", catch_response=True
        ) as response:
            _expect(response, 200)

    @task(1)
    def own_daily_report(self) -> None:
        with self.client.get(
            "/reports/daily", name="/reports/daily (vendor)", catch_response=True
        ) as response:
            _expect(response, 200)
