"""The layout of the users and vendors tables that several services read: the users' indexes, their
status and agents' availability, the condition that finds every agent, and the defaults of a vendor
record."""

from __future__ import annotations

from enum import StrEnum

from shared.dynamo import KeyCondition


class UserStatus(StrEnum):
    ACTIVE = "active"  # the default of a user without one
    DISABLED = "disabled"


class Availability(StrEnum):
    ONLINE = "online"
    BUSY = "busy"
    OFFLINE = "offline"  # the default of an agent without one


USER_ID_PATTERN = r"^[A-Za-z0-9_.:@-]{1,64}$"  # a user id (an agent's, in a lead's `assigned_agent`)
ROLE_INDEX = "RoleIndex"  # users by role
ASSIGNMENT_INDEX = "AssignmentIndex"  # agents that can take leads: their `assignable` is ASSIGNABLE
ASSIGNABLE = Availability.ONLINE.value
DEFAULT_DEDUPE_WINDOW_DAYS = 30  # a vendor's, unless its record says otherwise
DEFAULT_RETURN_WINDOW_DAYS = 7  # days after a lead's creation its return may be asked for


def agents_by_role() -> KeyCondition:
    """The users table's agents, through its role index."""
    return KeyCondition(index=ROLE_INDEX, partition_name="role", partition_value="agent", newest_first=False)


def assignable_agents() -> KeyCondition:
    """Agents that can take leads now, least loaded first (the index sorts by open leads)."""
    return KeyCondition(
        index=ASSIGNMENT_INDEX, partition_name="assignable", partition_value=ASSIGNABLE, newest_first=False
    )
