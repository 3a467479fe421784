"""Recomputes the stats buckets from the leads table: the safety net for lost events.

Every lead's current state is turned into its contribution (`stats.aggregation`), the sum is
compared with the stored buckets, and only what differs is rewritten. Lead states are reset to the
leads' current versions, so events still in flight are recognised as old and change nothing.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

from shared.buckets import BucketKey, Counters, by_item
from stats.aggregation import Buckets, LeadView, contribution, merge
from stats.store import StatsStore


def view_of(item: dict[str, Any]) -> LeadView | None:
    """The stats view of a stored lead item (deleted when it carries `deleted_at`)."""
    return LeadView.from_values({**item, "deleted": bool(item.get("deleted_at"))})


def expected_buckets(lead_items: Iterable[dict[str, Any]], zone: ZoneInfo) -> Buckets:
    total: Buckets = {}
    for item in lead_items:
        merge(total, contribution(view_of(item), zone))
    return total


def counts_of(bucket: dict[str, Any]) -> Counters:
    """A stored bucket's counts but its zero ones: the consumer leaves a count it took back down
    at 0 (a lead moved out of a disposition), a rebuild writes none; both count the same."""
    return {name: value for name, value in bucket.items() if name not in ("pk", "sk") and value != 0}


@dataclass
class RebuildReport:
    """What a rebuild changed: the days whose bucket items it rewrote or removed (in any partition)."""

    leads: int = 0
    days_rewritten: list[str] = field(default_factory=list)
    days_removed: list[str] = field(default_factory=list)
    states_rewritten: int = 0

    @property
    def changed(self) -> bool:
        return bool(self.days_rewritten or self.days_removed or self.states_rewritten)


def rebuild(
    lead_items: Iterable[dict[str, Any]],
    store: StatsStore,
    zone: ZoneInfo,
    first_day: str | None = None,
    last_day: str | None = None,
) -> RebuildReport:
    """Makes the buckets (of the days between `first_day` and `last_day`, all by default) equal
    to what the leads contribute, and every lead state equal to the lead's current version."""
    report = RebuildReport()
    target: Buckets = {}
    wanted_states: dict[str, dict[str, Any]] = {}
    for item in lead_items:
        report.leads += 1
        view = view_of(item)
        merge(target, contribution(view, zone))
        wanted_states[item["lead_id"]] = {
            "lead_id": item["lead_id"],
            "version": int(item["version"]),
            "view": view.to_values() if view else None,
        }

    def in_range(day: str) -> bool:
        return (first_day is None or day >= first_day) and (last_day is None or day <= last_day)

    wanted_items = by_item(target)
    stored_items: dict[BucketKey, Counters] = {}
    for item in store.bucket_items():
        counters = counts_of(item)
        if counters:
            stored_items[(item["pk"], item["sk"])] = counters
    stored_states = {item["lead_id"]: item for item in store.state_items()}

    rewrites: list[BucketKey] = []
    removals: list[BucketKey] = []
    for key in sorted(set(wanted_items) | set(stored_items)):
        if in_range(key[1]) and wanted_items.get(key, {}) != stored_items.get(key, {}):
            (rewrites if key in wanted_items else removals).append(key)
    store.put_buckets(
        [{"pk": partition, "sk": day, **wanted_items[(partition, day)]} for partition, day in rewrites]
    )
    store.delete_buckets(removals)
    report.days_rewritten = sorted({day for _, day in rewrites})
    report.days_removed = sorted({day for _, day in removals} - set(report.days_rewritten))

    state_rewrites = [
        state
        for lead_id, state in wanted_states.items()
        if not _same_state(stored_states.get(lead_id), state)
    ]
    store.put_states(state_rewrites)
    report.states_rewritten = len(state_rewrites)
    return report


def _same_state(stored: dict[str, Any] | None, wanted: dict[str, Any]) -> bool:
    if stored is None:
        return False
    stored_view = LeadView.from_values(stored.get("view"))
    wanted_view = LeadView.from_values(wanted.get("view"))
    return int(stored["version"]) == wanted["version"] and stored_view == wanted_view
