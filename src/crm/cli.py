"""The `crm` command line: run the local stack, issue tokens, print the OpenAPI document, and the
operator commands. Each sub-command's arguments are declared here; `crm serve` is implemented in
`crm.serve`, the commands that work on data in `crm.operations`, `crm bench` in `crm.bench` and
`crm bench --burst` in `crm.burst` (`--cold-start`, `--forecast`: `crm.bench_cold_start`,
`crm.bench_forecast`)."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TypeAlias

from crm.operations import cmd_import, cmd_leads_reindex, cmd_outbox_send, cmd_seed, cmd_stats_rebuild
from crm.samples import cmd_event
from crm.serve import cmd_serve
from crm.stack import (
    DEFAULT_API_PORT,
    DEFAULT_AWS_PORT,
    SignInRefused,
    function_environment,
    local_template,
    local_token,
)
from crm.targets import StackUnavailable
from shared.auth import VENDOR_TOKEN_MAX_SECONDS

SubCommands: TypeAlias = "argparse._SubParsersAction[argparse.ArgumentParser]"
TTL_HELP = (
    f"a vendor credential's lifetime in seconds, 1 to {VENDOR_TOKEN_MAX_SECONDS} (365 days; default 3600); "
    "a staff ID token lives as long as the pool issues it (1 hour)"
)


def cmd_token(args: argparse.Namespace) -> int:
    endpoint = f"http://127.0.0.1:{args.aws_port}" if args.aws_port else None
    try:
        print(local_token(args.user_id, ttl_seconds=args.ttl, aws_endpoint=endpoint))
    except SignInRefused as refused:
        print(f"crm token: {refused}", file=sys.stderr)
        return 2
    return 0


def cmd_openapi(args: argparse.Namespace) -> int:
    template = local_template()
    for name, value in function_environment(template, "http://127.0.0.1:1", {}).items():
        os.environ.setdefault(name, value)
    from crm.openapi import document_json

    print(document_json(template))
    return 0


def cmd_bench(args: argparse.Namespace) -> int:
    if args.burst is not None:
        from crm import burst

        return burst.main(args.burst, args.clients, Path(args.out), shlex.split(args.serve_args))
    if args.cold_start:
        from crm import bench_cold_start

        return bench_cold_start.main(args.build_dir, args.repeat)
    if args.forecast:
        from crm import bench_forecast

        return bench_forecast.main(args.live, args.stack, args.aws_port)
    from crm import bench

    sizes = [int(size) for size in args.sizes.split(",")]
    return bench.main(sizes, args.requests)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crm", description="Lead CRM operator tooling")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_serve(commands)
    _add_token_and_openapi(commands)
    _add_stats(commands)
    _add_leads(commands)
    _add_outbox(commands)
    _add_import(commands)
    _add_seed(commands)
    _add_bench(commands)
    _add_dashboard(commands)
    return parser


def _add_serve(commands: SubCommands) -> None:
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
        "--no-record",
        action="store_true",
        help="do not record this server for the operator commands to find (a private one)",
    )
    serve.add_argument(
        "--concurrency",
        type=_positive,
        default=None,
        help="execution environments (worker processes) per function, started on demand "
        "(default: one per core, at least 2)",
    )
    serve.add_argument(
        "--schedule-interval",
        type=_positive_seconds,
        default=None,
        metavar="SECONDS",
        help="run every scheduled function this often instead of at its template rate "
        "(default: the template's, e.g. the outbox publisher's rate(1 minute))",
    )
    serve.add_argument(
        "--dashboard", action="store_true", help="also serve the reference dashboard on its own origin"
    )
    serve.add_argument(
        "--dashboard-port", type=int, default=5173, help="port of the dashboard (default 5173)"
    )
    serve.set_defaults(run=cmd_serve)


def _add_dashboard(commands: SubCommands) -> None:
    from crm.dashboard import cmd_dashboard

    dashboard = commands.add_parser(
        "dashboard",
        help="write the reference dashboard, configured for a deployed stack, into a directory",
        description="Copy dashboard/ into OUT with its config.json (the API, the staff user pool's "
        "Cognito endpoint and dashboard client, from the stack's outputs) and index.html's "
        "Content-Security-Policy naming those origins.",
    )
    dashboard.add_argument(
        "--stack", metavar="NAME", required=True, help="the deployed stack (AWS_PROFILE and AWS_REGION apply)"
    )
    dashboard.add_argument(
        "--out", metavar="DIR", default="dashboard-build", help="where to write (default dashboard-build)"
    )
    dashboard.set_defaults(run=cmd_dashboard)


def _add_token_and_openapi(commands: SubCommands) -> None:
    token = commands.add_parser(
        "token",
        help="print a token for a user id: a demo staff user's ID token, or a vendor credential",
        description="Print a bearer token. A demo staff user (demo-admin, demo-manager, demo-agent-N) "
        "signs in to the staff user pool of the running `crm serve` with its documented password and "
        "the pool's ID token is printed; any other user id gets a vendor credential signed with the "
        "local secret (the API accepts it for a vendor's user only). In AWS, vendor credentials are "
        "issued by POST /agencies/{code}/credentials and staff sign in on the dashboard.",
    )
    token.add_argument("user_id")
    token.add_argument("--ttl", type=_token_ttl, help=TTL_HELP)
    token.add_argument(
        "--aws-port", type=int, help="the local AWS endpoint's port (default: the running crm serve's)"
    )
    token.set_defaults(run=cmd_token)

    openapi = commands.add_parser("openapi", help="print the whole API's OpenAPI 3 document")
    openapi.set_defaults(run=cmd_openapi)

    event = commands.add_parser(
        "event", help="give an API Gateway sample of events/ a fresh token (for sam local invoke -e)"
    )
    event.add_argument("name", help="the sample: events/NAME.json (e.g. leads-list)")
    event.add_argument("--user", default="demo-admin", help="whose token (default demo-admin)")
    event.add_argument("--ttl", type=_token_ttl, help=TTL_HELP)
    event.add_argument("--out", help="where to write it (default: the sample itself; - prints it)")
    event.set_defaults(run=cmd_event)


def _add_target(command: argparse.ArgumentParser) -> None:
    """The options of a command that works on a stack's data (see crm.targets)."""
    target = command.add_mutually_exclusive_group()
    target.add_argument(
        "--stack",
        metavar="NAME",
        help="a deployed stack: names from its CloudFormation outputs (AWS_PROFILE and AWS_REGION apply)",
    )
    target.add_argument(
        "--aws-port",
        type=_positive,
        metavar="PORT",
        help="the local stack whose AWS endpoint is on PORT "
        f"(default: the running crm serve, else {DEFAULT_AWS_PORT})",
    )


def _add_stats(commands: SubCommands) -> None:
    stats = commands.add_parser("stats", help="the stats buckets kept from lead events")
    stats_commands = stats.add_subparsers(dest="stats_command", required=True)
    rebuild = stats_commands.add_parser("rebuild", help="recompute the buckets from the leads table")
    rebuild.add_argument("--from", dest="first_day", help="first day to rewrite (YYYY-MM-DD); default all")
    rebuild.add_argument("--to", dest="last_day", help="last day to rewrite (YYYY-MM-DD); default all")
    _add_target(rebuild)
    rebuild.set_defaults(run=cmd_stats_rebuild)


def _add_leads(commands: SubCommands) -> None:
    leads = commands.add_parser("leads", help="the stored leads")
    leads_commands = leads.add_subparsers(dest="leads_command", required=True)
    reindex = leads_commands.add_parser(
        "reindex", help="rewrite the index keys (search keys included) of leads stored before they changed"
    )
    _add_target(reindex)
    reindex.set_defaults(run=cmd_leads_reindex)


def _add_outbox(commands: SubCommands) -> None:
    outbox = commands.add_parser("outbox", help="lead events recorded but not yet accepted by the bus")
    outbox_commands = outbox.add_subparsers(dest="outbox_command", required=True)
    send = outbox_commands.add_parser("send", help="put every pending event on the bus")
    _add_target(send)
    send.set_defaults(run=cmd_outbox_send)


def _add_import(commands: SubCommands) -> None:
    importing = commands.add_parser(
        "import", help="import agencies, leads or suppression list entries from a CSV file"
    )
    import_kinds = importing.add_subparsers(dest="kind", required=True)
    for kind, text in (
        ("vendors", "agencies (vendors) and their prices"),
        ("leads", "leads, as POST /leads takes them"),
        ("suppressions", "emails and phones to the suppression list (columns email, phone, reason)"),
    ):
        command = import_kinds.add_parser(kind, help=f"import {text}")
        command.add_argument("file", help="CSV file, UTF-8, with a header row")
        command.add_argument("--dry-run", action="store_true", help="check every row, write nothing")
        command.add_argument("--errors", help="where to write the row errors (default FILE.errors.csv)")
        command.add_argument("--quiet", action="store_true", help="no progress bar")
        _add_target(command)
        if kind == "leads":
            command.add_argument("--vendor", help="the vendor of every row (else the vendor_code column)")
            command.add_argument("--workers", type=int, default=8, help="concurrent writes (default 8)")
        else:
            command.set_defaults(workers=1)
        command.set_defaults(run=cmd_import)


def _add_seed(commands: SubCommands) -> None:
    seeding = commands.add_parser("seed", help="write demo data (agencies, users, leads) at any size")
    seeding.add_argument("--leads", type=int, default=300, help="number of demo leads (default 300)")
    seeding.add_argument("--quiet", action="store_true", help="no progress bar")
    _add_target(seeding)
    seeding.set_defaults(run=cmd_seed)


def _add_bench(commands: SubCommands) -> None:
    bench = commands.add_parser("bench", help="measure the read path at fixed data sizes and print a table")
    bench.add_argument(
        "--sizes", default="1000,10000,100000", help="comma-separated lead counts (default 1000,10000,100000)"
    )
    bench.add_argument("--requests", type=int, default=50, help="requests per scenario (default 50)")
    burst = bench.add_argument_group(
        "burst", "with --burst N: post N new leads into a fresh crm serve and report the stats path"
    )
    burst.add_argument("--burst", type=_positive, metavar="N", help="leads to post (instead of the reads)")
    burst.add_argument("--clients", type=_positive, default=8, help="concurrent vendor clients (default 8)")
    burst.add_argument(
        "--out", default="test-artifacts/burst", help="its output and report (default test-artifacts/burst)"
    )
    burst.add_argument(
        "--serve-args", default="", help='more crm serve arguments, e.g. --serve-args="--concurrency 4"'
    )
    cold = bench.add_argument_group(
        "cold start",
        "with --cold-start: each function's import and first event in the sam build artifact, "
        "against the import of boto3 + Powertools' Logger + pydantic",
    )
    cold.add_argument("--cold-start", action="store_true", help="measure cold starts (instead of the reads)")
    cold.add_argument(
        "--build-dir", help="a sam build output (default .aws-sam/build when fresh, else a new sam build)"
    )
    cold.add_argument("--repeat", type=_positive, default=15, help="rounds, medians reported (default 15)")
    forecast = bench.add_argument_group(
        "forecast",
        "with --forecast: the revenue forecast's errors on held-out weeks against the straight line's, "
        "over the demo seed's and synthetic daily revenue (with --live, a stack's day buckets instead)",
    )
    forecast.add_argument(
        "--forecast", action="store_true", help="backtest the forecast (instead of the reads)"
    )
    forecast.add_argument(
        "--live",
        action="store_true",
        help="backtest the stack's buckets (the running crm serve, or --stack/--aws-port)",
    )
    _add_target(bench)
    bench.set_defaults(run=cmd_bench)


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {value}")
    return number


def _token_ttl(value: str) -> int:
    """A lifetime `crm token` and `crm event` may sign a vendor credential for (the server refuses
    a longer one)."""
    try:
        seconds = _positive(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {value}") from None
    if seconds > VENDOR_TOKEN_MAX_SECONDS:
        raise argparse.ArgumentTypeError(
            f"at most {VENDOR_TOKEN_MAX_SECONDS} seconds (365 days), the longest lifetime of a vendor "
            f"credential, got {value}"
        )
    return seconds


def _positive_seconds(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number of seconds, got {value}") from None
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"expected a positive number of seconds, got {value}")
    return seconds


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args))
    except StackUnavailable as problem:
        words = [
            getattr(args, name, None)
            for name in ("command", "stats_command", "leads_command", "outbox_command", "kind")
        ]
        print(f"crm {' '.join(word for word in words if word)}: {problem}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
