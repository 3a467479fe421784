"""The SAM application: the template validates and lints, `sam build` succeeds without a
container, and each built function, imported with only its build artifact and the built layer
on `sys.path`, answers an event from events/ (the API functions, the stats consumer and the
outbox publisher)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest
from packaging.utils import canonicalize_name

from shared import dependencies
from shared.dates import iso_timestamp
from shared.dynamo import to_item
from shared.outbox import OutboxEvent
from tests.helpers import base_env, make_token

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
    target = tmp_path_factory.mktemp("sam-build")
    subprocess.run(
        [
            str(SAM),
            "build",
            "--build-dir",
            str(target),
            "--template-file",
            str(PROJECT_ROOT / "template.yaml"),
        ],
        cwd=PROJECT_ROOT,
        env=SAM_ENV,
        check=True,
        capture_output=True,
        timeout=600,
    )
    return target


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
        f"Bearer {make_token()}"
    )
    event_file = tmp_path / "event.json"
    event_file.write_text(json.dumps(event))
    env = {**base_env(), "AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL"], "PATH": os.environ["PATH"]}
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


def test_built_stats_consumer_applies_a_batch_of_lead_events_once(
    build_dir: Path, aws: dict[str, str]
) -> None:
    env = {**base_env(), "PATH": os.environ["PATH"], "AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL"]}
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
    env = {**base_env(), "PATH": os.environ["PATH"], "AWS_ENDPOINT_URL": os.environ["AWS_ENDPOINT_URL"]}
    # When the schedule invokes the built function
    result = invoke_built(
        build_dir,
        "OutboxPublisherFunction",
        "leads.outbox_publisher.lambda_handler",
        EVENTS / "outbox-schedule.json",
        env,
    )
    # Then it sent the event, from the artifact's code and the layer's
    assert result["response"] == {"sent": 1, "failed": 0, "waiting": 0, "oldest_pending_seconds": 0}
    assert list(outbox.pending()) == []
    assert result["origins"]["leads"].startswith(str(build_dir / "OutboxPublisherFunction"))
