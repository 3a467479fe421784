"""Configuration: one validated model, built once per cold start from the environment.

The same variable names are used by the SAM template, the local runner and the CLI. Nothing here
falls back to a default for a table or bus name: a function deployed without them fails at cold
start instead of talking to the wrong table.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from functools import cache
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator

MIN_SECRET_BYTES = 32
# Exponential back-off between a postback's attempts: 11 attempts over 23.7 hours, then the
# dead-letter queue (within the 24 hours vendors are promised).
DEFAULT_POSTBACK_RETRY_SECONDS = (5, 30, 120, 600, 1800, 3600, 7200, 14400, 28800, 28800)


class Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    stage: str = "dev"
    leads_table: str
    users_table: str
    vendors_table: str
    pricing_table: str
    audit_table: str
    dedupe_table: str
    suppressions_table: str
    usage_table: str
    outbox_table: str
    idempotency_table: str
    stats_table: str
    stats_state_table: str
    returns_table: str
    postbacks_table: str
    event_bus_name: str
    # Postbacks to vendors (agencies.postback_delivery): the queue their deliveries wait in, the
    # queue a delivery goes to once its attempts are spent, the wait before each retry, and
    # whether loopback URLs (http://127.0.0.1) may be called: only the local stack allows them.
    postback_queue: str
    postback_dead_letter_queue: str
    postback_retry_seconds: tuple[Annotated[int, Field(ge=0, le=86400)], ...] = DEFAULT_POSTBACK_RETRY_SECONDS
    postback_allow_loopback: bool = False
    cors_allow_origins: tuple[str, ...]
    jwt_secret: SecretStr | None = None
    jwt_secret_arn: str | None = None
    jwt_issuer: str = "crm"
    jwt_audience: str = "crm-api"
    jwt_leeway_seconds: Annotated[int, Field(ge=0, le=120)] = 30
    # The staff user pool (Cognito): staff tokens are its ID tokens, issued to its dashboard client
    # and signed with the keys it publishes at `<issuer>/.well-known/jwks.json` (the local stack
    # serves them from its own endpoint instead: USER_POOL_JWKS_URL); the agencies service
    # creates, disables and enables its accounts.
    user_pool_id: str
    user_pool_client_id: str
    user_pool_issuer: str
    user_pool_jwks_url: str | None = None
    # Revocation must take effect within 60 s, so a cached user record may be at most that old.
    user_cache_seconds: Annotated[int, Field(ge=0, le=60)] = 30
    redis_url: str | None = None
    cache_ttl_seconds: Annotated[int, Field(ge=1, le=3600)] = 300
    # How stale a read of the stats buckets (dashboard, agencies, agents, reports) may be: lead
    # events do not invalidate those entries, they expire this long after they were computed, so
    # each is recomputed at most once per interval however many events arrive. At most 30 s,
    # inside the one-minute freshness the dashboard promises.
    stats_freshness_seconds: Annotated[int, Field(ge=1, le=30)] = 10
    business_timezone: str = "UTC"
    # The outbox publisher (see shared.outbox.RetryPolicy): how long a new event is left to the
    # request path that wrote it, and the back-off between attempts the bus refused.
    outbox_grace_seconds: Annotated[float, Field(ge=0, le=900)] = 30
    outbox_retry_base_seconds: Annotated[float, Field(gt=0, le=3600)] = 30
    outbox_retry_max_seconds: Annotated[float, Field(gt=0, le=86400)] = 900

    @field_validator("cors_allow_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(origin.strip().rstrip("/") for origin in value.split(",") if origin.strip())
        return value

    @field_validator("cors_allow_origins")
    @classmethod
    def _no_wildcard(cls, origins: tuple[str, ...]) -> tuple[str, ...]:
        if not origins:
            raise ValueError("at least one origin is required")
        for origin in origins:
            if "*" in origin or not origin.startswith(("http://", "https://")):
                raise ValueError(f"not an allowed origin: {origin!r} (list exact origins, never '*')")
        return origins

    # The template sets JWT_SECRET (for `sam local` only) to an empty value in a deployment, as
    # CloudFormation has no way to leave a variable out that SAM CLI also understands.
    @field_validator("postback_retry_seconds", mode="before")
    @classmethod
    def _split_seconds(cls, value: object) -> object:
        if isinstance(value, str):
            return tuple(part.strip() for part in value.split(",") if part.strip())
        return value

    @field_validator("postback_retry_seconds")
    @classmethod
    def _within_a_day(cls, delays: tuple[int, ...]) -> tuple[int, ...]:
        if sum(delays) > 86400:
            raise ValueError("postback retries must end within 24 hours (86400 s in all)")
        return delays

    @field_validator("redis_url", "jwt_secret", "jwt_secret_arn", "user_pool_jwks_url", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return value or None

    @field_validator("business_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r}") from exc
        return value

    @model_validator(mode="after")
    def _one_secret_source(self) -> Settings:
        if self.jwt_secret is None and self.jwt_secret_arn is None:
            raise ValueError("set JWT_SECRET or JWT_SECRET_ARN")
        if (
            self.jwt_secret is not None
            and len(self.jwt_secret.get_secret_value().encode()) < MIN_SECRET_BYTES
        ):
            raise ValueError(f"JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes")
        return self

    @property
    def jwks_url(self) -> str:
        """Where the staff user pool's signing keys are published."""
        return self.user_pool_jwks_url or f"{self.user_pool_issuer.rstrip('/')}/.well-known/jwks.json"

    @property
    def primary_origin(self) -> str:
        return self.cors_allow_origins[0]

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> Settings:
        fields = {name: environ[name.upper()] for name in cls.model_fields if name.upper() in environ}
        return cls.model_validate(fields)


@cache
def get_settings() -> Settings:
    """The process-wide settings (cold start). Tests and the local runner reset it with
    `get_settings.cache_clear()` after changing the environment."""
    return Settings.from_env(os.environ)
