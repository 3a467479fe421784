"""Response models every service publishes: the error body and the page of a list. Plain pydantic,
so domain models may use them without importing the HTTP layer."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field


class ErrorInfo(BaseModel):
    code: str = Field(description="Machine-readable error code, e.g. VALIDATION_ERROR")
    message: str
    details: list[dict[str, Any]] = Field(default_factory=list)


class ErrorBody(BaseModel):
    error: ErrorInfo


class Pagination(BaseModel):
    cursor: str | None = Field(description="Opaque cursor for the next page; null on the last page")
    hasMore: bool
    count: int = Field(description="Number of items in this page")
