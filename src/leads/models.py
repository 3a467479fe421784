"""Lead domain model and the request/response shapes of the lead routes."""

from __future__ import annotations

from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field

from shared.http import Pagination

Money = Annotated[Decimal, Field(max_digits=12, decimal_places=2)]


class Disposition(StrEnum):
    NEW = "new"
    CONTACTED = "contacted"
    QUALIFIED = "qualified"
    CLOSED = "closed"
    LOST = "lost"


class HistoryEntry(BaseModel):
    timestamp: str
    user: str
    action: str
    changes: dict[str, Any] = Field(default_factory=dict)


class Lead(BaseModel):
    model_config = ConfigDict(extra="ignore")

    lead_id: str = Field(description="ULID: sortable by creation time")
    vendor_code: str
    campaign_source: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    email: str | None = Field(default=None, description="Normalized to lower case")
    phone: str | None = Field(default=None, description="E.164")
    state: str | None = None
    zip: str | None = None
    tcpa_consent: bool = False
    consent_text: str | None = None
    ip_address: str | None = None
    user_agent: str | None = None
    trustedform_cert_url: str | None = None
    landing_page_url: str | None = None
    disposition: Disposition = Disposition.NEW
    lead_value: Money = Decimal("35.00")
    quality_score: Annotated[int, Field(ge=1, le=10)] = 5
    assigned_agent: str | None = None
    notes: str | None = None
    created_at: str
    created_by: str
    updated_at: str
    last_contact: str | None = None
    closed_date: str | None = None
    sale_amount: Money | None = None
    is_test: bool = False
    update_history: list[HistoryEntry] = Field(default_factory=list)
    version: int = 1


class LeadPage(BaseModel):
    data: list[Lead]
    pagination: Pagination


class LeadFilters(BaseModel):
    """Filters of GET /leads. Each is served by a Query on an index of the leads table."""

    model_config = ConfigDict(frozen=True)

    vendor: str | None = None
    disposition: Disposition | None = None
    campaign: str | None = None
    agent: str | None = None
    created_from: str | None = None
    created_to: str | None = None
