"""The `crm` command line: run the local stack, issue tokens, print the OpenAPI document."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from http.server import ThreadingHTTPServer
from pathlib import Path
from types import FrameType
from typing import Any

from crm.stack import (
    DEFAULT_API_PORT,
    DEFAULT_AWS_PORT,
    LOCAL_JWT_SECRET,
    function_environment,
    local_template,
)


def _token_settings() -> object:
    from shared.auth import TokenSettings

    template = local_template()
    return TokenSettings(
        secret=os.environ.get("JWT_SECRET") or LOCAL_JWT_SECRET,
        issuer=os.environ.get("JWT_ISSUER") or template.parameters["JwtIssuer"],
        audience=os.environ.get("JWT_AUDIENCE") or template.parameters["JwtAudience"],
    )


def cmd_token(args: argparse.Namespace) -> int:
    from shared.auth import TokenSettings, issue_token

    settings = _token_settings()
    assert isinstance(settings, TokenSettings)
    print(issue_token(settings, args.user_id, ttl_seconds=args.ttl))
    return 0


def cmd_openapi(args: argparse.Namespace) -> int:
    template = local_template()
    for name, value in function_environment(template, "http://127.0.0.1:1", {}).items():
        os.environ.setdefault(name, value)
    from crm.openapi import document_json

    print(document_json(template))
    return 0


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def cmd_serve(args: argparse.Namespace) -> int:

    started = time.perf_counter()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    logging.getLogger("botocore").setLevel(logging.WARNING)
    from crm.stack import DEFAULT_LOCAL_ORIGINS, MotoServer, provision

    if args.dashboard:
        # The dashboard is served on an origin of its own; the API must allow it, like production.
        origin = f"http://{args.host}:{args.dashboard_port}"
        origins = os.environ.get("CORS_ALLOW_ORIGINS", DEFAULT_LOCAL_ORIGINS).split(",")
        if origin not in origins:
            os.environ["CORS_ALLOW_ORIGINS"] = ",".join([*origins, origin])
    template = local_template()
    moto = MotoServer(host="127.0.0.1", port=args.aws_port)
    # Function code reads its configuration when first imported (a cold start), so the
    # environment is complete before anything from src/shared is imported.
    os.environ.update(function_environment(template, moto.endpoint, os.environ))
    import boto3

    from crm.bus import RuleWorker
    from crm.functions import FunctionRegistry
    from crm.gateway import ApiGateway, LocalHttpServer
    from crm.openapi import document_json, swagger_asset, swagger_page

    moto.start()
    workers: list[RuleWorker] = []
    server: LocalHttpServer | None = None
    dashboard: ThreadingHTTPServer | None = None
    try:
        queues = provision(template, moto.endpoint)
        seeded = None
        if not args.no_seed:
            from crm.seed import SeedTables, seed_at_scale

            # Demo leads are written directly, not posted: their stats come from a rebuild.
            seeded = seed_at_scale(SeedTables.configured(), args.seed_leads)
        functions = FunctionRegistry(template)
        functions.load_all()
        sqs = boto3.client("sqs")
        for rule in template.rules():
            worker = RuleWorker(rule.name, queues[rule.name], functions[rule.function], sqs)
            worker.start()
            workers.append(worker)

        spec_json = document_json(template)
        local_pages = {
            "/openapi.json": lambda: (200, "application/json", spec_json.encode()),
            "/docs": lambda: (200, "text/html; charset=utf-8", swagger_page(spec_json).encode()),
            "/docs/swagger-ui-bundle.min.js": lambda: (
                200,
                "text/javascript",
                swagger_asset("swagger-ui-bundle.min.js"),
            ),
            "/docs/swagger-ui.min.css": lambda: (200, "text/css", swagger_asset("swagger-ui.min.css")),
        }
        gateway = ApiGateway(
            routes=template.routes(),
            functions=functions,
            gateway_responses=template.gateway_responses(),
            stage=str(template.parameters["Stage"]),
            local_pages=local_pages,
            settle=lambda: all(worker.wait_until_idle() for worker in workers),
        )
        server = LocalHttpServer((args.host, args.port), gateway, log_requests=not args.quiet)
        if args.dashboard:
            from crm.dashboard import serve_dashboard

            dashboard = serve_dashboard(args.host, args.dashboard_port)
        signal.signal(signal.SIGTERM, _stop_on_sigterm)
        _print_banner(args, moto.endpoint, seeded, time.perf_counter() - started)
        server.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
    finally:
        if server is not None:
            server.server_close()
        if dashboard is not None:
            dashboard.shutdown()
            dashboard.server_close()
        for worker in workers:
            worker.stop()
        moto.stop()
    return 0


def _print_banner(
    args: argparse.Namespace, aws_endpoint: str, seeded: dict[str, Any] | None, seconds: float
) -> None:
    from shared.auth import issue_token
    from shared.dependencies import token_settings

    base = f"http://{args.host}:{args.port}"
    token = issue_token(token_settings(), "demo-admin", ttl_seconds=12 * 3600)
    lines = [
        f"Lead CRM API listening on {base} (ready in {seconds:.1f}s)",
        f"  local AWS endpoint (DynamoDB, EventBridge, SQS): {aws_endpoint}",
        f"  OpenAPI: {base}/openapi.json   Swagger UI: {base}/docs",
    ]
    if seeded:
        lines.append(
            f"  demo data: {seeded['vendors']} vendors, {seeded['users']} users, {seeded['leads']} leads"
        )
    if args.dashboard:
        lines.append(f"  dashboard: http://{args.host}:{args.dashboard_port}/?api={base}")
    lines += [
        "",
        "Admin token (12 h):",
        f"  export TOKEN={token}",
        "Try:",
        f'  curl -s -H "Authorization: Bearer $TOKEN" "{base}/leads?limit=5"',
        "",
    ]
    print("\n".join(lines), flush=True)


def cmd_outbox_send(args: argparse.Namespace) -> int:
    """Sends the events the bus refused earlier (they stay in the outbox until it accepts them)."""
    from crm.stack import use_configured_or_local_stack

    where = use_configured_or_local_stack()
    from shared import dependencies

    outbox = dependencies.outbox()
    sent = kept = 0
    for event in outbox.pending():
        if outbox.send(event):
            sent += 1
        else:
            kept += 1
    print(f"{where}: sent {sent} pending event(s), {kept} still refused by the bus")
    return 0 if kept == 0 else 1


def cmd_stats_rebuild(args: argparse.Namespace) -> int:
    """Recomputes the stats buckets from the leads table, then sends the events still pending."""
    from zoneinfo import ZoneInfo

    from crm.stack import use_configured_or_local_stack

    where = use_configured_or_local_stack()
    from shared import dependencies
    from stats.consumer import stats_store
    from stats.rebuild import rebuild

    settings = dependencies.get_settings()
    report = rebuild(
        dependencies.leads_table().scan_all(),
        stats_store(),
        ZoneInfo(settings.business_timezone),
        first_day=args.first_day,
        last_day=args.last_day,
    )
    dependencies.query_cache().invalidate("stats")
    print(
        f"{where}: {report.leads} leads read; {len(report.days_rewritten)} day bucket(s) rewritten, "
        f"{len(report.days_removed)} removed, {report.states_rewritten} lead state(s) reset"
    )
    for day in report.days_rewritten:
        print(f"  rewritten {day}")
    for day in report.days_removed:
        print(f"  removed {day}")
    outbox = dependencies.outbox()
    pending = list(outbox.pending())
    sent = sum(outbox.send(event) for event in pending)
    print(f"outbox: {sent} of {len(pending)} pending event(s) sent")
    return 0 if sent == len(pending) else 1


def _count_lines(path: Path) -> int:
    with path.open("rb") as stream:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: stream.read(1 << 20), b""))


def cmd_import(args: argparse.Namespace) -> int:
    """Imports agencies or leads from a CSV file into the configured stack (see crm.importer)."""
    from tqdm import tqdm

    from crm.stack import use_configured_or_local_stack

    path = Path(args.file)
    if not path.is_file():
        print(f"crm import: no such file: {path}", file=sys.stderr)
        return 2
    where = use_configured_or_local_stack()
    from crm.importer import FileProblem, Importer, run_import

    importer: Importer = _lead_import(args) if args.kind == "leads" else _vendor_import(args)
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
    outcomes = ["accepted", "duplicate", "rejected"] + (["exists"] if args.kind == "vendors" else [])
    counts = ", ".join(f"{summary.count(outcome)} {outcome}" for outcome in outcomes)
    rate = summary.rows / seconds if seconds else 0.0
    print(f"{summary.rows} rows: {counts} in {seconds:.1f} s ({rate:.0f} rows/s){mode}")
    print(f"row errors: {errors_path}")
    return 1 if summary.count("rejected") else 0


def _lead_import(args: argparse.Namespace) -> Any:
    from crm.importer import LeadImport
    from leads.dependencies import lead_writer

    return LeadImport(lead_writer(), vendor=args.vendor, dry_run=args.dry_run)


def _vendor_import(args: argparse.Namespace) -> Any:
    from agencies.routes import agency_service, pricing_service
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
    from crm.stack import use_configured_or_local_stack

    where = use_configured_or_local_stack()
    from crm.seed import SeedTables, seed_at_scale

    started = time.monotonic()
    report = seed_at_scale(SeedTables.configured(), args.leads, progress=not args.quiet)
    print(
        f"{where}: {report['vendors']} vendors, {report['users']} users, {report['leads']} leads written; "
        f"stats rebuilt from {report['stats_from']} in {time.monotonic() - started:.1f} s"
    )
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    from crm import bench

    sizes = [int(size) for size in args.sizes.split(",")]
    return bench.main(sizes, args.requests)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crm", description="Lead CRM operator tooling")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the whole API locally (no Docker, no AWS account)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=DEFAULT_API_PORT)
    serve.add_argument(
        "--aws-port",
        type=int,
        default=DEFAULT_AWS_PORT,
        help=f"port of the local AWS endpoint: DynamoDB, EventBridge, SQS (default {DEFAULT_AWS_PORT})",
    )
    serve.add_argument("--no-seed", action="store_true", help="start with empty tables")
    serve.add_argument(
        "--seed-leads", type=int, default=300, help="number of demo leads to seed (default 300; see crm seed)"
    )
    serve.add_argument("--quiet", action="store_true", help="do not log each request")
    serve.add_argument(
        "--dashboard", action="store_true", help="also serve the reference dashboard on its own origin"
    )
    serve.add_argument(
        "--dashboard-port", type=int, default=5173, help="port of the dashboard (default 5173)"
    )
    serve.set_defaults(run=cmd_serve)

    token = commands.add_parser("token", help="print a signed JWT for a user id")
    token.add_argument("user_id")
    token.add_argument("--ttl", type=int, default=3600, help="lifetime in seconds (default 3600)")
    token.set_defaults(run=cmd_token)

    openapi = commands.add_parser("openapi", help="print the whole API's OpenAPI 3 document")
    openapi.set_defaults(run=cmd_openapi)

    stats = commands.add_parser("stats", help="the stats buckets kept from lead events")
    stats_commands = stats.add_subparsers(dest="stats_command", required=True)
    rebuild = stats_commands.add_parser("rebuild", help="recompute the buckets from the leads table")
    rebuild.add_argument("--from", dest="first_day", help="first day to rewrite (YYYY-MM-DD); default all")
    rebuild.add_argument("--to", dest="last_day", help="last day to rewrite (YYYY-MM-DD); default all")
    rebuild.set_defaults(run=cmd_stats_rebuild)

    outbox = commands.add_parser("outbox", help="lead events recorded but not yet accepted by the bus")
    outbox_commands = outbox.add_subparsers(dest="outbox_command", required=True)
    send = outbox_commands.add_parser("send", help="put every pending event on the bus")
    send.set_defaults(run=cmd_outbox_send)

    importing = commands.add_parser("import", help="import agencies or leads from a CSV file")
    import_kinds = importing.add_subparsers(dest="kind", required=True)
    for kind, text in (
        ("vendors", "agencies (vendors) and their prices"),
        ("leads", "leads, as POST /leads takes them"),
    ):
        command = import_kinds.add_parser(kind, help=f"import {text}")
        command.add_argument("file", help="CSV file, UTF-8, with a header row")
        command.add_argument("--dry-run", action="store_true", help="check every row, write nothing")
        command.add_argument("--errors", help="where to write the row errors (default FILE.errors.csv)")
        command.add_argument("--quiet", action="store_true", help="no progress bar")
        if kind == "leads":
            command.add_argument("--vendor", help="the vendor of every row (else the vendor_code column)")
            command.add_argument("--workers", type=int, default=8, help="concurrent writes (default 8)")
        else:
            command.set_defaults(workers=1)
        command.set_defaults(run=cmd_import)

    seeding = commands.add_parser("seed", help="write demo data (agencies, users, leads) at any size")
    seeding.add_argument("--leads", type=int, default=300, help="number of demo leads (default 300)")
    seeding.add_argument("--quiet", action="store_true", help="no progress bar")
    seeding.set_defaults(run=cmd_seed)

    bench = commands.add_parser("bench", help="measure the read path at fixed data sizes and print a table")
    bench.add_argument(
        "--sizes", default="1000,10000,100000", help="comma-separated lead counts (default 1000,10000,100000)"
    )
    bench.add_argument("--requests", type=int, default=50, help="requests per scenario (default 50)")
    bench.set_defaults(run=cmd_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args.run(args))


if __name__ == "__main__":
    sys.exit(main())
