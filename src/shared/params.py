"""How routes declare their parameters: `Query`, `Path` and `Body` (Powertools' own, imported on
first use), and the query parameters several routes declare the same way, with the schema that
says what they take.

Route modules use `from __future__ import annotations`, so a parameter's `Annotated[..., Query()]`
is evaluated only when Powertools first reads the route's signature: on the route's first
request, or when `crm openapi` builds the document. Powertools' parameter classes come with its
OpenAPI machinery, which a cold start then does not import."""

from __future__ import annotations

from typing import Any


def Query(*args: Any, **options: Any) -> Any:  # stands for Powertools' class of that name
    from aws_lambda_powertools.event_handler.openapi.params import Query as query

    return query(*args, **options)


def Path(*args: Any, **options: Any) -> Any:
    from aws_lambda_powertools.event_handler.openapi.params import Path as path

    return path(*args, **options)


def Body(*args: Any, **options: Any) -> Any:
    from aws_lambda_powertools.event_handler.openapi.params import Body as body

    return body(*args, **options)


# Days from 1970 on (`shared.dates.parse_day` refuses earlier ones): ranges are counted back from them.
YEAR_1970_ON = r"(?:19[7-9]\d|[2-9]\d{3})"
DATE_PATTERN = rf"^{YEAR_1970_ON}-\d{{2}}-\d{{2}}$"
DAY_OR_TIME_PATTERN = rf"^{YEAR_1970_ON}-"


def _published_as(schema: dict[str, Any]) -> Any:
    """Replaces the parameter's generated schema (an optional string) with `schema`."""

    def publish(generated: dict[str, Any]) -> None:
        kept: dict[str, Any] = {
            name: generated[name] for name in ("title", "description") if name in generated
        }
        generated.clear()
        generated.update(kept, **schema)

    return publish


def day_query(alias: str, description: str) -> Any:
    """A calendar day, `YYYY-MM-DD` (read with `shared.dates.parse_day`)."""
    return Query(
        alias=alias,
        pattern=DATE_PATTERN,
        description=description,
        json_schema_extra=_published_as({"type": "string", "format": "date", "pattern": DATE_PATTERN}),
    )


def day_or_time_query(alias: str, description: str) -> Any:
    """A day (`YYYY-MM-DD`) or an ISO 8601 time with its offset (`2026-11-27T09:30:00Z`), from 1970."""
    return Query(
        alias=alias,
        max_length=40,
        pattern=DAY_OR_TIME_PATTERN,
        description=description,
        json_schema_extra=_published_as(
            {
                "type": "string",
                "maxLength": 40,
                "pattern": DAY_OR_TIME_PATTERN,
                "anyOf": [{"format": "date"}, {"format": "date-time"}],
            }
        ),
    )
