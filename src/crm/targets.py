"""Which stack an operator command (`crm stats rebuild`, `crm outbox send`, `crm import`,
`crm seed`) works on, set up in this process the way the functions are configured there:

1. `--stack NAME`: a deployed stack; the table, bus and secret names come from its CloudFormation
   outputs, the other settings from its parameters (AWS credentials and region as boto3 finds them).
2. `--aws-port PORT`: the local stack of the `crm serve` whose AWS endpoint is on that port.
3. `LEADS_TABLE` set: the environment as it is (the functions' variables, set by hand).
4. Otherwise the local stack of the `crm serve` that recorded itself when it started (the file
   `record_path` names), else the one on the default port, 8000.

Whatever the choice, nothing answering is a `StackUnavailable` with a one-line reason, before any
function code runs.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, MutableMapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from crm.stack import DEFAULT_AWS_PORT, function_environment, local_template
from crm.template import PROJECT_ROOT, Template

# A local endpoint answers at once or not at all; one attempt, no waiting on retries.
PROBE_CONFIG = Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 1})
# Variables a deployed function has but an operator's process must not take from the stack: the
# cache sits in the stack's VPC (the stats reads it holds expire by STATS_FRESHNESS_SECONDS).
NOT_FROM_THE_STACK = ("REDIS_URL",)


class StackUnavailable(Exception):
    """No stack to work on: nothing answers, or the stack named does not exist."""


@dataclass(frozen=True)
class ServeRecord:
    """What a running `crm serve` records for the operator commands to find it."""

    pid: int
    aws_endpoint: str
    stage: str
    redis_url: str
    api_url: str


def record_path(environ: Mapping[str, str] = os.environ) -> Path:
    """$XDG_RUNTIME_DIR/crm/serve.json (per user, gone at logout), else .crm/serve.json in the
    project."""
    runtime = environ.get("XDG_RUNTIME_DIR")
    return (Path(runtime) / "crm" if runtime else PROJECT_ROOT / ".crm") / "serve.json"


def write_record(record: ServeRecord, environ: Mapping[str, str] = os.environ) -> Path | None:
    """Records `record` and returns where, or None when it cannot (the stack runs all the same)."""
    path = record_path(environ)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch(mode=0o600)  # the Redis URL may hold a password
        path.write_text(json.dumps(asdict(record)), encoding="utf-8")
    except OSError:
        return None
    return path


def remove_record(pid: int, environ: Mapping[str, str] = os.environ) -> None:
    """Removes the record if it is still this process's (a later `crm serve` may have replaced it)."""
    record = read_record(environ)
    if record is not None and record.pid == pid:
        record_path(environ).unlink(missing_ok=True)


def read_record(environ: Mapping[str, str] = os.environ) -> ServeRecord | None:
    """The recorded `crm serve`, if the file is there and its process still runs."""
    try:
        record = ServeRecord(**json.loads(record_path(environ).read_text(encoding="utf-8")))
    except (OSError, ValueError, TypeError):
        return None
    try:
        os.kill(record.pid, 0)
    except ProcessLookupError:
        return None  # stopped without removing it (killed)
    except PermissionError:
        pass  # another user's process: it runs
    return record


def use_stack(
    stack_name: str | None = None,
    aws_port: int | None = None,
    environ: MutableMapping[str, str] | None = None,
) -> str:
    """Configures `environ` (this process's environment) for the chosen stack and says which."""
    target = os.environ if environ is None else environ
    if stack_name:
        target.update(deployed_environment(stack_name, target))
        return f"stack {stack_name}"
    if aws_port is None and target.get("LEADS_TABLE"):
        return "configured environment"
    record = read_record(target)
    if aws_port is not None and record is not None and urlsplit(record.aws_endpoint).port != aws_port:
        record = None  # another server than the one named
    endpoint = record.aws_endpoint if record else f"http://127.0.0.1:{aws_port or DEFAULT_AWS_PORT}"
    settings = dict(target)
    if record:
        settings.setdefault("STAGE", record.stage)
        settings["REDIS_URL"] = settings.get("REDIS_URL") or record.redis_url
    local = function_environment(local_template(settings), endpoint, settings)
    check_local_stack(endpoint, local["LEADS_TABLE"])
    target.update(local)
    return f"local stack at {endpoint}"


def check_local_stack(endpoint: str, leads_table: str) -> None:
    client = boto3.client(
        "dynamodb",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="local",
        aws_secret_access_key="local",  # noqa: S106  # nosec B106  # moto accepts any
        config=PROBE_CONFIG,
    )
    hint = "start one with `make run` (crm serve), or name one with --aws-port PORT or --stack NAME"
    try:
        client.describe_table(TableName=leads_table)
    except ClientError as exc:
        if exc.response["Error"]["Code"] == "ResourceNotFoundException":
            raise StackUnavailable(
                f"the local AWS endpoint {endpoint} has no table {leads_table}; {hint}"
            ) from None
        raise StackUnavailable(f"the local AWS endpoint {endpoint} refused: {exc}") from None
    except BotoCoreError:
        raise StackUnavailable(f"no local stack answers at {endpoint}; {hint}") from None


def deployed_environment(stack_name: str, environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """The functions' variables for the deployed stack `stack_name`: the template's, resolved with
    the stack's parameters, and every table, bus and secret name taken from its outputs."""
    stack = describe_stack(stack_name)
    template = Template.load()
    specs = template.raw.get("Parameters", {})
    # A NoEcho parameter reads back as "****": those (sam local's) keep their empty defaults.
    parameters = {
        item["ParameterKey"]: item.get("ParameterValue", "")
        for item in stack.get("Parameters", [])
        if item["ParameterKey"] in specs and not specs[item["ParameterKey"]].get("NoEcho")
    }
    template = Template.load(parameters)
    outputs = {item["OutputKey"]: item["OutputValue"] for item in stack.get("Outputs", [])}
    env = {
        name: value
        for name, value in template.environment().items()
        if value and name not in NOT_FROM_THE_STACK and name not in environ
    }
    for variable, output in template.outputs_of_variables().items():
        if output not in outputs:
            raise StackUnavailable(
                f"stack {stack_name} ({stack.get('StackStatus', 'no status')}) has no output {output}: "
                "deploy this version of template.yaml (make deploy)"
            )
        env[variable] = outputs[output]
    env.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    env.setdefault("POWERTOOLS_TRACE_DISABLED", "true")
    return env


def describe_stack(stack_name: str) -> dict[str, Any]:
    session = boto3.session.Session()
    region = session.region_name or "no region set"
    try:
        cloudformation: Any = session.client("cloudformation", config=PROBE_CONFIG)
        stacks: list[dict[str, Any]] = cloudformation.describe_stacks(StackName=stack_name)["Stacks"]
    except ClientError as exc:
        message = exc.response["Error"].get("Message", str(exc))
        raise StackUnavailable(f"stack {stack_name} ({region}): {message}") from None
    except BotoCoreError as exc:
        raise StackUnavailable(
            f"cannot read stack {stack_name} from CloudFormation ({region}): {exc}"
        ) from None
    if not stacks:
        raise StackUnavailable(f"stack {stack_name} ({region}) does not exist")
    return stacks[0]
