"""Reading the durable audit records (`GET /admin/audit`), newest first.

Records are stored per day (`day`, `at`); one user's records are also in `UserIndex`. A query for
one user is a single Query on that index; an unfiltered query walks the days of the range from the
newest, so a page costs one Query per day it has to look at (at most the range's length).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from shared.audit import stored_record
from shared.dates import DayRange
from shared.dynamo import KeyCondition, Table
from shared.pagination import CursorCodec

USER_INDEX = "UserIndex"


@dataclass(frozen=True)
class AuditQuery:
    user: str | None
    first: date
    last: date

    @classmethod
    def of(cls, user: str | None, first: date | None, last: date | None, today: date) -> AuditQuery:
        span = DayRange.of(first, last, today)
        return cls(user, span.first, span.last)

    @property
    def identity(self) -> str:
        return f"audit|{self.user}|{self.first.isoformat()}|{self.last.isoformat()}"


class AuditTrail:
    def __init__(self, table: Table, cursors: CursorCodec) -> None:
        self._table = table
        self._cursors = cursors

    def page(self, query: AuditQuery, limit: int, cursor: str | None) -> dict[str, Any]:
        position = self._cursors.decode(cursor, query.identity)
        items, next_position = (self._by_user if query.user else self._by_day)(query, limit, position)
        return {
            "data": [stored_record(item) for item in items],
            "pagination": {
                "cursor": self._cursors.encode(next_position, query.identity),
                "hasMore": next_position is not None,
                "count": len(items),
            },
        }

    def _by_user(
        self, query: AuditQuery, limit: int, position: dict[str, Any] | None
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        assert query.user is not None
        page = self._table.query_page(
            KeyCondition(
                index=USER_INDEX,
                partition_name="user",
                partition_value=query.user,
                sort_name="at",
                sort_from=query.first.isoformat(),
                sort_to=f"{query.last.isoformat()}~",
            ),
            limit=limit,
            start_key=position,
        )
        return page.items, page.last_key

    def _by_day(
        self, query: AuditQuery, limit: int, position: dict[str, Any] | None
    ) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
        day = date.fromisoformat(position["day"]) if position else query.last
        start = position.get("key") if position else None
        items: list[dict[str, Any]] = []
        while day >= query.first:
            page = self._table.query_page(
                KeyCondition(index=None, partition_name="day", partition_value=day.isoformat()),
                limit=limit - len(items),
                start_key=start,
            )
            items += page.items
            if page.last_key is not None:
                return items, {"day": day.isoformat(), "key": page.last_key}
            day, start = day - timedelta(days=1), None
            if len(items) >= limit:
                return items, ({"day": day.isoformat(), "key": None} if day >= query.first else None)
        return items, None
