"""Row-level security (`LeadScope`, `Principal`), list cursors, configuration validation, the lead
query planner and the `from`/`to` parser."""

from __future__ import annotations

import base64
import itertools
import json
from typing import Any

import pytest
from pydantic import ValidationError

from leads.models import Disposition, LeadFilters
from leads.repository import (
    AGENT_INDEX,
    CAMPAIGN_INDEX,
    DISPOSITION_INDEX,
    INDEXES,
    LISTED,
    SORT_ATTRIBUTE,
    TIME_INDEX,
    VENDOR_INDEX,
    plan_query,
)
from leads.service import parse_time_bound
from shared.config import Settings
from shared.errors import BadRequest, InvalidCursor
from shared.pagination import MAX_CURSOR_LENGTH, CursorCodec
from shared.security import LeadScope, Principal, Role
from tests.helpers import ALLOWED_ORIGIN, SECOND_ORIGIN, TEST_SECRET, base_env

ALL = LeadScope(vendor_code=None, agent_id=None)
VENDOR_V001 = LeadScope(vendor_code="V001", agent_id=None)
AGENT_A1 = LeadScope(vendor_code=None, agent_id="a1")

# --- LeadScope and Principal --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scope", "lead", "allowed"),
    [
        (ALL, {"vendor_code": "V001", "assigned_agent": "a1"}, True),
        (ALL, {"vendor_code": "V002"}, True),
        (ALL, {}, True),
        (VENDOR_V001, {"vendor_code": "V001", "assigned_agent": "a9"}, True),
        (VENDOR_V001, {"vendor_code": "V002", "assigned_agent": "a1"}, False),
        (VENDOR_V001, {"vendor_code": "v001"}, False),
        (VENDOR_V001, {"assigned_agent": "a1"}, False),
        (VENDOR_V001, {"vendor_code": None}, False),
        (AGENT_A1, {"vendor_code": "V001", "assigned_agent": "a1"}, True),
        (AGENT_A1, {"vendor_code": "V001", "assigned_agent": "a2"}, False),
        (AGENT_A1, {"vendor_code": "V001"}, False),
        (AGENT_A1, {"vendor_code": "V001", "assigned_agent": None}, False),
    ],
)
def test_lead_scope_allows_only_the_leads_it_covers(
    scope: LeadScope, lead: dict[str, object], allowed: bool
) -> None:
    # Given / When
    result = scope.allows(lead)

    # Then
    assert result is allowed


@pytest.mark.parametrize(
    ("principal", "scope", "cache_key"),
    [
        (Principal("u-admin", Role.ADMIN), ALL, "all"),
        (Principal("u-manager", Role.MANAGER), ALL, "all"),
        (Principal("u-vendor", Role.VENDOR, vendor_code="V001"), VENDOR_V001, "vendor:V001"),
        (Principal("a1", Role.AGENT), AGENT_A1, "agent:a1"),
        # A vendor code on a non-vendor principal never narrows (nor widens) its scope.
        (Principal("u-admin", Role.ADMIN, vendor_code="V001"), ALL, "all"),
        (Principal("a1", Role.AGENT, vendor_code="V001"), AGENT_A1, "agent:a1"),
    ],
)
def test_principal_lead_scope_follows_its_role(
    principal: Principal, scope: LeadScope, cache_key: str
) -> None:
    # Given / When
    result = principal.lead_scope

    # Then
    assert result == scope
    assert result.cache_key == cache_key
    assert result.sees_all is (scope == ALL)


def test_vendor_principal_without_vendor_code_has_no_scope() -> None:
    # Given
    principal = Principal("u-vendor", Role.VENDOR)

    # When / Then
    with pytest.raises(PermissionError):
        _ = principal.lead_scope


# --- CursorCodec --------------------------------------------------------------------------------

QUERY = "vendor:V001|{}"
LAST_KEY: dict[str, Any] = {"lead_id": "01HZZZZZZZZZZZZZZZZZZZZZZZ", "created_at": "2024-01-15T10:00:00.000Z"}


def _codec() -> CursorCodec:
    return CursorCodec(TEST_SECRET.encode())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def test_cursor_round_trips_its_last_key() -> None:
    # Given
    codec = _codec()

    # When
    cursor = codec.encode(LAST_KEY, QUERY)

    # Then
    assert cursor is not None
    assert codec.decode(cursor, QUERY) == LAST_KEY


def test_cursor_round_trips_through_another_codec_with_the_same_secret() -> None:
    # Given: another Lambda instance, same secret
    cursor = _codec().encode(LAST_KEY, QUERY)

    # When
    decoded = CursorCodec(TEST_SECRET.encode()).decode(cursor, QUERY)

    # Then
    assert decoded == LAST_KEY


def test_no_last_key_encodes_to_no_cursor() -> None:
    # Given / When / Then
    assert _codec().encode(None, QUERY) is None


@pytest.mark.parametrize("cursor", [None, ""])
def test_no_cursor_decodes_to_no_start_key(cursor: str | None) -> None:
    # Given / When / Then
    assert _codec().decode(cursor, QUERY) is None


def _modified_payload() -> str:
    cursor = _codec().encode(LAST_KEY, QUERY)
    assert cursor is not None
    _, mac = cursor.split(".")
    forged = json.dumps({**LAST_KEY, "lead_id": "01HAAAAAAAAAAAAAAAAAAAAAAA"}, sort_keys=True).encode()
    return f"{_b64(forged)}.{mac}"


def _modified_mac() -> str:
    cursor = _codec().encode(LAST_KEY, QUERY)
    assert cursor is not None
    payload, mac = cursor.split(".")
    raw = bytearray(_unb64(mac))
    raw[0] ^= 0x01
    return f"{payload}.{_b64(bytes(raw))}"


def _other_query() -> str:
    cursor = _codec().encode(LAST_KEY, "all|{}")
    assert cursor is not None
    return cursor


def _other_secret() -> str:
    cursor = CursorCodec(b"another-secret-0123456789abcdef0123456789").encode(LAST_KEY, QUERY)
    assert cursor is not None
    return cursor


def _non_object_payload() -> str:
    # A correctly MAC'd payload that is not a key (only possible with the secret; defence in depth)
    codec = _codec()
    payload = b"[1,2,3]"
    return f"{_b64(payload)}.{_b64(codec._mac(payload, QUERY))}"


@pytest.mark.parametrize(
    "make_cursor",
    [
        pytest.param(_modified_payload, id="modified-payload"),
        pytest.param(_modified_mac, id="modified-mac"),
        pytest.param(_other_query, id="cursor-of-another-query"),
        pytest.param(_other_secret, id="cursor-signed-with-another-secret"),
        pytest.param(_non_object_payload, id="payload-not-an-object"),
        pytest.param(lambda: "garbage", id="garbage"),
        pytest.param(lambda: "a.b.c", id="three-parts"),
        pytest.param(lambda: "!!!.???", id="not-base64"),
        pytest.param(lambda: ".", id="empty-parts"),
        pytest.param(lambda: "x" * (MAX_CURSOR_LENGTH + 1), id="over-long"),
        pytest.param(lambda: "A" * 10 + "." + "B" * (MAX_CURSOR_LENGTH), id="over-long-two-parts"),
    ],
)
def test_tampered_or_foreign_cursor_is_rejected(make_cursor: Any) -> None:
    # Given
    cursor = make_cursor()

    # When / Then
    with pytest.raises(InvalidCursor) as raised:
        _codec().decode(cursor, QUERY)
    assert raised.value.status == 400
    assert raised.value.code == "INVALID_CURSOR"


def test_invalid_cursor_is_a_bad_request() -> None:
    # Given / When / Then
    assert issubclass(InvalidCursor, BadRequest)


# --- Settings.from_env ---------------------------------------------------------------------------


def _env(**changes: str | None) -> dict[str, str]:
    env = base_env()
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def test_test_environment_is_valid_settings() -> None:
    # Given / When
    settings = Settings.from_env(base_env())

    # Then
    assert settings.leads_table == "crm-test-leads"
    assert settings.cors_allow_origins == (ALLOWED_ORIGIN, SECOND_ORIGIN)
    assert settings.primary_origin == ALLOWED_ORIGIN
    assert settings.jwt_secret is not None
    assert settings.jwt_secret.get_secret_value() == TEST_SECRET
    assert TEST_SECRET not in repr(settings)


@pytest.mark.parametrize(
    "missing",
    ["LEADS_TABLE", "USERS_TABLE", "VENDORS_TABLE", "PRICING_TABLE", "AUDIT_TABLE", "EVENT_BUS_NAME"],
)
def test_missing_table_or_bus_name_is_a_validation_error(missing: str) -> None:
    # Given
    env = _env(**{missing: None})

    # When / Then
    with pytest.raises(ValidationError, match=missing.lower()):
        Settings.from_env(env)


@pytest.mark.parametrize(
    "origins",
    [
        pytest.param("*", id="wildcard"),
        pytest.param(f"{ALLOWED_ORIGIN},*", id="wildcard-among-others"),
        pytest.param("https://*.example.com", id="wildcard-subdomain"),
        pytest.param("dashboard.test", id="no-scheme"),
        pytest.param("ftp://dashboard.test", id="non-http-scheme"),
        pytest.param("null", id="null-origin"),
        pytest.param("", id="empty"),
        pytest.param(" , ", id="only-separators"),
    ],
)
def test_unsafe_cors_origins_are_rejected(origins: str) -> None:
    # Given
    env = _env(CORS_ALLOW_ORIGINS=origins)

    # When / Then
    with pytest.raises(ValidationError):
        Settings.from_env(env)


def test_cors_origins_are_split_trimmed_and_stripped_of_trailing_slashes() -> None:
    # Given
    env = _env(CORS_ALLOW_ORIGINS=" https://a.example.com/ ,http://localhost:5173/,, https://b.example.com ")

    # When
    settings = Settings.from_env(env)

    # Then
    assert settings.cors_allow_origins == (
        "https://a.example.com",
        "http://localhost:5173",
        "https://b.example.com",
    )


def test_short_jwt_secret_is_rejected() -> None:
    # Given
    env = _env(JWT_SECRET="x" * 31)

    # When / Then
    with pytest.raises(ValidationError, match="at least 32 bytes"):
        Settings.from_env(env)


def test_jwt_secret_of_exactly_32_bytes_is_accepted() -> None:
    # Given
    env = _env(JWT_SECRET="x" * 32)

    # When / Then
    assert Settings.from_env(env).jwt_secret is not None


@pytest.mark.parametrize("arn", [None, ""])
def test_neither_jwt_secret_nor_secret_arn_is_rejected(arn: str | None) -> None:
    # Given
    env = _env(JWT_SECRET=None, JWT_SECRET_ARN=arn)

    # When / Then
    with pytest.raises(ValidationError, match="JWT_SECRET or JWT_SECRET_ARN"):
        Settings.from_env(env)


def test_jwt_secret_arn_alone_is_accepted() -> None:
    # Given
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:crm-jwt"
    env = _env(JWT_SECRET=None, JWT_SECRET_ARN=arn)

    # When
    settings = Settings.from_env(env)

    # Then
    assert settings.jwt_secret is None
    assert settings.jwt_secret_arn == arn


def test_empty_jwt_secret_beside_a_secret_arn_reads_the_secret_from_the_arn() -> None:
    # Given a deployment's environment: the template sets JWT_SECRET (sam local only) to ""
    arn = "arn:aws:secretsmanager:us-east-1:123456789012:secret:crm-jwt"
    env = _env(JWT_SECRET="", JWT_SECRET_ARN=arn)

    # When
    settings = Settings.from_env(env)

    # Then
    assert settings.jwt_secret is None
    assert settings.jwt_secret_arn == arn


@pytest.mark.parametrize("seconds", ["61", "3600", "-1", "abc"])
def test_user_cache_longer_than_60_seconds_or_invalid_is_rejected(seconds: str) -> None:
    # Given
    env = _env(USER_CACHE_SECONDS=seconds)

    # When / Then
    with pytest.raises(ValidationError, match="user_cache_seconds"):
        Settings.from_env(env)


@pytest.mark.parametrize("seconds", ["0", "30", "60"])
def test_user_cache_up_to_60_seconds_is_accepted(seconds: str) -> None:
    # Given
    env = _env(USER_CACHE_SECONDS=seconds)

    # When / Then
    assert Settings.from_env(env).user_cache_seconds == int(seconds)


@pytest.mark.parametrize("zone", ["Mars/Olympus_Mons", "Not a zone", "../../etc/passwd"])
def test_unknown_time_zone_is_rejected(zone: str) -> None:
    # Given
    env = _env(BUSINESS_TIMEZONE=zone)

    # When / Then
    with pytest.raises(ValidationError, match="business_timezone"):
        Settings.from_env(env)


def test_known_time_zone_is_accepted() -> None:
    # Given
    env = _env(BUSINESS_TIMEZONE="America/New_York")

    # When / Then
    assert Settings.from_env(env).business_timezone == "America/New_York"


def test_empty_redis_url_means_no_redis() -> None:
    # Given
    env = _env(REDIS_URL="")

    # When / Then
    assert Settings.from_env(env).redis_url is None


# --- plan_query -----------------------------------------------------------------------------------

NEW = Disposition.NEW


@pytest.mark.parametrize(
    ("scope", "filters", "index", "partition", "remaining"),
    [
        # Callers that see every lead
        pytest.param(ALL, {}, TIME_INDEX, ("ix_all", LISTED), {}, id="all-no-filters"),
        pytest.param(ALL, {"vendor": "V002"}, VENDOR_INDEX, ("ix_vendor", "V002"), {}, id="all-vendor"),
        pytest.param(
            ALL, {"disposition": NEW}, DISPOSITION_INDEX, ("ix_disposition", "new"), {}, id="all-disposition"
        ),
        pytest.param(
            ALL, {"campaign": "spring"}, CAMPAIGN_INDEX, ("ix_campaign", "spring"), {}, id="all-campaign"
        ),
        pytest.param(ALL, {"agent": "a2"}, AGENT_INDEX, ("ix_agent", "a2"), {}, id="all-agent"),
        pytest.param(
            ALL,
            {"vendor": "V002", "disposition": NEW},
            VENDOR_INDEX,
            ("ix_vendor", "V002"),
            {"disposition": "new"},
            id="all-vendor-disposition",
        ),
        pytest.param(
            ALL,
            {"agent": "a2", "campaign": "spring", "disposition": NEW},
            AGENT_INDEX,
            ("ix_agent", "a2"),
            {"campaign_source": "spring", "disposition": "new"},
            id="all-agent-campaign-disposition",
        ),
        pytest.param(
            ALL,
            {"campaign": "spring", "disposition": NEW},
            CAMPAIGN_INDEX,
            ("ix_campaign", "spring"),
            {"disposition": "new"},
            id="all-campaign-disposition",
        ),
        pytest.param(
            ALL,
            {"vendor": "V002", "agent": "a2", "campaign": "spring", "disposition": NEW},
            VENDOR_INDEX,
            ("ix_vendor", "V002"),
            {"assigned_agent": "a2", "campaign_source": "spring", "disposition": "new"},
            id="all-every-filter",
        ),
        # A vendor: always its own partition
        pytest.param(VENDOR_V001, {}, VENDOR_INDEX, ("ix_vendor", "V001"), {}, id="vendor-no-filters"),
        pytest.param(
            VENDOR_V001,
            {"disposition": NEW},
            VENDOR_INDEX,
            ("ix_vendor", "V001"),
            {"disposition": "new"},
            id="vendor-disposition",
        ),
        pytest.param(
            VENDOR_V001,
            {"vendor": "V001"},
            VENDOR_INDEX,
            ("ix_vendor", "V001"),
            {},
            id="vendor-own-vendor-filter",
        ),
        pytest.param(
            VENDOR_V001,
            {"campaign": "spring"},
            VENDOR_INDEX,
            ("ix_vendor", "V001"),
            {"campaign_source": "spring"},
            id="vendor-campaign",
        ),
        pytest.param(
            VENDOR_V001,
            {"agent": "a2"},
            VENDOR_INDEX,
            ("ix_vendor", "V001"),
            {"assigned_agent": "a2"},
            id="vendor-agent",
        ),
        # An agent: always its own partition
        pytest.param(AGENT_A1, {}, AGENT_INDEX, ("ix_agent", "a1"), {}, id="agent-no-filters"),
        pytest.param(
            AGENT_A1, {"agent": "a1"}, AGENT_INDEX, ("ix_agent", "a1"), {}, id="agent-own-agent-filter"
        ),
        pytest.param(
            AGENT_A1,
            {"disposition": NEW},
            AGENT_INDEX,
            ("ix_agent", "a1"),
            {"disposition": "new"},
            id="agent-disposition",
        ),
        pytest.param(
            AGENT_A1,
            {"campaign": "spring"},
            AGENT_INDEX,
            ("ix_agent", "a1"),
            {"campaign_source": "spring"},
            id="agent-campaign",
        ),
        pytest.param(
            AGENT_A1,
            {"vendor": "V001"},
            AGENT_INDEX,
            ("ix_agent", "a1"),
            {"vendor_code": "V001"},
            id="agent-vendor",
        ),
    ],
)
def test_query_plan_chooses_the_index_partition_and_remaining_filters(
    scope: LeadScope,
    filters: dict[str, Any],
    index: str,
    partition: tuple[str, str],
    remaining: dict[str, str],
) -> None:
    # Given
    lead_filters = LeadFilters(**filters)

    # When
    plan = plan_query(scope, lead_filters)

    # Then
    assert plan.condition is not None
    assert plan.index == index.name
    assert (plan.condition.partition_name, plan.condition.partition_value) == partition
    assert plan.condition.filters == remaining
    assert plan.condition.sort_name == SORT_ATTRIBUTE
    assert plan.condition.newest_first is True


@pytest.mark.parametrize(
    ("scope", "filters"),
    [
        pytest.param(VENDOR_V001, {"vendor": "V002"}, id="vendor-asks-for-another-vendor"),
        pytest.param(VENDOR_V001, {"vendor": "v001"}, id="vendor-code-is-case-sensitive"),
        pytest.param(VENDOR_V001, {"vendor": "V002", "disposition": NEW}, id="vendor-other-vendor-and-more"),
        pytest.param(AGENT_A1, {"agent": "a2"}, id="agent-asks-for-another-agent"),
        pytest.param(AGENT_A1, {"agent": "a2", "campaign": "spring"}, id="agent-other-agent-and-more"),
    ],
)
def test_filter_contradicting_the_scope_yields_an_empty_plan(
    scope: LeadScope, filters: dict[str, Any]
) -> None:
    # Given
    lead_filters = LeadFilters(**filters)

    # When
    plan = plan_query(scope, lead_filters)

    # Then
    assert plan.condition is None
    assert plan.index is None


@pytest.mark.parametrize(
    ("created_from", "created_to"),
    [
        ("2024-01-01T00:00:00.000Z", "2024-01-31T23:59:59.999Z"),
        ("2024-01-01T00:00:00.000Z", None),
        (None, "2024-01-31T23:59:59.999Z"),
        (None, None),
    ],
)
@pytest.mark.parametrize("scope", [ALL, VENDOR_V001, AGENT_A1])
def test_from_and_to_become_the_sort_key_bounds(
    scope: LeadScope, created_from: str | None, created_to: str | None
) -> None:
    # Given
    filters = LeadFilters(disposition=NEW, created_from=created_from, created_to=created_to)

    # When
    plan = plan_query(scope, filters)

    # Then
    assert plan.condition is not None
    assert plan.condition.sort_name == SORT_ATTRIBUTE
    assert plan.condition.sort_from == created_from
    assert plan.condition.sort_to == created_to
    assert "created_at" not in plan.condition.filters


_FILTER_CHOICES: dict[str, list[Any]] = {
    "vendor": [None, "V001", "V002"],
    "agent": [None, "a1", "a2"],
    "campaign": [None, "spring"],
    "disposition": [None, NEW],
}


@pytest.mark.parametrize("scope", [ALL, VENDOR_V001, AGENT_A1], ids=["all", "vendor", "agent"])
def test_every_plan_enforces_the_scope_and_every_filter(scope: LeadScope) -> None:
    # Given: every combination of filters
    names = list(_FILTER_CHOICES)
    for values in itertools.product(*_FILTER_CHOICES.values()):
        filters = LeadFilters(**dict(zip(names, values, strict=True)))
        wanted = {
            attribute: value
            for attribute, value in (
                ("vendor_code", filters.vendor),
                ("assigned_agent", filters.agent),
                ("campaign_source", filters.campaign),
                ("disposition", filters.disposition.value if filters.disposition else None),
            )
            if value is not None
        }

        # When
        plan = plan_query(scope, filters)

        # Then: an empty plan only for a contradiction, otherwise every condition is in the query
        contradicts = (
            scope.vendor_code is not None
            and wanted.get("vendor_code", scope.vendor_code) != scope.vendor_code
        ) or (scope.agent_id is not None and wanted.get("assigned_agent", scope.agent_id) != scope.agent_id)
        if contradicts:
            assert plan.condition is None, filters
            continue
        assert plan.condition is not None, filters
        index = next(index for index in INDEXES if index.name == plan.condition.index)
        enforced = dict(plan.condition.filters)
        if index.source is not None:
            enforced[index.source] = plan.condition.partition_value
        if scope.vendor_code is not None:
            wanted["vendor_code"] = scope.vendor_code
        if scope.agent_id is not None:
            wanted["assigned_agent"] = scope.agent_id
        assert enforced == wanted, filters
        assert plan.condition.partition_name not in plan.condition.filters


@pytest.mark.parametrize(
    ("scope", "scoped"),
    [(ALL, {}), (VENDOR_V001, {"vendor_code": "V001"}), (AGENT_A1, {"assigned_agent": "a1"})],
    ids=["all", "vendor", "agent"],
)
def test_a_name_search_reads_first_names_then_last_names_each_lead_once(
    scope: LeadScope, scoped: dict[str, str]
) -> None:
    # When a caller searches a name
    plan = plan_query(scope, LeadFilters(q="Jané", disposition=NEW))
    # Then: first names, then last names, each bounded to the prefix, in the caller's scope, the
    # second leaving out what the first already found
    searched = [
        (condition.index, condition.sort_name, condition.sort_prefix, condition.filter_not_prefixes)
        for condition in plan.conditions
    ]
    assert searched == [
        ("FirstNameSearchIndex", "ix_first_name", "jane", {}),
        ("NameSearchIndex", "ix_name", "jane", {"ix_first_name": "jane"}),
    ]
    for condition in plan.conditions:
        assert (condition.partition_name, condition.partition_value) == ("ix_all", LISTED)
        assert condition.filters == {"disposition": "new", **scoped}


def test_a_search_with_nothing_to_search_reads_nothing() -> None:
    assert plan_query(ALL, LeadFilters(q="\u0301\u0301")).conditions == ()


def test_a_search_contradicting_the_scope_reads_nothing() -> None:
    assert plan_query(VENDOR_V001, LeadFilters(q="jane", vendor="V002")).conditions == ()
    assert plan_query(AGENT_A1, LeadFilters(q="jane", agent="a2")).conditions == ()


# --- parse_time_bound ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "end_of_day", "expected"),
    [
        ("2024-01-15", False, "2024-01-15T00:00:00.000Z"),
        ("2024-01-15", True, "2024-01-15T23:59:59.999Z"),
        ("2024-02-29", True, "2024-02-29T23:59:59.999Z"),
        ("2024-01-15T10:30:00Z", False, "2024-01-15T10:30:00.000Z"),
        ("2024-01-15T10:30:00Z", True, "2024-01-15T10:30:00.000Z"),
        ("2024-01-15T10:30:00.123456Z", False, "2024-01-15T10:30:00.123Z"),
        ("2024-01-15T10:30:00+02:00", False, "2024-01-15T08:30:00.000Z"),
        ("2024-01-15T22:30:00-05:00", True, "2024-01-16T03:30:00.000Z"),
        ("2024-01-15T10:30:00", False, "2024-01-15T10:30:00.000Z"),
        ("2024-01-15T10:30:00.5+00:00", False, "2024-01-15T10:30:00.500Z"),
    ],
)
def test_time_bound_is_normalised_to_utc_milliseconds(value: str, end_of_day: bool, expected: str) -> None:
    # Given / When
    result = parse_time_bound(value, "from", end_of_day=end_of_day)

    # Then
    assert result == expected


def test_absent_time_bound_stays_absent() -> None:
    # Given / When / Then
    assert parse_time_bound(None, "to", end_of_day=True) is None


@pytest.mark.parametrize(
    "value",
    [
        "garbage",
        "2024-13-01",
        "2024-02-30",
        "15/01/2024",
        "2024-01-15T25:00:00Z",
        "yesterday",
        "",
        "2024-1-5",
    ],
)
def test_unparseable_time_bound_is_a_bad_request(value: str) -> None:
    # Given / When
    with pytest.raises(BadRequest) as raised:
        parse_time_bound(value, "to", end_of_day=True)

    # Then
    assert raised.value.status == 400
    assert raised.value.code == "BAD_REQUEST"
    assert raised.value.details == [{"field": "to", "message": "invalid date or time"}]
