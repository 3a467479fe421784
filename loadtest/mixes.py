"""The request mixes of `make loadtest` (loadtest/run.py), each client a closed loop (no think time).

`reads`: what an executive's dashboard asks for, as an admin or a manager, in these proportions
(out of 26): the dashboard `/admin/stats` (6; mostly 30 days, also 7 days, 90 days, 12 months),
the analytics chart `/admin/analytics` (4), lead lists (10: the first page of 50, by disposition,
by vendor, by campaign, the last 7 days), one lead from a list (3), `/agencies` (2) and one of the
four reports for the last 30 days (1). Every answer should be 200.

`writes10`: the same reads, and one request in ten a write: half of them a vendor's
`POST /leads` of a new person (unique email and phone; should be 201), half a `PATCH` by the
staff member of a lead this client posted (so no two clients race for a version): one step along
new → contacted → qualified → closed, or a note only (should be 200).
"""

# ruff: noqa: S311  # random picks shape the load; nothing here is a secret

from __future__ import annotations

import itertools
import random
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from crm.loadgen import CAMPAIGNS, PHONES, Connection, Recorder, new_person

STAFF_USERS = ("demo-admin", "demo-manager")
VENDOR_USERS = tuple(f"demo-vendor-{n}" for n in range(1, 6))
PERIODS = ("7d", "30d", "90d", "12m")
DISPOSITIONS = ("new", "contacted", "qualified", "closed", "lost")
VENDOR_CODES = ("V001", "V002", "V003", "V004", "V005")
REPORTS = ("vendors", "daily", "agents", "campaigns")
NEXT_MOVE = {"new": "contacted", "contacted": "qualified", "qualified": "closed"}  # leads.lifecycle
SALE_AMOUNTS = (250, 400, 650, 900)
LIST_LIMIT = 50


@dataclass(frozen=True)
class Mix:
    name: str
    write_share: float  # the fraction of requests that are writes


MIXES = {mix.name: mix for mix in (Mix("reads", 0.0), Mix("writes10", 0.10))}


@dataclass
class OwnLead:
    lead_id: str
    version: int
    disposition: str


class People:
    """New people for posts, shared by every client of a run: numbered from a random start, so
    that runs against the same long-lived server (`--host`) do not post each other's people."""

    def __init__(self) -> None:
        self.run_id = uuid.uuid4().hex[:8]
        self._numbers = itertools.count(random.randrange(PHONES))  # next() on it is atomic

    def next(self) -> dict[str, Any]:
        return new_person(next(self._numbers), self.run_id)


class Client:
    """One closed-loop client: a staff member with the dashboard open (admin and manager in
    turn by client number) who, in a mix with writes, also posts as a vendor (`demo-vendor-1` …
    `-5` in turn) and moves the leads it posted along."""

    def __init__(
        self,
        number: int,
        mix: Mix,
        connection: Connection,
        tokens: dict[str, str],
        people: People,
        seed: int,
    ) -> None:
        self.mix = mix
        self.connection = connection
        self.recorder = Recorder()
        self.staff_token = tokens[STAFF_USERS[number % len(STAFF_USERS)]]
        self.vendor_token = tokens[VENDOR_USERS[number % len(VENDOR_USERS)]]
        self.people = people
        self.rng = random.Random(seed)
        self.lead_ids: list[str] = []  # leads seen in lists, to read one
        self.own_leads: list[OwnLead] = []  # open leads this client posted, to move along
        self.reads = (
            (6, self.stats),
            (4, self.analytics),
            (3, self.leads_page),
            (3, self.leads_by_disposition),
            (2, self.leads_by_vendor),
            (1, self.leads_by_campaign),
            (1, self.leads_last_week),
            (3, self.one_lead),
            (2, self.agencies),
            (1, self.report),
        )
        self._read_weights = [weight for weight, _ in self.reads]

    def step(self) -> bool:
        if self.mix.write_share and self.rng.random() < self.mix.write_share:
            if self.own_leads and self.rng.random() < 0.5:
                self.patch_own_lead()
            else:
                self.post_lead()
        else:
            self.rng.choices(self.reads, weights=self._read_weights)[0][1]()
        return True

    # -- reads -----------------------------------------------------------------------------
    def get(self, path: str, name: str | None = None) -> Any:
        answer = self.connection.request("GET", path, self.staff_token)
        self.recorder.record(f"GET {name or path}", answer, expected=200)
        return answer

    def stats(self) -> None:
        period = self.rng.choices(PERIODS, weights=(2, 6, 2, 1))[0]
        self.get(f"/admin/stats?period={period}")

    def analytics(self) -> None:
        period = self.rng.choices(PERIODS, weights=(3, 4, 2, 1))[0]
        self.get(f"/admin/analytics?period={period}")

    def leads_list(self, query: str, name: str) -> None:
        answer = self.get(f"/leads?{query}&limit={LIST_LIMIT}", name)
        # Parsing a page costs the generator CPU: only as often as the lead ids need renewing.
        if answer.status == 200 and (not self.lead_ids or self.rng.random() < 0.25):
            self.lead_ids = [lead["lead_id"] for lead in answer.json().get("data", [])] or self.lead_ids

    def leads_page(self) -> None:
        self.leads_list("", "/leads?limit=50")

    def leads_by_disposition(self) -> None:
        self.leads_list(f"disposition={self.rng.choice(DISPOSITIONS)}", "/leads?disposition=[d]")

    def leads_by_vendor(self) -> None:
        self.leads_list(f"vendor={self.rng.choice(VENDOR_CODES)}", "/leads?vendor=[code]")

    def leads_by_campaign(self) -> None:
        self.leads_list(f"campaign={self.rng.choice(CAMPAIGNS)}", "/leads?campaign=[c]")

    def leads_last_week(self) -> None:
        today = date.today()
        self.leads_list(f"from={today - timedelta(days=7)}&to={today}", "/leads?from&to")

    def one_lead(self) -> None:
        if not self.lead_ids:
            self.leads_page()
            return
        self.get(f"/leads/{self.rng.choice(self.lead_ids)}", "/leads/[id]")

    def agencies(self) -> None:
        self.get("/agencies")

    def report(self) -> None:
        kind = self.rng.choice(REPORTS)
        today = date.today()
        self.get(f"/reports/{kind}?from={today - timedelta(days=29)}&to={today}", f"/reports/{kind}")

    # -- writes ----------------------------------------------------------------------------
    def post_lead(self) -> None:
        key = str(uuid.uuid4())
        answer = self.connection.request(
            "POST", "/leads", self.vendor_token, self.people.next(), **{"Idempotency-Key": key}
        )
        if self.recorder.record("POST /leads", answer, expected=201, write=True):
            body = answer.json()
            version = int((body.get("lead") or {}).get("version", 1))
            self.own_leads.append(OwnLead(body["lead_id"], version, "new"))

    def patch_own_lead(self) -> None:
        lead = self.rng.choice(self.own_leads)
        move = NEXT_MOVE[lead.disposition] if self.rng.random() < 0.5 else None
        body: dict[str, Any] = {"version": lead.version, "notes": f"called back ({self.rng.randrange(1000)})"}
        if move is not None:
            body["disposition"] = move
            if move == "closed":
                body["sale_amount"] = self.rng.choice(SALE_AMOUNTS)
        answer = self.connection.request("PATCH", f"/leads/{lead.lead_id}", self.staff_token, body)
        name = "PATCH /leads/[id] (move)" if move else "PATCH /leads/[id] (notes)"
        if not self.recorder.record(name, answer, expected=200, write=True):
            self.own_leads.remove(lead)  # its version is no longer known
            return
        lead.version = int(answer.json()["version"])
        lead.disposition = move or lead.disposition
        if lead.disposition not in NEXT_MOVE:
            self.own_leads.remove(lead)
