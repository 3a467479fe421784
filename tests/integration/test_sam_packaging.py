"""The SAM application: the template validates and lints, `sam build` succeeds without a
container, and each built function, imported with only its build artifact and the built layer
on `sys.path`, answers an event from events/ (the API functions, the stats consumer, the
outbox publisher and the postback delivery function)."""

from __future__ import annotations

import base64
import importlib.metadata
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
import redis
from packaging.utils import canonicalize_name
from standardwebhooks import Webhook

from crm.bench_cold_start import sam_build
from crm.seed import SeedTables, seed_demo_data
from crm.stack import LocalRedis
from shared import dependencies
from shared.cache import EPOCH_KEY
from shared.dates import iso_timestamp
from shared.dynamo import to_item
from shared.outbox import OutboxEvent
from tests.helpers import api_event, base_env, header, response_json, staff_token

pytestmark = pytest.mark.sam

PROJECT_ROOT = Path(__file__).resolve().parents[2]
EVENTS = PROJECT_ROOT / "events"
SAM = Path(sys.executable).with_name("sam")
SAM_ENV = {**os.environ, "SAM_CLI_TELEMETRY": "0"}

# Run in a bare interpreter: no site-packages, no project source; only the artifact and the layer.
INVOKE = """
import importlib, json, sys, types
function_dir, layer_dir, handler_path, event_path = sys.argv[1:5]
sys.path[:0] = [function_dir, layer_dir]
module_name, _, attribute = handler_path.rpartition(".")
handler = getattr(importlib.import_module(module_name), attribute)
packages = ("shared", module_name.split(".")[0])
origins = {name: getattr(sys.modules.get(name), "__file__", None) for name in packages}
context = types.SimpleNamespace(
    function_name="f", memory_limit_in_mb=512, aws_request_id="r",
    invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:f",
    get_remaining_time_in_millis=lambda: 9000,
)
with open(event_path) as handle:
    event = json.load(handle)
print(json.dumps({"response": handler(event, context), "origins": origins}))
"""


@pytest.fixture(scope="module")
def build_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return sam_build(tmp_path_factory.mktemp("sam-build"))


def invoke_built(
    build_dir: Path, function: str, handler: str, event: Path, env: dict[str, str]
) -> dict[str, Any]:
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            INVOKE,
            str(build_dir / function),
            str(build_dir / "SharedLayer" / "python"),
            handler,
            str(event),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    output: dict[str, Any] = json.loads(result.stdout.strip().splitlines()[-1])
    return output


def test_template_validates_with_lint() -> None:
    result = subprocess.run(
        [str(SAM), "validate", "--lint"],
        cwd=PROJECT_ROOT,
        env=SAM_ENV,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "is a valid SAM Template" in result.stdout


def test_each_function_artifact_holds_only_its_own_package(build_dir: Path) -> None:
    expected = {
        "LeadsFunction": {"leads"},
        "StatsFunction": {"stats"},
        "StatsConsumerFunction": {"stats"},
        "AgenciesFunction": {"agencies"},
        "ReportsFunction": {"reports"},
        "OutboxPublisherFunction": {"leads"},
    }
    for function, packages in expected.items():
        assert {path.name for path in (build_dir / function).iterdir()} == packages
    layer = build_dir / "SharedLayer" / "python"
    assert (layer / "shared" / "http.py").is_file()
    for dependency in ("aws_lambda_powertools", "pydantic", "jwt", "redis", "simplejson", "ulid", "boto3"):
        assert (layer / dependency).is_dir(), dependency


def test_built_layer_installs_exactly_the_lock(build_dir: Path) -> None:
    # Given the pins of requirements.lock (what pip-audit checks)
    pins = {}
    for line in (PROJECT_ROOT / "requirements.lock").read_text(encoding="utf-8").splitlines():
        requirement = line.split("#", 1)[0].strip()
        if requirement:
            name, _, version = requirement.partition("==")
            pins[canonicalize_name(name)] = version.strip()
    # When the built layer's installed distributions are read
    layer = build_dir / "SharedLayer" / "python"
    installed = {
        canonicalize_name(dist.metadata["Name"]): dist.version
        for dist in importlib.metadata.distributions(path=[str(layer)])
    }
    # Then they are the lock's pins, release for release: nothing more, nothing less
    assert installed == pins


def test_built_lead_function_answers_a_list_event_from_moto(
    build_dir: Path, aws: dict[str, str], tmp_path: Path
) -> None:
    # Given a user in the (moto) users table and the sample event carrying its token
    dependencies.users_table().put({"user_id": "demo-admin", "role": "admin", "status": "active"})
    event = json.loads((EVENTS / "leads-list.json").read_text())
    event["headers"]["Authorization"] = event["multiValueHeaders"]["Authorization"][0] = (
        f"Bearer {staff_token()}"
    )
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps(event))
    env = {
        **base_env(),
        "AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL"],
        "USER_POOL_JWKS_URL": os.environ["USER_POOL_JWKS_URL"],
        "PATH": os.environ["PATH"],
    }
    # When
    result = invoke_built(build_dir, "LeadsFunction", "leads.app.lambda_handler", event_file, env)
    # Then the artifact's own package and the layer's shared code served it
    assert result["response"]["statusCode"] == 200, result
    assert json.loads(result["response"]["body"])["pagination"]["count"] == 0
    assert result["origins"]["leads"].startswith(str(build_dir / "LeadsFunction"))
    assert result["origins"]["shared"].startswith(str(build_dir / "SharedLayer"))


@pytest.mark.parametrize(
    ("function", "handler", "event", "expected_status"),
    [
        ("LeadsFunction", "leads.app.lambda_handler", "leads-preflight.json", 204),
        ("LeadsFunction", "leads.app.lambda_handler", "leads-get.json", 401),
        ("StatsFunction", "stats.app.lambda_handler", "admin-preflight.json", 204),
        ("AgenciesFunction", "agencies.app.lambda_handler", "admin-preflight.json", 204),
        ("ReportsFunction", "reports.app.lambda_handler", "admin-preflight.json", 204),
    ],
)
def test_built_api_functions_answer_sample_events(
    build_dir: Path, function: str, handler: str, event: str, expected_status: int
) -> None:
    env = {
        **base_env(),
        "CORS_ALLOW_ORIGINS": "https://dashboard.example.com",
        "PATH": os.environ["PATH"],
        "AWS_ENDPOINT_URL": "http://127.0.0.1:9",
    }
    result = invoke_built(build_dir, function, handler, EVENTS / event, env)
    assert result["response"]["statusCode"] == expected_status
    headers = result["response"].get("multiValueHeaders") or {}
    assert headers.get("Access-Control-Allow-Origin") == ["https://dashboard.example.com"]
    assert headers.get("Vary") == ["Origin"]


def test_built_stats_consumer_applies_a_batch_of_lead_events_once(
    build_dir: Path, aws: dict[str, str]
) -> None:
    env = {
        **base_env(),
        "PATH": os.environ["PATH"],
        "AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL"],
        "USER_POOL_JWKS_URL": os.environ["USER_POOL_JWKS_URL"],
    }
    event = EVENTS / "stats-events-batch.json"
    states = boto3.client("dynamodb")
    state_table = base_env()["STATS_STATE_TABLE"]
    first = invoke_built(build_dir, "StatsConsumerFunction", "stats.consumer.lambda_handler", event, env)
    applied = states.get_item(TableName=state_table, Key={"lead_id": {"S": "01ARZ3NDEKTSV4RRFFQ69G5FAV"}})
    again = invoke_built(build_dir, "StatsConsumerFunction", "stats.consumer.lambda_handler", event, env)
    assert first["response"] == again["response"] == {"batchItemFailures": []}
    assert applied["Item"]["version"] == {"N": "1"}
    stats = states.scan(TableName=base_env()["STATS_TABLE"])["Items"]
    totals = [item for item in stats if item["pk"] == {"S": "all"}]
    assert [item["leads"] for item in totals] == [{"N": "1"}]


def test_built_postback_delivery_signs_and_sends_a_lead_accepted_postback(
    build_dir: Path, aws: dict[str, str]
) -> None:
    # Given V001's endpoint: a receiver on this machine, and its signing secret
    received: list[tuple[dict[str, str], str]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"])).decode()
            received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    receiver = HTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=receiver.serve_forever, daemon=True).start()
    secret = "whsec_" + base64.b64encode(b"k" * 32).decode()
    endpoint = {
        "vendor_code": "V001",
        "key": "endpoint",
        "url": f"http://127.0.0.1:{receiver.server_address[1]}/hook",
        "events": ["lead.accepted"],
        "secret": secret,
    }
    boto3.client("dynamodb").put_item(TableName=base_env()["POSTBACKS_TABLE"], Item=to_item(endpoint))
    env = {
        **base_env(),
        "PATH": os.environ["PATH"],
        "AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL"],
        "USER_POOL_JWKS_URL": os.environ["USER_POOL_JWKS_URL"],
        "POSTBACK_ALLOW_LOOPBACK": "true",
    }
    try:
        # When the built function gets the lead event from its queue
        result = invoke_built(
            build_dir,
            "PostbackDeliveryFunction",
            "agencies.postback_delivery.lambda_handler",
            EVENTS / "postbacks-batch.json",
            env,
        )
    finally:
        receiver.shutdown()
        receiver.server_close()
    # Then the receiver got one postback the standardwebhooks library verifies, sent by the
    # artifact's code with the layer's libraries
    assert result["response"] == {"batchItemFailures": []}
    ((headers, body),) = received
    verified = Webhook(secret).verify(body, headers)
    assert (verified["type"], verified["data"]["lead_id"]) == ("lead.accepted", "01ARZ3NDEKTSV4RRFFQ69G5FAV")
    assert result["origins"]["agencies"].startswith(str(build_dir / "PostbackDeliveryFunction"))


def run_built_outbox_publisher(build_dir: Path, **environment: str) -> dict[str, Any]:
    """The built outbox publisher's answer to the scheduled event, against the local endpoint."""
    env = {
        **base_env(),
        "PATH": os.environ["PATH"],
        "AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL"],
        "USER_POOL_JWKS_URL": os.environ["USER_POOL_JWKS_URL"],
        **environment,
    }
    return invoke_built(
        build_dir,
        "OutboxPublisherFunction",
        "leads.outbox_publisher.lambda_handler",
        EVENTS / "outbox-schedule.json",
        env,
    )


def test_built_outbox_publisher_sends_what_the_bus_refused_on_a_scheduled_event(
    build_dir: Path, aws: dict[str, str]
) -> None:
    # Given a lead event left in the outbox ten minutes ago (the bus refused it)
    outbox = dependencies.outbox()
    event = OutboxEvent.new("LeadCreated", {"lead_id": "L-1", "version": 1, "before": None, "after": None})
    created = iso_timestamp(datetime.now(UTC) - timedelta(minutes=10))
    boto3.client("dynamodb").put_item(
        TableName=base_env()["OUTBOX_TABLE"],
        Item=to_item({**event.to_item(), "created_at": created}),
    )
    # When the schedule invokes the built function
    result = run_built_outbox_publisher(build_dir)
    # Then it sent the event, from the artifact's code and the layer's
    assert result["response"] == {
        "cache_epoch_bumped": False,
        "sent": 1,
        "failed": 0,
        "waiting": 0,
        "oldest_pending_seconds": 0,
    }
    assert list(outbox.pending()) == []
    assert result["origins"]["leads"].startswith(str(build_dir / "OutboxPublisherFunction"))


# --- execution environments of the built Leads function ------------------------------------------

# One execution environment: a bare interpreter with only the artifact and the layer on sys.path,
# which imports the handler once and then answers each event (one JSON line on stdin) with one
# JSON line on its original stdout; the function's own output (its logs) goes to stderr.
ENVIRONMENT = """
import importlib, json, os, sys, types
function_dir, layer_dir, handler_path = sys.argv[1:4]
answers = os.fdopen(os.dup(1), "w")
os.dup2(2, 1)
sys.path[:0] = [function_dir, layer_dir]
module_name, _, attribute = handler_path.rpartition(".")
handler = getattr(importlib.import_module(module_name), attribute)
context = types.SimpleNamespace(
    function_name="f", memory_limit_in_mb=512, aws_request_id="r",
    invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:f",
    get_remaining_time_in_millis=lambda: 9000,
)
for line in sys.stdin:
    answers.write(json.dumps(handler(json.loads(line), context)) + "\\n")
    answers.flush()
"""


class BuiltEnvironment:
    """A long-lived execution environment of a built function: its module state (a process-wide
    cache, connections) lives from one invocation to the next, as in Lambda."""

    def __init__(self, build_dir: Path, function: str, handler: str, env: dict[str, str], log: Path) -> None:
        self.log = log
        with log.open("w") as output:
            self.process = subprocess.Popen(
                [
                    sys.executable,
                    "-I",
                    "-S",
                    "-c",
                    ENVIRONMENT,
                    str(build_dir / function),
                    str(build_dir / "SharedLayer" / "python"),
                    handler,
                ],
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=output,
                text=True,
            )

    def invoke(self, event: dict[str, Any]) -> dict[str, Any]:
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        self.process.stdin.write(json.dumps(event) + "\n")
        self.process.stdin.flush()
        line = self.process.stdout.readline()
        assert line, f"the environment exited: {self.log.read_text()[-3000:]}"
        answer: dict[str, Any] = json.loads(line)
        return answer

    def stop(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


@pytest.fixture
def leads_environments(
    build_dir: Path, aws: dict[str, str], tmp_path: Path
) -> Iterator[Callable[[str], tuple[BuiltEnvironment, BuiltEnvironment]]]:
    """Starts two environments of the built Leads function on a seeded stack, with the given
    REDIS_URL ("" = no cache), emptied first."""
    seed_demo_data(SeedTables.configured(), lead_count=3)
    started: list[BuiltEnvironment] = []

    def start(redis_url: str) -> tuple[BuiltEnvironment, BuiltEnvironment]:
        if redis_url:
            with redis.Redis.from_url(redis_url) as client:
                client.flushdb()  # the tests' own Redis: no entry of an earlier stack
        env = {
            **base_env(),
            "AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL"],
            "USER_POOL_JWKS_URL": os.environ["USER_POOL_JWKS_URL"],
            "PATH": os.environ["PATH"],
            "REDIS_URL": redis_url,
        }
        for name in ("a", "b"):
            started.append(
                BuiltEnvironment(build_dir, "LeadsFunction", "leads.app.lambda_handler", env, tmp_path / name)
            )
        return started[-2], started[-1]

    yield start
    for environment in started:
        environment.stop()


class LeadCalls:
    """Events of one lead's routes, as an admin."""

    def __init__(self, lead_id: str) -> None:
        self.token = staff_token("demo-admin")
        self.path = f"/leads/{lead_id}"
        self.route = {"resource": "/leads/{lead_id}", "path_parameters": {"lead_id": lead_id}}

    def get(self) -> dict[str, Any]:
        return api_event("GET", self.path, token=self.token, **self.route)  # type: ignore[arg-type]

    def patch(self, version: int, notes: str) -> dict[str, Any]:
        body = {"version": version, "notes": notes}
        return api_event("PATCH", self.path, token=self.token, body=body, **self.route)  # type: ignore[arg-type]


def a_lead(environment: BuiltEnvironment) -> LeadCalls:
    token = staff_token("demo-admin")
    listed = environment.invoke(api_event("GET", "/leads", token=token, query={"limit": "1"}))
    assert listed["statusCode"] == 200, listed
    return LeadCalls(response_json(listed)["data"][0]["lead_id"])


@pytest.mark.parametrize("cache", ["none", "redis"])
def test_two_environments_read_each_others_writes(
    cache: str,
    leads_environments: Callable[[str], tuple[BuiltEnvironment, BuiltEnvironment]],
    request: pytest.FixtureRequest,
) -> None:
    # Given two environments of the built Leads function, without a cache or sharing a Redis,
    # and a lead that A has read (twice: with Redis, the second read is served from the cache)
    redis_url = request.getfixturevalue("private_redis").url if cache == "redis" else ""
    a, b = leads_environments(redis_url)
    lead = a_lead(a)
    first = a.invoke(lead.get())
    again = a.invoke(lead.get())
    version = response_json(first)["version"]
    assert header(again, "X-Cache") == ("hit" if cache == "redis" else "miss")
    # When B changes the lead
    changed = b.invoke(lead.patch(version, "changed by B"))
    assert changed["statusCode"] == 200, changed
    # Then A reads B's version, and A's change made from that version is accepted
    seen = response_json(a.invoke(lead.get()))
    assert (seen["version"], seen["notes"]) == (version + 1, "changed by B")
    moved = a.invoke(lead.patch(seen["version"], "changed by A"))
    assert moved["statusCode"] == 200, moved
    assert response_json(b.invoke(lead.get()))["notes"] == "changed by A"


def writes_held(client: redis.Redis) -> set[str]:
    """Ids of the clients whose commands Redis is holding (CLIENT PAUSE ... WRITE)."""
    return {entry["id"] for entry in client.client_list() if "b" in entry["flags"]}


def cached_by_a(
    leads_environments: Callable[[str], tuple[BuiltEnvironment, BuiltEnvironment]], redis_url: str
) -> tuple[redis.Redis, BuiltEnvironment, BuiltEnvironment, LeadCalls, int]:
    """Two environments sharing the Redis at `redis_url` (and a client of it), and a lead A has
    cached, with its version."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    a, b = leads_environments(redis_url)
    lead = a_lead(a)
    version = response_json(a.invoke(lead.get()))["version"]
    assert header(a.invoke(lead.get()), "X-Cache") == "hit"
    return client, a, b, lead, version


def write_lost_to_a_long_pause(
    client: redis.Redis, b: BuiltEnvironment, lead: LeadCalls, version: int, notes: str
) -> None:
    """B changes the lead while Redis holds writes for longer than B tries its invalidation: B
    answers without it."""
    client.execute_command("CLIENT", "PAUSE", "60000", "WRITE")
    try:
        changed = b.invoke(lead.patch(version, notes))
    finally:
        client.execute_command("CLIENT", "UNPAUSE")
    assert changed["statusCode"] == 200, changed


def test_a_write_made_while_redis_holds_writes_is_read_by_another_environment_once_it_resumes(
    leads_environments: Callable[[str], tuple[BuiltEnvironment, BuiltEnvironment]], private_redis: LocalRedis
) -> None:
    # Given two environments sharing a Redis of this test's own, and a lead A has cached
    client, a, b, lead, version = cached_by_a(leads_environments, private_redis.url)
    b.invoke(lead.get())  # B is warm: connected to Redis
    # When Redis holds every write, B changes the lead, and Redis resumes once B's invalidation has
    # timed out and B is trying it again
    client.execute_command("CLIENT", "PAUSE", "60000", "WRITE")
    with ThreadPoolExecutor(1) as pool:
        try:
            changed = pool.submit(b.invoke, lead.patch(version, "written during the pause"))
            held: set[str] = set()
            deadline = time.monotonic() + 20
            while len(held) < 2 and not changed.done() and time.monotonic() < deadline:
                held |= writes_held(client)
                time.sleep(0.01)
        finally:
            client.execute_command("CLIENT", "UNPAUSE")
        answer = changed.result(timeout=30)
    # Then B's invalidation was held, lost once and delivered again before B answered
    assert len(held) >= 2, "B's invalidation was not tried again"
    assert answer["statusCode"] == 200, answer
    # And A's next read shows the write
    seen = response_json(a.invoke(lead.get()))
    assert (seen["version"], seen["notes"]) == (version + 1, "written during the pause")
    client.close()


def test_after_a_longer_outage_the_writer_bumps_the_epoch_before_anyone_reads_its_change(
    leads_environments: Callable[[str], tuple[BuiltEnvironment, BuiltEnvironment]], private_redis: LocalRedis
) -> None:
    # Given two environments sharing a Redis, and a lead A has cached
    client, a, b, lead, version = cached_by_a(leads_environments, private_redis.url)
    # When Redis holds writes for longer than B tries its invalidation, B answers without it
    write_lost_to_a_long_pause(client, b, lead, version, "first change")
    assert client.get(EPOCH_KEY) is None
    # And once Redis is back, B's next write pays the epoch it owes
    second = b.invoke(lead.patch(version + 1, "second change"))
    assert second["statusCode"] == 200, second
    # Then no entry from before the outage is read: A sees both changes
    assert client.get(EPOCH_KEY) == "1"
    seen = response_json(a.invoke(lead.get()))
    assert (seen["version"], seen["notes"]) == (version + 2, "second change")
    client.close()


def test_a_write_whose_invalidation_was_lost_is_read_once_the_publisher_runs_though_the_writer_never_does(
    build_dir: Path,
    leads_environments: Callable[[str], tuple[BuiltEnvironment, BuiltEnvironment]],
    private_redis: LocalRedis,
) -> None:
    # Given two environments sharing a Redis, and a lead A has cached
    client, a, b, lead, version = cached_by_a(leads_environments, private_redis.url)
    # When Redis holds writes for longer than B tries its invalidation, B answers without it
    write_lost_to_a_long_pause(client, b, lead, version, "written during the outage")
    # And B gets no further request (Lambda froze or retired it) while Redis is back
    b.stop()
    assert client.get(EPOCH_KEY) is None
    # When the schedule invokes the built outbox publisher once
    result = run_built_outbox_publisher(build_dir, REDIS_URL=private_redis.url)
    # Then it paid the epoch B owed, and A reads B's write
    assert result["response"]["cache_epoch_bumped"] is True, result
    assert client.get(EPOCH_KEY) == "1"
    seen = response_json(a.invoke(lead.get()))
    assert (seen["version"], seen["notes"]) == (version + 1, "written during the outage")
    client.close()
