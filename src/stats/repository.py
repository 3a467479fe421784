"""Data access of the stats service outside its own tables: the agents of the users table.

The stats tables have their own modules: `stats.store` writes the day buckets and the lead states
they were built from, `stats.audit_trail` reads the audit records."""

from __future__ import annotations

from shared.dynamo import Table
from shared.records import Availability, UserStatus, agents_by_role
from stats.dashboard import AgentRecord


class AgentRoster:
    def __init__(self, users: Table) -> None:
        self._users = users

    def agents(self) -> list[AgentRecord]:
        """Every active agent (Queries on the users' role index)."""
        return [
            AgentRecord(
                user_id=item["user_id"],
                name=str(item.get("name", item["user_id"])),
                availability=str(item.get("availability", Availability.OFFLINE)),
                open_leads=int(item.get("open_leads", 0)),
                capacity=int(item.get("capacity", 0)),
            )
            for item in self._users.query_all(agents_by_role())
            if item.get("status", UserStatus.ACTIVE) == UserStatus.ACTIVE
        ]
