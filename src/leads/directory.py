"""What the lead service reads about vendors, prices and agents (data access only)."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from shared.acceptance import AcceptanceRules
from shared.dynamo import Table, Write, batch_get
from shared.pricing import SETTINGS_KEY, PricingSettings
from shared.records import (
    ASSIGNABLE,
    DEFAULT_DEDUPE_WINDOW_DAYS,
    DEFAULT_RETURN_WINDOW_DAYS,
    assignable_agents,
)

CANDIDATES_PER_QUERY = 25


@dataclass(frozen=True)
class Vendor:
    vendor_code: str
    status: str
    test_mode: bool
    dedupe_window_days: int
    daily_cap: int | None
    monthly_cap: int | None
    conversion_rate: float | None
    return_window_days: int = DEFAULT_RETURN_WINDOW_DAYS
    hourly_cap: int | None = None
    acceptance: AcceptanceRules = field(default_factory=AcceptanceRules)

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Vendor:
        def optional_int(name: str) -> int | None:
            value = item.get(name)
            return int(value) if value is not None else None

        rate = item.get("conversion_rate")
        return cls(
            vendor_code=item["vendor_code"],
            status=str(item.get("status", "active")),
            test_mode=bool(item.get("test_mode", False)),
            dedupe_window_days=int(item.get("dedupe_window_days", DEFAULT_DEDUPE_WINDOW_DAYS)),
            daily_cap=optional_int("daily_cap"),
            monthly_cap=optional_int("monthly_cap"),
            conversion_rate=float(rate) if rate is not None else None,
            return_window_days=int(item.get("return_window_days", DEFAULT_RETURN_WINDOW_DAYS)),
            hourly_cap=optional_int("hourly_cap"),
            acceptance=AcceptanceRules.from_item(item.get("acceptance")),
        )


@dataclass(frozen=True)
class PriceList:
    vendor_price: Decimal | None
    settings: PricingSettings
    overall_conversion_rate: float | None


class VendorDirectory:
    def __init__(self, vendors: Table, pricing: Table) -> None:
        self._vendors = vendors
        self._pricing = pricing

    def vendor(self, vendor_code: str) -> Vendor | None:
        item = self._vendors.get({"vendor_code": vendor_code})
        return Vendor.from_item(item) if item else None

    def vendor_and_prices(self, vendor_code: str) -> tuple[Vendor | None, PriceList]:
        """The vendor and its price list, in one round trip."""
        found = batch_get(
            {
                self._vendors.name: [{"vendor_code": vendor_code}],
                self._pricing.name: [{"price_key": vendor_code}, {"price_key": SETTINGS_KEY}],
            }
        )
        vendor_items = found[self._vendors.name]
        prices = {item["price_key"]: item for item in found[self._pricing.name]}
        settings = prices.get(SETTINGS_KEY, {})
        vendor_price = prices.get(vendor_code, {}).get("price")
        overall = settings.get("overall_conversion_rate")
        return (
            Vendor.from_item(vendor_items[0]) if vendor_items else None,
            PriceList(
                vendor_price=Decimal(vendor_price) if vendor_price is not None else None,
                settings=PricingSettings.from_item(settings),
                overall_conversion_rate=float(overall) if overall is not None else None,
            ),
        )


@dataclass(frozen=True)
class Agent:
    user_id: str
    open_leads: int
    capacity: int


class AgentPool:
    """Agents that can take a lead, and the conditional writes that move their load."""

    ITEM = "agent load"  # the name of its transaction items

    def __init__(self, users: Table) -> None:
        self._users = users

    def candidates(self) -> list[Agent]:
        """Online agents under capacity, least loaded first (eventually consistent: the write
        that assigns re-checks the load atomically)."""
        page = self._users.query_page(assignable_agents(), limit=CANDIDATES_PER_QUERY, start_key=None)
        agents = [
            Agent(item["user_id"], int(item.get("open_leads", 0)), int(item.get("capacity", 0)))
            for item in page.items
        ]
        return [agent for agent in agents if agent.open_leads < agent.capacity]

    def take(self, agent_id: str) -> Write:
        """One more open lead for `agent_id`, only while it is online and under capacity."""
        return self._load_change(
            agent_id,
            "SET open_leads = open_leads + :one",
            "assignable = :online AND open_leads < #capacity",
            {"#capacity": "capacity"},
            {":online": ASSIGNABLE},
        )

    def release(self, agent_id: str) -> Write:
        """One open lead fewer (a lead closed, lost, deleted or moved away)."""
        return self._load_change(agent_id, "SET open_leads = open_leads - :one", "attribute_exists(user_id)")

    def reopen(self, agent_id: str) -> Write:
        """One more open lead for the agent a lost lead goes back to, only while it has room: a
        reopen keeps the lead with its agent, so it must not load the agent past its capacity (a
        manager who wants it worked anyway reassigns it)."""
        return self._load_change(
            agent_id,
            "SET open_leads = if_not_exists(open_leads, :zero) + :one",
            "#role = :agent AND (open_leads < #capacity"
            " OR (attribute_not_exists(open_leads) AND #capacity > :zero))",
            {"#role": "role", "#capacity": "capacity"},
            {":zero": 0, ":agent": "agent"},
        )

    def agent(self, agent_id: str) -> Agent | None:
        """The agent's load as stored now (a strongly consistent read); None if no such agent."""
        item = self._users.get({"user_id": agent_id}, consistent=True)
        if item is None or item.get("role") != "agent":
            return None
        return Agent(agent_id, int(item.get("open_leads", 0)), int(item.get("capacity", 0)))

    def add(self, agent_id: str) -> Write:
        """One more open lead for an agent a manager chose (reassignment, also of a lead being
        reopened): it must exist and be an agent, but a manager may go past its capacity."""
        return self._load_change(
            agent_id,
            "SET open_leads = if_not_exists(open_leads, :zero) + :one",
            "attribute_exists(user_id) AND #role = :agent",
            {"#role": "role"},
            {":zero": 0, ":agent": "agent"},
        )

    def _load_change(
        self,
        agent_id: str,
        update: str,
        condition: str,
        names: dict[str, str] | None = None,
        values: dict[str, Any] | None = None,
    ) -> Write:
        return Write(
            "Update",
            self._users.name,
            key={"user_id": agent_id},
            update=update,
            condition=condition,
            names=names or {},
            values={":one": 1, **(values or {})},
            name=self.ITEM,
        )
