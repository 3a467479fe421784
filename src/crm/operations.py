"""The operator commands that work on data: `crm outbox send`, `crm stats rebuild`,
`crm leads reindex`, `crm import` and `crm seed`. Each works on the stack `--stack` or
`--aws-port` names, else on the functions' configuration when `LEADS_TABLE` is set, else on the
running local stack (see `crm.targets`). The function code they call is imported only after that:
it reads its configuration when first imported."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from crm.targets import use_stack


def cmd_outbox_send(args: argparse.Namespace) -> int:
    """Sends the events the bus refused earlier (they stay in the outbox until it accepts them):
    what the scheduled outbox publisher does, for every pending event at once, back-off or not."""
    where = use_stack(args.stack, args.aws_port)
    from shared import dependencies

    report = dependencies.outbox().drain(due_only=False)
    print(f"{where}: sent {report.sent} pending event(s), {report.failed} still refused by the bus")
    return 0 if report.failed == 0 else 1


def cmd_stats_rebuild(args: argparse.Namespace) -> int:
    """Recomputes the stats buckets from the leads table, then sends the events still pending."""
    where = use_stack(args.stack, args.aws_port)
    from shared import dependencies
    from shared.cache import BUCKET_NAMESPACES
    from stats.dependencies import stats_store
    from stats.rebuild import rebuild

    report = rebuild(
        dependencies.leads_table().scan_all(),
        stats_store(),
        dependencies.business_zone(),
        first_day=args.first_day,
        last_day=args.last_day,
    )
    dependencies.query_cache().invalidate_namespaces(BUCKET_NAMESPACES)  # every read of the buckets
    print(
        f"{where}: {report.leads} leads read; {len(report.days_rewritten)} day bucket(s) rewritten, "
        f"{len(report.days_removed)} removed, {report.states_rewritten} lead state(s) reset"
    )
    for day in report.days_rewritten:
        print(f"  rewritten {day}")
    for day in report.days_removed:
        print(f"  removed {day}")
    drained = dependencies.outbox().drain(due_only=False)
    print(f"outbox: {drained.sent} of {drained.sent + drained.failed} pending event(s) sent")
    return 0 if drained.failed == 0 else 1


def cmd_leads_reindex(args: argparse.Namespace) -> int:
    """Rewrites the index keys of every stored lead that lacks those its fields give today: after
    an upgrade that changes what an index holds (such as the name search keys), existing leads
    become findable the way new ones are. Running it again changes nothing."""
    where = use_stack(args.stack, args.aws_port)
    from leads.repository import LeadRepository
    from shared import dependencies
    from shared.cache import Namespace

    table = dependencies.leads_table()
    repository = LeadRepository(table)
    read = rewritten = 0
    for item in table.scan_all():
        read += 1
        rewritten += repository.refresh_index_keys(item)
    dependencies.query_cache().invalidate_namespaces([Namespace.LEADS])
    print(f"{where}: {read} leads read; {rewritten} reindexed")
    return 0


def _count_lines(path: Path) -> int:
    with path.open("rb") as stream:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: stream.read(1 << 20), b""))


def cmd_import(args: argparse.Namespace) -> int:
    """Imports agencies or leads from a CSV file into the configured stack (see crm.importer)."""
    from tqdm import tqdm

    path = Path(args.file)
    if not path.is_file():
        print(f"crm import: no such file: {path}", file=sys.stderr)
        return 2
    where = use_stack(args.stack, args.aws_port)
    from crm.importer import FileProblem, Importer, run_import

    importer: Importer = {
        "leads": _lead_import,
        "vendors": _vendor_import,
        "suppressions": _suppression_import,
    }[args.kind](args)
    errors_path = Path(args.errors) if args.errors else path.with_name(path.stem + ".errors.csv")
    started = time.monotonic()
    total = max(0, _count_lines(path) - 1)
    mode = " (dry run: nothing is written)" if args.dry_run else ""
    print(f"{where}: importing {args.kind} from {path}{mode}", file=sys.stderr)
    with (
        errors_path.open("w", encoding="utf-8", newline="") as errors_out,
        tqdm(
            total=total, unit="row", desc=args.kind, file=sys.stderr, dynamic_ncols=True, disable=args.quiet
        ) as bar,
    ):
        try:
            summary = run_import(
                path, importer, errors_out, workers=args.workers, on_result=lambda _: bar.update()
            )
        except FileProblem as problem:
            print(f"crm import: {path}: {problem}", file=sys.stderr)
            return 2
    seconds = time.monotonic() - started
    if summary.ignored_columns:
        print(f"ignored column(s): {', '.join(summary.ignored_columns)}")
    outcomes = {
        "leads": ["accepted", "duplicate", "rejected"],
        "vendors": ["accepted", "duplicate", "rejected", "exists"],
        "suppressions": ["accepted", "exists", "rejected"],
    }[args.kind]
    counts = ", ".join(f"{summary.count(outcome)} {outcome}" for outcome in outcomes)
    rate = summary.rows / seconds if seconds else 0.0
    print(f"{summary.rows} rows: {counts} in {seconds:.1f} s ({rate:.0f} rows/s){mode}")
    print(f"row errors: {errors_path}")
    return 1 if summary.count("rejected") else 0


def _lead_import(args: argparse.Namespace) -> Any:
    from crm.importer import LeadImport
    from leads.dependencies import lead_writer

    return LeadImport(lead_writer(), vendor=args.vendor, dry_run=args.dry_run)


def _suppression_import(args: argparse.Namespace) -> Any:
    from crm.importer import SuppressionImport
    from leads.dependencies import suppression_admin

    return SuppressionImport(suppression_admin(), dry_run=args.dry_run)


def _vendor_import(args: argparse.Namespace) -> Any:
    from agencies.dependencies import agency_service, pricing_service
    from crm.importer import VendorImport
    from shared import dependencies

    agencies, pricing = agency_service(), pricing_service()
    vendors = dependencies.vendors_table()
    return VendorImport(
        create_agency=agencies.create,
        agency_exists=lambda code: vendors.get({"vendor_code": code}) is not None,
        set_price=pricing.set_vendor_price,
        dry_run=args.dry_run,
    )


def cmd_seed(args: argparse.Namespace) -> int:
    """Seeds the demo directory and N demo leads into the configured stack (see crm.seed)."""
    where = use_stack(args.stack, args.aws_port)
    from crm.seed import SeedTables, seed_at_scale

    started = time.monotonic()
    report = seed_at_scale(SeedTables.configured(), args.leads, progress=not args.quiet)
    print(
        f"{where}: {report['vendors']} vendors, {report['users']} users, {report['leads']} leads written; "
        f"stats rebuilt from {report['stats_from']} in {time.monotonic() - started:.1f} s"
    )
    return 0
