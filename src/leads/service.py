"""Lead use cases: what a caller may read, through the query cache."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Any

from leads.models import LeadFilters
from leads.repository import LeadRepository
from shared.cache import Namespace, QueryCache
from shared.dates import iso_timestamp
from shared.errors import BadRequest
from shared.pagination import CursorCodec
from shared.responses import Pagination
from shared.security import Principal


def parse_time_bound(value: str | None, field: str, end_of_day: bool) -> str | None:
    """`from`/`to` as a date (whole day, in UTC) or an ISO 8601 time; returns the stored form."""
    if value is None:
        return None
    try:
        if "T" not in value and " " not in value:
            day = date.fromisoformat(value)
            moment = datetime.combine(day, time.max if end_of_day else time.min, tzinfo=UTC)
        else:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=UTC)
        try:
            moment = moment.astimezone(UTC)
        except OverflowError:  # on 9999-12-31 behind UTC: past the calendar's end, which it bounds
            moment = datetime.max.replace(tzinfo=UTC)
    except ValueError as exc:
        raise BadRequest(
            f"'{field}' must be a date (YYYY-MM-DD) or an ISO 8601 time",
            details=[{"field": field, "message": "invalid date or time"}],
        ) from exc
    return iso_timestamp(moment)


class LeadService:
    def __init__(self, repository: LeadRepository, cache: QueryCache, cursors: CursorCodec) -> None:
        self._repository = repository
        self._cache = cache
        self._cursors = cursors

    def list_leads(
        self, principal: Principal, filters: LeadFilters, limit: int, cursor: str | None
    ) -> dict[str, Any]:
        if filters.created_from and filters.created_to and filters.created_from > filters.created_to:
            raise BadRequest(
                "'from' must not be after 'to'", details=[{"field": "from", "message": "after 'to'"}]
            )
        scope = principal.lead_scope
        query_id = f"{scope.cache_key}|{filters.model_dump_json()}"
        start_key = self._cursors.decode(cursor, query_id)

        def load() -> dict[str, Any]:
            page = self._repository.list_page(scope, filters, limit, start_key)
            pagination = Pagination(
                cursor=self._cursors.encode(page.last_key, query_id),
                hasMore=page.last_key is not None,
                count=len(page.items),
            )
            return {"data": page.items, "pagination": pagination.model_dump()}

        params = {"filters": filters.model_dump(mode="json"), "limit": limit, "cursor": cursor}
        return self._cache.get_or_load(Namespace.LEADS, scope.cache_key, params, load)

    def get_lead(self, principal: Principal, lead_id: str) -> dict[str, Any]:
        scope = principal.lead_scope
        return self._cache.get_or_load(
            Namespace.LEADS,
            scope.cache_key,
            {"lead_id": lead_id},
            lambda: self._repository.get(scope, lead_id).model_dump(mode="python"),
        )
