"""The lead service's collaborators, built from the process-wide objects of `shared.dependencies`:
the one place that wires them."""

from __future__ import annotations

from leads.dedupe import DedupeKeys
from leads.directory import AgentPool, VendorDirectory
from leads.repository import LeadRepository
from leads.returns import LeadReturns
from leads.service import LeadService
from leads.usage import VendorUsage
from leads.writes import LeadWriter
from shared import dependencies
from shared.dynamo import Table
from shared.outbox import Outbox
from shared.returns import ReturnRecords


def lead_repository() -> LeadRepository:
    return LeadRepository(dependencies.leads_table())


def lead_service() -> LeadService:
    """Cheap to build: the table, cache and codec it wraps are the process-wide ones."""
    return LeadService(lead_repository(), dependencies.query_cache(), dependencies.cursor_codec())


def lead_writer(outbox: Outbox | None = None, leads: LeadRepository | None = None) -> LeadWriter:
    """The writer on the process-wide tables (tests may give their own outbox or repository)."""
    settings = dependencies.get_settings()
    return LeadWriter(
        leads=leads or lead_repository(),
        directory=VendorDirectory(dependencies.vendors_table(), dependencies.pricing_table()),
        agents=AgentPool(dependencies.users_table()),
        dedupe=DedupeKeys(Table(settings.dedupe_table)),
        usage=VendorUsage(Table(settings.usage_table), dependencies.business_zone()),
        outbox=outbox or dependencies.outbox(),
        cache=dependencies.query_cache(),
        pricer=dependencies.pricer(),
    )


def lead_returns() -> LeadReturns:
    return LeadReturns(
        leads=lead_repository(),
        returns=ReturnRecords(dependencies.returns_table()),
        directory=VendorDirectory(dependencies.vendors_table(), dependencies.pricing_table()),
        outbox=dependencies.outbox(),
        cache=dependencies.query_cache(),
    )
