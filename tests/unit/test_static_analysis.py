"""Static analysis: bandit over src/, checkov over template.yaml and pip-audit over
requirements.lock; no finding, and every suppression carries its reason.

checkov and pip-audit live in their own virtualenv, .venv-tools (`make tools`, a prerequisite of
`make test`). Without it these tests skip on a workstation and fail under CI=true.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from crm.template import load_raw

PROJECT_ROOT = Path(__file__).resolve().parents[2]
TOOLS_BIN = PROJECT_ROOT / ".venv-tools" / "bin"
TEMPLATE = PROJECT_ROOT / "template.yaml"
LOCK = PROJECT_ROOT / "requirements.lock"
CHECK_ID = re.compile(r"^CKV2?_AWS_\d+$")


def tool(name: str) -> Path:
    """A scanner from .venv-tools: a missing one fails under CI (never a silent pass), else skips."""
    path = TOOLS_BIN / name
    if not path.is_file():
        message = f"{path.relative_to(PROJECT_ROOT)} is missing; `make tools` installs it"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"{message} (CI=true: the scans must run)", pytrace=False)
        pytest.skip(message)
    return path


def scan(*command: str) -> subprocess.CompletedProcess[str]:
    """A scanner run from the project root, its output captured."""
    return subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)


def test_bandit_finds_nothing_in_src() -> None:
    done = scan(sys.executable, "-m", "bandit", "-q", "-r", "src", "-c", "pyproject.toml", "-f", "json")
    report = json.loads(done.stdout)
    findings = [
        f"{r['filename']}:{r['line_number']} {r['test_id']} {r['issue_text']}" for r in report["results"]
    ]
    assert findings == []
    assert done.returncode == 0, done.stderr


def test_every_bandit_suppression_says_why() -> None:
    for path in (PROJECT_ROOT / "src").rglob("*.py"):
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if "# nosec" in line:
                _, _, reason = line.split("# nosec", 1)[1].partition("#")
                assert reason.strip(), f"{path}:{number} has no reason"


# ---------------------------------------------------------------------------------- checkov
# Resources a condition leaves out are not scanned, so the template is also scanned with the
# parameters that create them.
TEMPLATE_VARIANTS = {
    "defaults": {},
    "cache created, alarm email": {"CreateCache": '"true"', "AlarmEmail": "ops@example.com"},
}


def with_defaults(text: str, defaults: dict[str, str]) -> str:
    """The template's text with these parameters' defaults replaced."""
    for name, value in defaults.items():
        text, count = re.subn(
            rf"(\n  {name}:\n    Type: [^\n]+\n    Default: )[^\n]*", rf"\g<1>{value}", text
        )
        assert count == 1, name
    return text


@pytest.mark.parametrize("variant", TEMPLATE_VARIANTS)
def test_checkov_finds_nothing_in_the_template(variant: str, tmp_path: Path) -> None:
    template = TEMPLATE
    if TEMPLATE_VARIANTS[variant]:
        template = tmp_path / "template.yaml"
        template.write_text(with_defaults(TEMPLATE.read_text(), TEMPLATE_VARIANTS[variant]))
    done = scan(
        str(tool("checkov")),
        "--file",
        str(template),
        "--framework",
        "cloudformation",
        "--output",
        "json",
        # No download of policy metadata (guidelines, severities): the checks ship with checkov.
        "--skip-download",
    )
    assert done.stdout.strip(), done.stderr[-3000:]
    report = json.loads(done.stdout)
    results, summary = report["results"], report["summary"]
    failed = [
        f"{check['resource']} {check['check_id']} {check['check_name']}" for check in results["failed_checks"]
    ]
    assert failed == []
    # checkov read each suppression with its reason (it reports "No comment provided" otherwise).
    unexplained = [
        f"{check['resource']} {check['check_id']}"
        for check in results["skipped_checks"]
        if check["check_result"].get("suppress_comment", "").strip() in ("", "No comment provided")
    ]
    assert unexplained == []
    assert summary["parsing_errors"] == 0, results.get("parsing_errors")
    assert summary["resource_count"] > 0
    assert summary["passed"] > 0
    assert done.returncode == 0, done.stderr[-3000:]


def test_every_checkov_suppression_in_the_template_says_why() -> None:
    skips = 0
    for logical_id, resource in load_raw(TEMPLATE)["Resources"].items():
        for skip in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            skips += 1
            assert CHECK_ID.match(str(skip.get("id", ""))), f"{logical_id}: {skip}"
            assert str(skip.get("comment", "")).strip(), f"{logical_id} skips {skip['id']} without a reason"
    assert skips > 0, "no suppression found: the template's Metadata layout is not the one checkov reads"


# ---------------------------------------------------------------------------------- pip-audit
def locked_versions() -> dict[str, Version]:
    pins: dict[str, Version] = {}
    for line in LOCK.read_text(encoding="utf-8").splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"requirements.lock: {line!r} is not an exact pin"
            pins[canonicalize_name(name)] = Version(version.split(";", 1)[0].strip())
    return pins


def test_the_lock_pins_every_runtime_dependency_within_its_range() -> None:
    pins = locked_versions()
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    for line in project:
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        assert name in pins, f"{requirement.name} is not in requirements.lock: run `make lock`"
        assert requirement.specifier.contains(pins[name], prereleases=True), (
            f"requirements.lock pins {name}=={pins[name]}, outside {requirement}: run `make lock`"
        )


def test_pip_audit_finds_no_known_vulnerability_in_the_lock() -> None:
    done = scan(
        str(tool("pip-audit")),
        "--requirement",
        LOCK.name,
        # Every package is pinned in the lock: audit exactly those, without resolving again.
        "--no-deps",
        "--disable-pip",
        "--vulnerability-service",
        "pypi",
        "--format",
        "json",
        "--progress-spinner",
        "off",
    )
    assert done.stdout.strip(), f"pip-audit exited {done.returncode}: {done.stderr[-3000:]}"
    dependencies: list[dict[str, Any]] = json.loads(done.stdout)["dependencies"]
    vulnerable = [
        f"{dep['name']}=={dep['version']} {vuln['id']} (fixed in {', '.join(vuln['fix_versions']) or '-'})"
        for dep in dependencies
        for vuln in dep.get("vulns", [])
    ]
    assert vulnerable == []
    assert done.returncode == 0, done.stderr[-3000:]
    # A dependency the service could not look up was not audited: never count that as clean.
    skipped = [dep for dep in dependencies if "skip_reason" in dep]
    assert len(dependencies) == len(locked_versions())
    if skipped:
        pytest.skip(
            f"NOT AUDITED: pip-audit checked {len(dependencies) - len(skipped)} of {len(dependencies)} "
            f"locked packages; {len(skipped)} could not be looked up "
            f"({', '.join(dep['name'] for dep in skipped)}); first reason: {skipped[0]['skip_reason']}"
        )
