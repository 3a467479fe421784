"""The suppression list: emails and phones that are never accepted as leads, whoever posts them.

An entry is one item of the suppressions table, keyed like a lead's dedupe key (`email` or
`phone` and the SHA-256 of the value normalised by `leads.normalize`, the functions posting
normalises with), without the test prefix, so a suppressed person is refused to test vendors too,
and with `-` for the dedupe key's `:` so that the key is also the entry's `entry_id`, a path
segment that needs no escaping.

Posting checks the list inside the lead's own transaction (a ConditionCheck that the entry does not
exist, `SuppressionList.unlisted`), never by a read before it and never through a cache: an entry
whose add returned before a post's transaction commits always refuses that post. Adding is a
conditional put, so adding a value already listed changes nothing (the first entry stays).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from leads.dedupe import dedupe_keys, person_key
from leads.models import Lead, LeadSubmission, SuppressionCreate, SuppressionKind
from shared.dates import iso_timestamp
from shared.dynamo import ConditionFailed, Item, Table, Write, batch_get, from_item, to_item
from shared.errors import NotFound
from shared.observability import logger
from shared.pagination import CursorCodec
from shared.security import Principal

Kind = SuppressionKind
# A put that meets a lead transaction in flight on its item is refused; it is tried again.
MAX_ATTEMPTS = 10


def _entry_form(person_key: str) -> str:
    return person_key.replace(":", "-", 1)


def suppression_keys(person: LeadSubmission | Lead) -> list[str]:
    """The entries that would suppress a person: one per normalised email and phone."""
    return [_entry_form(key) for key in dedupe_keys(person, test=False)]


def entry_key(kind: Kind, normalised: str) -> str:
    """The key (and `entry_id`) of the entry for one normalised email or phone."""
    return _entry_form(person_key(kind, normalised))


class EntryNotFound(NotFound):
    def __init__(self) -> None:
        super().__init__("No such suppression entry")


@dataclass(frozen=True)
class Entry:
    """One listed email or phone: the normalised value, why, who listed it and when."""

    entry_id: str
    kind: Kind
    value: str
    reason: str
    created_at: str
    created_by: str

    @classmethod
    def from_item(cls, item: Item) -> Entry:
        return cls(
            entry_id=str(item["suppression_key"]),
            kind=item["kind"],
            value=str(item["value"]),
            reason=str(item["reason"]),
            created_at=str(item["created_at"]),
            created_by=str(item["created_by"]),
        )

    def item(self) -> dict[str, Any]:
        return {
            "suppression_key": self.entry_id,
            "kind": self.kind,
            "value": self.value,
            "reason": self.reason,
            "created_at": self.created_at,
            "created_by": self.created_by,
        }

    def view(self) -> dict[str, Any]:
        """The entry as the API shows it: `email` or `phone` set, the other null."""
        return {
            "entry_id": self.entry_id,
            "email": self.value if self.kind == "email" else None,
            "phone": self.value if self.kind == "phone" else None,
            "reason": self.reason,
            "created_at": self.created_at,
            "created_by": self.created_by,
        }


@dataclass(frozen=True)
class EntryPage:
    entries: list[Entry]
    last_key: dict[str, Any] | None


class SuppressionList:
    ITEM = "suppression entry"  # the name of its transaction items

    def __init__(self, table: Table) -> None:
        self._table = table

    # -- posting ----------------------------------------------------------------------------------
    def unlisted(self, key: str) -> Write:
        """A transaction item that holds only while no entry has `key`."""
        return Write(
            "ConditionCheck",
            self._table.name,
            key={"suppression_key": key},
            condition="attribute_not_exists(suppression_key)",
            name=self.ITEM,
        )

    def any_listed(self, keys: Sequence[str]) -> bool:
        """Whether an entry has one of `keys` (a consistent read; for previews, which write nothing)."""
        if not keys:
            return False
        request = {self._table.name: [{"suppression_key": key} for key in keys]}
        return bool(batch_get(request, consistent=True)[self._table.name])

    # -- administration ---------------------------------------------------------------------------
    def add(self, entry: Entry) -> tuple[Entry, bool]:
        """Lists `entry` unless its value is listed already. Returns the entry now listed and
        whether it is the new one. When it returns, every later lead transaction sees the entry."""
        write = Write(
            "Put",
            self._table.name,
            item=entry.item(),
            condition="attribute_not_exists(suppression_key)",
        )
        for attempt in range(MAX_ATTEMPTS):
            try:
                self._table.write(write)
            except ConditionFailed:
                existing = self._table.get({"suppression_key": entry.entry_id}, consistent=True)
                if existing is None:  # removed meanwhile: list it again
                    continue
                return Entry.from_item(existing), False
            except ClientError as error:
                if error.response["Error"]["Code"] != "TransactionConflictException":
                    raise
                time.sleep(0.005 * (attempt + 1))  # a lead transaction holds the item; it ends soon
                continue
            return entry, True
        raise RuntimeError("suppression entry not stored after repeated transaction conflicts")

    def remove(self, entry_id: str) -> None:
        """Unlists an entry; 404 when there is none with that id."""
        write = Write(
            "Delete",
            self._table.name,
            key={"suppression_key": entry_id},
            condition="attribute_exists(suppression_key)",
        )
        try:
            self._table.write(write)
        except ConditionFailed as exc:
            raise EntryNotFound from exc

    def page(self, kind: Kind | None, limit: int, start_key: dict[str, Any] | None) -> EntryPage:
        """Up to `limit` entries (of one kind, if given), in the table's order, which is stable
        across pages. A Scan: the list is small and only admins read it."""
        request: dict[str, Any] = {"TableName": self._table.name}
        if kind is not None:
            request["FilterExpression"] = "kind = :kind"
            request["ExpressionAttributeValues"] = to_item({":kind": kind})
        entries: list[Entry] = []
        last_key = start_key
        while True:
            request["Limit"] = limit - len(entries)
            if last_key:
                request["ExclusiveStartKey"] = to_item(last_key)
            response = self._table.client.scan(**request)
            entries.extend(Entry.from_item(from_item(item)) for item in response.get("Items", []))
            raw_last = response.get("LastEvaluatedKey")
            last_key = from_item(raw_last) if raw_last else None
            if last_key is None or len(entries) >= limit:
                return EntryPage(entries, last_key)


class SuppressionAdmin:
    """What admins do with the list: add, remove and page through entries."""

    QUERY = "suppressions"  # what list cursors are signed for, with the filter

    def __init__(self, entries: SuppressionList, codec: CursorCodec) -> None:
        self._entries = entries
        self._codec = codec

    def add(
        self, principal: Principal, body: SuppressionCreate, now: datetime | None = None
    ) -> tuple[dict[str, Any], bool]:
        """Lists the body's email or phone (already normalised). Returns the entry now listed for
        it (the first one, when it was listed already) and whether this add listed it."""
        kind, value = body.contact()
        entry = Entry(
            entry_id=entry_key(kind, value),
            kind=kind,
            value=value,
            reason=body.reason,
            created_at=iso_timestamp(now or datetime.now(UTC)),
            created_by=principal.user_id,
        )
        listed, created = self._entries.add(entry)
        message = "suppression entry added" if created else "suppression entry already listed"
        logger.info(message, extra={"entry_id": listed.entry_id})
        return listed.view(), created

    def is_listed(self, body: SuppressionCreate) -> bool:
        """Whether the body's email or phone is listed (what a dry run of an import asks)."""
        return self._entries.any_listed([entry_key(*body.contact())])

    def remove(self, entry_id: str) -> None:
        self._entries.remove(entry_id)
        logger.info("suppression entry removed", extra={"entry_id": entry_id})

    def page(self, kind: Kind | None, limit: int, cursor: str | None) -> dict[str, Any]:
        query = f"{self.QUERY}:{kind or ''}"
        page = self._entries.page(kind, limit, self._codec.decode(cursor, query))
        return {
            "data": [entry.view() for entry in page.entries],
            "pagination": {
                "cursor": self._codec.encode(page.last_key, query),
                "hasMore": page.last_key is not None,
                "count": len(page.entries),
            },
        }
