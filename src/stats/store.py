"""The stats tables: day buckets of counters, and the state of each lead they were built from.

The stats table holds, per partition of counters, one item per day, `pk=<partition>, sk=<day>`
(see `shared.buckets` and `stats.aggregation`). The stats-state table holds, per `lead_id`, the
newest version of the lead applied to the buckets and its stats view. Applying a change is one
transaction: the state moves to the new version (only if it is newer) and every bucket item moves
by the difference. A redelivered, duplicated or older event finds a state at least as new and
changes nothing.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

from shared.buckets import PARTITIONS, BucketKey, Buckets, DayBuckets, by_item
from shared.dynamo import Table, TransactionCancelled, Write, transact
from stats.aggregation import LeadView, difference

MAX_ATTEMPTS = 10
LEAD_STATE = "lead state"  # the transaction item that records the version applied


@dataclass(frozen=True)
class AppliedChange:
    applied: bool  # False: that version, or a newer one, was applied already
    counters_moved: bool  # whether any bucket counter changed (a notes-only edit moves none)


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
        if item is None:
            return None
        return LeadState(int(item["version"]), LeadView.from_values(item.get("view")))

    def apply(self, lead_id: str, version: int, view: LeadView | None) -> bool:
        """Moves the buckets from the lead's applied state to `view` at `version`. False (and
        nothing written) when an equal or newer version was applied already."""
        return self.apply_change(lead_id, version, view).applied

    def apply_change(self, lead_id: str, version: int, view: LeadView | None) -> AppliedChange:
        """`apply`, saying also whether any counter moved."""
        for _ in range(MAX_ATTEMPTS):
            current = self.state(lead_id)
            if current is not None and current.version >= version:
                return AppliedChange(applied=False, counters_moved=False)
            deltas = difference(current.view if current else None, view, self._zone)
            writes = [self._state_write(lead_id, version, view, current), *self._bucket_writes(deltas)]
            try:
                transact(writes)
            except TransactionCancelled as cancelled:
                if cancelled.failed(LEAD_STATE) or cancelled.conflicted:
                    continue  # another delivery of this lead moved first: look again
                raise
            return AppliedChange(applied=True, counters_moved=bool(deltas))
        raise RuntimeError(f"stats for lead {lead_id} not applied after {MAX_ATTEMPTS} attempts")

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
