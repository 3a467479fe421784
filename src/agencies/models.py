"""Request and response shapes of the agencies service (the dashboard's field names)."""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)

from agencies.webhooks import MAX_URL_LENGTH, PostbackEvent
from shared.acceptance import AcceptanceRules
from shared.pricing import HourMultiplier, check_bands, check_price_range
from shared.records import Availability, UserStatus
from shared.responses import Pagination
from shared.types import EMAIL_SCHEMA, Email, JsonBody, Money, Number, omittable

VENDOR_CODE_PATTERN = r"^[A-Z0-9]{2,12}$"
Name = Annotated[str, StringConstraints(min_length=1, max_length=120, pattern=r"^[^\x00-\x1f]+$")]
MAX_GOAL = 1_000_000
MAX_CAP = 1_000_000


class AgencyStatus(StrEnum):
    ACTIVE = "active"
    PAUSED = "paused"


# -- agencies -------------------------------------------------------------------------------------
class AgencyFields(JsonBody):
    """What an admin may set on an agency (all optional: PATCH sends only what changes; a cap or a
    contact set to null is removed, the other fields cannot be)."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra={"minProperties": 1})

    name: Name = omittable()
    status: AgencyStatus = omittable()
    monthly_goal: int = omittable(ge=1, le=MAX_GOAL)
    daily_cap: int | None = Field(default=None, ge=1, le=MAX_CAP, description="null removes the cap")
    monthly_cap: int | None = Field(default=None, ge=1, le=MAX_CAP, description="null removes the cap")
    hourly_cap: int | None = Field(default=None, ge=1, le=MAX_CAP, description="null removes the cap")
    dedupe_window_days: int = omittable(ge=1, le=365)
    return_window_days: int = omittable(
        ge=0, le=365, description="Days after a lead's creation its return may be asked for (0: none)"
    )
    acceptance: AcceptanceRules = omittable(
        description="The rules the vendor's leads must meet (docs/vendor-posting.md); replaced whole"
    )
    test_mode: bool = omittable()
    contact_name: str | None = Field(default=None, max_length=120, pattern=r"^[^\x00-\x1f]*$")
    contact_email: Email | None = None
    contact_phone: str | None = Field(default=None, max_length=32, pattern=r"^[0-9+() .-]*$")


class AgencyCreate(AgencyFields):
    vendor_code: str = Field(pattern=VENDOR_CODE_PATTERN, description="e.g. V006")
    name: Name


class Agency(BaseModel):
    vendor_code: str
    name: str
    status: AgencyStatus
    monthly_goal: int
    daily_cap: int | None = None
    monthly_cap: int | None = None
    hourly_cap: int | None = None
    dedupe_window_days: int
    return_window_days: int
    test_mode: bool
    acceptance: AcceptanceRules
    contact_name: str | None = None
    contact_email: str | None = None
    contact_phone: str | None = None
    created_at: str | None = None
    updated_at: str | None = None


class Trend(BaseModel):
    direction: str = Field(description="up, down or flat: leads of the last 30 days against the 30 before")
    change: Number | None = Field(description="Percent change of those leads (null without earlier leads)")
    daily: list[int] = Field(description="Leads per day over the last 30 days, oldest first")


class Performance(BaseModel):
    """Definitions: `shared.measures` (docs/stats.md); windows and rules: docs/agencies.md."""

    leads: int = Field(description="Leads created in the last 90 days")
    converted: int = Field(description="Of those leads, the ones closed by now")
    conversionRate: Number | None = Field(
        description="converted / leads, percent: a cohort rate, never above 100; null without leads"
    )
    leadsThisMonth: int
    monthlyGoal: int
    goalProgress: Number = Field(description="leadsThisMonth / monthlyGoal, percent")
    revenue: Number = Field(description="Lead spend: Σ lead_value of the leads of the last 90 days")
    returns: int = Field(description="Of the leads of the last 90 days, those whose return is approved")
    credits: Number = Field(description="Σ lead_value of those returned leads, credited to the agency")
    netSpend: Number = Field(description="revenue - credits")
    sales: Number = Field(description="Σ sale_amount of the leads closed in the last 90 days")
    returnOnSpend: Number | None = Field(
        description="sales / netSpend over the last 90 days, 2 decimals; null without net spend"
    )
    avgCPA: Number | None = Field(
        description="netSpend / conversions over the last 90 days; null without conversions or without leads"
    )
    topCampaign: str | None = Field(description="The campaign with the most leads in the last 90 days")
    campaignROI: Number | None = Field(
        description="Top campaign: (sales - lead spend) / lead spend = (return on spend - 1) * 100, percent; "
        "null without spend"
    )
    averageQuality: Number | None
    grade: str | None = Field(description="A-F from the documented rules; null without leads")
    trend: Trend


class Insights(BaseModel):
    strengths: list[str]
    opportunities: list[str]
    recommendations: list[str]


class AgencyWithPerformance(Agency):
    performance: Performance
    insights: Insights


class AgencyPage(BaseModel):
    data: list[AgencyWithPerformance]
    pagination: Pagination


class Credential(BaseModel):
    user_id: str
    vendor_code: str
    token: str = Field(description="Bearer token for the agency's integration; shown only once")
    expires_at: str


# -- pricing --------------------------------------------------------------------------------------
class SettingsChanges(JsonBody):
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra={"minProperties": 1})

    default_price: Money = omittable(gt=0, le=10_000)
    smart_pricing_enabled: bool = omittable()
    min_price: Money = omittable(gt=0, le=10_000)
    max_price: Money = omittable(gt=0, le=10_000)
    time_of_day_multipliers: list[HourMultiplier] = omittable(max_length=24)

    @model_validator(mode="after")
    def _not_empty_and_consistent(self) -> SettingsChanges:
        if not self.model_fields_set:
            raise ValueError("nothing to change")
        check_price_range(self.min_price, self.max_price)
        check_bands(self.time_of_day_multipliers)
        return self


class VendorPriceBody(JsonBody):
    model_config = ConfigDict(extra="forbid", frozen=True)

    price: Money = Field(gt=0, le=10_000)


class VendorPrice(BaseModel):
    vendor_code: str
    price: Number


class PricingSettingsView(BaseModel):
    default_price: Number
    smart_pricing_enabled: bool
    min_price: Number
    max_price: Number
    time_of_day_multipliers: list[HourMultiplier]


class PricingView(BaseModel):
    settings: PricingSettingsView
    vendors: list[VendorPrice]


class QuoteRequest(JsonBody):
    model_config = ConfigDict(extra="forbid", frozen=True)

    vendor_code: str = Field(pattern=VENDOR_CODE_PATTERN)
    quality_score: int = Field(ge=1, le=10)


class Factors(BaseModel):
    demand: Number
    quality: Number
    vendorPerformance: Number
    timeOfDay: Number


class QuoteResponse(BaseModel):
    vendor_code: str
    quality_score: int
    price: Number
    base: Number
    smart_pricing_enabled: bool
    factors: Factors | None = Field(description="Each factor's value; null with smart pricing off")


# -- agents ---------------------------------------------------------------------------------------
# A staff member signs in with its email: besides a valid address, one the user pool takes as a
# username (ASCII, a letter or a digit first, a top-level domain of two letters or more), not a
# special-use domain.
STAFF_EMAIL_PATTERN = (
    r"^(?!.*\.(?:arpa|invalid|local|localhost|onion|test)$)"
    r"[A-Za-z0-9][A-Za-z0-9._%+-]*@[A-Za-z0-9.-]+\.[A-Za-z]{2,}$"
)


def _sign_in_address(value: str) -> str:
    if not re.fullmatch(STAFF_EMAIL_PATTERN, value):
        raise ValueError(
            "a staff email is ASCII letters, digits and ._%+- (a letter or a digit first), "
            "with a top-level domain of two letters or more"
        )
    return value


StaffEmail = Annotated[
    Email, AfterValidator(_sign_in_address), WithJsonSchema({**EMAIL_SCHEMA, "pattern": STAFF_EMAIL_PATTERN})
]


class AgentCreate(JsonBody):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    email: StaffEmail
    capacity: int = Field(default=20, ge=0, le=1000, description="Most open leads at once")
    availability: Availability = Availability.OFFLINE


class AgentChanges(JsonBody):
    """An agent may set only its own availability; a manager or admin may set everything."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra={"minProperties": 1})

    availability: Availability = omittable()
    capacity: int = omittable(ge=0, le=1000)
    status: UserStatus = omittable()
    name: Name = omittable()

    @model_validator(mode="after")
    def _not_empty(self) -> AgentChanges:
        if not self.model_fields_set:
            raise ValueError("nothing to change")
        return self


class Agent(BaseModel):
    user_id: str
    name: str
    email: str | None = None
    status: UserStatus
    availability: Availability
    capacity: int
    open_leads: int
    utilization: Number | None = Field(description="open_leads / capacity, percent; null without capacity")
    leads: int = Field(description="Leads created in the last 30 days and assigned to the agent")
    conversions: int = Field(description="The agent's leads closed in the last 30 days (a period count)")
    converted: int = Field(
        description="Of the agent's leads created in the last 30 days, those closed by now"
    )
    conversion_rate: Number | None = Field(
        description="Cohort rate: converted / leads over the last 30 days, percent; null without leads"
    )
    sales: Number = Field(description="Sale amount closed in the last 30 days")


class AgentPage(BaseModel):
    data: list[Agent]
    pagination: Pagination


FIRST_SIGN_IN_DESCRIPTION = (
    "The account's temporary password, shown this once and stored nowhere by the API: the user pool "
    "also emails it. The first sign-in must replace it (NEW_PASSWORD_REQUIRED); it expires after 3 days."
)


class NewAgent(Agent):
    temporary_password: str = Field(description=FIRST_SIGN_IN_DESCRIPTION)


# -- managers -------------------------------------------------------------------------------------
class ManagerCreate(JsonBody):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: Name
    email: StaffEmail


class ManagerChanges(JsonBody):
    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra={"minProperties": 1})

    status: UserStatus = omittable()
    name: Name = omittable()

    @model_validator(mode="after")
    def _not_empty(self) -> ManagerChanges:
        if not self.model_fields_set:
            raise ValueError("nothing to change")
        return self


class Manager(BaseModel):
    user_id: str
    name: str
    email: str | None = None
    status: UserStatus


class NewManager(Manager):
    temporary_password: str = Field(description=FIRST_SIGN_IN_DESCRIPTION)


# -- postbacks ------------------------------------------------------------------------------------
class PostbackEndpointBody(JsonBody):
    """The one endpoint a vendor's postbacks go to, and the events it wants."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    url: str = Field(
        min_length=1,
        max_length=MAX_URL_LENGTH,
        description="https URL whose host resolves to public addresses only (checked again at every send)",
    )
    events: list[PostbackEvent] = Field(
        min_length=1, max_length=len(PostbackEvent), json_schema_extra={"uniqueItems": True}
    )
    rotate_secret: bool = Field(
        default=False,
        description="Make a new signing secret (shown in the answer); the old one signs for 24 h more",
    )

    @model_validator(mode="after")
    def _distinct_events(self) -> PostbackEndpointBody:
        if len(set(self.events)) != len(self.events):
            raise ValueError("events must not repeat")
        return self


class PostbackEndpoint(BaseModel):
    vendor_code: str
    url: str
    events: list[PostbackEvent]
    created_at: str
    updated_at: str
    secret_rotated_at: str | None = Field(default=None, description="When the signing secret last changed")
    secret: str | None = Field(
        default=None,
        description="The signing secret (whsec_...): only in the answer that creates or rotates it",
    )


class DeliveryStatus(StrEnum):
    PENDING = "pending"
    DELIVERED = "delivered"
    FAILED = "failed"


class DeliveryAttempt(BaseModel):
    attempt: int
    at: str
    outcome: str = Field(
        description="delivered, failed (the receiver answered otherwise or not at all) or refused"
    )
    response_code: int | None = None
    latency_ms: int | None = None
    error: str | None = None
    manual: bool = False


class PostbackDelivery(BaseModel):
    model_config = ConfigDict(extra="ignore")

    delivery_id: str
    webhook_id: str = Field(description="The webhook-id header of every attempt (the delivery's id)")
    vendor_code: str
    event_type: PostbackEvent
    status: DeliveryStatus
    created_at: str
    attempts: int = Field(description="Attempts made")
    last_status_code: int | None = Field(
        default=None, description="The receiver's answer to the latest attempt"
    )
    last_latency_ms: int | None = None
    next_attempt_at: str | None = Field(default=None, description="While pending: when it is tried next")
    attempt_log: list[DeliveryAttempt] = Field(description="Every attempt, oldest first")
    payload: dict[str, Any] = Field(description="The body sent on every attempt")


class DeliveryPage(BaseModel):
    data: list[PostbackDelivery]
    pagination: Pagination
