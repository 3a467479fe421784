"""Lead returns: their shapes, and the returns table (the only code that knows its keys).

A return is a request to take back a bought lead (bad phone, fraud...) and be credited its price.
A lead has at most one: the table's key is the lead's id, so a second request for a lead fails
its condition whatever the timing. The table's `VendorIndex` lists a vendor's returns, newest
first. Both the lead service (request, decide) and the agencies service (a vendor's list) use it.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from shared.dynamo import KeyCondition, Page, Table, Write
from shared.responses import Pagination
from shared.types import JsonBody, Money

VENDOR_INDEX = "VendorIndex"
NOTE_MAX = 1000
NOT_BLANK = r"\S"
NOTE_PATTERN = r"^[^\x00-\x08\x0b\x0c\x0e-\x1f]*$"  # no control character but tab and new lines
# Who took part in a return: kept from the vendor, who sees the return and its reason only.
STAFF_ONLY_FIELDS = frozenset({"requested_by", "decided_by"})


class ReturnReason(StrEnum):
    BAD_PHONE = "BAD_PHONE"
    BAD_EMAIL = "BAD_EMAIL"
    DUPLICATE = "DUPLICATE"
    FRAUD = "FRAUD"
    NO_CONSENT = "NO_CONSENT"
    NOT_IN_SERVICE_AREA = "NOT_IN_SERVICE_AREA"
    OTHER = "OTHER"  # needs a note


class ReturnStatus(StrEnum):
    PENDING = "pending"
    APPROVED = "approved"
    REJECTED = "rejected"


class Decision(StrEnum):
    APPROVED = ReturnStatus.APPROVED.value
    REJECTED = ReturnStatus.REJECTED.value


def _note_required_for_other(schema: dict[str, Any]) -> None:
    """The schema says what the validator checks: a reason OTHER comes with a note."""
    schema["anyOf"] = [
        {"properties": {"reason_code": {"not": {"enum": [ReturnReason.OTHER.value]}}}},
        {"required": ["note"], "properties": {"note": {"type": "string", "pattern": NOT_BLANK}}},
    ]


class ReturnRequest(JsonBody):
    """The body of POST /leads/{lead_id}/return."""

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_note_required_for_other)

    reason_code: ReturnReason
    note: str | None = Field(
        default=None, max_length=NOTE_MAX, pattern=NOTE_PATTERN, description="Required for OTHER"
    )


class ReturnDecision(JsonBody):
    """The body of PATCH /leads/{lead_id}/return."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    status: Decision
    note: str | None = Field(default=None, max_length=NOTE_MAX, pattern=NOTE_PATTERN)


class LeadReturn(BaseModel):
    """A lead's return as stored. A vendor gets it without `requested_by` and `decided_by`."""

    model_config = ConfigDict(extra="ignore")

    return_id: str = Field(description="ULID")
    lead_id: str
    vendor_code: str
    status: ReturnStatus
    reason_code: ReturnReason
    note: str | None = None
    requested_at: str
    requested_by: str | None = Field(default=None, description="Staff only")
    decided_at: str | None = None
    decided_by: str | None = Field(default=None, description="Staff only")
    decision_note: str | None = None
    credit: Money | None = Field(default=None, description="The lead's price, credited on approval")

    def shown_to(self, is_staff: bool) -> dict[str, Any]:
        return self.model_dump(mode="python", exclude=None if is_staff else set(STAFF_ONLY_FIELDS))


class ReturnPage(BaseModel):
    data: list[LeadReturn]
    pagination: Pagination


class ReturnRecords:
    """The returns table."""

    ITEM = "return"  # the name of its transaction items

    def __init__(self, table: Table) -> None:
        self._table = table

    def get(self, lead_id: str, consistent: bool = False) -> LeadReturn | None:
        item = self._table.get({"lead_id": lead_id}, consistent=consistent)
        return LeadReturn.model_validate(item) if item else None

    def put_new(self, record: LeadReturn) -> Write:
        """Stores a lead's first return; fails its condition when the lead has one already."""
        item = {name: value for name, value in record.model_dump(mode="python").items() if value is not None}
        return Write(
            "Put", self._table.name, item=item, condition="attribute_not_exists(lead_id)", name=self.ITEM
        )

    def add(self, record: LeadReturn) -> None:
        """Stores a lead's first return (`ConditionFailed` when it has one already)."""
        self._table.write(self.put_new(record))

    def decide(self, decided: LeadReturn) -> Write:
        """Records the decision of a return, only while it is still pending."""
        values: dict[str, Any] = {
            ":status": decided.status.value,
            ":at": decided.decided_at,
            ":by": decided.decided_by,
            ":pending": ReturnStatus.PENDING.value,
        }
        update = "SET #status = :status, decided_at = :at, decided_by = :by"
        for name in ("decision_note", "credit"):
            value = getattr(decided, name)
            if value is not None:
                update += f", {name} = :{name}"
                values[f":{name}"] = value
        return Write(
            "Update",
            self._table.name,
            key={"lead_id": decided.lead_id},
            update=update,
            condition="#status = :pending",
            names={"#status": "status"},
            values=values,
            name=self.ITEM,
        )

    def vendor_page(
        self, vendor_code: str, status: ReturnStatus | None, limit: int, start_key: dict[str, Any] | None
    ) -> Page:
        """A vendor's returns, newest first, of one status or all."""
        condition = KeyCondition(
            index=VENDOR_INDEX,
            partition_name="vendor_code",
            partition_value=vendor_code,
            sort_name="requested_at",
            filters={"status": status.value} if status else {},
        )
        page = self._table.query_page(condition, limit, start_key)
        page.items = [LeadReturn.model_validate(item).model_dump(mode="python") for item in page.items]
        return page
