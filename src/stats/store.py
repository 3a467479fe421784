"""The stats tables: day buckets of counters, and the state of each lead they were built from.

The stats table holds, per partition of counters, one item per day, `pk=<partition>, sk=<day>`
(see `shared.buckets` and `stats.aggregation`). The stats-state table holds, per `lead_id`, the
newest version of the lead applied to the buckets and its stats view. Changes are applied in
batches: one transaction moves the states of up to about a hundred leads to their new versions
(each only if it is newer) and every bucket item once, by the sum of their differences. So a burst
of leads updates each (partition, day) item once per batch, not once per lead. A redelivered,
duplicated or older event finds a state at least as new and changes nothing.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from shared.buckets import PARTITIONS, BucketKey, Buckets, DayBuckets, by_item
from shared.dynamo import Table, TransactionCancelled, Write, batch_get, transact
from stats.aggregation import LeadView, difference, merge

MAX_ATTEMPTS = 10
MAX_TRANSACTION_ITEMS = 100  # DynamoDB's limit for one TransactWriteItems
BACKOFF_SECONDS = 0.02  # the first retry waits up to this long; each further one twice as long
LEAD_STATE = "lead state"  # the transaction item that records the version applied


@dataclass(frozen=True)
class AppliedChange:
    applied: bool  # False: that version, or a newer one, was applied already
    counters_moved: bool  # whether any bucket counter changed (a notes-only edit moves none)


@dataclass(frozen=True)
class LeadChange:
    """A lead's stats view at one version, as its event carries it (None: no longer counted)."""

    lead_id: str
    version: int
    view: LeadView | None


@dataclass
class BatchResult:
    applied: set[str] = field(default_factory=set)  # leads moved to their new version
    counters_moved: bool = False  # whether any bucket counter changed
    failed: set[str] = field(default_factory=set)  # leads not applied after every attempt
    # What it cost, for the consumer's metrics: transactions committed, the bucket-item writes
    # they made (each (partition, day) item once per transaction), and transactions cancelled by
    # a concurrent delivery and run again.
    transactions: int = 0
    bucket_item_writes: int = 0
    conflicts_retried: int = 0


@dataclass(frozen=True)
class _Move:
    change: LeadChange
    current: LeadState | None
    deltas: Buckets


@dataclass(frozen=True)
class LeadState:
    version: int
    view: LeadView | None


class StatsStore:
    def __init__(self, table: Table, states: Table, zone: ZoneInfo) -> None:
        self._table = table
        self._states = states
        self._zone = zone

    def state(self, lead_id: str) -> LeadState | None:
        item = self._states.get({"lead_id": lead_id}, consistent=True)
        return _state(item) if item is not None else None

    def apply(self, lead_id: str, version: int, view: LeadView | None) -> bool:
        """Moves the buckets from the lead's applied state to `view` at `version`. False (and
        nothing written) when an equal or newer version was applied already."""
        return self.apply_change(lead_id, version, view).applied

    def apply_change(self, lead_id: str, version: int, view: LeadView | None) -> AppliedChange:
        """`apply`, saying also whether any counter moved."""
        result = self.apply_batch([LeadChange(lead_id, version, view)])
        if result.failed:
            raise RuntimeError(f"stats for lead {lead_id} not applied after {MAX_ATTEMPTS} attempts")
        return AppliedChange(applied=lead_id in result.applied, counters_moved=result.counters_moved)

    def apply_batch(self, changes: Iterable[LeadChange]) -> BatchResult:
        """Applies each lead's newest change of the batch (older ones it carries are covered by
        it: the buckets follow states, not events). Leads whose transaction was cancelled by a
        concurrent delivery are read again and retried, with jittered exponential back-off;
        those still not applied after `MAX_ATTEMPTS` are returned as failed."""
        pending = _newest_per_lead(changes)
        result = BatchResult()
        cancelled = 0  # transactions of the previous attempt that a concurrent delivery cancelled
        for attempt in range(MAX_ATTEMPTS):
            if attempt:
                result.conflicts_retried += cancelled
                time.sleep(random.uniform(0, BACKOFF_SECONDS * 2 ** (attempt - 1)))  # noqa: S311  # nosec B311  # jitter, not crypto
            moves = self._moves(pending)
            retry: dict[str, LeadChange] = {}
            cancelled = 0
            for chunk in _chunks(moves):
                written = self._commit(chunk)
                if written is None:
                    cancelled += 1
                    retry.update({move.change.lead_id: move.change for move in chunk})
                    continue
                result.transactions += 1
                result.bucket_item_writes += written
                result.applied.update(move.change.lead_id for move in chunk)
                result.counters_moved |= any(move.deltas for move in chunk)
            if not retry:
                return result
            pending = retry
        result.failed = set(pending)
        return result

    def _moves(self, changes: dict[str, LeadChange]) -> list[_Move]:
        """What each change moves, from the leads' applied states (read in one round trip);
        changes no newer than their lead's state are left out."""
        states = self._states_of(list(changes))
        moves = []
        for lead_id, change in sorted(changes.items()):
            current = states.get(lead_id)
            if current is not None and current.version >= change.version:
                continue
            deltas = difference(current.view if current else None, change.view, self._zone)
            moves.append(_Move(change, current, deltas))
        return moves

    def _states_of(self, lead_ids: list[str]) -> dict[str, LeadState]:
        found: dict[str, LeadState] = {}
        for start in range(0, len(lead_ids), 100):  # BatchGetItem reads at most 100 keys
            keys = [{"lead_id": lead_id} for lead_id in lead_ids[start : start + 100]]
            items = batch_get({self._states.name: keys}, consistent=True)[self._states.name]
            found.update({item["lead_id"]: _state(item) for item in items})
        return found

    def _commit(self, chunk: Sequence[_Move]) -> int | None:
        """One transaction: the chunk's states and the sum of its deltas. Returns the bucket items
        it wrote; None when a concurrent delivery got there first (a state moved, or a conflict
        on an item)."""
        summed: Buckets = {}
        for move in chunk:
            merge(summed, move.deltas)
        bucket_writes = self._bucket_writes(summed)
        writes = [
            *(
                self._state_write(move.change.lead_id, move.change.version, move.change.view, move.current)
                for move in chunk
            ),
            *bucket_writes,
        ]
        try:
            transact(writes)
        except TransactionCancelled as cancelled:
            if cancelled.failed(LEAD_STATE) or cancelled.conflicted:
                return None
            raise
        return len(bucket_writes)

    def _state_write(
        self, lead_id: str, version: int, view: LeadView | None, current: LeadState | None
    ) -> Write:
        item = {"lead_id": lead_id, "version": version, "view": view.to_values() if view else None}
        if current is None:
            return Write(
                "Put",
                self._states.name,
                item=item,
                condition="attribute_not_exists(lead_id)",
                name=LEAD_STATE,
            )
        return Write(
            "Put",
            self._states.name,
            item=item,
            condition="#version = :seen",
            names={"#version": "version"},
            values={":seen": current.version},
            name=LEAD_STATE,
        )

    def _bucket_writes(self, deltas: Buckets) -> list[Write]:
        writes = []
        for (partition, day), counters in sorted(by_item(deltas).items()):
            names = {f"#c{i}": name for i, name in enumerate(sorted(counters))}
            values = {f":c{i}": counters[name] for i, name in enumerate(sorted(counters))}
            update = "ADD " + ", ".join(f"#c{i} :c{i}" for i in range(len(counters)))
            writes.append(
                Write(
                    "Update",
                    self._table.name,
                    key={"pk": partition, "sk": day},
                    update=update,
                    names=names,
                    values=values,
                )
            )
        return writes

    def buckets(self, first_day: str, last_day: str, partitions: Iterable[str] = PARTITIONS) -> Buckets:
        """The day buckets from `first_day` to `last_day` inclusive (days without leads absent)."""
        return DayBuckets(self._table).between(first_day, last_day, partitions)

    def bucket_items(self) -> Iterator[dict[str, Any]]:
        return self._table.scan_all()

    def state_items(self) -> Iterator[dict[str, Any]]:
        return self._states.scan_all()

    def put_buckets(self, items: list[dict[str, Any]]) -> None:
        self._table.batch_put(items)

    def put_states(self, items: list[dict[str, Any]]) -> None:
        self._states.batch_put(items)

    def delete_buckets(self, keys: list[BucketKey]) -> None:
        self._table.batch_delete([{"pk": partition, "sk": day} for partition, day in keys])


def _state(item: dict[str, Any]) -> LeadState:
    return LeadState(int(item["version"]), LeadView.from_values(item.get("view")))


def _newest_per_lead(changes: Iterable[LeadChange]) -> dict[str, LeadChange]:
    newest: dict[str, LeadChange] = {}
    for change in changes:
        if change.lead_id not in newest or change.version > newest[change.lead_id].version:
            newest[change.lead_id] = change
    return newest


def _chunks(moves: list[_Move]) -> Iterator[list[_Move]]:
    """The moves in groups that each fit one transaction: a state per lead plus one write per
    bucket item the group's summed deltas touch."""
    chunk: list[_Move] = []
    items: set[BucketKey] = set()
    for move in moves:
        touched = items | set(by_item(move.deltas))
        if chunk and len(chunk) + 1 + len(touched) > MAX_TRANSACTION_ITEMS:
            yield chunk
            chunk, touched = [], set(by_item(move.deltas))
        chunk.append(move)
        items = touched
    if chunk:
        yield chunk
