"""`crm import`: agencies, leads and suppression list entries from CSV files, through the API's
own code.

Leads go through `leads.intake.parse_submission` and `LeadWriter.create`, the code path of
`POST /leads` (validation, normalisation, scoring, pricing, race-free dedupe, the lead event),
as migrated leads: they keep their `created_at`, count against no cap and are not auto-assigned.
Running a file twice adds nothing: every row already imported is a duplicate the second time.
Suppression entries go through the body of `POST /admin/suppressions` (the same normalisation)
and its conditional add: a value already listed is `exists` and keeps its entry.

Files are read as a stream (constant memory, whatever their size). Rows are numbered like a
spreadsheet's: the header is row 1. Each rejected or duplicate row gets one line per problem in
the error report (row, outcome, field, reason).
"""

from __future__ import annotations

import codecs
import csv
import json
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from functools import partial
from pathlib import Path
from typing import IO, Any

from pydantic import ValidationError

from leads.dedupe import dedupe_keys
from leads.intake import parse_submission
from leads.models import STAFF_SUBMISSION_FIELDS, SUBMISSION_FIELDS, LeadSubmission, Outcome
from leads.writes import LeadWriter, PreviewedClaims
from shared.errors import ApiError, Conflict
from shared.security import Principal, Role

IMPORT_USER = "crm-import"
LEAD_COLUMNS = frozenset(SUBMISSION_FIELDS | STAFF_SUBMISSION_FIELDS | {"created_at"})
ENCODING_PROBLEM = "not valid UTF-8 text (save the file as UTF-8)"


@dataclass(frozen=True)
class PendingWrite:
    """A valid row's write, still to run; `keys` name the person (or agency) it writes."""

    keys: frozenset[str]
    run: Callable[[], RowResult]


class FileProblem(Exception):
    """The file cannot be imported at all (empty, not CSV, required columns missing)."""


@dataclass(frozen=True)
class RowResult:
    row: int
    outcome: str  # accepted | duplicate | rejected | exists (vendors or suppressed values already present)
    problems: tuple[tuple[str, str], ...] = ()  # (field, reason)


@dataclass
class Summary:
    rows: int = 0
    counts: dict[str, int] = field(default_factory=dict)
    ignored_columns: list[str] = field(default_factory=list)

    def add(self, result: RowResult) -> None:
        self.rows += 1
        self.counts[result.outcome] = self.counts.get(result.outcome, 0) + 1

    def count(self, outcome: str) -> int:
        return self.counts.get(outcome, 0)


# -- reading --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Record:
    row: int
    values: dict[str, str]
    encoding_problem: bool
    extra_values: bool


def _lines(stream: IO[bytes], bad_lines: set[int]) -> Iterator[str]:
    """Decoded lines; a line that is not UTF-8 is decoded with replacements and its number kept."""
    for number, raw in enumerate(stream, start=1):
        if number == 1 and raw.startswith(codecs.BOM_UTF8):
            raw = raw[len(codecs.BOM_UTF8) :]
        try:
            yield raw.decode("utf-8")
        except UnicodeDecodeError:
            bad_lines.add(number)
            yield raw.decode("utf-8", errors="replace")


def read_records(stream: IO[bytes]) -> tuple[list[str], Iterator[Record]]:
    """The header's column names (lower-cased, trimmed) and the records after it, lazily."""
    bad_lines: set[int] = set()
    reader = csv.reader(_lines(stream, bad_lines), strict=False)
    try:
        header = next(reader)
    except StopIteration:
        raise FileProblem("the file is empty: expected a header row of column names") from None
    except csv.Error as exc:
        raise FileProblem(f"the file is not CSV: {exc}") from exc
    if bad_lines:
        raise FileProblem(f"the header row is {ENCODING_PROBLEM}")
    columns = [name.strip().lower() for name in header]

    def records() -> Iterator[Record]:
        row, last_line = 1, reader.line_num
        while True:
            try:
                values = next(reader)
            except StopIteration:
                return
            except csv.Error as exc:  # e.g. an unterminated quote: the rest of the file is one field
                raise FileProblem(f"row {row + 1}: not valid CSV ({exc})") from exc
            row += 1
            spanned = set(range(last_line + 1, reader.line_num + 1))
            last_line = reader.line_num
            if not any(value.strip() for value in values):
                row -= 1  # blank lines are not rows
                continue
            yield Record(
                row=row,
                values=dict(zip(columns, values, strict=False)),
                encoding_problem=bool(spanned & bad_lines),
                extra_values=len(values) > len(columns),
            )

    return columns, records()


def _record_problem(record: Record, width: int) -> RowResult | None:
    if record.encoding_problem:
        return RowResult(record.row, "rejected", (("row", ENCODING_PROBLEM),))
    if record.extra_values:
        return RowResult(record.row, "rejected", (("row", f"more values than the {width} columns"),))
    return None


# -- leads ----------------------------------------------------------------------------------------
@dataclass
class LeadImport:
    writer: LeadWriter
    vendor: str | None = None
    dry_run: bool = False
    principal: Principal = field(
        default_factory=lambda: Principal(IMPORT_USER, Role.ADMIN, name="crm import")
    )
    # What the dry run's earlier rows would have claimed: later rows are checked against them.
    _previewed: PreviewedClaims = field(default_factory=dict)

    def check_columns(self, columns: list[str]) -> list[str]:
        """Raises `FileProblem` without a way to identify people or vendors; returns the columns
        that are not lead fields (ignored)."""
        missing = []
        if not {"email", "phone"} & set(columns):
            missing.append("email or phone")
        if self.vendor is None and "vendor_code" not in columns:
            missing.append("vendor_code (or give --vendor)")
        if missing:
            raise FileProblem("missing column(s): " + ", ".join(missing))
        return sorted(set(columns) - LEAD_COLUMNS - {""})

    def prepare(self, record: Record, width: int) -> RowResult | PendingWrite:
        """Reads and validates a row (in file order); what is left to do is its write."""
        problem = _record_problem(record, width)
        if problem:
            return problem
        body: dict[str, Any] = {
            name: value.strip()
            for name, value in record.values.items()
            if name in LEAD_COLUMNS and name != "created_at" and value.strip()
        }
        if self.vendor is not None:
            if body.get("vendor_code", self.vendor) != self.vendor:
                return RowResult(
                    record.row, "rejected", (("vendor_code", f"differs from --vendor {self.vendor}"),)
                )
            body["vendor_code"] = self.vendor
        if "tcpa_consent" in body:
            body["tcpa_consent"] = body["tcpa_consent"].lower() in ("true", "yes", "y", "1")
        problems: list[tuple[str, str]] = []
        created = _created_at(record.values.get("created_at", "").strip(), problems)
        try:
            submission = parse_submission(json.dumps(body), self.principal)
        except ApiError as exc:
            problems += [
                (str(d.get("field", "row")), str(d.get("message", exc.message))) for d in exc.details
            ]
            problems = problems or [("row", exc.message)]
            return RowResult(record.row, "rejected", tuple(problems))
        if problems:
            return RowResult(record.row, "rejected", tuple(problems))
        keys = frozenset(dedupe_keys(submission, test=False))
        return PendingWrite(keys, partial(self._write, record.row, submission, created))

    def _write(self, row: int, submission: LeadSubmission, created: datetime) -> RowResult:
        if self.dry_run:  # rows of one person run in file order, so each sees the earlier ones'
            result = self.writer.preview(
                self.principal, submission, now=created, earlier=self._previewed, migrated=True
            )
        else:
            result = self.writer.create(self.principal, submission, now=created, migrated=True)
        if result.outcome is Outcome.ACCEPTED:
            return RowResult(row, "accepted")
        if result.outcome is Outcome.DUPLICATE:
            return RowResult(row, "duplicate", (("email/phone", result.reason or "duplicate"),))
        details = [(str(d.get("field", "row")), str(d.get("message", ""))) for d in result.details]
        return RowResult(row, "rejected", tuple(details) or (("row", result.reason or "rejected"),))


def _created_at(text: str, problems: list[tuple[str, str]]) -> datetime:
    """The row's creation time (now when blank): ISO 8601, with a zone, not in the future."""
    now = datetime.now(UTC)
    if not text:
        return now
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        problems.append(("created_at", "expected an ISO 8601 time, e.g. 2026-03-01T14:30:00Z"))
        return now
    if moment.tzinfo is None:
        problems.append(("created_at", "the time needs a zone (Z or an offset)"))
        return now
    if moment > now:
        problems.append(("created_at", "is in the future"))
    return moment.astimezone(UTC)


# -- agencies -------------------------------------------------------------------------------------
VENDOR_COLUMNS = frozenset(
    {
        "vendor_code",
        "name",
        "status",
        "monthly_goal",
        "daily_cap",
        "monthly_cap",
        "hourly_cap",
        "dedupe_window_days",
        "return_window_days",
        "test_mode",
        "acceptance",
        "contact_name",
        "contact_email",
        "contact_phone",
        "price",
    }
)

WHOLE_NUMBER_COLUMNS = frozenset(
    {"monthly_goal", "daily_cap", "monthly_cap", "hourly_cap", "dedupe_window_days", "return_window_days"}
)


def _typed_vendor_values(values: dict[str, Any]) -> list[tuple[str, str]]:
    """Converts, in place, the agency columns the agency body takes as other JSON types than the
    CSV's text (booleans, whole numbers, the acceptance rules' object); returns what it could not
    read."""
    if "test_mode" in values:
        values["test_mode"] = values["test_mode"].lower() in ("true", "yes", "y", "1")
    unreadable = []
    for name in WHOLE_NUMBER_COLUMNS & values.keys():
        if re.fullmatch(r"[+-]?\d+", values[name]):
            values[name] = int(values[name])
        else:
            unreadable.append((name, "expected a whole number"))
    if "acceptance" in values:
        try:
            values["acceptance"] = json.loads(values["acceptance"])
        except ValueError:
            unreadable.append(("acceptance", "expected a JSON object of acceptance rules"))
    return unreadable


@dataclass
class VendorImport:
    """Agencies (and their lead price) through the agencies service's validation; an agency
    that exists already is left as it is (`exists`), so a second run changes nothing."""

    create_agency: Callable[[Any], Any]
    agency_exists: Callable[[str], bool]
    set_price: Callable[[str, Any], Any]
    dry_run: bool = False

    def check_columns(self, columns: list[str]) -> list[str]:
        missing = [name for name in ("vendor_code", "name") if name not in columns]
        if missing:
            raise FileProblem("missing column(s): " + ", ".join(missing))
        return sorted(set(columns) - VENDOR_COLUMNS - {""})

    def prepare(self, record: Record, width: int) -> RowResult | PendingWrite:
        from agencies.models import AgencyCreate, VendorPriceBody

        problem = _record_problem(record, width)
        if problem:
            return problem
        values: dict[str, Any] = {
            name: value.strip()
            for name, value in record.values.items()
            if name in VENDOR_COLUMNS and value.strip()
        }
        price = values.pop("price", None)
        unreadable = _typed_vendor_values(values)
        if price is not None:
            try:
                price = Decimal(price)
            except ArithmeticError:
                unreadable.append(("price", "expected an amount, e.g. 35.00"))
        if unreadable:
            return RowResult(record.row, "rejected", tuple(unreadable))
        try:
            agency = AgencyCreate.model_validate(values)
            priced = VendorPriceBody.model_validate({"price": price}) if price is not None else None
        except ValidationError as exc:
            problems = tuple(
                (".".join(str(part) for part in error["loc"]) or "row", error["msg"])
                for error in exc.errors()
            )
            return RowResult(record.row, "rejected", problems)
        return PendingWrite(frozenset({agency.vendor_code}), partial(self._write, record.row, agency, priced))

    def _write(self, row: int, agency: Any, priced: Any) -> RowResult:
        if self.agency_exists(agency.vendor_code):
            return RowResult(
                row, "exists", (("vendor_code", f"{agency.vendor_code} exists: left unchanged"),)
            )
        if not self.dry_run:
            try:
                self.create_agency(agency)
            except Conflict:  # created meanwhile by someone else
                return RowResult(row, "exists", (("vendor_code", f"{agency.vendor_code} exists"),))
            if priced is not None:
                self.set_price(agency.vendor_code, priced.price)
        return RowResult(row, "accepted")


# -- the suppression list -------------------------------------------------------------------------
SUPPRESSION_COLUMNS = frozenset({"email", "phone", "reason"})
DEFAULT_SUPPRESSION_REASON = "imported"


@dataclass
class SuppressionImport:
    """Emails and phones for the suppression list, one entry per value a row gives (email, phone
    or both), with the row's `reason` (else "imported"). A row whose every value is listed
    already is `exists`; one that lists at least one value is `accepted`."""

    admin: Any  # leads.suppression.SuppressionAdmin
    dry_run: bool = False
    principal: Principal = field(
        default_factory=lambda: Principal(IMPORT_USER, Role.ADMIN, name="crm import")
    )

    def check_columns(self, columns: list[str]) -> list[str]:
        if not {"email", "phone"} & set(columns):
            raise FileProblem("missing column(s): email or phone")
        return sorted(set(columns) - SUPPRESSION_COLUMNS - {""})

    def prepare(self, record: Record, width: int) -> RowResult | PendingWrite:
        from leads.models import SuppressionCreate
        from leads.suppression import entry_key

        problem = _record_problem(record, width)
        if problem:
            return problem
        values = {name: value.strip() for name, value in record.values.items() if name in SUPPRESSION_COLUMNS}
        reason = values.get("reason") or DEFAULT_SUPPRESSION_REASON
        bodies, problems = [], []
        for kind in ("email", "phone"):
            if not values.get(kind):
                continue
            try:
                bodies.append(SuppressionCreate.model_validate({kind: values[kind], "reason": reason}))
            except ValidationError as exc:
                problems += [(".".join(str(p) for p in e["loc"]) or kind, e["msg"]) for e in exc.errors()]
        if not bodies and not problems:
            problems.append(("email/phone", "give an email or a phone"))
        if problems:
            return RowResult(record.row, "rejected", tuple(problems))
        keys = frozenset(entry_key(*body.contact()) for body in bodies)
        return PendingWrite(keys, partial(self._write, record.row, bodies))

    def _write(self, row: int, bodies: list[Any]) -> RowResult:
        if self.dry_run:
            listed = [self.admin.is_listed(body) for body in bodies]
        else:
            listed = [not self.admin.add(self.principal, body)[1] for body in bodies]
        if all(listed):
            return RowResult(row, "exists", (("email/phone", "listed already: left unchanged"),))
        return RowResult(row, "accepted")


# -- running --------------------------------------------------------------------------------------
Importer = LeadImport | VendorImport | SuppressionImport


def run_import(
    path: Path,
    importer: Importer,
    errors_out: IO[str],
    workers: int = 1,
    on_result: Callable[[RowResult], None] = lambda result: None,
) -> Summary:
    """Imports every row of `path`, writing one error line per problem to `errors_out` (CSV with
    a header: row, outcome, field, reason). Rows are read and validated in file order; their writes run on
    `workers` threads, at most `workers * 4` in flight, so memory stays constant. A row waits for
    any earlier row of the same person still being written, so the first row in the file wins."""
    summary = Summary()
    report = csv.writer(errors_out, lineterminator="\n")
    report.writerow(["row", "outcome", "field", "reason"])

    def record_result(result: RowResult) -> None:
        summary.add(result)
        for field_name, reason in result.problems:
            report.writerow([result.row, result.outcome, field_name, reason])
        on_result(result)

    with path.open("rb") as stream:
        columns, records = read_records(stream)
        summary.ignored_columns = importer.check_columns(columns)
        width = len(columns)
        prepared = (importer.prepare(record, width) for record in records)
        if workers <= 1:
            for item in prepared:
                record_result(item.run() if isinstance(item, PendingWrite) else item)
        else:
            _write_concurrently(prepared, record_result, workers)
    return summary


def _write_concurrently(
    prepared: Iterable[RowResult | PendingWrite], record_result: Callable[[RowResult], None], workers: int
) -> None:
    limit = workers * 4
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="import") as pool:
        in_flight: deque[Future[RowResult]] = deque()
        writing: dict[str, Future[RowResult]] = {}  # person key -> the write that holds it
        for item in prepared:
            if isinstance(item, RowResult):
                future: Future[RowResult] = Future()
                future.set_result(item)
            else:
                for key in item.keys:  # an earlier row of this person is committed first
                    if key in writing:
                        writing[key].result()
                future = pool.submit(item.run)
                writing.update(dict.fromkeys(item.keys, future))
            in_flight.append(future)
            while len(in_flight) >= limit:
                _finish(in_flight.popleft(), writing, record_result)
        while in_flight:
            _finish(in_flight.popleft(), writing, record_result)


def _finish(
    future: Future[RowResult],
    writing: dict[str, Future[RowResult]],
    record_result: Callable[[RowResult], None],
) -> None:
    record_result(future.result())
    for key in [key for key, holder in writing.items() if holder is future]:
        del writing[key]
