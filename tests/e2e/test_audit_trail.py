"""The audit trail over HTTP: mutating requests are readable by admins, masked, filterable, paged."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from tests.e2e.conftest import LocalServer
from tests.helpers import make_token, staff_token, token_for


@pytest.mark.parametrize(
    ("user", "status"),
    [("demo-admin", 200), ("demo-manager", 403), ("demo-agent-1", 403), ("demo-vendor-1", 403), (None, 401)],
)
def test_only_admins_read_the_audit_trail(server: LocalServer, user: str | None, status: int) -> None:
    assert server.get("/admin/audit", token_for(user) if user else None).status_code == status


def test_a_post_is_audited_with_its_caller_status_and_masked_body(server: LocalServer) -> None:
    # Given a vendor's post
    email = f"audit-{uuid.uuid4().hex[:8]}@example.com"
    posted = server.request(
        "POST", "/leads", token=make_token("demo-vendor-4"), json={"email": email, "tcpa_consent": True}
    )
    assert posted.status_code == 201
    # When an admin reads that vendor's records
    body = server.get("/admin/audit", staff_token("demo-admin"), params={"user": "demo-vendor-4"}).json()
    # Then the newest is that post, masked
    record = body["data"][0]
    assert record["action"] == "POST /leads"
    assert record["status"] == 201
    assert record["role"] == "vendor"
    assert record["request"]["body"]["email"] == f"a***@{email.split('@')[1]}"
    assert email not in str(body)
    assert all(item["user"] == "demo-vendor-4" for item in body["data"])


def test_the_trail_pages_without_repeats(server: LocalServer) -> None:
    token = make_token("demo-vendor-5")
    for _ in range(3):
        server.request(
            "POST",
            "/leads",
            token=token,
            json={"email": f"page-{uuid.uuid4().hex[:8]}@example.com", "tcpa_consent": True},
        )
    seen: list[str] = []
    params = {"limit": "2"}
    for _ in range(50):
        body = server.get("/admin/audit", staff_token("demo-admin"), params=params).json()
        seen += [record["request_id"] for record in body["data"]]
        if not body["pagination"]["hasMore"]:
            break
        params["cursor"] = body["pagination"]["cursor"]
    assert len(seen) == len(set(seen)) >= 3
    timestamps = [
        record["timestamp"]
        for record in server.get("/admin/audit", staff_token("demo-admin"), params={"limit": "50"}).json()[
            "data"
        ]
    ]
    assert timestamps == sorted(timestamps, reverse=True)


@pytest.mark.parametrize(
    ("params", "status", "code"),
    [
        ({"from": "2026-11-10", "to": "2026-11-01"}, 400, "BAD_REQUEST"),
        # the day-range rule of reports too: one validator, one code
        ({"from": "2024-01-01", "to": "2026-01-01"}, 400, "RANGE_TOO_LARGE"),
        ({"from": "yesterday"}, 422, "VALIDATION_ERROR"),
        ({"cursor": "garbage"}, 400, "INVALID_CURSOR"),
    ],
)
def test_bad_ranges_and_cursors_are_4xx(
    server: LocalServer, params: dict[str, str], status: int, code: str
) -> None:
    response = server.get("/admin/audit", staff_token("demo-admin"), params=params)
    assert response.status_code == status
    assert response.json()["error"]["code"] == code


def test_a_range_before_any_activity_is_empty(server: LocalServer) -> None:
    day = (datetime.now(UTC) - timedelta(days=200)).date().isoformat()
    body = server.get("/admin/audit", staff_token("demo-admin"), params={"from": day, "to": day}).json()
    assert body == {"data": [], "pagination": {"cursor": None, "hasMore": False, "count": 0}}
