"""Field types shared by the API's models."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import AfterValidator, Field, WithJsonSchema

# Decimals are written as JSON numbers (simplejson keeps their digits, e.g. 35.00); pydantic would
# publish them as strings, so the schema says what the API actually sends.
Number = Annotated[Decimal, WithJsonSchema({"type": "number"})]
Money = Annotated[Decimal, Field(max_digits=12, decimal_places=2), WithJsonSchema({"type": "number"})]


def _valid_email(value: str) -> str:
    # Imported on first use: only the routes that take an email address pay for the import.
    from email_validator import EmailNotValidError, validate_email

    try:
        return str(validate_email(value.strip(), check_deliverability=False).normalized).lower()
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from exc


Email = Annotated[
    str,
    Field(max_length=254),
    AfterValidator(_valid_email),
    WithJsonSchema({"type": "string", "format": "email", "maxLength": 254}),
]
