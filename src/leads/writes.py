"""Lead changes: create (dedupe, caps, pricing, assignment), update (disposition moves,
optimistic locking), delete (soft). Each change is one DynamoDB transaction that also records
its event in the outbox, so a change and its event are never separated."""

from __future__ import annotations

import hashlib
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from ulid import ULID

from leads.directory import AgentPool, VendorDirectory
from leads.intake import DataError
from leads.lifecycle import check_move, is_open
from leads.models import (
    Disposition,
    HistoryEntry,
    Lead,
    LeadChanges,
    LeadSubmission,
    Outcome,
    PostResult,
    ReasonCode,
)
from leads.repository import LeadRepository
from leads.scoring import ScoringInput, score_lead
from shared.cache import Namespace, QueryCache
from shared.dates import iso_timestamp
from shared.dynamo import Table, TransactionCancelled, Write, batch_get, transact
from shared.errors import ApiError, Conflict, ValidationFailed
from shared.observability import logger
from shared.outbox import Outbox, OutboxEvent
from shared.pricing import Pricer
from shared.responses import ErrorInfo
from shared.security import Principal

DEDUPE_RETENTION_DAYS = 400  # longer than any vendor's dedupe window (at most 365 days)
USAGE_RETENTION_DAYS = 400
MAX_ATTEMPTS = 40
# The fields the stats depend on; events carry their values before and after each change.
STATS_FIELDS = (
    "vendor_code",
    "campaign_source",
    "assigned_agent",
    "disposition",
    "lead_value",
    "quality_score",
    "created_at",
    "closed_date",
    "sale_amount",
    "is_test",
)


class LeadNotClosed(Conflict):
    code = "LEAD_NOT_CLOSED"


class VersionConflict(Conflict):
    code = "VERSION_CONFLICT"


def stats_view(lead: Lead | None, deleted: bool = False) -> dict[str, Any] | None:
    if lead is None:
        return None
    values = lead.model_dump(mode="python", include=set(STATS_FIELDS))
    return {**values, "deleted": deleted}


def lead_event(detail_type: str, lead: Lead, before: Lead | None, deleted: bool = False) -> OutboxEvent:
    return OutboxEvent.new(
        detail_type,
        {
            "lead_id": lead.lead_id,
            "version": lead.version,
            "before": stats_view(before),
            "after": stats_view(lead, deleted=deleted),
        },
    )


def dedupe_keys(person: LeadSubmission | Lead, test: bool) -> list[str]:
    """One uniqueness key per normalised email and phone; test leads dedupe among themselves."""
    prefix = "test:" if test else ""
    keys = []
    for kind in ("email", "phone"):
        value = getattr(person, kind)
        if value:
            keys.append(f"{prefix}{kind}:{hashlib.sha256(value.encode()).hexdigest()}")
    return keys


@dataclass(frozen=True)
class PostResponse:
    status: int
    result: PostResult

    def body(self) -> dict[str, Any]:
        return self.result.model_dump(mode="python")


def rejection(
    status: int,
    outcome: Outcome,
    code: ReasonCode,
    reason: str,
    *,
    lead_id: str | None = None,
    price: Decimal | None = None,
    details: list[dict[str, Any]] | None = None,
) -> PostResponse:
    return PostResponse(
        status,
        PostResult(
            outcome=outcome,
            reason_code=code,
            reason=reason,
            lead_id=lead_id,
            price=price,
            details=details or [],
            error=ErrorInfo(code=code.value, message=reason, details=details or []),
        ),
    )


def rejected_for(exc: ApiError, reason_code: ReasonCode | None = ReasonCode.DATA_ERROR) -> PostResponse:
    """The posting contract's answer for a request-level error (400, 413, 422, 409 in flight)."""
    return PostResponse(
        exc.status,
        PostResult(
            outcome=Outcome.REJECTED,
            reason_code=reason_code,
            reason=exc.message,
            lead_id=None,
            price=None,
            details=exc.details,
            error=ErrorInfo(code=exc.code, message=exc.message, details=exc.details),
        ),
    )


class LeadWriter:
    def __init__(
        self,
        leads: LeadRepository,
        directory: VendorDirectory,
        agents: AgentPool,
        dedupe: Table,
        usage: Table,
        outbox: Outbox,
        cache: QueryCache,
        pricer: Pricer,
        business_timezone: str = "UTC",
    ) -> None:
        self._pricer = pricer
        self._leads = leads
        self._directory = directory
        self._agents = agents
        self._dedupe = dedupe
        self._usage = usage
        self._outbox = outbox
        self._cache = cache
        self._zone = ZoneInfo(business_timezone)

    # -- create ---------------------------------------------------------------------------------
    def create(
        self,
        principal: Principal,
        submission: LeadSubmission,
        now: datetime | None = None,
        migrated: bool = False,
        preview: bool = False,
    ) -> PostResponse:
        """Validates, prices, deduplicates, counts against the caps, assigns and stores one lead
        with its event, all or nothing. A `migrated` lead (an import of an existing lead, created
        `now` in the past) is neither counted against today's caps nor auto-assigned. A `preview`
        answers what would happen, duplicates included, and writes nothing."""
        now = now or datetime.now(UTC)
        vendor_code = submission.vendor_code
        assert vendor_code is not None  # intake guarantees it
        vendor, prices = self._directory.vendor_and_prices(vendor_code)
        if vendor is None:
            return rejected_for(
                DataError("Unknown vendor", details=[{"field": "vendor_code", "message": "no such vendor"}])
            )
        if vendor.status != "active":
            return rejection(
                403, Outcome.REJECTED, ReasonCode.VENDOR_PAUSED, f"Vendor {vendor_code} is paused"
            )

        score = score_lead(
            ScoringInput(
                email=submission.email,
                phone=submission.phone,
                first_name=submission.first_name,
                last_name=submission.last_name,
                state=submission.state,
                zip=submission.zip,
                tcpa_consent=submission.tcpa_consent,
                consent_text=submission.consent_text,
                ip_address=submission.ip_address,
                trustedform_cert_url=submission.trustedform_cert_url,
                landing_page_url=submission.landing_page_url,
                vendor_conversion_rate=vendor.conversion_rate,
                overall_conversion_rate=prices.overall_conversion_rate,
            )
        )
        price = self._pricer.quote(prices.settings, vendor_code, prices.vendor_price, score.score, now).price
        created = iso_timestamp(now)
        lead = Lead(
            lead_id=str(ULID.from_datetime(now)),
            vendor_code=vendor_code,
            **submission.model_dump(exclude={"vendor_code"}),
            lead_value=price,
            quality_score=score.score,
            created_at=created,
            created_by=principal.user_id,
            updated_at=created,
            is_test=vendor.test_mode,
            update_history=[
                HistoryEntry(
                    timestamp=created,
                    user=principal.user_id,
                    action="created",
                    changes={"quality_rules": [rule.rule for rule in score.rules]},
                )
            ],
            version=1,
        )
        keys = dedupe_keys(submission, vendor.test_mode)
        window_start = iso_timestamp(now - timedelta(days=vendor.dedupe_window_days))
        if preview:
            return self._preview(principal, keys, window_start, lead, price)
        fixed: list[Write] = [self._dedupe_write(key, lead, window_start, now) for key in keys]
        counted = (
            []
            if vendor.test_mode or migrated
            else self._usage_writes(vendor_code, vendor.daily_cap, vendor.monthly_cap, now)
        )
        fixed += counted

        candidates = [] if vendor.test_mode or migrated else self._agents.candidates()
        full: set[str] = set()  # agents found at capacity by this request (the index may lag)
        for attempt in range(MAX_ATTEMPTS):
            agent = candidates[0].user_id if candidates else None
            placed = lead.model_copy(update={"assigned_agent": agent})
            event = lead_event("LeadCreated", placed, None)
            writes = [self._leads.put_new(placed), *fixed, self._outbox.write(event)]
            if agent:
                writes.append(self._agents.take(agent))
            try:
                transact(writes)
            except TransactionCancelled as cancelled:
                if any(cancelled.failed(1 + i) for i in range(len(keys))):
                    return self._duplicate(principal, keys, cancelled, price)
                if any(cancelled.failed(1 + len(keys) + i) for i in range(len(counted))):
                    return rejection(
                        429,
                        Outcome.REJECTED,
                        ReasonCode.OVER_CAP,
                        f"Vendor {vendor_code} has reached its lead cap",
                        price=price,
                    )
                if agent and cancelled.failed(len(writes) - 1):
                    full.add(agent)  # it filled up meanwhile
                    candidates = [a for a in self._agents.candidates() if a.user_id not in full]
                elif not cancelled.conflicted:
                    raise
                time.sleep(random.uniform(0, 0.01 * (attempt + 1)))  # noqa: S311  # nosec B311  # jitter, not crypto
                continue
            self._after_change(event)
            logger.info("lead accepted", extra={"lead_id": placed.lead_id, "assigned_agent": agent})
            return PostResponse(
                201,
                PostResult(
                    outcome=Outcome.ACCEPTED,
                    reason_code=None,
                    reason=None,
                    lead_id=placed.lead_id,
                    price=price,
                    lead=placed,
                ),
            )
        raise RuntimeError("lead not stored after repeated transaction conflicts")

    def _dedupe_write(self, key: str, lead: Lead, window_start: str, now: datetime) -> Write:
        expires = int((now + timedelta(days=DEDUPE_RETENTION_DAYS)).timestamp())
        return Write(
            "Put",
            self._dedupe.name,
            item={
                "dedupe_key": key,
                "lead_id": lead.lead_id,
                "created_at": lead.created_at,
                "expires_at": expires,
            },
            condition="attribute_not_exists(dedupe_key) OR created_at < :window_start",
            values={":window_start": window_start},
        )

    def _usage_writes(
        self, vendor_code: str, daily_cap: int | None, monthly_cap: int | None, now: datetime
    ) -> list[Write]:
        local = now.astimezone(self._zone)
        expires = int((now + timedelta(days=USAGE_RETENTION_DAYS)).timestamp())
        writes = []
        for period, cap in (
            (local.strftime("day#%Y-%m-%d"), daily_cap),
            (local.strftime("month#%Y-%m"), monthly_cap),
        ):
            values: dict[str, Any] = {":one": 1, ":zero": 0, ":expires": expires}
            condition = None
            if cap is not None:
                condition = "attribute_not_exists(lead_count) OR lead_count < :cap"
                values[":cap"] = cap
            writes.append(
                Write(
                    "Update",
                    self._usage.name,
                    key={"usage_key": f"{vendor_code}#{period}"},
                    update="SET lead_count = if_not_exists(lead_count, :zero) + :one, expires_at = :expires",
                    condition=condition,
                    values=values,
                )
            )
        return writes

    def _preview(
        self, principal: Principal, keys: list[str], window_start: str, lead: Lead, price: Decimal
    ) -> PostResponse:
        found = batch_get({self._dedupe.name: [{"dedupe_key": key} for key in keys]})[self._dedupe.name]
        clashes = [item for item in found if str(item["created_at"]) >= window_start]
        if clashes:
            staff = principal.is_staff
            return self._duplicate_response(str(clashes[0]["lead_id"]) if staff else None)
        result = PostResult(
            outcome=Outcome.ACCEPTED,
            reason_code=None,
            reason=None,
            lead_id=lead.lead_id,
            price=price,
            lead=lead,
        )
        return PostResponse(201, result)

    @staticmethod
    def _duplicate_response(existing: str | None) -> PostResponse:
        return rejection(
            409,
            Outcome.DUPLICATE,
            ReasonCode.DUPLICATE,
            "A lead with this email or phone was received within the dedupe window",
            lead_id=existing,
            price=None,
        )

    def _duplicate(
        self, principal: Principal, keys: list[str], cancelled: TransactionCancelled, price: Decimal
    ) -> PostResponse:
        existing = None
        if principal.is_staff:
            for index, key in enumerate(keys):
                if cancelled.failed(1 + index):
                    item = self._dedupe.get({"dedupe_key": key}, consistent=True)
                    existing = item["lead_id"] if item else None
                    break
        return self._duplicate_response(existing)

    # -- update ---------------------------------------------------------------------------------
    def update(
        self, principal: Principal, lead_id: str, changes: LeadChanges, now: datetime | None = None
    ) -> Lead:
        now = now or datetime.now(UTC)
        current = self._leads.get(principal.lead_scope, lead_id, consistent=True)
        if current.version != changes.version:
            raise VersionConflict(
                f"The lead is at version {current.version}, not {changes.version}",
                details=[{"field": "version", "current": current.version}],
            )
        requested = changes.model_dump(exclude={"version"}, exclude_unset=True)
        if "assigned_agent" in requested and not principal.is_staff:
            # A field the role may not write is refused by name (422), like a vendor's mass assignment.
            refusal = {"field": "assigned_agent", "message": f"may not be set by an {principal.role.value}"}
            raise ValidationFailed("Only a manager or an admin may reassign a lead", details=[refusal])
        if not requested:
            raise ValidationFailed(
                "Nothing to change", details=[{"field": "body", "message": "no fields given"}]
            )
        updates: dict[str, Any] = {}
        moved_to = changes.disposition
        if moved_to is not None and moved_to != current.disposition:
            check_move(current.disposition, moved_to)
            updates["disposition"] = moved_to
            if moved_to is Disposition.CLOSED:
                updates["closed_date"] = iso_timestamp(now)
        if isinstance(requested.get("last_contact"), datetime):
            requested["last_contact"] = iso_timestamp(requested["last_contact"])
        for name in ("notes", "last_contact", "sale_amount", "assigned_agent"):
            if name in requested and requested[name] != getattr(current, name):
                updates[name] = requested[name]
        if (
            "sale_amount" in updates
            and (updates.get("disposition") or current.disposition) is not Disposition.CLOSED
        ):
            details = [{"field": "sale_amount", "message": "close the lead first"}]
            if changes.disposition is not None:  # the request itself moves it elsewhere
                raise ValidationFailed("A sale amount needs a closed lead", details=details)
            raise LeadNotClosed("A sale amount needs a closed lead", details=details)
        if not updates:
            return current
        stamp = iso_timestamp(now)
        history = HistoryEntry(
            timestamp=stamp,
            user=principal.user_id,
            action="updated",
            changes={
                name: {"from": _plain(getattr(current, name)), "to": _plain(value)}
                for name, value in updates.items()
            },
        )
        updated = current.model_copy(
            update={
                **updates,
                "updated_at": stamp,
                "version": current.version + 1,
                "update_history": [*current.update_history, history],
            }
        )
        event = lead_event("LeadUpdated", updated, current)
        release, load = self._load_moves(current, updated)
        writes = [self._leads.replace(updated, current.version), self._outbox.write(event), *load, *release]
        try:
            self._transact_tolerating(writes, optional=len(release))
        except TransactionCancelled as cancelled:
            if cancelled.failed(0) or cancelled.conflicted:
                # Deleted meanwhile (LeadNotFound), or changed: a version conflict.
                self._leads.get(principal.lead_scope, lead_id, consistent=True)
                raise VersionConflict("The lead changed meanwhile; read it again") from cancelled
            raise Conflict(
                "The assigned agent does not exist or is not an agent", details=[{"field": "assigned_agent"}]
            ) from cancelled
        self._after_change(event)
        return updated

    def _transact_tolerating(self, writes: list[Write], optional: int) -> None:
        """Runs `writes`. The last `optional` ones are bookkeeping (releasing a removed agent's
        load, freeing a dedupe key another lead has taken since): if only some of those failed,
        the change goes through without them, because bookkeeping must never block a lead."""
        try:
            transact(writes)
        except TransactionCancelled as cancelled:
            required = len(writes) - optional
            if not optional or cancelled.conflicted or any(cancelled.failed(i) for i in range(required)):
                raise
            kept = [write for index, write in enumerate(writes) if not cancelled.failed(index)]
            logger.warning(
                "lead change applied without stale bookkeeping", extra={"skipped": len(writes) - len(kept)}
            )
            transact(kept)

    def _load_moves(self, before: Lead, after: Lead) -> tuple[list[Write], list[Write]]:
        """(releases, loads) of agents' open-lead counts: closing or losing a lead frees its agent,
        reopening or reassigning it loads the new one."""
        held_before = before.assigned_agent if is_open(before.disposition) else None
        held_after = after.assigned_agent if is_open(after.disposition) else None
        if held_before == held_after:
            return [], []
        release = [self._agents.release(held_before)] if held_before else []
        load = [self._agents.add(held_after)] if held_after else []
        return release, load

    # -- delete ---------------------------------------------------------------------------------
    def delete(self, principal: Principal, lead_id: str, now: datetime | None = None) -> None:
        now = now or datetime.now(UTC)
        current = self._leads.get(principal.lead_scope, lead_id, consistent=True)
        stamp = iso_timestamp(now)
        history = {"timestamp": stamp, "user": principal.user_id, "action": "deleted", "changes": {}}
        deleted = current.model_copy(update={"version": current.version + 1, "updated_at": stamp})
        event = lead_event("LeadDeleted", deleted, current, deleted=True)
        writes = [
            self._leads.soft_delete(current, stamp, principal.user_id, history),
            self._outbox.write(event),
        ]
        bookkeeping = [
            self._free_dedupe_key(key, current.lead_id) for key in dedupe_keys(current, current.is_test)
        ]
        if current.assigned_agent and is_open(current.disposition):
            bookkeeping.append(self._agents.release(current.assigned_agent))
        try:
            self._transact_tolerating([*writes, *bookkeeping], optional=len(bookkeeping))
        except TransactionCancelled as cancelled:
            if cancelled.failed(0):
                # Deleted meanwhile (LeadNotFound), or only changed: then it is a version conflict.
                self._leads.get(principal.lead_scope, lead_id, consistent=True)
            raise VersionConflict("The lead changed meanwhile; try again") from cancelled
        self._after_change(event)

    def _free_dedupe_key(self, key: str, lead_id: str) -> Write:
        """A deleted lead no longer blocks the same person being posted again (only while the
        key is still this lead's)."""
        return Write(
            "Delete",
            self._dedupe.name,
            key={"dedupe_key": key},
            condition="lead_id = :lead",
            values={":lead": lead_id},
        )

    def _after_change(self, event: OutboxEvent) -> None:
        self._cache.invalidate(Namespace.LEADS)
        self._outbox.send(event)


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Disposition) else value
