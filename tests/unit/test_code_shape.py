"""Limits on the shape of the code that ruff does not state: no function in src/ over 60 lines
(ruff's C901, PLR0912 and PLR0915 in pyproject.toml bound complexity, branches and statements)."""

from __future__ import annotations

import ast
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
