"""`crm serve`: the whole API on this machine until interrupted. The local AWS endpoint runs in a
child process (`crm.stack.MotoServer`), and so does Redis when REDIS_URL is unset
(`crm.stack.LocalRedis`); each function runs in execution environments of its own, worker
processes (`crm.functions`); one queue poller per event source mapping (`crm.bus`), one driver
per schedule (`crm.schedule`) and the gateway (`crm.gateway`) run in this process. A write is
answered as soon as its function answers, as in AWS: the event bus delivers to the stats consumer
beside it."""

from __future__ import annotations

import argparse
import logging
import os
import signal
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from types import FrameType
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from crm.bus import QueuePoller
from crm.functions import FunctionRegistry, default_concurrency
from crm.gateway import ApiGateway, LocalPage
from crm.http_server import LocalHttpServer
from crm.schedule import ScheduleDriver
from crm.stack import (
    DEFAULT_LOCAL_ORIGINS,
    LocalRedis,
    LocalUserPool,
    MotoServer,
    StaffAccount,
    add_staff_accounts,
    function_environment,
    local_template,
    provision,
    provision_user_pool,
    sign_in,
)
from crm.targets import ServeRecord, remove_record, write_record
from crm.template import Template


@dataclass
class RunningStack:
    """What `crm serve` has started, for `stop` to close in order."""

    moto: MotoServer
    redis: LocalRedis | None = None
    functions: FunctionRegistry | None = None
    pollers: list[QueuePoller] = field(default_factory=list)
    schedules: list[ScheduleDriver] = field(default_factory=list)
    server: LocalHttpServer | None = None
    dashboard: ThreadingHTTPServer | None = None
    user_pool: LocalUserPool | None = None

    def stop(self) -> None:
        if self.server is not None:
            self.server.server_close()
        if self.dashboard is not None:
            self.dashboard.shutdown()
            self.dashboard.server_close()
        for poller in self.pollers:
            poller.stop()
        for driver in self.schedules:
            driver.stop()
        if self.functions is not None:
            self.functions.stop()
        if self.redis is not None:
            self.redis.stop()
        self.moto.stop()


def cmd_serve(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    logging.basicConfig(level=logging.INFO, format="%(name)s: %(message)s")
    logging.getLogger("botocore").setLevel(logging.WARNING)
    if args.dashboard:
        _allow_dashboard_origin(f"http://{args.host}:{args.dashboard_port}")
    template = local_template()
    moto = MotoServer(host="127.0.0.1", port=args.aws_port)
    stack = RunningStack(moto)
    try:
        if not os.environ.get("REDIS_URL"):
            stack.redis = LocalRedis()
            stack.redis.start()
            os.environ["REDIS_URL"] = stack.redis.url
        # Function code reads its configuration when first imported (a cold start), so the
        # environment is complete before anything from src/shared is imported.
        os.environ.update(function_environment(template, moto.endpoint, os.environ))
        moto.start()
        seeded = _start(args, template, stack)
        assert stack.server is not None
        signal.signal(signal.SIGTERM, _stop_on_sigterm)
        _print_banner(args, stack, seeded, time.perf_counter() - started)
        if not args.no_record:  # the operator commands find this stack by itself (crm.targets)
            write_record(
                ServeRecord(
                    pid=os.getpid(),
                    aws_endpoint=moto.endpoint,
                    stage=str(template.parameters["Stage"]),
                    redis_url=os.environ["REDIS_URL"],
                    api_url=f"http://{args.host}:{args.port}",
                )
            )
        stack.server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        remove_record(os.getpid())
        stack.stop()
    return 0


def _allow_dashboard_origin(origin: str) -> None:
    # The dashboard is served on an origin of its own; the API must allow it, like production.
    origins = os.environ.get("CORS_ALLOW_ORIGINS", DEFAULT_LOCAL_ORIGINS).split(",")
    if origin not in origins:
        os.environ["CORS_ALLOW_ORIGINS"] = ",".join([*origins, origin])


def _start(args: argparse.Namespace, template: Template, stack: RunningStack) -> dict[str, Any] | None:
    """Provisions and seeds the local AWS endpoint, then starts the functions, the queue pollers,
    the schedules, the gateway's HTTP server (not yet serving) and the dashboard, recording each
    in `stack`. Returns what was seeded, if anything."""
    import boto3

    queues = provision(template, stack.moto.endpoint)
    # The user pool is created while the demo data is written: the local endpoint's first Cognito
    # request loads its Cognito service (about 0.3 s), time the seeding already takes.
    with ThreadPoolExecutor(max_workers=1) as background:
        pool = background.submit(staff_pool, template, stack.moto.endpoint, not args.no_seed)
        seeded = None
        if not args.no_seed:
            from crm.seed import SeedTables, seed_at_scale

            # Demo leads are written directly, not posted: their stats come from a rebuild.
            seeded = seed_at_scale(SeedTables.configured(), args.seed_leads)
        stack.user_pool, subs = pool.result()
    # The functions start below, with the pool they verify tokens of and manage accounts in.
    os.environ.update(stack.user_pool.environment())
    if subs:
        from crm.seed import SeedTables, link_pool_users

        link_pool_users(SeedTables.configured().users, subs)
    functions = FunctionRegistry(template, os.environ, args.concurrency or default_concurrency())
    stack.functions = functions
    sqs = boto3.client("sqs")
    for mapping in template.event_source_mappings():
        poller = QueuePoller(mapping, queues[mapping.queue], functions[mapping.function], sqs)
        poller.start()
        stack.pollers.append(poller)
    for schedule in template.schedules():
        if schedule.enabled:
            driver = ScheduleDriver(schedule, functions[schedule.function], args.schedule_interval)
            driver.start()
            stack.schedules.append(driver)
    gateway = ApiGateway(
        routes=template.routes(),
        functions=functions,
        gateway_responses=template.gateway_responses(),
        stage=str(template.parameters["Stage"]),
        local_pages=_local_pages(template),
    )
    stack.server = LocalHttpServer((args.host, args.port), gateway, log_requests=not args.quiet)
    if args.dashboard:
        from crm.dashboard import DashboardConfig, serve_dashboard

        config = DashboardConfig(
            api_url=f"http://{args.host}:{args.port}",
            cognito_endpoint=f"{stack.moto.endpoint}/",
            client_id=stack.user_pool.client_id,
        )
        stack.dashboard = serve_dashboard(args.host, args.dashboard_port, config)
    return seeded


def staff_pool(
    template: Template, endpoint: str, with_demo_staff: bool
) -> tuple[LocalUserPool, dict[str, str]]:
    """The template's user pool, with the demo staff in it when demo data is seeded. Returns the
    pool and demo user id -> the `sub` of its pool account."""
    pool = provision_user_pool(template, endpoint)
    if not with_demo_staff:
        return pool, {}
    from crm.seed import demo_staff

    staff = demo_staff()
    subs = add_staff_accounts(
        pool, [StaffAccount(user.email, password, user.role, user.user_id) for user, password in staff]
    )
    return pool, {user.user_id: subs[user.email] for user, _ in staff}


def _local_pages(template: Template) -> dict[str, LocalPage]:
    """The pages the runner serves itself: the OpenAPI document and Swagger UI's files."""
    from crm.openapi import DOCS_HEADERS, docs_files, document_json

    pages: dict[str, LocalPage] = {
        "/openapi.json": (200, {"Content-Type": "application/json"}, document_json(template).encode())
    }
    for path, (content_type, body) in docs_files().items():
        pages[path] = (200, {"Content-Type": content_type, **DOCS_HEADERS}, body)
    return pages


def _without_password(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    return urlunsplit(parts._replace(netloc=f"***@{parts.hostname}:{parts.port or 6379}"))


def _stop_on_sigterm(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


def _print_banner(
    args: argparse.Namespace, stack: RunningStack, seeded: dict[str, Any] | None, seconds: float
) -> None:
    base = f"http://{args.host}:{args.port}"
    lines = [
        f"Lead CRM API listening on {base} (ready in {seconds:.1f}s)",
        f"  local AWS endpoint (DynamoDB, EventBridge, SQS, Cognito): {stack.moto.endpoint}",
        f"  query cache: {_without_password(os.environ['REDIS_URL'])}"
        f"{' (a redis-server of its own)' if stack.redis else ''}",
        f"  functions: up to {args.concurrency or default_concurrency()} execution environments each",
        *(
            f"  scheduled: {driver.schedule.function} every {driver.period:g}s ({driver.schedule.expression}"
            f"{' in the template' if args.schedule_interval else ''})"
            for driver in stack.schedules
        ),
        f"  OpenAPI: {base}/openapi.json   Swagger UI: {base}/docs",
    ]
    if stack.user_pool is not None:
        lines.append(
            f"  staff user pool: {stack.user_pool.pool_id}   dashboard client: {stack.user_pool.client_id}"
        )
    if seeded:
        lines.append(
            f"  demo data: {seeded['vendors']} vendors, {seeded['users']} users, {seeded['leads']} leads"
        )
    if args.dashboard:
        lines.append(
            f"  dashboard: http://{args.host}:{args.dashboard_port}/ (staff sign in with email and password)"
        )
    if seeded and stack.user_pool is not None:
        from crm.seed import DEMO_PASSWORDS

        # The demo executive signs in to the pool, as the dashboard does: its ID token (1 h).
        email, password = "demo-admin@crm.example.com", DEMO_PASSWORDS["demo-admin"]
        token = sign_in(stack.user_pool, email, password)
        lines += [
            f"  staff sign in: {email} / {password} (README: Staff sign-in)",
            "",
            "Admin token (the demo executive's ID token, 1 h; `crm token demo-admin` for a new one):",
            f"  export TOKEN={token}",
            "Try:",
        ]
    else:
        lines += ["", "Try (with a token from `crm token <user id>`):"]
    lines += [f'  curl -s -H "Authorization: Bearer $TOKEN" "{base}/leads?limit=5"', ""]
    print("\n".join(lines), flush=True)
