"""A vendor's returns, as staff and the vendor itself list them (newest first, filter `status`).
Read straight from the returns table (not cached): an admin deciding returns reads its own
decisions back at once."""

from __future__ import annotations

from typing import Any

from agencies.repository import AgencyNotFound, AgencyRepository
from shared.pagination import CursorCodec
from shared.responses import Pagination
from shared.returns import STAFF_ONLY_FIELDS, ReturnRecords, ReturnStatus
from shared.security import Principal


class VendorReturns:
    def __init__(self, agencies: AgencyRepository, returns: ReturnRecords, codec: CursorCodec) -> None:
        self._agencies = agencies
        self._returns = returns
        self._codec = codec

    def page(
        self, principal: Principal, code: str, status: ReturnStatus | None, limit: int, cursor: str | None
    ) -> dict[str, Any]:
        own = principal.lead_scope.vendor_code
        if own is not None and own != code:
            raise AgencyNotFound(code)  # another agency's data does not exist for a vendor
        if self._agencies.get(code) is None:
            raise AgencyNotFound(code)
        query = f"returns|{code}|{status.value if status else ''}"
        page = self._returns.vendor_page(code, status, limit, self._codec.decode(cursor, query))
        hidden = STAFF_ONLY_FIELDS if own is not None else frozenset()
        data = [{k: v for k, v in item.items() if k not in hidden} for item in page.items]
        pagination = Pagination(
            cursor=self._codec.encode(page.last_key, query),
            hasMore=page.last_key is not None,
            count=len(data),
        )
        return {"data": data, "pagination": pagination.model_dump()}
