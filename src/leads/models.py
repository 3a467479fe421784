"""Lead domain model and the request/response shapes of the lead routes."""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from leads.normalize import PHONE_PATTERN
from shared.acceptance import POSTING_FIELDS
from shared.records import USER_ID_PATTERN
from shared.responses import ErrorInfo, Pagination
from shared.returns import ReturnStatus
from shared.types import EMAIL_SCHEMA, JsonBody, Money


class Disposition(StrEnum):
    NEW = "new"
    CONTACTED = "contacted"
    QUALIFIED = "qualified"
    CLOSED = "closed"
    LOST = "lost"


# The columns of GET /leads?format=csv: who the lead is, the consent evidence it came with, and
# what became of it (the history and notes stay in the JSON).
EXPORT_COLUMNS = (
    "lead_id",
    "created_at",
    "vendor_code",
    "campaign_source",
    "first_name",
    "last_name",
    "email",
    "phone",
    "state",
    "zip",
    "tcpa_consent",
    "consent_text",
    "ip_address",
    "user_agent",
    "trustedform_cert_url",
    "jornaya_leadid",
    "landing_page_url",
    "submitted_at",
    "disposition",
    "lead_value",
    "quality_score",
    "assigned_agent",
    "closed_date",
    "sale_amount",
    "return_status",
    "credit",
    "is_test",
)


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
    jornaya_leadid: str | None = None
    landing_page_url: str | None = None
    submitted_at: str | None = Field(
        default=None, description="When the consumer submitted the lead (vendor's)"
    )
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
    return_status: ReturnStatus | None = Field(
        default=None,
        description="approved or rejected once its return is decided (GET /leads/{lead_id}/return)",
    )
    credit: Money | None = Field(default=None, description="Credited to the vendor by an approved return")
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
    q: str | None = None


class Outcome(StrEnum):
    ACCEPTED = "accepted"
    DUPLICATE = "duplicate"
    REJECTED = "rejected"


class ReasonCode(StrEnum):
    DUPLICATE = "DUPLICATE"
    DATA_ERROR = "DATA_ERROR"
    VENDOR_PAUSED = "VENDOR_PAUSED"
    OVER_CAP = "OVER_CAP"
    SUPPRESSED = "SUPPRESSED"
    NO_CONSENT = "NO_CONSENT"
    MISSING_FIELD = "MISSING_FIELD"
    STATE_NOT_ALLOWED = "STATE_NOT_ALLOWED"
    LEAD_TOO_OLD = "LEAD_TOO_OLD"
    OUTSIDE_HOURS = "OUTSIDE_HOURS"


@dataclass(frozen=True)
class CreateOutcome:
    """What posting one lead came to: accepted (with the lead as stored, or as it would be in a
    preview), a duplicate (with the lead it duplicates, when the caller may know it), or rejected
    for a reason code."""

    outcome: Outcome
    lead: Lead | None = None
    price: Decimal | None = None
    reason_code: ReasonCode | None = None
    reason: str | None = None
    existing_lead_id: str | None = None
    details: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def accepted(cls, lead: Lead) -> CreateOutcome:
        return cls(Outcome.ACCEPTED, lead=lead, price=lead.lead_value)

    @classmethod
    def duplicate(cls, existing_lead_id: str | None) -> CreateOutcome:
        return cls(
            Outcome.DUPLICATE,
            reason_code=ReasonCode.DUPLICATE,
            reason="A lead with this email or phone was received within the dedupe window",
            existing_lead_id=existing_lead_id,
        )

    @classmethod
    def rejected(
        cls,
        code: ReasonCode,
        reason: str,
        price: Decimal | None = None,
        details: list[dict[str, Any]] | None = None,
    ) -> CreateOutcome:
        return cls(Outcome.REJECTED, price=price, reason_code=code, reason=reason, details=details or [])


# Fields a lead submission may carry, and who may set them. Everything else the lead holds is
# computed by the service (value, score, assignment, history, times, version).
SUBMISSION_FIELDS = frozenset(POSTING_FIELDS)
STAFF_SUBMISSION_FIELDS = frozenset({"vendor_code", "notes"})


# What `leads.intake` accepts in a submission's fields, published in its schema too.
ZIP_PATTERN = r"^\d{5}(-\d{4})?$"
STATE_PATTERN = r"^[A-Za-z]{2}$"
URL_PATTERN = r"^https?://[^\x00-\x20\x7f-\x9f]{1,2040}$"  # no space or control character
# A TrustedForm certificate: its hex id is stored lower-case, scheme and host must be as written.
TRUSTEDFORM_PATTERN = r"^https://cert\.trustedform\.com/[0-9a-fA-F]{40}$"
# A Jornaya LeadiD token: a UUID (36 characters with hyphens), stored upper-case.
JORNAYA_PATTERN = r"^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$"
VENDOR_CODE_PATTERN = r"^[A-Za-z0-9_-]{1,32}$"
BLANK, NOT_BLANK = r"^\s*$", r"\S"
NO_CONTROL_CHARACTERS = r"^[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]*$"
_FIELD_SCHEMAS: dict[str, dict[str, Any]] = {
    "vendor_code": {"pattern": VENDOR_CODE_PATTERN},
    "email": {k: v for k, v in EMAIL_SCHEMA.items() if k != "type"},
    "phone": {"format": "phone", "pattern": PHONE_PATTERN},
    "state": {"pattern": STATE_PATTERN},
    "zip": {"pattern": ZIP_PATTERN},
    "trustedform_cert_url": {"pattern": TRUSTEDFORM_PATTERN},
    "jornaya_leadid": {"pattern": JORNAYA_PATTERN},
    "submitted_at": {"format": "date-time"},
    "landing_page_url": {"pattern": URL_PATTERN},
    "ip_address": {"anyOf": [{"format": "ipv4"}, {"format": "ipv6"}]},
    **{
        name: {"pattern": NO_CONTROL_CHARACTERS}
        for name in ("first_name", "last_name", "campaign_source", "consent_text", "user_agent", "notes")
    },
}


def _submission_schema(schema: dict[str, Any]) -> None:
    """The submission's JSON Schema with the rules intake applies: each field's format, and at
    least one of email and phone. (A blank field counts as absent, so "" is accepted too.)"""
    for name, rules in _FIELD_SCHEMAS.items():
        for branch in schema["properties"][name].get("anyOf", []):
            if branch.get("type") == "string":
                branch["anyOf"] = [rules, {"pattern": BLANK}]
    schema["anyOf"] = [
        {"required": [name], "properties": {name: {"type": "string", "pattern": NOT_BLANK}}}
        for name in ("email", "phone")
    ]


class LeadSubmission(JsonBody):
    """The body of POST /leads after normalisation (see `leads.intake`)."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_submission_schema)

    vendor_code: str | None = Field(default=None, description="Staff only; a vendor posts as its own vendor")
    first_name: str | None = Field(default=None, max_length=100)
    last_name: str | None = Field(default=None, max_length=100)
    email: str | None = Field(default=None, max_length=254, description="At least one of email or phone")
    phone: str | None = Field(
        default=None, max_length=32, description="Any format; stored as E.164 (US default)"
    )
    state: str | None = Field(default=None, max_length=32)
    zip: str | None = Field(default=None, max_length=10)
    campaign_source: str | None = Field(default=None, max_length=128)
    tcpa_consent: bool = False
    consent_text: str | None = Field(default=None, max_length=4000)
    ip_address: str | None = Field(default=None, max_length=64)
    user_agent: str | None = Field(default=None, max_length=512)
    trustedform_cert_url: str | None = Field(
        default=None, max_length=2048, description="https://cert.trustedform.com/ and 40 hex characters"
    )
    jornaya_leadid: str | None = Field(default=None, max_length=36, description="Jornaya LeadiD (a UUID)")
    landing_page_url: str | None = Field(default=None, max_length=2048)
    submitted_at: str | None = Field(
        default=None,
        max_length=64,
        description="ISO 8601 time with zone the consumer submitted the lead, not in the future; "
        "the vendor's lead age rule",
    )
    notes: str | None = Field(default=None, max_length=4000, description="Staff only")


class PostResult(BaseModel):
    """The answer to POST /leads, whatever the outcome."""

    outcome: Outcome
    reason_code: ReasonCode | None
    reason: str | None
    lead_id: str | None = Field(description="The new lead; for an admin's duplicate, the existing lead")
    price: Money | None
    lead: Lead | None = None
    details: list[dict[str, Any]] = Field(default_factory=list)
    error: ErrorInfo | None = Field(
        default=None, description="For every outcome but accepted: the error body"
    )


class LeadChanges(JsonBody):
    """The body of PATCH /leads/{lead_id}: the version read, and the fields to change."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "minProperties": 2,
            # A sale amount comes with a closed lead: not with a move to another disposition.
            "not": {
                "required": ["sale_amount", "disposition"],
                "properties": {
                    "sale_amount": {"type": "number"},
                    "disposition": {"enum": ["new", "contacted", "qualified", "lost"]},
                },
            },
        },
    )

    version: int = Field(ge=1, description="The lead's version as last read (optimistic locking)")
    disposition: Disposition | None = None
    notes: str | None = Field(default=None, max_length=4000)
    last_contact: AwareDatetime | None = Field(default=None, description="ISO 8601 time with zone")
    sale_amount: Money | None = Field(default=None, ge=0)
    assigned_agent: str | None = Field(
        default=None, pattern=USER_ID_PATTERN, description="An agent's user id; admin and manager only"
    )

    @field_validator("sale_amount")
    @classmethod
    def _in_cents(cls, value: Decimal | None) -> Decimal | None:
        return value.quantize(Decimal("0.01")) if value is not None else None


# -- the suppression list ---------------------------------------------------------------------------
SuppressionKind = Literal["email", "phone"]
SUPPRESSION_ENTRY_PATTERN = r"^(email|phone)-[0-9a-f]{64}$"
REASON_PATTERN = r"^[^\u0000-\u001f\u007f-\u009f]*\S[^\u0000-\u001f\u007f-\u009f]*$"


def _contact_field(max_length: int, rules: dict[str, Any]) -> Any:
    """An email or phone a body may leave out but not set to null, published with the rules
    posting applies to the lead field of that name."""

    def schema(field_schema: dict[str, Any]) -> None:
        field_schema.pop("default", None)
        field_schema.update(rules)

    return Field(default=None, max_length=max_length, json_schema_extra=schema)


class SuppressionCreate(JsonBody):
    """The body of POST /admin/suppressions: one email or one phone, normalised as posting
    normalises a lead's (`leads.normalize`), and why it is listed."""

    model_config = ConfigDict(
        extra="forbid",
        frozen=True,
        json_schema_extra={
            "oneOf": [
                {"required": ["email"], "not": {"required": ["phone"]}},
                {"required": ["phone"], "not": {"required": ["email"]}},
            ]
        },
    )

    email: str = _contact_field(max_length=254, rules=_FIELD_SCHEMAS["email"])
    phone: str = _contact_field(max_length=32, rules=_FIELD_SCHEMAS["phone"])
    reason: str = Field(min_length=1, max_length=500, pattern=REASON_PATTERN)

    @field_validator("email")
    @classmethod
    def _normal_email(cls, value: str | None) -> str | None:
        from leads.normalize import normalize_email

        return None if value is None else normalize_email(value)

    @field_validator("phone")
    @classmethod
    def _normal_phone(cls, value: str | None) -> str | None:
        from leads.normalize import normalize_phone

        return None if value is None else normalize_phone(value)

    @model_validator(mode="after")
    def _one_contact(self) -> SuppressionCreate:
        if (self.email is None) == (self.phone is None):
            raise ValueError("give either email or phone")
        return self

    def contact(self) -> tuple[SuppressionKind, str]:
        """The kind and normalised value the body lists."""
        if self.email is not None:
            return "email", self.email
        assert self.phone is not None  # the body holds exactly one of them
        return "phone", self.phone


class SuppressionEntry(BaseModel):
    """One listed email or phone (the other is null), as normalised."""

    entry_id: str = Field(description="`email-` or `phone-` and the SHA-256 of the normalised value")
    email: str | None
    phone: str | None
    reason: str
    created_at: str
    created_by: str


class SuppressionPage(BaseModel):
    data: list[SuppressionEntry]
    pagination: Pagination
