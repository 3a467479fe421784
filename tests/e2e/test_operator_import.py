"""`crm import` and `crm seed` as an operator runs them, against a running `crm serve` of their own:
imported leads reach the stats through the bus, a second run adds nothing, seeded data adds up."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import LocalServer, eventually, start_server, stop_server
from tests.helpers import make_token, staff_token

ADMIN = staff_token("demo-admin")


@pytest.fixture(scope="module")
def seeded_server() -> Iterator[LocalServer]:
    local = start_server()
    yield local
    stop_server(local)


def leads_in_stats(server: LocalServer) -> int:
    analytics = server.get("/admin/analytics", ADMIN, params={"period": "12m"}).json()
    return int(sum(analytics["leads"]))


def test_imported_leads_reach_the_stats_and_a_second_run_adds_nothing(
    seeded_server: LocalServer, tmp_path: Path
) -> None:
    # Given a vendor's export with good rows, a duplicate inside the file and a bad row
    path = tmp_path / "export.csv"
    path.write_text(
        "email,phone,first_name,created_at\n"
        "imp.one@example.com,,One,2026-11-01T09:00:00Z\n"
        "imp.two@example.com,(212) 555-0199,Two,2026-11-02T09:00:00Z\n"
        "IMP.ONE@example.com,,Again,2026-11-03T09:00:00Z\n"
        "nope,,Bad,\n",
        encoding="utf-8",
    )
    before = leads_in_stats(seeded_server)
    # When the operator imports it for V003
    done = seeded_server.run_cli("import", "leads", str(path), "--vendor", "V003")
    # Then the summary counts each outcome, the bad row is reported, and the exit code says so
    assert done.returncode == 1, done.stdout + done.stderr
    assert "4 rows: 2 accepted, 1 duplicate, 1 rejected" in done.stdout
    assert "rows/s" in done.stdout
    errors = (tmp_path / "export.errors.csv").read_text().splitlines()
    assert errors[0] == "row,outcome,field,reason"
    assert errors[1].startswith("4,duplicate,email/phone,")
    assert errors[2].startswith("5,rejected,email,")
    assert "row/s" in done.stderr  # the progress bar, with its rate
    # And the imported leads reach the stats through the bus
    assert eventually(lambda: leads_in_stats(seeded_server), before + 2) == before + 2
    # And they are the vendor's, at their original time
    listed = seeded_server.get(
        "/leads", make_token("demo-vendor-3"), params={"q": "imp.two@example.com"}
    ).json()
    assert [(lead["vendor_code"], lead["created_at"]) for lead in listed["data"]] == [
        ("V003", "2026-11-02T09:00:00.000Z")
    ]
    # When the same file is imported again, nothing is added
    again = seeded_server.run_cli("import", "leads", str(path), "--vendor", "V003", "--quiet")
    assert "4 rows: 0 accepted, 3 duplicate, 1 rejected" in again.stdout
    time.sleep(1)
    assert leads_in_stats(seeded_server) == before + 2


def test_a_file_that_cannot_be_imported_exits_2_with_the_reason(
    seeded_server: LocalServer, tmp_path: Path
) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_bytes(b"")
    done = seeded_server.run_cli("import", "leads", str(empty), "--quiet")
    assert done.returncode == 2
    assert "the file is empty" in done.stderr


def test_seed_writes_demo_data_at_the_size_asked_and_the_stats_add_up() -> None:
    server = start_server()
    try:
        # the demo server already holds 300 leads; seeding more makes the stats cover the whole table
        done = server.run_cli("seed", "--leads", "1200", "--quiet")
        assert done.returncode == 0, done.stdout + done.stderr
        assert "1200 leads written; stats rebuilt from a scan of the whole leads table" in done.stdout
        assert leads_in_stats(server) == 1500
        vendors = server.get("/reports/vendors", ADMIN, params={"from": "2025-12-01"}).json()
        assert vendors["totals"]["leads"] == 1500
    finally:
        stop_server(server)
