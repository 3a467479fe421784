"""Response shapes of the stats routes (the dashboard's field names)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from shared.responses import Pagination
from shared.types import Number


class PeriodInfo(BaseModel):
    from_: str = Field(alias="from", serialization_alias="from")
    to: str
    days: int

    model_config = {"populate_by_name": True}


class TrendPoint(BaseModel):
    date: str
    revenue: Number


class Revenue(BaseModel):
    total: Number
    change: Number | None = Field(description="Percent change against the previous period")
    trend: list[TrendPoint]
    forecast: Number = Field(
        description="Least-squares projection of revenue over the next period of equal length"
    )


class CampaignCost(BaseModel):
    campaign: str | None
    leads: int
    revenue: Number
    conversions: int
    cpa: Number | None


class Cpa(BaseModel):
    average: Number | None
    change: Number | None
    breakdown: list[CampaignCost]


class Performer(BaseModel):
    agent: str
    name: str
    conversions: int
    sales: Number
    leads: int


class Agents(BaseModel):
    total: int
    online: int
    utilization: Number = Field(description="Open leads over capacity of online and busy agents, in percent")
    topPerformers: list[Performer]


class Funnel(BaseModel):
    new: int
    contacted: int
    qualified: int
    closed: int
    lost: int


class Conversion(BaseModel):
    leads: int = Field(description="Leads created in the period")
    conversions: int = Field(description="Leads closed (won) in the period")
    rate: Number = Field(description="Conversions over leads, in percent")
    change: Number | None
    funnel: Funnel
    velocity: Number | None = Field(description="Mean days from creation to close")


class DashboardStats(BaseModel):
    period: PeriodInfo
    revenue: Revenue
    cpa: Cpa
    agents: Agents
    conversion: Conversion


class Analytics(BaseModel):
    period: str
    granularity: str = Field(description="day, week (ISO) or month")
    labels: list[str]
    leads: list[int]
    revenue: list[Number]
    conversions: list[int]
    insights: list[str] = Field(description="Sentences computed from the numbers")


class AuditRecord(BaseModel):
    model_config = {"extra": "allow"}

    timestamp: str
    request_id: str
    user: str | None = None
    role: str | None = None
    action: str = Field(description="METHOD and route, e.g. 'PATCH /leads/{lead_id}'")
    path: str | None = None
    ip: str | None = None
    request: dict[str, Any] = Field(
        default_factory=dict, description="Sanitised: secrets and personal data masked"
    )
    status: int
    duration_ms: Number


class AuditPage(BaseModel):
    data: list[AuditRecord]
    pagination: Pagination
