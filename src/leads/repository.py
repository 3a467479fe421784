"""Data access for the leads table: the only module that knows its keys and indexes.

Row-level security lives here: every read takes the caller's `LeadScope`, and a lead outside the
scope is reported exactly like a missing one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from leads.models import Lead, LeadFilters
from shared.dynamo import KeyCondition, Page, Table, Write
from shared.errors import LeadNotFound
from shared.security import LeadScope


@dataclass(frozen=True)
class LeadIndex:
    """A global secondary index of the leads table, sorted by created_at. Its partition key is an
    attribute of its own (`key`), copied from a lead field (`source`) only while the lead is
    visible: a soft-deleted lead drops out of every index, so list queries never read it."""

    name: str
    key: str
    source: str | None  # None: the constant LISTED, so the index holds every visible lead
    sort: str = "created_at"


VENDOR_INDEX = LeadIndex("VendorIndex", "ix_vendor", "vendor_code")
AGENT_INDEX = LeadIndex("AgentIndex", "ix_agent", "assigned_agent")
CAMPAIGN_INDEX = LeadIndex("CampaignIndex", "ix_campaign", "campaign_source")
DISPOSITION_INDEX = LeadIndex("DispositionIndex", "ix_disposition", "disposition")
# One partition takes about 1,000 writes a second, far above any lead-posting rate this serves.
TIME_INDEX = LeadIndex("TimeIndex", "ix_all", None)
LISTED = "LEAD"
SORT_ATTRIBUTE = "created_at"
# The order in which a filter picks its index: most selective first.
INDEXES = (VENDOR_INDEX, AGENT_INDEX, CAMPAIGN_INDEX, DISPOSITION_INDEX, TIME_INDEX)
# `q` searches by prefix: of the email, of the phone (E.164), or of the last name (lower case).
SEARCH_INDEXES = {
    "email": LeadIndex("EmailSearchIndex", "ix_all", None, sort="ix_email"),
    "phone": LeadIndex("PhoneSearchIndex", "ix_all", None, sort="ix_phone"),
    "name": LeadIndex("NameSearchIndex", "ix_all", None, sort="ix_name"),
}
ALL_INDEXES = (*INDEXES, *SEARCH_INDEXES.values())
PHONE_SEARCH = re.compile(r"^\+?[\d\s().-]+$")


def index_attributes(lead: Lead) -> dict[str, str]:
    """The index keys a stored lead carries: one per index whose source field is set."""
    values = lead.model_dump(
        mode="json", include={"vendor_code", "assigned_agent", "campaign_source", "disposition"}
    )
    keys = {
        index.key: values[index.source] if index.source else LISTED
        for index in INDEXES
        if index.source is None or values.get(index.source)
    }
    search = {
        "ix_email": lead.email,
        "ix_phone": lead.phone,
        "ix_name": (lead.last_name or "").lower() or None,
    }
    return keys | {name: value for name, value in search.items() if value}


def search_term(q: str) -> tuple[str, str]:
    """What `q` searches and the stored form of its prefix: an email when it has an "@" (or a dot
    and no space), a phone when it is digits and phone punctuation, else a last name."""
    text = " ".join(q.split())
    if "@" in text or ("." in text and " " not in text):
        return "email", text.lower()
    digits = re.sub(r"\D", "", text)
    if PHONE_SEARCH.match(text) and len(digits) >= 3:
        # Numbers are stored as E.164. A bare number is taken as US; no US area code starts
        # with 1, so a leading 1 is the country code.
        if text.startswith("+") or digits.startswith("1"):
            return "phone", f"+{digits}"
        return "phone", f"+1{digits}"
    return "name", text.lower()


@dataclass(frozen=True)
class QueryPlan:
    condition: KeyCondition | None  # None: the scope and the filters exclude each other

    @property
    def index(self) -> str | None:
        return self.condition.index if self.condition else None


def plan_query(scope: LeadScope, filters: LeadFilters) -> QueryPlan:
    """Chooses the index for a list request. The scope's own partition (vendor or agent) always
    wins, so row-level security is the key condition itself; a filter that contradicts the scope
    yields an empty plan rather than a query."""
    wanted: dict[str, str] = {}
    for attribute, value in (
        ("vendor_code", filters.vendor),
        ("assigned_agent", filters.agent),
        ("campaign_source", filters.campaign),
        ("disposition", filters.disposition.value if filters.disposition else None),
    ):
        if value is not None:
            wanted[attribute] = value
    if filters.q:
        return _search_plan(scope, filters, wanted)
    scope_index: LeadIndex | None = None
    for index, forced in ((VENDOR_INDEX, scope.vendor_code), (AGENT_INDEX, scope.agent_id)):
        if forced is None:
            continue
        assert index.source is not None
        if wanted.get(index.source, forced) != forced:
            return QueryPlan(condition=None)
        wanted[index.source] = forced
        scope_index = index

    chosen = scope_index or next(index for index in INDEXES if index.source is None or index.source in wanted)
    partition_value = wanted.pop(chosen.source) if chosen.source else LISTED
    return QueryPlan(
        condition=KeyCondition(
            index=chosen.name,
            partition_name=chosen.key,
            partition_value=partition_value,
            sort_name=SORT_ATTRIBUTE,
            sort_from=filters.created_from,
            sort_to=filters.created_to,
            filters=wanted,
        )
    )


def _search_plan(scope: LeadScope, filters: LeadFilters, wanted: dict[str, str]) -> QueryPlan:
    """A prefix search: the search index bounds what is read to the matching prefix, and every
    other condition (the caller's scope included) filters those matches."""
    assert filters.q is not None
    for attribute, forced in (("vendor_code", scope.vendor_code), ("assigned_agent", scope.agent_id)):
        if forced is None:
            continue
        if wanted.get(attribute, forced) != forced:
            return QueryPlan(condition=None)
        wanted[attribute] = forced
    kind, prefix = search_term(filters.q)
    index = SEARCH_INDEXES[kind]
    ranges: dict[str, tuple[str | None, str | None]] = {}
    if filters.created_from or filters.created_to:
        ranges[SORT_ATTRIBUTE] = (filters.created_from, filters.created_to)
    return QueryPlan(
        condition=KeyCondition(
            index=index.name,
            partition_name=index.key,
            partition_value=LISTED,
            sort_name=index.sort,
            sort_prefix=prefix,
            newest_first=False,
            filters=wanted,
            filter_ranges=ranges,
        )
    )


class LeadRepository:
    ITEM = "lead"  # the name of its transaction items

    def __init__(self, table: Table) -> None:
        self._table = table

    @property
    def table_name(self) -> str:
        return self._table.name

    def get(self, scope: LeadScope, lead_id: str, consistent: bool = False) -> Lead:
        item = self._table.get({"lead_id": lead_id}, consistent=consistent)
        if item is None or item.get("deleted_at") or not scope.allows(item):
            raise LeadNotFound(lead_id)
        return Lead.model_validate(item)

    def put_new(self, lead: Lead) -> Write:
        """The transaction item that stores a new lead."""
        return Write(
            "Put",
            self._table.name,
            item=self.to_item(lead),
            condition="attribute_not_exists(lead_id)",
            name=self.ITEM,
        )

    def replace(self, lead: Lead, expected_version: int) -> Write:
        """The transaction item that stores `lead` over the version the caller read."""
        return Write(
            "Put",
            self._table.name,
            item=self.to_item(lead),
            condition="#version = :expected AND attribute_not_exists(deleted_at)",
            names={"#version": "version"},
            values={":expected": expected_version},
            name=self.ITEM,
        )

    def soft_delete(self, lead: Lead, deleted_at: str, deleted_by: str, history: dict[str, Any]) -> Write:
        """Keeps the lead, marked deleted and out of every index (list and search keys alike)."""
        removed = ", ".join(
            sorted({index.key for index in ALL_INDEXES} | {index.sort for index in SEARCH_INDEXES.values()})
        )
        return Write(
            "Update",
            self._table.name,
            key={"lead_id": lead.lead_id},
            update=(
                "SET deleted_at = :at, deleted_by = :by, updated_at = :at, #version = #version + :one, "
                f"update_history = list_append(update_history, :entry) REMOVE {removed}"
            ),
            condition="#version = :expected AND attribute_not_exists(deleted_at)",
            names={"#version": "version"},
            values={
                ":at": deleted_at,
                ":by": deleted_by,
                ":one": 1,
                ":expected": lead.version,
                ":entry": [history],
            },
            name=self.ITEM,
        )

    def list_page(
        self, scope: LeadScope, filters: LeadFilters, limit: int, start_key: dict[str, Any] | None
    ) -> Page:
        plan = plan_query(scope, filters)
        if plan.condition is None:
            return Page(items=[], last_key=None)
        page = self._table.query_page(plan.condition, limit=limit, start_key=start_key)
        page.items = [Lead.model_validate(item).model_dump(mode="python") for item in page.items]
        return page

    def put_many(self, leads: list[Lead]) -> None:
        """Stores leads as they are (demo data and imports of already-processed leads)."""
        self._table.batch_put([self.to_item(lead) for lead in leads])

    @staticmethod
    def to_item(lead: Lead) -> dict[str, Any]:
        return {**lead.model_dump(mode="python"), **index_attributes(lead)}
