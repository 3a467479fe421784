"""Returns of leads: a staff user or the lead's agent asks, an admin decides.

- A return may be asked for while the lead is inside its vendor's return window
  (`return_window_days` days from its `created_at`, 7 by default), once per lead: outside the
  window, or when the lead has a return already, it is 409 `RETURN_NOT_ALLOWED` with the reason.
  The second request fails the returns table's condition, so two racing requests make one return.
- Only a pending return can be decided (409 `RETURN_ALREADY_DECIDED`). The decision, the lead's
  `return_status` (and, when approved, its `credit`: the lead's price) and the lead's event are one
  transaction: the stats count approved returns and credits from the lead itself
  (`stats.aggregation`), so a rebuild from the leads table gives the same numbers.
- A vendor reads the returns of its own leads, without who asked or decided.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from ulid import ULID

from leads.directory import VendorDirectory
from leads.events import lead_event
from leads.models import HistoryEntry, Lead
from leads.repository import LeadRepository
from leads.writes import publish_change
from shared.cache import QueryCache
from shared.dates import iso_timestamp
from shared.dynamo import ConditionFailed, TransactionCancelled, transact
from shared.errors import Conflict, NotFound, ValidationFailed
from shared.outbox import Outbox
from shared.records import DEFAULT_RETURN_WINDOW_DAYS
from shared.returns import (
    Decision,
    LeadReturn,
    ReturnDecision,
    ReturnReason,
    ReturnRecords,
    ReturnRequest,
    ReturnStatus,
)
from shared.security import Principal

MAX_ATTEMPTS = 5  # a decision re-reads a lead that changed meanwhile this many times


class ReturnNotAllowed(Conflict):
    code = "RETURN_NOT_ALLOWED"


class ReturnAlreadyDecided(Conflict):
    code = "RETURN_ALREADY_DECIDED"


class ReturnNotFound(NotFound):
    def __init__(self, lead_id: str) -> None:
        super().__init__(f"Lead {lead_id} has no return")


def return_deadline(created_at: str, window_days: int) -> datetime:
    """The last moment a return of a lead created at `created_at` may be asked for."""
    return datetime.fromisoformat(created_at.replace("Z", "+00:00")) + timedelta(days=window_days)


class LeadReturns:
    def __init__(
        self,
        leads: LeadRepository,
        returns: ReturnRecords,
        directory: VendorDirectory,
        outbox: Outbox,
        cache: QueryCache,
    ) -> None:
        self._leads = leads
        self._returns = returns
        self._directory = directory
        self._outbox = outbox
        self._cache = cache

    def request(
        self, principal: Principal, lead_id: str, body: ReturnRequest, now: datetime | None = None
    ) -> LeadReturn:
        now = now or datetime.now(UTC)
        if body.reason_code is ReturnReason.OTHER and not (body.note or "").strip():
            details = [{"field": "note", "message": "required for reason OTHER"}]
            raise ValidationFailed("A return for reason OTHER needs a note", details=details)
        lead = self._leads.get(principal.lead_scope, lead_id, consistent=True)  # an agent's own only
        vendor = self._directory.vendor(lead.vendor_code)
        window = vendor.return_window_days if vendor else DEFAULT_RETURN_WINDOW_DAYS
        deadline = return_deadline(lead.created_at, window)
        if now > deadline:
            raise ReturnNotAllowed(
                f"The return window of vendor {lead.vendor_code} ({window} days) closed at "
                f"{iso_timestamp(deadline)}",
                details=[{"reason": "OUTSIDE_WINDOW", "return_window_days": window}],
            )
        record = LeadReturn(
            return_id=str(ULID.from_datetime(now)),
            lead_id=lead.lead_id,
            vendor_code=lead.vendor_code,
            status=ReturnStatus.PENDING,
            reason_code=body.reason_code,
            note=(body.note or "").strip() or None,
            requested_at=iso_timestamp(now),
            requested_by=principal.user_id,
        )
        try:
            self._returns.add(record)
        except ConditionFailed:
            raise ReturnNotAllowed(
                f"Lead {lead_id} already has a return", details=[{"reason": "ALREADY_REQUESTED"}]
            ) from None
        return record

    def get(self, principal: Principal, lead_id: str) -> LeadReturn:
        self._leads.get(principal.lead_scope, lead_id)  # another vendor's lead does not exist for it
        record = self._returns.get(lead_id)
        if record is None:
            raise ReturnNotFound(lead_id)
        return record

    def decide(
        self, principal: Principal, lead_id: str, body: ReturnDecision, now: datetime | None = None
    ) -> LeadReturn:
        """Approves or rejects a pending return with the lead's change, in one transaction."""
        now = now or datetime.now(UTC)
        for _ in range(MAX_ATTEMPTS):
            record = self._returns.get(lead_id, consistent=True)
            if record is None:
                self._leads.get(principal.lead_scope, lead_id)  # 404 for a missing lead first
                raise ReturnNotFound(lead_id)
            if record.status is not ReturnStatus.PENDING:
                raise _already_decided(record)
            current = self._leads.get(principal.lead_scope, lead_id, consistent=True)
            decided, updated = _decided(record, current, principal, body, now)
            event = lead_event("LeadUpdated", updated, current)
            writes = [
                self._returns.decide(decided),
                self._leads.replace(updated, current.version),
                self._outbox.write(event),
            ]
            try:
                transact(writes)
            except TransactionCancelled as cancelled:
                if cancelled.failed(ReturnRecords.ITEM) or cancelled.conflicted:
                    continue  # decided meanwhile, or a racing write: read both again
                if cancelled.failed(LeadRepository.ITEM):
                    continue  # the lead changed meanwhile (or was deleted: the next read says so)
                raise
            publish_change(self._cache, self._outbox, event, updated)
            return decided
        raise Conflict("The lead or its return kept changing; try again")


def _already_decided(record: LeadReturn) -> ReturnAlreadyDecided:
    return ReturnAlreadyDecided(
        f"The return of lead {record.lead_id} is {record.status.value} already",
        details=[{"field": "status", "current": record.status.value}],
    )


def _decided(
    record: LeadReturn, lead: Lead, principal: Principal, body: ReturnDecision, now: datetime
) -> tuple[LeadReturn, Lead]:
    """The return as decided, and the lead with the decision (its next version and history)."""
    stamp = iso_timestamp(now)
    approved = body.status is Decision.APPROVED
    credit = lead.lead_value if approved else None
    decided = record.model_copy(
        update={
            "status": ReturnStatus(body.status.value),
            "decided_at": stamp,
            "decided_by": principal.user_id,
            "decision_note": (body.note or "").strip() or None,
            "credit": credit,
        }
    )
    changes: dict[str, Any] = {"return_status": {"from": None, "to": body.status.value}}
    if credit is not None:
        changes["credit"] = {"from": None, "to": credit}
    history = HistoryEntry(timestamp=stamp, user=principal.user_id, action="return decided", changes=changes)
    updated = lead.model_copy(
        update={
            "return_status": decided.status,
            "credit": credit,
            "updated_at": stamp,
            "version": lead.version + 1,
            "update_history": [*lead.update_history, history],
        }
    )
    return decided, updated
