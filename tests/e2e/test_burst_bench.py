"""`crm bench --burst N`: a burst of new leads into a private `crm serve`, and a report whose
figures agree with each other (a tiny N, so that it runs in seconds)."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

from tests.e2e.conftest import PROJECT_ROOT, crm_command

LEADS = 20


def test_a_burst_is_accepted_counted_by_the_dashboard_and_leaves_no_event_behind(tmp_path: Path) -> None:
    # Given nothing running (the bench starts its own server and stops it), and a freshness
    # interval for stats answers that the bench passes on to that server
    # When 20 leads are posted by 4 vendor clients
    done = subprocess.run(
        crm_command("bench", "--burst", str(LEADS), "--clients", "4", "--out", str(tmp_path)),
        cwd=PROJECT_ROOT,
        env={**os.environ, "STATS_FRESHNESS_SECONDS": "1"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    # Then it reports no inconsistency, and prints and writes its table
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["problems"] == []
    assert f"| posts accepted | {LEADS} of {LEADS} |" in done.stdout
    assert (tmp_path / "summary.md").read_text().strip() == done.stdout.strip()
    # And every post was accepted, and the dashboard counted exactly those leads
    assert (report["accepted"], report["refused"], report["stats_leads"]) == (LEADS, {}, LEADS)
    assert report["stats_fresh_seconds"] >= 0  # null (never fresh) is a problem, reported above
    assert report["posts_per_second"] > 0
    # And the consumer's metrics, read from the server's output, account for each lead once
    assert report["events_applied"] == LEADS
    assert 1 <= report["batches"] <= LEADS
    # And a full rebuild afterwards found nothing to repair
    assert report["rebuild_repairs"] == [0, 0, 0]
    assert report["batches"] <= report["bucket_item_writes"]
    assert report["writes_per_lead"] == report["bucket_item_writes"] / LEADS
    assert report["conflicts_retried"] >= 0
    # And nothing is left in the events queue or went to the dead-letter queue
    assert (report["still_queued"], report["dead_letters"]) == (0, 0)
    assert report["freshness_interval"] == "`STATS_FRESHNESS_SECONDS=1` s"
    assert "| stats freshness interval | `STATS_FRESHNESS_SECONDS=1` s |" in done.stdout
