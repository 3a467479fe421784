"""Demo data for the local stack: fixed vendors and users, and demo leads over 90 days (300 by
default, any number with `crm seed --leads N`), more of them lately and about half as many on a
Saturday or Sunday as on a weekday.

The leads come from a seeded random generator, so every run makes the same mix of vendors,
campaigns, agents and dispositions (their ids and times are relative to the moment of seeding).
"""

from __future__ import annotations

import random
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from ulid import ULID

from leads.dedupe import dedupe_keys
from leads.models import Disposition, HistoryEntry, Lead
from leads.repository import LeadRepository
from shared.config import get_settings
from shared.dates import iso_timestamp
from shared.dynamo import Table, changes_write

VENDORS = [
    ("V001", "Summit Lead Partners", Decimal("40.00")),
    ("V002", "BlueRiver Media", Decimal("35.00")),
    ("V003", "Keystone Digital", Decimal("45.00")),
    ("V004", "Northwind Referrals", Decimal("30.00")),
    ("V005", "Crescent Marketing Group", Decimal("50.00")),
]
AGENTS = [f"demo-agent-{n}" for n in range(1, 6)]
CAMPAIGNS = ["google-search", "facebook-ads", "tiktok-ads", "email-newsletter", "affiliate-network"]
FIRST_NAMES = [
    "James",
    "Maria",
    "Robert",
    "Linda",
    "Michael",
    "Patricia",
    "David",
    "Jennifer",
    "Daniel",
    "Elizabeth",
    "Carlos",
    "Aisha",
    "Wei",
    "Fatima",
    "Noah",
    "Olivia",
    "Liam",
    "Emma",
]
LAST_NAMES = [
    "Smith",
    "Johnson",
    "Garcia",
    "Brown",
    "Miller",
    "Davis",
    "Martinez",
    "Lopez",
    "Wilson",
    "Anderson",
    "Thomas",
    "Nguyen",
    "Patel",
    "Kim",
    "Clark",
    "Lewis",
]
STATES = [
    ("CA", "90012"),
    ("TX", "73301"),
    ("FL", "33101"),
    ("NY", "10001"),
    ("IL", "60601"),
    ("AZ", "85001"),
    ("GA", "30301"),
    ("WA", "98101"),
    ("CO", "80201"),
    ("NC", "27601"),
]
AREA_CODES = ["212", "213", "305", "312", "404", "512", "602", "704", "720", "206"]
DEFAULT_PRICE = Decimal("35.00")
DEMO_LEADS = 300
WRITE_BATCH = 5000
DAYS = 90
WEEKEND_SHARE = 0.5  # a Saturday or Sunday receives about this share of a weekday's leads


STAFF_ROLES = ("admin", "manager", "agent")
# The demo staff's passwords in the local stack's user pool (README, "Local stack"): each meets
# the pool's password policy (12 characters or more, upper and lower case, a number, a symbol).
DEMO_PASSWORDS = {
    "demo-admin": "DemoAdmin!123",
    "demo-manager": "DemoManager!123",
    **{agent: f"DemoAgent{n}!123" for n, agent in enumerate(AGENTS, start=1)},
}


@dataclass(frozen=True)
class DemoUser:
    user_id: str
    role: str
    name: str
    vendor_code: str | None = None

    @property
    def email(self) -> str:
        return f"{self.user_id}@crm.example.com"


def demo_staff() -> list[tuple[DemoUser, str]]:
    """The demo users who sign in to the user pool (admin, manager, agents), with their passwords."""
    return [(user, DEMO_PASSWORDS[user.user_id]) for user in demo_users() if user.role in STAFF_ROLES]


def demo_users() -> list[DemoUser]:
    users = [
        DemoUser("demo-admin", "admin", "Avery Admin"),
        DemoUser("demo-manager", "manager", "Morgan Manager"),
    ]
    users += [DemoUser(agent, "agent", f"Agent {n}") for n, agent in enumerate(AGENTS, start=1)]
    users += [
        DemoUser(f"demo-vendor-{n}", "vendor", f"{name} integration", code)
        for n, (code, name, _) in enumerate(VENDORS, start=1)
    ]
    return users


def _history(
    rng: random.Random, created: datetime, final: Disposition, agent: str | None, now: datetime
) -> tuple[list[HistoryEntry], dict[str, Any]]:
    """The disposition moves that lead from `new` to `final`, spread between creation and now."""
    path = {
        Disposition.NEW: [],
        Disposition.CONTACTED: [Disposition.CONTACTED],
        Disposition.QUALIFIED: [Disposition.CONTACTED, Disposition.QUALIFIED],
        Disposition.CLOSED: [Disposition.CONTACTED, Disposition.QUALIFIED, Disposition.CLOSED],
        Disposition.LOST: [Disposition.CONTACTED, Disposition.LOST],
    }[final]
    history = [HistoryEntry(timestamp=iso_timestamp(created), user="system", action="created")]
    moment, previous, facts = created, Disposition.NEW, {}
    for step in path:
        moment = min(now, moment + timedelta(hours=rng.uniform(2, 24 * 6)))
        history.append(
            HistoryEntry(
                timestamp=iso_timestamp(moment),
                user=agent or "demo-manager",
                action="updated",
                changes={"disposition": {"from": previous.value, "to": step.value}},
            )
        )
        previous = step
        facts["last_contact"] = iso_timestamp(moment)
        if step is Disposition.CLOSED:
            facts["closed_date"] = iso_timestamp(moment)
    facts["updated_at"] = iso_timestamp(moment)
    return history, facts


def _creation_time(rng: random.Random, now: datetime) -> datetime:
    """A moment in the `DAYS` days before `now`, more often lately, and at weekends (UTC) about
    `WEEKEND_SHARE` times as often as on a weekday: a weekend moment is kept with that probability,
    else drawn again."""
    while True:
        created = now - timedelta(days=DAYS * rng.random() ** 1.3, seconds=rng.randint(0, 3600))
        if created.weekday() < 5 or rng.random() < WEEKEND_SHARE:
            return created


def demo_leads(count: int = DEMO_LEADS, now: datetime | None = None, seed: int = 42) -> list[Lead]:
    return list(iter_demo_leads(count, now or datetime.now(UTC), seed))


def iter_demo_leads(count: int, now: datetime, seed: int = 42) -> Iterator[Lead]:
    """`count` demo leads over the `DAYS` days before `now`, one at a time; the same `seed` and
    `now` give the same leads."""
    rng = random.Random(seed)  # nosec B311  # reproducible demo data, not secrets
    for _ in range(count):
        created = _creation_time(rng, now)
        age_days = (now - created).days
        code, _, price = rng.choices(VENDORS, weights=[30, 25, 20, 15, 10])[0]
        if age_days < 3:
            final = rng.choices(list(Disposition), weights=[70, 20, 5, 2, 3])[0]
        else:
            final = rng.choices(list(Disposition), weights=[12, 20, 18, 28, 22])[0]
        agent = None if final is Disposition.NEW and rng.random() < 0.5 else rng.choice(AGENTS)
        history, facts = _history(rng, created, final, agent, now)
        first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
        state, zip_code = rng.choice(STATES)
        lead_id = str(ULID.from_bytes(int(created.timestamp() * 1000).to_bytes(6, "big") + rng.randbytes(10)))
        yield Lead(
            lead_id=lead_id,
            vendor_code=code,
            campaign_source=rng.choices(CAMPAIGNS, weights=[35, 25, 15, 10, 15])[0],
            first_name=first,
            last_name=last,
            email=f"{first}.{last}.{lead_id[-6:]}@example.com".lower(),
            phone=f"+1{rng.choice(AREA_CODES)}555{rng.randint(100, 199):04d}",
            state=state,
            zip=zip_code,
            tcpa_consent=rng.random() < 0.9,
            consent_text="I agree to be contacted by phone, text and email about my request.",
            ip_address=f"198.51.100.{rng.randint(1, 254)}",
            user_agent="Mozilla/5.0 (demo)",
            landing_page_url=f"https://offers.example.com/{code.lower()}",
            disposition=final,
            lead_value=price,
            quality_score=max(1, min(10, round(rng.gauss(6, 2)))),
            assigned_agent=agent,
            created_at=iso_timestamp(created),
            created_by=f"demo-vendor-{int(code[1:])}",
            sale_amount=Decimal(rng.randrange(20000, 250000)).scaleb(-2)
            if final is Disposition.CLOSED
            else None,
            update_history=history,
            version=len(history),
            **facts,
        )


@dataclass(frozen=True)
class SeedTables:
    leads: Table
    users: Table
    vendors: Table
    pricing: Table
    dedupe: Table | None = None  # when given, demo leads block duplicates like posted ones

    @classmethod
    def configured(cls) -> SeedTables:
        """The tables named by the functions' configuration."""
        settings = get_settings()
        return cls(
            leads=Table(settings.leads_table),
            users=Table(settings.users_table),
            vendors=Table(settings.vendors_table),
            pricing=Table(settings.pricing_table),
            dedupe=Table(settings.dedupe_table),
        )


def dedupe_items(leads: Iterable[Lead]) -> list[dict[str, Any]]:
    """The uniqueness items posting would have written (the newest lead wins a shared phone)."""
    index = DedupeIndex()
    for lead in leads:
        index.add(lead)
    return index.items()


class DedupeIndex:
    """The newest lead per uniqueness key, built one lead at a time."""

    def __init__(self) -> None:
        self._newest: dict[str, tuple[str, str]] = {}  # key -> (created_at, lead_id)

    def add(self, lead: Lead) -> None:
        for key in dedupe_keys(lead, lead.is_test):
            held = self._newest.get(key)
            if held is None or held[0] < lead.created_at:
                self._newest[key] = (lead.created_at, lead.lead_id)

    def items(self) -> list[dict[str, Any]]:
        def expiry(created_at: str) -> int:
            return int(datetime.fromisoformat(created_at.replace("Z", "+00:00")).timestamp()) + 400 * 86400

        return [
            {
                "dedupe_key": key,
                "lead_id": lead_id,
                "created_at": created_at,
                "expires_at": expiry(created_at),
            }
            for key, (created_at, lead_id) in self._newest.items()
        ]


def open_loads(lead_items: Iterable[dict[str, Any]]) -> dict[str, int]:
    """Open leads per demo agent, from stored lead items (deleted, closed and lost leads are not
    open)."""
    loads = dict.fromkeys(AGENTS, 0)
    for item in lead_items:
        agent = item.get("assigned_agent")
        still_open = item.get("disposition") not in ("closed", "lost") and not item.get("deleted_at")
        if agent in loads and still_open:
            loads[agent] += 1
    return loads


def seed_demo_data(
    tables: SeedTables,
    lead_count: int = DEMO_LEADS,
    now: datetime | None = None,
    on_written: Callable[[int], None] = lambda count: None,
) -> dict[str, int]:
    """The demo directory (agencies, prices, users) and `lead_count` demo leads, written in
    batches as they are generated (`on_written` hears each batch's size)."""
    now = now or datetime.now(UTC)
    dedupe = DedupeIndex()
    repository = LeadRepository(tables.leads)
    batch: list[Lead] = []
    for lead in iter_demo_leads(lead_count, now):
        dedupe.add(lead)
        batch.append(lead)
        if len(batch) == WRITE_BATCH:
            repository.put_many(batch)
            on_written(len(batch))
            batch = []
    repository.put_many(batch)
    on_written(len(batch))
    if tables.dedupe is not None:
        tables.dedupe.batch_put(dedupe.items())
    generated = (lead.model_dump(mode="json") for lead in iter_demo_leads(lead_count, now))
    users = write_directory(tables, now, open_loads(generated))
    return {"vendors": len(VENDORS), "users": users, "leads": lead_count}


def write_directory(tables: SeedTables, now: datetime, loads: dict[str, int]) -> int:
    """The demo agencies, prices and users (agents carrying `loads` open leads); returns the
    number of users."""
    tables.vendors.batch_put(
        [
            {
                "vendor_code": code,
                "name": name,
                "status": "active",
                "monthly_goal": 600,
                "dedupe_window_days": 30,
                "test_mode": False,
                "contact_email": f"partners@{code.lower()}.example.com",
                "created_at": iso_timestamp(now),
            }
            for code, name, _ in VENDORS
        ]
    )
    tables.pricing.batch_put(
        [
            *({"price_key": code, "vendor_code": code, "price": price} for code, _, price in VENDORS),
            {
                "price_key": "SETTINGS",
                "default_price": DEFAULT_PRICE,
                "smart_pricing_enabled": False,
                "min_price": Decimal("10.00"),
                "max_price": Decimal("150.00"),
            },
        ]
    )
    users = []
    for user in demo_users():
        row: dict[str, Any] = {
            "user_id": user.user_id,
            "role": user.role,
            "name": user.name,
            "status": "active",
            "email": user.email,
            "created_at": iso_timestamp(now),
        }
        if user.vendor_code:
            row["vendor_code"] = user.vendor_code
        if user.role == "agent":
            row |= {
                "availability": "online",
                "assignable": "online",
                "capacity": 40,
                "open_leads": loads[user.user_id],
            }
        users.append(row)
    tables.users.batch_put(users)
    return len(users)


def link_pool_users(users: Table, subs: dict[str, str]) -> None:
    """Records on each demo user (user id -> sub) the `sub` of its user pool account, as
    `cognito_sub`. The users table stays the source of the role and the active flag."""
    for user_id, sub in subs.items():
        users.write(
            changes_write(users.name, {"user_id": user_id}, {"cognito_sub": sub}, "attribute_exists(user_id)")
        )


def seed_at_scale(tables: SeedTables, lead_count: int, progress: bool = False) -> dict[str, Any]:
    """`seed_demo_data`, then the stats buckets and agents' open-lead counts made to agree with
    the leads table: from the generated leads when the table was empty, else from a scan of it."""
    from tqdm import tqdm

    from shared.dependencies import business_zone
    from stats.dependencies import stats_store
    from stats.rebuild import rebuild

    now = datetime.now(UTC)
    fresh = tables.leads.is_empty()
    with tqdm(total=lead_count, unit="lead", desc="leads", file=sys.stderr, disable=not progress) as bar:
        report: dict[str, Any] = dict(seed_demo_data(tables, lead_count, now, on_written=bar.update))
    zone = business_zone()
    if fresh:
        rebuild(
            (LeadRepository.to_item(lead) for lead in iter_demo_leads(lead_count, now)), stats_store(), zone
        )
        report["stats_from"] = "the leads written"
    else:
        rebuild(tables.leads.scan_all(), stats_store(), zone)
        write_directory(tables, now, open_loads(tables.leads.scan_all()))
        report["stats_from"] = "a scan of the whole leads table"
    return report
