"""Sums of the metrics the functions print in CloudWatch's embedded metric format (EMF).

With `POWERTOOLS_METRICS_DISABLED=false`, each invocation prints one JSON line per flush: its
metric values as top-level keys, declared under `_aws.CloudWatchMetrics[].Metrics`. A metric
given several values in one invocation holds a list. Lines that are not such records (the
banner, structured logs) are skipped, so a server's whole stdout can be read."""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any


def metric_sums(lines: Iterable[str], names: Iterable[str]) -> dict[str, float]:
    """The sum of each metric of `names` over every EMF record in `lines` (0 when none)."""
    totals = dict.fromkeys(names, 0.0)
    for line in lines:
        record = _emf_record(line)
        if record is None:
            continue
        for name in _declared(record) & totals.keys():
            value = record.get(name)
            values = value if isinstance(value, list) else [value]
            totals[name] += sum(v for v in values if isinstance(v, int | float) and not isinstance(v, bool))
    return totals


def metric_sums_in(path: Path, names: Iterable[str]) -> dict[str, float]:
    """`metric_sums` over a file, such as a server's stdout."""
    with path.open(encoding="utf-8", errors="replace") as lines:
        return metric_sums(lines, names)


def _emf_record(line: str) -> dict[str, Any] | None:
    line = line.strip()
    if not line.startswith("{") or '"_aws"' not in line:
        return None
    try:
        record = json.loads(line)
    except ValueError:
        return None
    return record if isinstance(record, dict) else None


def _declared(record: dict[str, Any]) -> set[str]:
    """The metric names the record declares (other top-level keys are dimensions or properties)."""
    aws = record.get("_aws")
    directives = aws.get("CloudWatchMetrics", []) if isinstance(aws, dict) else []
    return {
        metric["Name"]
        for directive in directives
        if isinstance(directive, dict)
        for metric in directive.get("Metrics", [])
        if isinstance(metric, dict) and "Name" in metric
    }
