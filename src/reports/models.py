"""Response shapes of the reports. Each report is `{report, from, to, vendor, rows, totals}`; its
CSV form has the same rows, one header row of the same field names."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, Field

from shared.types import Number

# The measures every row and the totals carry (definitions: `shared.measures`, docs/stats.md).
Leads = Annotated[int, Field(description="Leads created in the days (the cohort)")]
Revenue = Annotated[Number, Field(description="Lead spend: Σ lead_value of the leads created in the days")]
Returns = Annotated[int, Field(description="Leads created in the days whose return is approved")]
Credits = Annotated[
    Number, Field(description="Σ lead_value of those returned leads, credited to their vendors")
]
NetSpend = Annotated[Number, Field(description="revenue - credits: what CPA and return on spend divide")]
Conversions = Annotated[int, Field(description="Leads closed in the days, whenever created (a period count)")]
Converted = Annotated[int, Field(description="Leads created in the days that are closed by now")]
ConversionRate = Annotated[
    Number | None,
    Field(description="converted / leads, percent (cohort rate, never above 100); null without leads"),
]
Cpa = Annotated[
    Number | None,
    Field(description="net_spend / conversions; null without conversions or without leads in the days"),
]
Sales = Annotated[Number, Field(description="Σ sale_amount of the leads closed in the days")]
ReturnOnSpend = Annotated[
    Number | None,
    Field(description="sales / net_spend (sales per unit of net lead spend); null without net spend"),
]
AverageQuality = Annotated[
    Number | None, Field(description="Mean quality score of the leads; null without leads")
]


class Totals(BaseModel):
    leads: Leads
    revenue: Revenue
    returns: Returns
    credits: Credits
    net_spend: NetSpend
    conversions: Conversions
    converted: Converted
    conversion_rate: ConversionRate
    cpa: Cpa
    sales: Sales
    return_on_spend: ReturnOnSpend


class DailyRow(BaseModel):
    date: str
    vendor_code: str
    lead_count: Leads
    revenue: Revenue
    returns: Returns
    credits: Credits
    net_spend: NetSpend
    avg_quality: AverageQuality
    conversions: Conversions
    converted: Converted
    conversion_rate: ConversionRate
    cpa: Cpa
    sales: Sales
    return_on_spend: ReturnOnSpend


class VendorRow(BaseModel):
    vendor_code: str
    name: str | None
    leads: Leads
    revenue: Revenue
    returns: Returns
    credits: Credits
    net_spend: NetSpend
    avg_quality: AverageQuality
    conversions: Conversions
    converted: Converted
    conversion_rate: ConversionRate
    cpa: Cpa
    sales: Sales
    return_on_spend: ReturnOnSpend


class AgentRow(BaseModel):
    agent: str | None = Field(description="null: leads assigned to nobody")
    name: str | None
    leads: Leads
    revenue: Revenue
    returns: Returns
    credits: Credits
    net_spend: NetSpend
    conversions: Conversions
    converted: Converted
    conversion_rate: ConversionRate
    cpa: Cpa
    sales: Sales
    return_on_spend: ReturnOnSpend


class CampaignRow(BaseModel):
    campaign: str | None = Field(description="null: leads without a campaign")
    leads: Leads
    revenue: Revenue
    returns: Returns
    credits: Credits
    net_spend: NetSpend
    conversions: Conversions
    converted: Converted
    conversion_rate: ConversionRate
    cpa: Cpa
    sales: Sales
    return_on_spend: ReturnOnSpend


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
