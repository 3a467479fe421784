"""bandit over src/: no finding, every suppression in the code carrying its reason."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def test_bandit_finds_nothing_in_src() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "bandit", "-q", "-r", "src", "-c", "pyproject.toml", "-f", "json"],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
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
