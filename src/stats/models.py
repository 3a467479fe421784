"""Response shapes of the stats routes (the dashboard's field names)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from shared.responses import Pagination
from shared.types import Number


class PeriodInfo(BaseModel):
    from_: str = Field(alias="from", serialization_alias="from", description="First day (business time zone)")
    to: str = Field(description="Last day, included")
    days: int
    partial: bool = Field(description="Whether the last day is today, not over yet")
    elapsed: Number = Field(
        description="Share of the last day gone by (1 when it is over); every change compares the "
        "previous period up to the same point"
    )

    model_config = {"populate_by_name": True}


CHANGE = (
    "Percent change against the previous period of as many days, taken to the same point when this "
    "one ends today (its last day prorated); null when that period had none"
)


class TrendPoint(BaseModel):
    date: str
    revenue: Number = Field(description="Lead spend of the leads created that day")


class ForecastRange(BaseModel):
    low: Number = Field(description="Low end of the forecast's range")
    high: Number = Field(description="High end of the forecast's range")
    method: str = Field(description="How the forecast is made (docs/stats.md)")


class Revenue(BaseModel):
    total: Number = Field(description="Lead spend: sum of lead_value of the leads created in the period")
    change: Number | None = Field(description=CHANGE)
    trend: list[TrendPoint] = Field(description="Lead spend per day of the period")
    forecast: Number = Field(
        description="Projected lead spend over as many days as the period, from the day after the last "
        "complete one (docs/stats.md, Forecast)"
    )
    forecastRange: ForecastRange
    returns: int = Field(description="Leads created in the period whose return is approved")
    credits: Number = Field(description="Sum of lead_value of those leads, credited back to their vendors")
    netSpend: Number = Field(description="Lead spend less credits: what CPA and return on spend divide")


class Sales(BaseModel):
    total: Number = Field(description="Sum of sale_amount of the leads closed in the period")
    change: Number | None = Field(description=CHANGE)
    returnOnSpend: Number | None = Field(
        description="Sales over net lead spend (2.5 = $2.50 of sales per $1 of leads); null without net spend"
    )
    returnOnSpendChange: Number | None = Field(description=CHANGE)


class CampaignCost(BaseModel):
    campaign: str | None = Field(description="null for leads without a campaign")
    leads: int = Field(description="Leads created in the period")
    revenue: Number = Field(description="Lead spend of those leads")
    returns: int = Field(description="Of those leads, the ones whose return is approved")
    credits: Number = Field(description="Sum of lead_value of those returned leads")
    netSpend: Number = Field(description="Lead spend less credits")
    conversions: int = Field(description="Leads closed in the period")
    cpa: Number | None = Field(description="Net lead spend over conversions; null without conversions")
    sales: Number = Field(description="Sum of sale_amount of the leads closed in the period")
    returnOnSpend: Number | None = Field(description="Sales over net lead spend; null without net spend")
    converted: int = Field(description="Leads created in the period and closed by now")
    conversionRate: Number | None = Field(
        description="Cohort rate: converted over leads, in percent; null without leads"
    )


class Cpa(BaseModel):
    average: Number | None = Field(
        description="Cost per acquisition: net lead spend (less credits) over conversions; null without "
        "conversions"
    )
    change: Number | None = Field(description=CHANGE)
    breakdown: list[CampaignCost] = Field(description="Per campaign, by lead spend (highest first)")


class Performer(BaseModel):
    agent: str
    name: str
    conversions: int = Field(description="Leads of the agent closed in the period")
    sales: Number = Field(description="Sum of sale_amount of those leads")
    leads: int = Field(description="Leads of the agent created in the period")
    converted: int = Field(description="Of those leads, the ones closed by now")
    conversionRate: Number | None = Field(
        description="Cohort rate: converted over leads, in percent; null without leads"
    )


class Agents(BaseModel):
    total: int
    online: int
    utilization: Number | None = Field(
        description="Open leads over the capacity of online and busy agents, in percent; "
        "null without capacity"
    )
    topPerformers: list[Performer] = Field(description="The agents with most conversions in the period")


class Funnel(BaseModel):
    new: int
    contacted: int
    qualified: int
    closed: int
    lost: int


class Conversion(BaseModel):
    leads: int = Field(description="Leads created in the period")
    converted: int = Field(description="Leads created in the period and closed by now (the cohort)")
    rate: Number | None = Field(
        description="Cohort conversion rate: converted over leads, in percent (never above 100); "
        "null without leads"
    )
    change: Number | None = Field(description=CHANGE)
    conversions: int = Field(description="Leads closed in the period, whenever created (a period count)")
    funnel: Funnel = Field(description="The period's leads by their disposition now")
    velocity: Number | None = Field(
        description="Mean days from creation to close of the leads closed in the period; null without any"
    )


class DashboardStats(BaseModel):
    period: PeriodInfo
    revenue: Revenue
    sales: Sales
    cpa: Cpa
    agents: Agents
    conversion: Conversion


class Analytics(BaseModel):
    period: str | None = Field(description="The named period asked for; null for from/to")
    from_: str = Field(alias="from", serialization_alias="from", description="First day")
    to: str = Field(description="Last day, included")
    vendor: str | None = Field(description="The vendor whose series these are; null for all")
    granularity: str = Field(description="day, week (ISO) or month")
    labels: list[str] = Field(description="Each bucket: YYYY-MM-DD, YYYY-Www (ISO week) or YYYY-MM")
    leads: list[int] = Field(description="Leads created in each bucket")
    revenue: list[Number] = Field(description="Lead spend of the leads created in each bucket")
    conversions: list[int] = Field(description="Leads closed in each bucket")
    sales: list[Number] = Field(description="Sum of sale_amount of the leads closed in each bucket")
    converted: list[int] = Field(description="Leads created in each bucket and closed by now")
    partial: list[bool] = Field(
        description="Whether the bucket is incomplete: it holds today, or the range covers only part of it"
    )
    insights: list[str] = Field(
        description="Sentences computed from the numbers; a partial bucket is never ranked nor said to "
        "rise or fall"
    )

    model_config = {"populate_by_name": True}


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
