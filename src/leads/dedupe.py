"""Data access for the dedupe table: one item per normalised email or phone, naming the lead that
holds it. A new lead claims its keys in the transaction that stores it, so two posts of one
person can never both be accepted."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from leads.models import Lead, LeadSubmission
from shared.dynamo import Table, Write, batch_get

RETENTION_DAYS = 400  # longer than any vendor's dedupe window (at most 365 days)


def person_key(kind: str, normalised: str, test: bool = False) -> str:
    """The key naming a person by one normalised `email` or `phone`: the kind and the value's
    SHA-256 (test leads dedupe among themselves, under a prefix of their own)."""
    prefix = "test:" if test else ""
    return f"{prefix}{kind}:{hashlib.sha256(normalised.encode()).hexdigest()}"


def dedupe_keys(person: LeadSubmission | Lead, test: bool) -> list[str]:
    """One uniqueness key per normalised email and phone; test leads dedupe among themselves."""
    return [person_key(kind, value, test) for kind in ("email", "phone") if (value := getattr(person, kind))]


@dataclass(frozen=True)
class KeyHolder:
    """The lead a dedupe key names, and when that lead was created."""

    lead_id: str
    created_at: str

    def blocks(self, window_start: str) -> bool:
        """Whether a lead whose dedupe window starts at `window_start` is a duplicate of this one
        (the rule `claim` states as its condition)."""
        return self.created_at >= window_start


class DedupeKeys:
    ITEM = "dedupe key"  # the name of its transaction items

    def __init__(self, table: Table) -> None:
        self._table = table

    def claim(self, key: str, lead: Lead, window_start: str, now: datetime) -> Write:
        """Makes `lead` the key's holder, unless a lead created since `window_start` holds it."""
        expires = int((now + timedelta(days=RETENTION_DAYS)).timestamp())
        return Write(
            "Put",
            self._table.name,
            item={
                "dedupe_key": key,
                "lead_id": lead.lead_id,
                "created_at": lead.created_at,
                "expires_at": expires,
            },
            condition="attribute_not_exists(dedupe_key) OR created_at < :window_start",
            values={":window_start": window_start},
            name=self.ITEM,
        )

    def free(self, key: str, lead_id: str) -> Write:
        """A deleted lead no longer blocks the same person being posted again (only while the
        key is still this lead's)."""
        return Write(
            "Delete",
            self._table.name,
            key={"dedupe_key": key},
            condition="lead_id = :lead",
            values={":lead": lead_id},
            name=self.ITEM,
        )

    def holders(self, keys: list[str]) -> dict[str, KeyHolder]:
        """The current holder of each key that has one, in one round trip."""
        found = batch_get({self._table.name: [{"dedupe_key": key} for key in keys]})[self._table.name]
        return {item["dedupe_key"]: _holder(item) for item in found}

    def holder_of(self, claim: Write) -> KeyHolder | None:
        """Who holds the key of a claim that failed (a consistent read)."""
        assert claim.item is not None
        item = self._table.get({"dedupe_key": claim.item["dedupe_key"]}, consistent=True)
        return _holder(item) if item else None


def _holder(item: dict[str, object]) -> KeyHolder:
    return KeyHolder(lead_id=str(item["lead_id"]), created_at=str(item["created_at"]))
