"""Data access of the reports service: the display names of vendors and agents. The day buckets
are read through `shared.buckets.DayBuckets`."""

from __future__ import annotations

from shared.dynamo import Table
from shared.records import agents_by_role


class Names:
    """Display names of vendors and agents (small tables: one call each)."""

    def __init__(self, vendors: Table, users: Table) -> None:
        self._vendors = vendors
        self._users = users

    def vendors(self) -> dict[str, str]:
        return {str(item["vendor_code"]): str(item.get("name", "")) for item in self._vendors.scan_all()}

    def agents(self) -> dict[str, str]:
        return {
            str(item["user_id"]): str(item.get("name", item["user_id"]))
            for item in self._users.query_all(agents_by_role())
        }
