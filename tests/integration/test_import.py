"""`crm import` against moto over HTTP: every kind of bad row gets a clear message, counts are right,
nothing partial is stored, imported leads keep their time and publish their events, a second run
adds nothing, and a dry run writes nothing."""

from __future__ import annotations

import io
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from crm.importer import FileProblem, LeadImport, Summary, VendorImport, run_import
from crm.seed import SeedTables, seed_demo_data
from leads.dependencies import lead_writer
from leads.models import LeadSubmission, Outcome
from shared import dependencies
from shared.security import Principal, Role
from tests.integration.local_stack import EVENTS_QUEUE, Stack, local_stack

HEADER = "email,phone,first_name,last_name,vendor_code,campaign_source,created_at,tcpa_consent,legacy_id\n"
GOOD = [
    "ann.lee@example.com,,Ann,Lee,V001,google,2026-10-01T10:00:00Z,true,L-1\n",
    "bob@example.com,(202) 555-0143,Bob,Ray,V002,,,yes,L-2\n",
    'cy@example.com,,"Cy, Jr.",Díaz,V003,spring "promo",2026-09-15T08:30:00-04:00,,L-3\n',
]
ROWS = [
    *GOOD,
    "ANN.LEE@example.com,,Ann,Again,V001,,2026-10-02T10:00:00Z,,L-4\n",  # row 5: same person as row 2
    "existing@example.com,,Old,Lead,V001,,,,L-5\n",  # row 6: already stored
    "not-an-email,,Bad,Mail,V001,,,,L-6\n",  # row 7
    ",12,Bad,Phone,V001,,,,L-7\n",  # row 8
    ",,No,Contact,V001,,,,L-8\n",  # row 9
    "dee@example.com,,Dee,,V999,,,,L-9\n",  # row 10: unknown vendor
    "eve@example.com,,Eve,,V001,,2099-01-01T00:00:00Z,,L-10\n",  # row 11: created in the future
    "fay@example.com,,Fay,,V001,,yesterday,,L-11\n",  # row 12
    "gus@example.com,,Gus,,V001,,,,L-12,surplus\n",  # row 13: a value too many
]
LATIN_1_ROW = "hal@example.com,,H\xe4l,,V001,,,,L-13\n".encode("latin-1")  # row 14


@pytest.fixture
def stack(aws: dict[str, str]) -> Iterator[Stack]:
    seed_demo_data(SeedTables.configured(), lead_count=0)
    stack = local_stack(aws[EVENTS_QUEUE])
    existing = LeadSubmission(
        email="existing@example.com", vendor_code="V001", first_name="Old", tcpa_consent=True
    )
    assert lead_writer().create(Principal("demo-admin", Role.ADMIN), existing).outcome is Outcome.ACCEPTED
    stack.events()  # drain the existing lead's event
    yield stack
    dependencies.reset()


def write_file(tmp_path: Path, content: bytes) -> Path:
    path = tmp_path / "leads.csv"
    path.write_bytes(content)
    return path


def import_leads(path: Path, dry_run: bool = False, workers: int = 4) -> tuple[Summary, list[list[str]]]:
    report = io.StringIO()
    summary = run_import(path, LeadImport(lead_writer(), dry_run=dry_run), report, workers=workers)
    lines = [line.split(",", 3) for line in report.getvalue().splitlines()]
    return summary, lines


def full_file(tmp_path: Path) -> Path:
    return write_file(tmp_path, (HEADER + "".join(ROWS)).encode() + LATIN_1_ROW)


EXPECTED_PROBLEMS = {
    "5": ("duplicate", "email/phone"),
    "6": ("duplicate", "email/phone"),
    "7": ("rejected", "email"),
    "8": ("rejected", "phone"),
    "9": ("rejected", "email"),
    "10": ("rejected", "vendor_code"),
    "11": ("rejected", "created_at"),
    "12": ("rejected", "created_at"),
    "13": ("rejected", "row"),
    "14": ("rejected", "row"),
}


def test_every_bad_row_is_named_and_only_good_rows_are_stored(stack: Stack, tmp_path: Path) -> None:
    # When the file is imported
    summary, report = import_leads(full_file(tmp_path))
    # Then the counts are right and the unknown column is ignored, not fatal
    assert (
        summary.rows,
        summary.count("accepted"),
        summary.count("duplicate"),
        summary.count("rejected"),
    ) == (
        13,
        3,
        2,
        8,
    )
    assert summary.ignored_columns == ["legacy_id"]
    # And each bad row has a line naming the field and the reason, in file order
    assert report[0] == ["row", "outcome", "field", "reason"]
    assert {row: (outcome, field) for row, outcome, field, _ in report[1:]} == EXPECTED_PROBLEMS
    assert [int(line[0]) for line in report[1:]] == sorted(int(line[0]) for line in report[1:])
    assert all(line[3].strip() for line in report[1:])
    # And exactly the good rows (plus the lead stored before) are in the table, each whole
    stored = {lead["email"]: lead for lead in stack.stored_leads()}
    assert set(stored) == {"existing@example.com", "ann.lee@example.com", "bob@example.com", "cy@example.com"}
    assert len(list(stack.dedupe.scan_all())) == 5  # 4 emails and Bob's phone: no orphan keys
    # And imported leads keep their time, are normalised, priced and left unassigned
    assert stored["ann.lee@example.com"]["created_at"] == "2026-10-01T10:00:00.000Z"
    assert stored["cy@example.com"]["created_at"] == "2026-09-15T12:30:00.000Z"
    assert stored["cy@example.com"]["first_name"] == "Cy, Jr."
    assert stored["bob@example.com"]["phone"] == "+12025550143"
    assert stored["bob@example.com"]["lead_value"] == 35
    assert all(
        stored[email].get("assigned_agent") is None for email in ("ann.lee@example.com", "cy@example.com")
    )
    assert {stored[email]["created_by"] for email in ("ann.lee@example.com", "bob@example.com")} == {
        "crm-import"
    }
    # And each accepted lead published its event, so the stats include it
    events = stack.events()
    imported = {
        stored[email]["lead_id"] for email in ("ann.lee@example.com", "bob@example.com", "cy@example.com")
    }
    assert sorted(event["detail"]["lead_id"] for event in events) == sorted(imported)
    assert {event["detail-type"] for event in events} == {"LeadCreated"}
    created = {event["detail"]["lead_id"]: event["detail"]["after"]["created_at"] for event in events}
    assert created[stored["ann.lee@example.com"]["lead_id"]] == "2026-10-01T10:00:00.000Z"


def test_a_second_run_adds_nothing(stack: Stack, tmp_path: Path) -> None:
    path = full_file(tmp_path)
    import_leads(path)
    before = len(stack.stored_leads())
    stack.events()
    summary, _ = import_leads(path)
    assert summary.count("accepted") == 0
    assert summary.count("duplicate") == 5
    assert len(stack.stored_leads()) == before
    assert stack.events(seconds=0.5) == []


def test_a_dry_run_answers_the_same_and_writes_nothing(stack: Stack, tmp_path: Path) -> None:
    path = full_file(tmp_path)
    dry, dry_report = import_leads(path, dry_run=True)
    assert len(stack.stored_leads()) == 1
    real, real_report = import_leads(path)
    assert dry.counts == real.counts
    assert [line[:3] for line in dry_report] == [line[:3] for line in real_report]


# One person per email, posted under V001 (a 30-day dedupe window) at times further apart than it.
ACROSS_THE_WINDOW = [
    "pat@example.com,,Pat,,V001,,2026-01-01T10:00:00Z,,\n",  # row 2: accepted
    "pat@example.com,,Pat,,V001,,2026-04-15T10:00:00Z,,\n",  # row 3: 104 days later, accepted
    "pat@example.com,,Pat,,V001,,2026-04-20T10:00:00Z,,\n",  # row 4: 5 days after row 3, duplicate
    "quin@example.com,,Quin,,V001,,2026-06-01T10:00:00Z,,\n",  # row 5: accepted
    "quin@example.com,,Quin,,V001,,2026-01-01T10:00:00Z,,\n",  # row 6: older than row 5's lead, duplicate
]


@pytest.mark.parametrize("workers", [1, 4])
def test_a_dry_run_of_one_person_further_apart_than_the_window_answers_as_the_real_run(
    stack: Stack, tmp_path: Path, workers: int
) -> None:
    # Given a file with one person twice outside the vendor's dedupe window, and repeats inside it
    path = write_file(tmp_path, (HEADER + "".join(ACROSS_THE_WINDOW)).encode())
    # When it is imported dry, then for real
    dry, dry_report = import_leads(path, dry_run=True, workers=workers)
    real, real_report = import_leads(path, workers=workers)
    # Then both answer row for row alike: the rows outside the window are each accepted
    assert real.counts == {"accepted": 3, "duplicate": 2}
    assert dry.counts == real.counts
    assert sorted(line[:3] for line in dry_report) == sorted(line[:3] for line in real_report)
    assert real_report[0][0] == "row"  # the header, then a line per duplicate row
    assert sorted(line[0] for line in real_report[1:]) == ["4", "6"]
    assert sum(lead["email"] == "pat@example.com" for lead in stack.stored_leads()) == 2


def test_concurrent_rows_of_one_person_store_one_lead(stack: Stack, tmp_path: Path) -> None:
    rows = "".join(f"same.person@example.com,,Try{n},,V001,,,,\n" for n in range(24))
    summary, _ = import_leads(write_file(tmp_path, (HEADER + rows).encode()), workers=8)
    assert summary.count("accepted") == 1
    assert summary.count("duplicate") == 23
    assert sum(lead["email"] == "same.person@example.com" for lead in stack.stored_leads()) == 1


def test_vendor_flag_fills_and_guards_the_vendor(stack: Stack, tmp_path: Path) -> None:
    path = write_file(tmp_path, b"email,vendor_code\nx1@example.com,\nx2@example.com,V002\n")
    report = io.StringIO()
    summary = run_import(path, LeadImport(lead_writer(), vendor="V004"), report)
    assert summary.counts == {"accepted": 1, "rejected": 1}
    assert "differs from --vendor V004" in report.getvalue()
    assert {lead["vendor_code"] for lead in stack.stored_leads() if lead["email"] == "x1@example.com"} == {
        "V004"
    }


@pytest.mark.parametrize(
    ("content", "message"),
    [
        pytest.param(b"", "the file is empty", id="empty-file"),
        pytest.param(
            b"first_name,last_name\nAnn,Lee\n", "missing column(s): email or phone", id="no-contact-columns"
        ),
        pytest.param(
            b"email,first_name\nann@example.com,Ann\n",
            "vendor_code (or give --vendor)",
            id="no-vendor-column",
        ),
        pytest.param(
            "e\xefmail,vendor_code\n".encode("latin-1"), "header row is not valid UTF-8", id="latin-1-header"
        ),
    ],
)
def test_a_file_that_cannot_be_imported_writes_nothing(
    stack: Stack, tmp_path: Path, content: bytes, message: str
) -> None:
    with pytest.raises(FileProblem, match=message.replace("(", r"\(").replace(")", r"\)")):
        import_leads(write_file(tmp_path, content))
    assert len(stack.stored_leads()) == 1


def test_a_header_alone_imports_nothing(stack: Stack, tmp_path: Path) -> None:
    summary, report = import_leads(write_file(tmp_path, HEADER.encode()))
    assert summary.rows == 0
    assert report == [["row", "outcome", "field", "reason"]]


def test_vendors_import_creates_new_agencies_and_leaves_existing_ones(stack: Stack, tmp_path: Path) -> None:
    from agencies.dependencies import agency_service, pricing_service

    path = tmp_path / "vendors.csv"
    path.write_text(
        "vendor_code,name,monthly_goal,daily_cap,price,test_mode\n"
        "V020,Twenty Co,400,50,38.50,false\n"
        '"V021","Comma, Inc",,,,\n'
        "V001,Renamed,,,,\n"
        "v-bad,Bad,,,,\n"
        "V022,Negative,-5,,,\n"
        "V023,Priceless,,,-1,\n",
        encoding="utf-8",
    )

    def importer(dry_run: bool) -> VendorImport:
        return VendorImport(
            create_agency=agency_service().create,
            agency_exists=lambda code: stack.vendors.get({"vendor_code": code}) is not None,
            set_price=pricing_service().set_vendor_price,
            dry_run=dry_run,
        )

    report = io.StringIO()
    assert run_import(path, importer(dry_run=True), report).counts == {
        "accepted": 2,
        "exists": 1,
        "rejected": 3,
    }
    assert stack.vendors.get({"vendor_code": "V020"}) is None
    summary = run_import(path, importer(dry_run=False), report)
    assert summary.counts == {"accepted": 2, "exists": 1, "rejected": 3}
    twenty = stack.vendors.get({"vendor_code": "V020"})
    assert twenty is not None
    assert (twenty["name"], twenty["monthly_goal"], twenty["daily_cap"]) == ("Twenty Co", 400, 50)
    assert stack.pricing.get({"price_key": "V020"})["price"] == pytest.approx(38.5)  # type: ignore[index]
    assert stack.vendors.get({"vendor_code": "V001"})["name"] == "Summit Lead Partners"  # type: ignore[index]
    assert run_import(path, importer(dry_run=False), io.StringIO()).counts == {"exists": 3, "rejected": 3}


def test_vendors_import_takes_the_hourly_cap_return_window_and_acceptance_rules(
    stack: Stack, tmp_path: Path
) -> None:
    from agencies.dependencies import agency_service, pricing_service

    # Given agencies with an hourly cap and acceptance rules (a JSON object in one cell)
    path = tmp_path / "vendors.csv"
    path.write_text(
        "vendor_code,name,hourly_cap,return_window_days,acceptance\n"
        'V030,Ruled,20,14,"{""allowed_states"": [""TX""], ""require_consent"": false}"\n'
        "V031,Unreadable,,,{not json\n"
        'V032,Unknown rule,,,"{""surprise"": 1}"\n',
        encoding="utf-8",
    )
    importer = VendorImport(
        create_agency=agency_service().create,
        agency_exists=lambda code: stack.vendors.get({"vendor_code": code}) is not None,
        set_price=pricing_service().set_vendor_price,
    )
    # When they are imported
    assert run_import(path, importer, io.StringIO()).counts == {"accepted": 1, "rejected": 2}
    # Then the agency holds them as the agencies service shows them
    shown = agency_service().one(Principal("demo-admin", Role.ADMIN), "V030")
    assert (shown["hourly_cap"], shown["return_window_days"]) == (20, 14)
    assert (shown["acceptance"]["allowed_states"], shown["acceptance"]["require_consent"]) == (["TX"], False)


def test_migrated_leads_are_not_held_to_the_acceptance_rules(stack: Stack, tmp_path: Path) -> None:
    # Given a vendor whose rules require consent, a zip and Texan leads, 1 an hour
    vendor = stack.vendors.get({"vendor_code": "V001"})
    assert vendor is not None
    rules = {"acceptance": {"required_fields": ["zip"], "allowed_states": ["TX"]}, "hourly_cap": 1}
    stack.vendors.put({**vendor, **rules})
    # When existing leads without consent, zip or state are imported
    path = write_file(tmp_path, b"email,vendor_code\nold1@example.com,V001\nold2@example.com,V001\n")
    summary, _ = import_leads(path)
    # Then they are migrated as they are
    assert summary.counts == {"accepted": 2}


def test_imported_time_is_kept_to_the_millisecond(stack: Stack, tmp_path: Path) -> None:
    path = write_file(
        tmp_path, b"email,vendor_code,created_at\nms@example.com,V001,2026-11-02T03:04:05.678Z\n"
    )
    import_leads(path)
    (lead,) = [lead for lead in stack.stored_leads() if lead["email"] == "ms@example.com"]
    assert lead["created_at"] == "2026-11-02T03:04:05.678Z"
    assert lead["lead_id"][:10] == _ulid_time_prefix(datetime(2026, 11, 2, 3, 4, 5, 678000, tzinfo=UTC))


def _ulid_time_prefix(moment: datetime) -> str:
    from ulid import ULID

    return str(ULID.from_datetime(moment))[:10]
