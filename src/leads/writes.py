"""Lead changes: create (suppression list, dedupe, caps, pricing, assignment), update (disposition moves,
optimistic locking), delete (soft). Each change is one DynamoDB transaction that also records
its event in the outbox, so a change and its event are never separated."""

from __future__ import annotations

import dataclasses
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NoReturn

from ulid import ULID

from leads.acceptance import refusal
from leads.dedupe import DedupeKeys, KeyHolder, dedupe_keys
from leads.directory import AgentPool, PriceList, Vendor, VendorDirectory
from leads.events import lead_event
from leads.lifecycle import check_move, is_open
from leads.models import (
    CreateOutcome,
    Disposition,
    HistoryEntry,
    Lead,
    LeadChanges,
    LeadSubmission,
    ReasonCode,
)
from leads.repository import LeadRepository
from leads.scoring import ScoringInput, score_lead
from leads.suppression import SuppressionList, suppression_keys
from leads.usage import VendorUsage
from shared.cache import Namespace, QueryCache
from shared.dates import iso_timestamp
from shared.dynamo import TransactionCancelled, Write, transact, transact_tolerating
from shared.errors import Conflict, ValidationFailed
from shared.observability import logger
from shared.outbox import Outbox, OutboxEvent
from shared.pricing import Pricer
from shared.security import Principal, scopes_seeing

MAX_ATTEMPTS = 40
# Fields a person may change on a lead, besides its disposition.
EDITABLE_FIELDS = ("notes", "last_contact", "sale_amount", "assigned_agent")
# Dedupe claims made by earlier previews (a dry run), by key: later previews see them as stored.
PreviewedClaims = dict[str, KeyHolder]


# The answer to a suppressed person, whoever posts it: it names neither the list nor the field.
SUPPRESSED = CreateOutcome.rejected(ReasonCode.SUPPRESSED, "This lead cannot be accepted")

# What the quality score is computed from, of a submission (the rest comes from the vendor).
SCORED_FIELDS = {field.name for field in dataclasses.fields(ScoringInput) if not field.name.endswith("_rate")}


@dataclass(frozen=True)
class Draft:
    """A lead ready to be stored: scored and priced, with its vendor and dedupe window."""

    lead: Lead
    vendor: Vendor
    keys: list[str]
    window_start: str  # a lead created since then with one of `keys` makes this a duplicate


class LeadNotClosed(Conflict):
    code = "LEAD_NOT_CLOSED"


class VersionConflict(Conflict):
    code = "VERSION_CONFLICT"


class AgentAtCapacity(Conflict):
    code = "AGENT_AT_CAPACITY"


@dataclass(frozen=True)
class LoadMoves:
    """How a lead change moves agents' open-lead counts: the releases (bookkeeping that may have
    gone stale), the loads (required), and the agent a reopen brings the lead back to, if any."""

    release: list[Write]
    load: list[Write]
    reopened_for: str | None = None


class LeadWriter:
    def __init__(
        self,
        leads: LeadRepository,
        directory: VendorDirectory,
        agents: AgentPool,
        dedupe: DedupeKeys,
        usage: VendorUsage,
        outbox: Outbox,
        cache: QueryCache,
        pricer: Pricer,
        suppressions: SuppressionList,
    ) -> None:
        self._leads = leads
        self._directory = directory
        self._agents = agents
        self._dedupe = dedupe
        self._usage = usage
        self._outbox = outbox
        self._cache = cache
        self._pricer = pricer
        self._suppressions = suppressions

    # -- create ---------------------------------------------------------------------------------
    def create(
        self,
        principal: Principal,
        submission: LeadSubmission,
        now: datetime | None = None,
        migrated: bool = False,
    ) -> CreateOutcome:
        """Prices, checks against the suppression list, deduplicates, counts against the caps,
        assigns and stores one lead with its event, all or nothing, once it meets its vendor's
        acceptance rules. A `migrated` lead (an import of an existing lead, created `now` in the
        past) is not held to the acceptance rules, counted against today's caps nor auto-assigned."""
        now = now or datetime.now(UTC)
        draft = self._draft(principal, submission, now, migrated)
        if isinstance(draft, CreateOutcome):
            return draft
        vendor = draft.vendor
        # In the lead's own transaction: an entry listed before it commits refuses the lead.
        unlisted = [self._suppressions.unlisted(key) for key in suppression_keys(draft.lead)]
        claims = [self._dedupe.claim(key, draft.lead, draft.window_start, now) for key in draft.keys]
        routine = not (vendor.test_mode or migrated)  # counted against the caps and auto-assigned
        counts = self._usage.count(vendor, now) if routine else []
        return self._store_new(principal, draft.lead, [*unlisted, *claims, *counts], assign=routine)

    def preview(
        self,
        principal: Principal,
        submission: LeadSubmission,
        now: datetime | None = None,
        earlier: PreviewedClaims | None = None,
        migrated: bool = False,
    ) -> CreateOutcome:
        """What `create` would answer, duplicates included (caps excluded), writing nothing.
        `earlier` holds the claims of previews made before this one (a dry run of a file): this
        preview sees them as stored, and adds its own when it would be accepted."""
        draft = self._draft(principal, submission, now or datetime.now(UTC), migrated)
        if isinstance(draft, CreateOutcome):
            return draft
        if self._suppressions.any_listed(suppression_keys(draft.lead)):
            return SUPPRESSED
        earlier = {} if earlier is None else earlier
        keys = draft.keys
        holders = {**self._dedupe.holders(keys), **{key: earlier[key] for key in keys if key in earlier}}
        for key in keys:
            if key in holders and holders[key].blocks(draft.window_start):
                return CreateOutcome.duplicate(holders[key].lead_id if principal.is_staff else None)
        earlier.update(dict.fromkeys(keys, KeyHolder(draft.lead.lead_id, draft.lead.created_at)))
        return CreateOutcome.accepted(draft.lead)

    def _draft(
        self, principal: Principal, submission: LeadSubmission, now: datetime, migrated: bool
    ) -> Draft | CreateOutcome:
        """The lead to store, or why its vendor may not post it (paused, or a failed acceptance
        rule unless the lead is `migrated`)."""
        assert submission.vendor_code is not None  # intake guarantees it
        vendor, prices = self._directory.vendor_and_prices(submission.vendor_code)
        if vendor is None:
            details = [{"field": "vendor_code", "message": "no such vendor"}]
            return CreateOutcome.rejected(ReasonCode.DATA_ERROR, "Unknown vendor", details=details)
        if vendor.status != "active":
            return CreateOutcome.rejected(ReasonCode.VENDOR_PAUSED, f"Vendor {vendor.vendor_code} is paused")
        failed = None if migrated else refusal(vendor.acceptance, submission, now)
        if failed is not None:
            return CreateOutcome.rejected(failed.code, failed.reason, details=failed.details)
        lead = self._new_lead(principal, submission, vendor, prices, now)
        return Draft(
            lead=lead,
            vendor=vendor,
            keys=dedupe_keys(lead, vendor.test_mode),
            window_start=iso_timestamp(now - timedelta(days=vendor.dedupe_window_days)),
        )

    def _new_lead(
        self,
        principal: Principal,
        submission: LeadSubmission,
        vendor: Vendor,
        prices: PriceList,
        now: datetime,
    ) -> Lead:
        """The lead as it will be stored: scored, priced, not yet assigned."""
        score = score_lead(
            ScoringInput(
                **submission.model_dump(include=SCORED_FIELDS),
                vendor_conversion_rate=vendor.conversion_rate,
                overall_conversion_rate=prices.overall_conversion_rate,
            )
        )
        price = self._pricer.quote(
            prices.settings, vendor.vendor_code, prices.vendor_price, score.score, now
        ).price
        created = iso_timestamp(now)
        return Lead(
            lead_id=str(ULID.from_datetime(now)),
            vendor_code=vendor.vendor_code,
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

    def _store_new(
        self, principal: Principal, lead: Lead, claims: list[Write], assign: bool
    ) -> CreateOutcome:
        """Stores the lead with its claims (no suppression entry, dedupe keys, usage), assigned to
        the least loaded agent who still has room when the transaction commits."""
        full: set[str] = set()  # agents found at capacity by this request (the index may lag)
        candidates = self._agents.candidates() if assign else []
        for attempt in range(MAX_ATTEMPTS):
            agent = candidates[0].user_id if candidates else None
            placed = lead.model_copy(update={"assigned_agent": agent})
            event = lead_event("LeadCreated", placed, None)
            writes = [self._leads.put_new(placed), *claims, self._outbox.write(event)]
            if agent:
                writes.append(self._agents.take(agent))
            try:
                transact(writes)
            except TransactionCancelled as cancelled:
                if cancelled.failed(SuppressionList.ITEM):
                    return SUPPRESSED
                if cancelled.failed(DedupeKeys.ITEM):
                    return self._duplicate(principal, cancelled)
                if cancelled.failed(VendorUsage.ITEM):
                    reason = f"Vendor {lead.vendor_code} has reached its lead cap"
                    return CreateOutcome.rejected(ReasonCode.OVER_CAP, reason, price=lead.lead_value)
                if agent and cancelled.failed(AgentPool.ITEM):
                    full.add(agent)  # it filled up meanwhile
                    candidates = [a for a in self._agents.candidates() if a.user_id not in full]
                elif not cancelled.conflicted:
                    raise
                _back_off(attempt)
                continue
            self._after_change(event, placed)
            logger.info("lead accepted", extra={"lead_id": placed.lead_id, "assigned_agent": agent})
            return CreateOutcome.accepted(placed)
        raise RuntimeError("lead not stored after repeated transaction conflicts")

    def _duplicate(self, principal: Principal, cancelled: TransactionCancelled) -> CreateOutcome:
        """A duplicate names the lead it duplicates to staff only."""
        if not principal.is_staff:
            return CreateOutcome.duplicate(None)
        holder = self._dedupe.holder_of(cancelled.failed_writes(DedupeKeys.ITEM)[0])
        return CreateOutcome.duplicate(holder.lead_id if holder else None)

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
        updates = _field_updates(principal, current, changes, now)
        if not updates:
            return current
        updated = _with_history(current, updates, principal, now)
        event = lead_event("LeadUpdated", updated, current)
        moves = self._load_moves(current, updated)
        required = [self._leads.replace(updated, current.version), self._outbox.write(event), *moves.load]
        for attempt in range(MAX_ATTEMPTS):
            try:
                self._transact_with_bookkeeping(required, bookkeeping=moves.release)
            except TransactionCancelled as cancelled:
                if cancelled.conflicted and not cancelled.failed_writes():
                    # Another transaction held one of the items (often the agent's load, which
                    # every change of its leads writes): the conditions decide on the next try.
                    _back_off(attempt)
                    continue
                self._refuse_update(principal, lead_id, moves, cancelled)
            self._after_change(event, current, updated)
            return updated
        raise RuntimeError("lead not updated after repeated transaction conflicts")

    def _refuse_update(
        self, principal: Principal, lead_id: str, moves: LoadMoves, cancelled: TransactionCancelled
    ) -> NoReturn:
        """The error for an update whose transaction found a condition false."""
        if cancelled.failed(LeadRepository.ITEM) or cancelled.conflicted:
            # Deleted meanwhile (LeadNotFound), or changed: a version conflict.
            self._leads.get(principal.lead_scope, lead_id, consistent=True)
            raise VersionConflict("The lead changed meanwhile; read it again") from cancelled
        agent = None
        if moves.reopened_for and cancelled.failed(AgentPool.ITEM):
            agent = self._agents.agent(moves.reopened_for)  # at capacity, or no longer an agent
        if agent is not None:
            raise AgentAtCapacity(
                f"Agent {agent.user_id} has no room for another open lead (capacity {agent.capacity}):"
                " the lead stays lost; a manager may reopen it by reassigning it",
                details=[
                    {
                        "field": "disposition",
                        "agent": agent.user_id,
                        "open_leads": agent.open_leads,
                        "capacity": agent.capacity,
                    }
                ],
            ) from cancelled
        raise Conflict(
            "The assigned agent does not exist or is not an agent", details=[{"field": "assigned_agent"}]
        ) from cancelled

    def _load_moves(self, before: Lead, after: Lead) -> LoadMoves:
        """How the change moves agents' open-lead counts: closing or losing a lead frees its
        agent; reassigning loads the new one (a manager's choice, which may exceed its capacity);
        reopening loads the lead's own agent only while it has room for it."""
        held_before = before.assigned_agent if is_open(before.disposition) else None
        held_after = after.assigned_agent if is_open(after.disposition) else None
        if held_before == held_after:
            return LoadMoves([], [])
        release = [self._agents.release(held_before)] if held_before else []
        if held_after is None:
            return LoadMoves(release, [])
        if held_after == before.assigned_agent:  # reopened, and still with its agent
            return LoadMoves(release, [self._agents.reopen(held_after)], reopened_for=held_after)
        return LoadMoves(release, [self._agents.add(held_after)])

    # -- delete ---------------------------------------------------------------------------------
    def delete(self, principal: Principal, lead_id: str, now: datetime | None = None) -> None:
        now = now or datetime.now(UTC)
        current = self._leads.get(principal.lead_scope, lead_id, consistent=True)
        stamp = iso_timestamp(now)
        history = {"timestamp": stamp, "user": principal.user_id, "action": "deleted", "changes": {}}
        deleted = current.model_copy(update={"version": current.version + 1, "updated_at": stamp})
        event = lead_event("LeadDeleted", deleted, current, deleted=True)
        required = [
            self._leads.soft_delete(current, stamp, principal.user_id, history),
            self._outbox.write(event),
        ]
        bookkeeping = [
            self._dedupe.free(key, current.lead_id) for key in dedupe_keys(current, current.is_test)
        ]
        if current.assigned_agent and is_open(current.disposition):
            bookkeeping.append(self._agents.release(current.assigned_agent))
        try:
            self._transact_with_bookkeeping(required, bookkeeping)
        except TransactionCancelled as cancelled:
            if cancelled.failed(LeadRepository.ITEM):
                # Deleted meanwhile (LeadNotFound), or only changed: then it is a version conflict.
                self._leads.get(principal.lead_scope, lead_id, consistent=True)
            raise VersionConflict("The lead changed meanwhile; try again") from cancelled
        self._after_change(event, current)

    # -- both -----------------------------------------------------------------------------------
    @staticmethod
    def _transact_with_bookkeeping(required: list[Write], bookkeeping: list[Write]) -> None:
        """Bookkeeping (releasing a removed agent's load, freeing a dedupe key another lead has
        taken since) must never block a lead change: when only some of it no longer applies, the
        change goes through without it."""
        skipped = transact_tolerating(required, bookkeeping)
        if skipped:
            logger.warning("lead change applied without stale bookkeeping", extra={"skipped": len(skipped)})

    def _after_change(self, event: OutboxEvent, *versions: Lead) -> None:
        publish_change(self._cache, self._outbox, event, *versions)


def publish_change(cache: QueryCache, outbox: Outbox, event: OutboxEvent, *versions: Lead) -> None:
    """Publishes a committed lead change, after making stale what it changed: the cached reads of
    every scope that saw the lead or sees it now (staff, its vendor, its agents before and after).
    Other vendors' and agents' lists stay cached."""
    scopes = scopes_seeing(versions[0].vendor_code, (lead.assigned_agent for lead in versions))
    cache.invalidate(Namespace.LEADS, scopes)
    outbox.send(event)


def _back_off(attempt: int) -> None:
    """A short random wait before trying a transaction again, longer with each attempt."""
    time.sleep(random.uniform(0, 0.01 * (attempt + 1)))  # noqa: S311  # nosec B311  # jitter, not crypto


def _field_updates(
    principal: Principal, current: Lead, changes: LeadChanges, now: datetime
) -> dict[str, Any]:
    """The fields the request changes, with their new values, after the rules of who may change
    what and which moves a lead may make."""
    requested = changes.model_dump(exclude={"version"}, exclude_unset=True)
    if "assigned_agent" in requested and not principal.is_staff:
        # A field the role may not write is refused by name (422), like a vendor's mass assignment.
        refusal = {"field": "assigned_agent", "message": f"may not be set by an {principal.role.value}"}
        raise ValidationFailed("Only a manager or an admin may reassign a lead", details=[refusal])
    if not requested:
        raise ValidationFailed("Nothing to change", details=[{"field": "body", "message": "no fields given"}])
    updates: dict[str, Any] = {}
    moved_to = changes.disposition
    if moved_to is not None and moved_to != current.disposition:
        check_move(current.disposition, moved_to)
        updates["disposition"] = moved_to
        if moved_to is Disposition.CLOSED:
            updates["closed_date"] = iso_timestamp(now)
    if isinstance(requested.get("last_contact"), datetime):
        requested["last_contact"] = iso_timestamp(requested["last_contact"])
    for name in EDITABLE_FIELDS:
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
    return updates


def _with_history(current: Lead, updates: dict[str, Any], principal: Principal, now: datetime) -> Lead:
    """`current` with `updates`, its next version, and the history entry that records them."""
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
    return current.model_copy(
        update={
            **updates,
            "updated_at": stamp,
            "version": current.version + 1,
            "update_history": [*current.update_history, history],
        }
    )


def _plain(value: Any) -> Any:
    return value.value if isinstance(value, Disposition) else value
