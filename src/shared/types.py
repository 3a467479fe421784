"""Field types shared by the API's models."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from types import UnionType
from typing import Annotated, Any, Union, get_args, get_origin

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    Field,
    GetJsonSchemaHandler,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
)
from pydantic_core import CoreSchema


def _json_type(annotation: Any) -> tuple[str, tuple[type, ...]] | None:
    """The JSON type a field's annotation stands for, and the Python values JSON gives for it."""
    while get_origin(annotation) is Annotated:
        annotation = get_args(annotation)[0]
    if get_origin(annotation) in (Union, UnionType):
        kinds = [arg for arg in get_args(annotation) if arg is not type(None)]
        return _json_type(kinds[0]) if len(kinds) == 1 else None
    if annotation is bool:
        return "boolean", (bool,)
    if annotation is int:
        return "integer", (int, float, Decimal)
    if annotation is Decimal:
        return "number", (int, float, Decimal)
    if annotation is AwareDatetime or (isinstance(annotation, type) and issubclass(annotation, datetime)):
        return "string", (str,)
    return None


class JsonBody(BaseModel):
    """A request body: a value of another JSON type than its field's schema says is refused, where
    pydantic's lax mode would convert it (a number sent as a string or a boolean, a boolean as a
    number or "yes", a time as a number)."""

    @field_validator("*", mode="before")
    @classmethod
    def _of_its_json_type(cls, value: Any, info: ValidationInfo) -> Any:
        expected = _json_type(cls.model_fields[info.field_name].annotation) if info.field_name else None
        if value is None or expected is None:
            return value
        json_type, kinds = expected
        if isinstance(value, bool) is not (json_type == "boolean") or not isinstance(value, kinds):
            raise ValueError(f"must be a JSON {json_type}")
        return value


_BOUNDS = {"gt": "exclusiveMinimum", "ge": "minimum", "lt": "exclusiveMaximum", "le": "maximum"}


class _NumberWithItsBounds:
    """Publishes a Decimal as a JSON number with the bounds it is validated against: its field's
    gt/ge/lt/le, whole cents (`multipleOf`) and what `max_digits` leaves before the point."""

    @staticmethod
    def __get_pydantic_json_schema__(core: CoreSchema, handler: GetJsonSchemaHandler) -> dict[str, Any]:
        while core.get("type") != "decimal" and "schema" in core:  # inside validators' wrappers
            core = core["schema"]
        schema: dict[str, Any] = {"type": "number"}
        for constraint, keyword in _BOUNDS.items():
            if core.get(constraint) is not None:
                schema[keyword] = float(core[constraint])
        places, digits = core.get("decimal_places"), core.get("max_digits")
        if places is not None:
            schema["multipleOf"] = float(Decimal(1).scaleb(-places))
        if digits is not None and places is not None and "maximum" not in schema:
            schema["exclusiveMaximum"] = float(Decimal(1).scaleb(digits - places))
        return schema


# Decimals are written as JSON numbers (simplejson keeps their digits, e.g. 35.00); pydantic would
# publish them as strings, so the schema says what the API actually sends, with its bounds.
Number = Annotated[Decimal, _NumberWithItsBounds()]
Money = Annotated[Decimal, Field(max_digits=12, decimal_places=2), _NumberWithItsBounds()]


def omittable(**constraints: Any) -> Any:
    """A field a PATCH body may leave out but not set to null: absent, it is None in the model;
    its schema does not admit null (declare the field with its plain type)."""
    return Field(default=None, json_schema_extra=_without_default, **constraints)


def _without_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


def _valid_email(value: str) -> str:
    # Imported on first use: only the routes that take an email address pay for the import.
    from email_validator import EmailNotValidError, validate_email

    try:
        return str(validate_email(value.strip(), check_deliverability=False).normalized).lower()
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from exc


# Special-use domain names (RFC 6761: .test, .local, ...) are refused like a malformed address.
NOT_SPECIAL_USE_DOMAIN = r"^(?!.*\.(?:arpa|invalid|local|localhost|onion|test)$).*$"
EMAIL_SCHEMA = {"type": "string", "format": "email", "maxLength": 254, "pattern": NOT_SPECIAL_USE_DOMAIN}

Email = Annotated[str, Field(max_length=254), AfterValidator(_valid_email), WithJsonSchema(EMAIL_SCHEMA)]
