"""Data access for the leads table: the only module that knows its keys and indexes.

Row-level security lives here: every read takes the caller's `LeadScope`, and a lead outside the
scope is reported exactly like a missing one.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from leads.models import Lead, LeadFilters
from shared.dynamo import KeyCondition, Page, Table
from shared.errors import LeadNotFound
from shared.security import LeadScope

# Index name -> partition attribute; all are sorted by created_at.
TIME_INDEX = "TimeIndex"
VENDOR_INDEX = "VendorIndex"
DISPOSITION_INDEX = "DispositionIndex"
CAMPAIGN_INDEX = "CampaignIndex"
AGENT_INDEX = "AgentIndex"
INDEX_PARTITIONS = {
    TIME_INDEX: "listing",
    VENDOR_INDEX: "vendor_code",
    DISPOSITION_INDEX: "disposition",
    CAMPAIGN_INDEX: "campaign_source",
    AGENT_INDEX: "assigned_agent",
}
SORT_ATTRIBUTE = "created_at"
# Every visible lead carries listing=LEAD, so TimeIndex lists all leads newest first. A single
# partition takes about 1,000 writes a second, far above any lead-posting rate this serves.
LISTED = "LEAD"

# Filter attribute name on the lead -> the index that serves it, most selective first.
FILTER_INDEXES = (
    ("vendor_code", VENDOR_INDEX),
    ("assigned_agent", AGENT_INDEX),
    ("campaign_source", CAMPAIGN_INDEX),
    ("disposition", DISPOSITION_INDEX),
)


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
    scope_partition: tuple[str, str] | None = None
    for attribute, forced, index in (
        ("vendor_code", scope.vendor_code, VENDOR_INDEX),
        ("assigned_agent", scope.agent_id, AGENT_INDEX),
    ):
        if forced is None:
            continue
        if wanted.get(attribute, forced) != forced:
            return QueryPlan(condition=None)
        wanted[attribute] = forced
        scope_partition = (attribute, index)

    partition_attribute, index = scope_partition or next(
        ((attribute, index) for attribute, index in FILTER_INDEXES if attribute in wanted),
        ("listing", TIME_INDEX),
    )
    partition_value = wanted.pop(partition_attribute, LISTED)
    return QueryPlan(
        condition=KeyCondition(
            index=index,
            partition_name=partition_attribute,
            partition_value=partition_value,
            sort_name=SORT_ATTRIBUTE,
            sort_from=filters.created_from,
            sort_to=filters.created_to,
            filters=wanted,
        )
    )


class LeadRepository:
    def __init__(self, table: Table) -> None:
        self._table = table

    def get(self, scope: LeadScope, lead_id: str) -> Lead:
        item = self._table.get({"lead_id": lead_id})
        if item is None or not scope.allows(item):
            raise LeadNotFound(lead_id)
        return Lead.model_validate(item)

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
        return {**lead.model_dump(mode="python"), "listing": LISTED}
