"""Data access of the agencies service: the vendors, pricing and users tables."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from shared.dates import now_timestamp
from shared.dynamo import ConditionFailed, Item, Table, Write, changes_write
from shared.errors import Conflict, NotFound
from shared.pricing import SETTINGS_KEY, PricingSettings
from shared.records import ASSIGNABLE, UserStatus, agents_by_role

MAX_ATTEMPTS = 5


def put_new(table: Table, key_name: str, values: Mapping[str, Any], conflict: str) -> Item:
    """Stores a new item, stamped with its creation time; 409 `conflict` if the key exists."""
    item = {**values, "created_at": now_timestamp(), "updated_at": now_timestamp()}
    try:
        table.write(Write("Put", table.name, item=item, condition=f"attribute_not_exists({key_name})"))
    except ConditionFailed as exc:
        raise Conflict(conflict) from exc
    return item


class AgencyNotFound(NotFound):
    def __init__(self, code: str) -> None:
        super().__init__(f"Agency {code} not found")


class AgentNotFound(NotFound):
    def __init__(self, user_id: str) -> None:
        super().__init__(f"Agent {user_id} not found")


class ManagerNotFound(NotFound):
    def __init__(self, user_id: str) -> None:
        super().__init__(f"Manager {user_id} not found")


class CredentialNotFound(NotFound):
    def __init__(self, user_id: str) -> None:
        super().__init__(f"Credential {user_id} not found")


class AgencyRepository:
    def __init__(self, vendors: Table) -> None:
        self._vendors = vendors

    def all(self) -> list[Item]:
        """Every agency, by code. Agencies number in the tens to hundreds: one Scan page each
        megabyte, never on the leads table."""
        return sorted(self._vendors.scan_all(), key=lambda item: str(item["vendor_code"]))

    def get(self, code: str) -> Item | None:
        return self._vendors.get({"vendor_code": code})

    def create(self, values: Mapping[str, Any]) -> Item:
        return put_new(self._vendors, "vendor_code", values, f"Agency {values['vendor_code']} already exists")

    def update(self, code: str, changes: Mapping[str, Any]) -> Item:
        write = changes_write(
            self._vendors.name,
            {"vendor_code": code},
            {**changes, "updated_at": now_timestamp()},
            condition="attribute_exists(vendor_code)",
        )
        try:
            item = self._vendors.write(write)
        except ConditionFailed as exc:
            raise AgencyNotFound(code) from exc
        assert item is not None
        return item


class PricingRepository:
    """Vendor prices (`price_key` = vendor code) and the settings item (`price_key` = SETTINGS)."""

    def __init__(self, pricing: Table) -> None:
        self._pricing = pricing

    def everything(self) -> tuple[PricingSettings, dict[str, Decimal]]:
        settings: Item | None = None
        prices: dict[str, Decimal] = {}
        for item in self._pricing.scan_all():
            if item["price_key"] == SETTINGS_KEY:
                settings = item
            elif item.get("price") is not None:
                prices[str(item["price_key"])] = Decimal(item["price"])
        return PricingSettings.from_item(settings), dict(sorted(prices.items()))

    def settings_item(self) -> Item:
        return self._pricing.get({"price_key": SETTINGS_KEY}, consistent=True) or {"price_key": SETTINGS_KEY}

    def replace_settings(self, settings: PricingSettings, seen_revision: int | None) -> None:
        """Stores new settings only if nobody changed them since `seen_revision` was read
        (None: they had never been stored)."""
        item = {
            **settings.model_dump(mode="python"),
            "price_key": SETTINGS_KEY,
            "revision": (seen_revision or 0) + 1,
            "updated_at": now_timestamp(),
        }
        if seen_revision is None:
            write = Write("Put", self._pricing.name, item=item, condition="attribute_not_exists(revision)")
        else:
            write = Write(
                "Put",
                self._pricing.name,
                item=item,
                condition="revision = :seen",
                values={":seen": seen_revision},
            )
        self._pricing.write(write)

    def vendor_price(self, code: str) -> Decimal | None:
        item = self._pricing.get({"price_key": code})
        return Decimal(item["price"]) if item and item.get("price") is not None else None

    def set_vendor_price(self, code: str, price: Decimal) -> None:
        self._pricing.put(
            {"price_key": code, "vendor_code": code, "price": price, "updated_at": now_timestamp()}
        )


class UserDirectory:
    """Agents, managers and vendor integration users in the users table."""

    def __init__(self, users: Table) -> None:
        self._users = users

    def agents(self) -> list[Item]:
        """Every agent, active or disabled (Queries on the role index)."""
        return self._users.query_all(agents_by_role())

    def agent(self, user_id: str) -> Item:
        item = self._users.get({"user_id": user_id}, consistent=True)
        if item is None or item.get("role") != "agent":
            raise AgentNotFound(user_id)
        return item

    def create(self, item: Mapping[str, Any]) -> Item:
        return put_new(self._users, "user_id", item, f"User {item['user_id']} already exists")

    def update_agent(self, user_id: str, changes: Mapping[str, Any]) -> Item:
        """Sets `changes` and keeps `assignable` in step: an agent is offered new leads only while
        it is active and online. Optimistic: the write holds only if the agent is as it was read,
        so two concurrent changes cannot leave `assignable` out of step."""
        for _ in range(MAX_ATTEMPTS):
            current = self.agent(user_id)
            merged = {**current, **changes}
            assignable = (
                merged.get("status", UserStatus.ACTIVE) == UserStatus.ACTIVE
                and merged.get("availability") == ASSIGNABLE
            )
            seen = current.get("revision")
            write = changes_write(
                self._users.name,
                {"user_id": user_id},
                {
                    **changes,
                    "assignable": ASSIGNABLE if assignable else None,
                    "revision": int(seen or 0) + 1,
                    "updated_at": now_timestamp(),
                },
                condition="#role = :agent AND "
                + ("#revision = :seen" if seen is not None else "attribute_not_exists(#revision)"),
                names={"#role": "role", "#revision": "revision"},
                values={":agent": "agent", **({":seen": seen} if seen is not None else {})},
            )
            try:
                item = self._users.write(write)
            except ConditionFailed:
                continue  # changed (or removed) since read: read again
            assert item is not None
            return item
        raise Conflict(f"Agent {user_id} is being changed concurrently; try again")

    def update_manager(self, user_id: str, changes: Mapping[str, Any]) -> Item:
        """Sets `changes` on a manager (404 for any other user)."""
        write = changes_write(
            self._users.name,
            {"user_id": user_id},
            {**changes, "updated_at": now_timestamp()},
            condition="#role = :manager",
            names={"#role": "role"},
            values={":manager": "manager"},
        )
        try:
            item = self._users.write(write)
        except ConditionFailed as exc:
            raise ManagerNotFound(user_id) from exc
        assert item is not None
        return item

    def disable_vendor_user(self, user_id: str, vendor_code: str) -> None:
        """Revokes an agency's integration user (kept, disabled, for the audit trail)."""
        write = changes_write(
            self._users.name,
            {"user_id": user_id},
            {"status": UserStatus.DISABLED.value, "revoked_at": now_timestamp()},
            condition="#role = :vendor AND vendor_code = :code",
            names={"#role": "role"},
            values={":vendor": "vendor", ":code": vendor_code},
        )
        try:
            self._users.write(write)
        except ConditionFailed as exc:
            raise CredentialNotFound(user_id) from exc
