"""Response shapes of the reports. Each report is `{report, from, to, vendor, rows, totals}`; its
CSV form has the same rows, one header row of the same field names."""

from __future__ import annotations

from pydantic import BaseModel, Field

from shared.types import Number


class Totals(BaseModel):
    leads: int
    revenue: Number
    conversions: int
    sales: Number


class DailyRow(BaseModel):
    date: str
    vendor_code: str
    lead_count: int
    revenue: Number
    avg_quality: Number | None
    conversions: int
    sales: Number


class VendorRow(BaseModel):
    vendor_code: str
    name: str | None
    leads: int
    revenue: Number
    avg_quality: Number | None
    conversions: int
    conversion_rate: Number = Field(description="conversions / leads, percent")
    cpa: Number | None = Field(description="revenue / conversions")
    sales: Number


class AgentRow(BaseModel):
    agent: str | None = Field(description="null: leads assigned to nobody")
    name: str | None
    leads: int
    revenue: Number
    conversions: int
    conversion_rate: Number
    sales: Number


class CampaignRow(BaseModel):
    campaign: str | None = Field(description="null: leads without a campaign")
    leads: int
    revenue: Number
    conversions: int
    conversion_rate: Number
    cpa: Number | None
    sales: Number


class ReportBase(BaseModel):
    report: str
    from_: str = Field(alias="from", serialization_alias="from")
    to: str
    vendor: str | None
    totals: Totals

    model_config = {"populate_by_name": True}


class DailyReport(ReportBase):
    rows: list[DailyRow]


class VendorReport(ReportBase):
    rows: list[VendorRow]


class AgentReport(ReportBase):
    rows: list[AgentRow]


class CampaignReport(ReportBase):
    rows: list[CampaignRow]
