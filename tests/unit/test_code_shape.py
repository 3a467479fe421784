"""Limits on the shape of the code that ruff does not state: no function in src/ over 60 lines
(ruff's C901, PLR0912 and PLR0915 in pyproject.toml bound complexity, branches and statements),
and no merge conflict marker left in a tracked file."""

from __future__ import annotations

import ast
import re
import subprocess
from pathlib import Path

SRC = Path(__file__).resolve().parents[2] / "src"
MAX_FUNCTION_LINES = 60


def function_lengths() -> dict[str, int]:
    """Every function and method in src/, by `path:line name`, with its length from `def` to its
    last line."""
    lengths = {}
    for path in sorted(SRC.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                assert node.end_lineno is not None
                where = f"{path.relative_to(SRC)}:{node.lineno} {node.name}"
                lengths[where] = node.end_lineno - node.lineno + 1
    return lengths


def test_the_source_tree_is_read() -> None:
    lengths = function_lengths()
    assert len(lengths) > 500
    assert any(where.startswith("leads/writes.py:") for where in lengths)


def test_no_function_in_src_is_over_60_lines() -> None:
    too_long = {where: lines for where, lines in function_lengths().items() if lines > MAX_FUNCTION_LINES}
    assert too_long == {}


CONFLICT_MARKER = re.compile(r"^(<{7} |={7}$|>{7} )", re.MULTILINE)


def tracked_text_files() -> list[Path]:
    root = SRC.parent
    names = subprocess.run(
        ["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True, text=True
    ).stdout.split("\0")
    suffixes = {".py", ".md", ".yaml", ".yml", ".toml", ".js", ".html", ".css", ".json", ".cfg", ""}
    return [
        root / name for name in names if name and Path(name).suffix in suffixes and (root / name).is_file()
    ]


def test_no_tracked_file_holds_a_merge_conflict_marker() -> None:
    files = tracked_text_files()
    assert any(path.name == "README.md" for path in files)
    marked = [
        str(path.relative_to(SRC.parent))
        for path in files
        if CONFLICT_MARKER.search(path.read_text(encoding="utf-8", errors="replace"))
    ]
    assert marked == []
