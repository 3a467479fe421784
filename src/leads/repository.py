"""Data access for the leads table: the only module that knows its keys and indexes.

Row-level security lives here: every read takes the caller's `LeadScope`, and a lead outside the
scope is reported exactly like a missing one.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from leads.models import Lead, LeadFilters
from leads.normalize import search_form
from shared.dynamo import ConditionFailed, KeyCondition, Page, Table, Write
from shared.errors import InvalidCursor, LeadNotFound
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
# `q` searches by prefix: of the email, of the phone (E.164), or of the name in its search form
# (`search_form`) written both ways round, so a prefix of the first name, of the last name or of
# either full name ("jane do", "doe ja") is a prefix of one of them.
SEARCH_INDEXES = {
    "email": LeadIndex("EmailSearchIndex", "ix_all", None, sort="ix_email"),
    "phone": LeadIndex("PhoneSearchIndex", "ix_all", None, sort="ix_phone"),
    "first_name": LeadIndex("FirstNameSearchIndex", "ix_all", None, sort="ix_first_name"),  # "first last"
    "last_name": LeadIndex("NameSearchIndex", "ix_all", None, sort="ix_name"),  # "last first"
}
ALL_INDEXES = (*INDEXES, *SEARCH_INDEXES.values())
PHONE_SEARCH = re.compile(r"^\+?[\d\s().-]+$")
# In the cursor of a list: which of the plan's queries it continues (a search may run several).
QUERY_POSITION = "query"
# Every attribute a stored lead may carry only as an index key.
INDEX_KEYS = frozenset(
    {index.key for index in ALL_INDEXES} | {index.sort for index in SEARCH_INDEXES.values()}
)


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
    first, last = search_form(lead.first_name or ""), search_form(lead.last_name or "")
    search = {
        "ix_email": lead.email,
        "ix_phone": lead.phone,
        "ix_first_name": f"{first} {last}".strip() if first else None,
        "ix_name": f"{last} {first}".strip() if last else None,
    }
    return keys | {name: value for name, value in search.items() if value}


def search_terms(q: str) -> tuple[tuple[str, str], ...]:
    """What `q` searches, in the order its matches are listed, each with the stored form of its
    prefix (a kind of `SEARCH_INDEXES`): an email when `q` has an "@" (or a dot and no space); a
    phone when it is digits and phone punctuation; else a name, written first name first, then
    last name first. A plain word is not also looked up as an email: most emails start with their
    owner's name, so that lookup would mostly read again the leads the name already found."""
    text = " ".join(q.split())
    if "@" in text or ("." in text and " " not in text):
        return (("email", text.lower()),)
    digits = re.sub(r"\D", "", text)
    if PHONE_SEARCH.match(text) and len(digits) >= 3:
        # Numbers are stored as E.164. A bare number is taken as US; no US area code starts
        # with 1, so a leading 1 is the country code.
        if text.startswith("+") or digits.startswith("1"):
            return (("phone", f"+{digits}"),)
        return (("phone", f"+1{digits}"),)
    name = search_form(text)
    return (("first_name", name), ("last_name", name)) if name else ()


@dataclass(frozen=True)
class QueryPlan:
    """The Queries that answer a list request, read one after the other: one for a list, one per
    searched index for a search. None when the scope and the filters exclude each other, or the
    search term has nothing to search."""

    conditions: tuple[KeyCondition, ...]

    @property
    def condition(self) -> KeyCondition | None:
        """The first Query (a list's only one)."""
        return self.conditions[0] if self.conditions else None

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
            return QueryPlan(conditions=())
        wanted[index.source] = forced
        scope_index = index

    chosen = scope_index or next(index for index in INDEXES if index.source is None or index.source in wanted)
    partition_value = wanted.pop(chosen.source) if chosen.source else LISTED
    return QueryPlan(
        conditions=(
            KeyCondition(
                index=chosen.name,
                partition_name=chosen.key,
                partition_value=partition_value,
                sort_name=SORT_ATTRIBUTE,
                sort_from=filters.created_from,
                sort_to=filters.created_to,
                filters=wanted,
            ),
        )
    )


def _search_plan(scope: LeadScope, filters: LeadFilters, wanted: dict[str, str]) -> QueryPlan:
    """A prefix search: one Query per searched index, each bounded to the matching prefix, and
    every other condition (the caller's scope included) filtering those matches. A lead that an
    earlier Query of the plan already matches is left out of the later ones, so each lead is
    listed once whatever page it falls on."""
    assert filters.q is not None
    for attribute, forced in (("vendor_code", scope.vendor_code), ("assigned_agent", scope.agent_id)):
        if forced is None:
            continue
        if wanted.get(attribute, forced) != forced:
            return QueryPlan(conditions=())
        wanted[attribute] = forced
    ranges: dict[str, tuple[str | None, str | None]] = {}
    if filters.created_from or filters.created_to:
        ranges[SORT_ATTRIBUTE] = (filters.created_from, filters.created_to)
    conditions: list[KeyCondition] = []
    earlier: dict[str, str] = {}
    for kind, prefix in search_terms(filters.q):
        index = SEARCH_INDEXES[kind]
        conditions.append(
            KeyCondition(
                index=index.name,
                partition_name=index.key,
                partition_value=LISTED,
                sort_name=index.sort,
                sort_prefix=prefix,
                newest_first=False,
                filters=dict(wanted),
                filter_ranges=ranges,
                filter_not_prefixes=dict(earlier),
            )
        )
        earlier[index.sort] = prefix
    return QueryPlan(conditions=tuple(conditions))


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
        removed = ", ".join(sorted(INDEX_KEYS))
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
        page = self._read_in_turn(plan.conditions, limit, start_key)
        page.items = [Lead.model_validate(item).model_dump(mode="python") for item in page.items]
        return page

    def _read_in_turn(
        self, conditions: tuple[KeyCondition, ...], limit: int, start_key: dict[str, Any] | None
    ) -> Page:
        """Up to `limit` items of the Queries read one after the other. The last key names the
        Query it continues (`QUERY_POSITION`), with no key of its own when that Query is next to
        start."""
        key = dict(start_key or {})
        position = key.pop(QUERY_POSITION, 0)
        if not isinstance(position, int) or not 0 <= position <= len(conditions):
            raise InvalidCursor("The cursor is invalid or belongs to another query")
        page = Page(items=[], last_key=None)
        while position < len(conditions):
            if len(page.items) >= limit:
                page.last_key = {QUERY_POSITION: position}
                break
            part = self._table.query_page(conditions[position], limit - len(page.items), key or None)
            page.items += part.items
            page.scanned_count += part.scanned_count
            page.round_trips += part.round_trips
            if part.last_key is not None:
                page.last_key = {**part.last_key, QUERY_POSITION: position}
                break
            position, key = position + 1, {}
        return page

    def refresh_index_keys(self, item: dict[str, Any]) -> bool:
        """Rewrites the index keys of a stored lead that differ from those its fields give today
        (after what an index holds has changed); whether it did. A deleted lead keeps none. The
        write is conditional on the version read: a lead changed meanwhile was stored with the
        keys of today by its own writer, and is left as it is."""
        if item.get("deleted_at"):
            return False
        wanted = index_attributes(Lead.model_validate(item))
        stale = sorted(INDEX_KEYS & item.keys() - wanted.keys())
        changed = {key: value for key, value in wanted.items() if item.get(key) != value}
        if not changed and not stale:
            return False
        names: dict[str, str] = {"#version": "version"}
        values: dict[str, Any] = {":expected": item["version"]}
        clauses = []
        for position, key in enumerate(sorted(changed)):
            names[f"#k{position}"], values[f":k{position}"] = key, changed[key]
            clauses.append(f"#k{position} = :k{position}")
        update = f"SET {', '.join(clauses)}" if clauses else ""
        if stale:
            names |= {f"#s{position}": key for position, key in enumerate(stale)}
            update += f" REMOVE {', '.join(f'#s{position}' for position in range(len(stale)))}"
        write = Write(
            "Update",
            self._table.name,
            key={"lead_id": item["lead_id"]},
            update=update.strip(),
            condition="#version = :expected AND attribute_not_exists(deleted_at)",
            names=names,
            values=values,
            name=self.ITEM,
        )
        try:
            self._table.write(write)
        except ConditionFailed:
            return False
        return True

    def put_many(self, leads: list[Lead]) -> None:
        """Stores leads as they are (demo data and imports of already-processed leads)."""
        self._table.batch_put([self.to_item(lead) for lead in leads])

    @staticmethod
    def to_item(lead: Lead) -> dict[str, Any]:
        return {**lead.model_dump(mode="python"), **index_attributes(lead)}
