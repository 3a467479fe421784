"""Field types shared by the API's models."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import Field, WithJsonSchema

# Decimals are written as JSON numbers (simplejson keeps their digits, e.g. 35.00); pydantic would
# publish them as strings, so the schema says what the API actually sends.
Number = Annotated[Decimal, WithJsonSchema({"type": "number"})]
Money = Annotated[Decimal, Field(max_digits=12, decimal_places=2), WithJsonSchema({"type": "number"})]
