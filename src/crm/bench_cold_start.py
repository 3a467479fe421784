"""`crm bench --cold-start`: what each function's cold start costs, in the artifact `sam build` makes.

Each function is run as Lambda runs it: a fresh, bare interpreter (`python -I -S`) with only the
function's build directory and the built layer on `sys.path`. The probe times the import of the
handler's module (Lambda's init phase), then its first event, in the same process: for an API
function an unauthenticated GET of its first GET route (the resolver, the routes and the request
machinery are built, and the answer is a 401 that touches no table), for a queue consumer an
empty batch. Beside them, in the same rounds, the same interpreter times the import of the
baseline: boto3, Powertools' Logger and pydantic, the least any of these functions imports.

Every measurement is repeated (`--repeat`, rounds interleaved so that a busy machine slows them
alike) and the table gives medians: each handler's import over the baseline's import is its
ratio, which must stay at most `RATIO_LIMIT` (the command fails above it).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess  # nosec B404  # runs this interpreter and sam with fixed arguments
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from crm.stack import function_environment, local_template
from crm.template import Template

PROJECT_ROOT = Path(__file__).resolve().parents[2]
SAM_BUILD = PROJECT_ROOT / ".aws-sam" / "build"
BASELINE = "import boto3; from aws_lambda_powertools import Logger; import pydantic"
RATIO_LIMIT = 1.3
UNREACHABLE_ENDPOINT = "http://127.0.0.1:9"  # the first events touch no AWS service

# argv: function dir, layer dir, module, handler attribute ("" = import only), event JSON ("" = none)
PROBE = """
import sys, time
function_dir, layer_dir, module_name, attribute, event_json = sys.argv[1:6]
sys.path[:0] = [function_dir, layer_dir]
started = time.perf_counter()
if module_name == "-":
    exec(attribute)
    print(time.perf_counter() - started, 0.0)
    raise SystemExit
import importlib, json, types
handler = getattr(importlib.import_module(module_name), attribute)
imported = time.perf_counter()
answer, first_event = None, 0.0
if event_json:
    context = types.SimpleNamespace(
        function_name="f", memory_limit_in_mb=512, aws_request_id="r",
        invoked_function_arn="arn:aws:lambda:us-east-1:123456789012:function:f",
        get_remaining_time_in_millis=lambda: 9000,
    )
    answer = handler(json.loads(event_json), context)
    first_event = time.perf_counter() - imported
print(imported - started, first_event)
print(json.dumps(answer))
"""
# What the first events must get: no answer a function would only give when broken.
EXPECTED_ANSWERS: tuple[dict[str, Any], ...] = ({"statusCode": 401}, {"batchItemFailures": []})


@dataclass(frozen=True)
class Probe:
    label: str
    function_dir: str  # a build directory name (the baseline uses the first function's)
    module: str  # "-" for the baseline
    attribute: str  # the handler, or the baseline's statement
    event: dict[str, Any] | None = None


@dataclass(frozen=True)
class ColdStart:
    label: str
    import_ms: float
    first_event_ms: float | None
    ratio: float


def fresh_build() -> Path | None:
    """.aws-sam/build when it is newer than the template and every source file, else None."""
    built = SAM_BUILD / "template.yaml"
    if not built.is_file():
        return None
    sources = [PROJECT_ROOT / "template.yaml", *(PROJECT_ROOT / "src").rglob("*.py")]
    sources += (PROJECT_ROOT / "src").rglob("requirements.txt")
    newest = max(path.stat().st_mtime for path in sources)
    return SAM_BUILD if built.stat().st_mtime >= newest else None


def sam_build(target: Path) -> Path:
    """`sam build` of the template into `target` (as `make build` does, without a container)."""
    subprocess.run(  # nosec B603  # sam beside this interpreter, fixed arguments
        [
            str(Path(sys.executable).with_name("sam")),
            "build",
            "--build-dir",
            str(target),
            "--template-file",
            str(PROJECT_ROOT / "template.yaml"),
        ],
        cwd=PROJECT_ROOT,
        env={**os.environ, "SAM_CLI_TELEMETRY": "0"},
        check=True,
        capture_output=True,
        timeout=900,
    )
    return target


def first_event(template: Template, logical_id: str) -> dict[str, Any] | None:
    """The event of a first invocation that needs no table: an unauthenticated GET for an API
    function, an empty batch for a queue consumer; None for another kind of function."""
    gets = [r for r in template.routes() if r.function == logical_id and r.method == "GET"]
    if gets:
        path = gets[0].path
        return {
            "resource": path,
            "path": path.replace("{", "").replace("}", ""),
            "httpMethod": "GET",
            "headers": {"Accept": "application/json"},
            "multiValueHeaders": {"Accept": ["application/json"]},
            "queryStringParameters": None,
            "multiValueQueryStringParameters": None,
            "pathParameters": None,
            "stageVariables": None,
            "requestContext": {"stage": "local", "requestId": "cold-start", "httpMethod": "GET"},
            "body": None,
            "isBase64Encoded": False,
        }
    events = template.functions()[logical_id].get("Events", {}).values()
    if any(event.get("Type") == "SQS" for event in events):
        return {"Records": []}
    return None


def probes(template: Template) -> list[Probe]:
    functions = template.functions()
    first = next(iter(functions))
    found = [Probe("baseline: boto3 + Powertools Logger + pydantic", first, "-", BASELINE)]
    for logical_id, properties in functions.items():
        module, _, attribute = properties["Handler"].rpartition(".")
        found.append(Probe(logical_id, logical_id, module, attribute, first_event(template, logical_id)))
    return found


def _run(build: Path, probe: Probe, env: dict[str, str]) -> tuple[float, float]:
    event = json.dumps(probe.event) if probe.event is not None else ""
    done = subprocess.run(  # nosec B603  # this interpreter, fixed arguments
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            PROBE,
            str(build / probe.function_dir),
            str(build / "SharedLayer" / "python"),
            probe.module,
            probe.attribute,
            event,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{probe.label}: {done.stderr.strip().splitlines()[-1:]}")
    times, _, answer = done.stdout.partition("\n")
    if probe.event is not None and not _expected(json.loads(answer)):
        raise RuntimeError(f"{probe.label}: unexpected answer to its first event: {answer.strip()}")
    imported, first = times.split()
    return float(imported) * 1000, float(first) * 1000


def _expected(answer: Any) -> bool:
    return isinstance(answer, dict) and any(
        all(answer.get(key) == value for key, value in expected.items()) for expected in EXPECTED_ANSWERS
    )


def measure(build: Path, template: Template, repeat: int) -> list[ColdStart]:
    """The median import (and first event) of the baseline and of each function, over `repeat`
    interleaved rounds; the baseline first."""
    env = function_environment(template, UNREACHABLE_ENDPOINT, os.environ)
    env["POWERTOOLS_LOG_LEVEL"] = "ERROR"  # a 401 logs nothing worth reading here
    found = probes(template)
    samples: dict[str, list[tuple[float, float]]] = {probe.label: [] for probe in found}
    for _ in range(repeat):
        for probe in found:
            samples[probe.label].append(_run(build, probe, env))
    baseline = statistics.median(imported for imported, _ in samples[found[0].label])
    results = []
    for probe in found:
        imported = statistics.median(value for value, _ in samples[probe.label])
        first = statistics.median(value for _, value in samples[probe.label])
        results.append(
            ColdStart(probe.label, imported, first if probe.event is not None else None, imported / baseline)
        )
    return results


def render(build: Path, results: list[ColdStart]) -> str:
    lines = [
        f"Cold start in the built artifact ({build}), medians; limit: import ≤ {RATIO_LIMIT}x the baseline",
        "",
        "| function | import ms | import ÷ baseline | first event ms | import + first event ms |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for result in results:
        first = "—" if result.first_event_ms is None else f"{result.first_event_ms:.0f}"
        total = "—" if result.first_event_ms is None else f"{result.import_ms + result.first_event_ms:.0f}"
        lines.append(f"| {result.label} | {result.import_ms:.0f} | {result.ratio:.2f} | {first} | {total} |")
    return "\n".join(lines)


def main(build_dir: str | None, repeat: int) -> int:
    template = local_template()
    with tempfile.TemporaryDirectory(prefix="crm-cold-start-") as scratch:
        build = Path(build_dir) if build_dir else fresh_build() or sam_build(Path(scratch) / "build")
        results = measure(build, template, repeat)
    print(render(build, results))
    over = [result.label for result in results[1:] if result.ratio > RATIO_LIMIT]
    if over:
        print(f"over {RATIO_LIMIT}x the baseline: {', '.join(over)}", file=sys.stderr)
    return 1 if over else 0
