"""Answers as CSV (the reports, the lead export): a header row of the JSON field names, then one
line per row, quoted by the `csv` module where needed. Cells that a spreadsheet would run as a
formula are neutralised."""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from pydantic import BaseModel

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, Decimal | int | float) and not isinstance(value, bool):
        return str(value)
    text = str(value)
    # A text cell starting like a formula is prefixed with ' so spreadsheets show it as text.
    return "'" + text if text.startswith(FORMULA_STARTS) else text


def to_csv(columns: Sequence[str], rows: Sequence[BaseModel | Mapping[str, Any]]) -> str:
    """The rows (models, or mappings where a missing field is an empty cell) under `columns`."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        values = row.model_dump(mode="python") if isinstance(row, BaseModel) else row
        writer.writerow([cell(values.get(column)) for column in columns])
    return out.getvalue()
