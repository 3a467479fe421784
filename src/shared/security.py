"""Roles and row-level security.

A `Principal` is who is calling (established by `shared.auth` from a verified token and the users
table). `LeadScope` is what that principal may see; the data layer takes a scope on every read,
so row-level security never depends on request parameters.
"""

from __future__ import annotations

from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    ADMIN = "admin"
    MANAGER = "manager"
    AGENT = "agent"
    VENDOR = "vendor"


ALL_ROLES = frozenset(Role)
STAFF = frozenset({Role.ADMIN, Role.MANAGER})
STAFF_AND_VENDORS = STAFF | {Role.VENDOR}  # e.g. who may post leads, read agencies and vendor reports
STAFF_AND_AGENTS = STAFF | {Role.AGENT}  # e.g. who works leads and reads agents


@dataclass(frozen=True)
class Principal:
    user_id: str
    role: Role
    name: str = ""
    email: str = ""
    vendor_code: str | None = None

    @property
    def is_staff(self) -> bool:
        """An admin or a manager: sees every lead, and may set what only staff may set."""
        return self.role in STAFF

    @property
    def lead_scope(self) -> LeadScope:
        if self.role is Role.VENDOR:
            if not self.vendor_code:
                # `shared.auth` refuses such a user; never let one fall through to "sees all".
                raise PermissionError("vendor principal without a vendor_code")
            return LeadScope(vendor_code=self.vendor_code, agent_id=None)
        if self.role is Role.AGENT:
            return LeadScope(vendor_code=None, agent_id=self.user_id)
        return LeadScope(vendor_code=None, agent_id=None)


@dataclass(frozen=True)
class LeadScope:
    """The leads a caller may see: all of them, one vendor's, or those assigned to one agent."""

    vendor_code: str | None
    agent_id: str | None

    @property
    def sees_all(self) -> bool:
        return self.vendor_code is None and self.agent_id is None

    @property
    def cache_key(self) -> str:
        if self.vendor_code is not None:
            return f"vendor:{self.vendor_code}"
        if self.agent_id is not None:
            return f"agent:{self.agent_id}"
        return "all"

    def allows(self, lead: dict[str, object]) -> bool:
        if self.vendor_code is not None and lead.get("vendor_code") != self.vendor_code:
            return False
        return not (self.agent_id is not None and lead.get("assigned_agent") != self.agent_id)


def scopes_seeing(vendor_code: str, agents: Iterable[str | None]) -> set[str]:
    """The cache keys of every scope that sees a lead of `vendor_code` assigned to any of
    `agents`: staff (who see all), its vendor, and those agents."""
    scopes = [LeadScope(None, None), LeadScope(vendor_code, None)]
    scopes += [LeadScope(None, agent) for agent in agents if agent]
    return {scope.cache_key for scope in scopes}


_current_principal: ContextVar[Principal | None] = ContextVar("current_principal", default=None)


def set_current_principal(principal: Principal | None) -> None:
    _current_principal.set(principal)


def current_principal() -> Principal:
    """The authenticated caller of the request being handled (set by the authorize middleware)."""
    principal = _current_principal.get()
    if principal is None:
        raise RuntimeError("no authenticated principal: is the route declared through shared.http.endpoint?")
    return principal


def current_principal_or_none() -> Principal | None:
    return _current_principal.get()
