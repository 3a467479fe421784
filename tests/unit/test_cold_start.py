"""A function's cold start imports only its entry point; the rest comes with the first event, and
a request never imports what only some calls need, nor the OpenAPI schema (each checked in a
fresh interpreter). `crm bench --cold-start` measures what this keeps (its probe is run here
once, against the sources instead of a sam build, without looking at the times)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from crm import bench_cold_start
from crm.stack import local_template

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = local_template()
HANDLERS = sorted(properties["Handler"] for properties in TEMPLATE.functions().values())

BUILT_BY_THE_FIRST_EVENT = {
    "aws_lambda_powertools.event_handler": "the API resolver, its routes and their validation",
    "aws_lambda_powertools.utilities.batch": "the stats consumer's batch processing",
    "pydantic.main": "Settings and the models",
    "boto3": "the tables and the bus",
    "jwt": "authentication",
}
ONLY_SOME_CALLS_NEED = {
    "redis": "only with REDIS_URL",
    "phonenumbers": "only when a lead is posted",
    "email_validator": "only when a lead is posted",
    "aws_xray_sdk": "never: traces come from Lambda's active tracing",
    "aws_lambda_powertools.utilities.idempotency": "only with an Idempotency-Key",
    "aws_lambda_powertools.utilities.parameters": "only with JWT_SECRET_ARN",
    "aws_lambda_powertools.event_handler.openapi.models": "only to build the OpenAPI document",
    "aws_lambda_powertools.event_handler.openapi.swagger_ui": "only to serve /docs",
}
FIRST_EVENT = """
import json, sys, types
module_name, _, attribute = sys.argv[1].rpartition(".")
watched = json.loads(sys.argv[3])
module = __import__(module_name, fromlist=[attribute])
at_import = sorted(name for name in watched if name in sys.modules)
context = types.SimpleNamespace(
    function_name="f", memory_limit_in_mb=512, aws_request_id="r",
    invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:f",
    get_remaining_time_in_millis=lambda: 9000,
)
event = json.loads(sys.argv[2])
answer = None if event is None else getattr(module, attribute)(event, context)
after = sorted(name for name in watched if name in sys.modules)
print(json.dumps({"at_import": at_import, "after_first_event": after, "answer": answer}))
"""


def function_of(handler: str) -> str:
    return next(name for name, props in TEMPLATE.functions().items() if props["Handler"] == handler)


def first_event(handler: str) -> dict[str, object]:
    function = function_of(handler)
    # None for a function whose every run reads a table (the outbox publisher): import only
    event = bench_cold_start.first_event(TEMPLATE, function)
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            FIRST_EVENT,
            handler,
            json.dumps(event),
            json.dumps(sorted({*BUILT_BY_THE_FIRST_EVENT, *ONLY_SOME_CALLS_NEED})),
        ],
        env={**os.environ, "POWERTOOLS_LOG_LEVEL": "ERROR"},
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    result: dict[str, object] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


@pytest.mark.parametrize("handler", HANDLERS)
def test_handler_import_leaves_the_functions_code_to_its_first_event(handler: str) -> None:
    # Given / When
    result = first_event(handler)
    # Then
    assert result["at_import"] == [], "imported by the cold start"
    answer = result["answer"]
    if bench_cold_start.first_event(TEMPLATE, function_of(handler)) is None:
        assert answer is None
        return
    assert isinstance(answer, dict)
    assert answer.get("statusCode") == 401 or answer.get("batchItemFailures") == [], answer


@pytest.mark.parametrize("handler", HANDLERS)
def test_first_event_imports_only_what_every_call_needs(handler: str) -> None:
    # Given / When
    result = first_event(handler)
    # Then
    after = result["after_first_event"]
    assert isinstance(after, list)
    assert [name for name in after if name in ONLY_SOME_CALLS_NEED] == []


def test_cold_start_bench_probes_every_function_and_the_baseline(tmp_path: Path) -> None:
    # Given a stand-in for a sam build: the sources as every function, the virtualenv as the layer
    for function in TEMPLATE.functions():
        (tmp_path / function).symlink_to(PROJECT_ROOT / "src")
    (tmp_path / "SharedLayer").mkdir()
    (tmp_path / "SharedLayer" / "python").symlink_to(sysconfig.get_paths()["purelib"])
    # When
    results = bench_cold_start.measure(tmp_path, TEMPLATE, repeat=1)
    # Then
    assert [result.label for result in results] == [
        "baseline: boto3 + Powertools Logger + pydantic",
        *TEMPLATE.functions(),
    ]
    for result in results[1:]:
        has_first_event = bench_cold_start.first_event(TEMPLATE, result.label) is not None
        assert (result.first_event_ms is not None) == has_first_event, result.label
    assert all(result.ratio > 0 for result in results)
