"""End to end: a drill's usage in the budget ledger matches what the local backends accepted, and a run
planned past what is left is refused before anything starts."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from .conftest import run_tracedrill

pytestmark = pytest.mark.e2e


_tracedrill = run_tracedrill


def _one(path: Path, sql: str) -> float:
    with sqlite3.connect(path) as conn:
        return float(conn.execute(sql).fetchone()[0] or 0)


def test_the_ledger_matches_what_the_backends_accepted_and_the_guard_refuses_the_next_run(tmp_path: Path):
    reports, db = tmp_path / "reports", tmp_path / "budget.sqlite3"
    tiny = ["--allowance", "rollbar.occurrences=1", "--budget-db", str(db), "--reports-dir", str(reports)]
    drill = ["--run-time", "6s", "--users", "4", "--spawn-rate", "4", "--settle", "4", "--deadline", "60"]
    # An allowance the run will pass: --allow-overage lets it through.
    proc = _tracedrill("run", *drill, *tiny, "--allow-overage", cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "budget forecast: about" in proc.stdout and "free-tier budget" in proc.stdout

    run_dir = (reports / "latest").resolve()
    store = run_dir / "local-backends"
    accepted = {
        ("honeycomb", "events"): _one(store / "honeycomb.sqlite3", "SELECT COUNT(*) FROM events"),
        ("xray", "traces_recorded"): _one(store / "xray.sqlite3", "SELECT COUNT(*) FROM traces"),
        ("cloudwatch_logs", "events_ingested"): _one(store / "logs.sqlite3", "SELECT COUNT(*) FROM log_events"),
        ("cloudwatch_logs", "bytes_ingested"): _one(
            store / "logs.sqlite3", "SELECT SUM(LENGTH(CAST(message AS BLOB)) + 26) FROM log_events"
        ),
        ("rollbar", "occurrences"): _one(store / "rollbar.sqlite3", "SELECT COUNT(*) FROM occurrences"),
    }
    assert all(n > 0 for n in accepted.values()), accepted

    listed = _tracedrill("budget", "--json", "--budget-db", str(db), cwd=tmp_path)
    assert listed.returncode == 0, listed.stdout + listed.stderr
    view = json.loads(listed.stdout)
    runs = {a["backend"]: a["runs"] for a in view["accounts"] if a["account"] == "local"}
    assert set(runs) == {"honeycomb", "xray", "cloudwatch_logs", "rollbar"}
    for (backend, metric), n in accepted.items():
        (run,) = [r for r in runs[backend] if r["run_id"] == run_dir.name]
        assert run["usage"][metric] == n, (backend, metric)
        assert run["source"] == "measured", run
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["budget"]["backends"]["honeycomb"]["usage"]["events"] == accepted[("honeycomb", "events")]
    report = (run_dir / "report.html").read_text()
    assert "Free-tier budget" in report and "<svg" in report

    # What is left of the tiny allowance is gone: the next run is refused before anything starts.
    refused = _tracedrill("run", *drill, *tiny, cwd=tmp_path)
    assert refused.returncode == 2, refused.stdout[-3000:]
    assert "budget guard refused the run before sending any request" in refused.stdout
    assert (reports / "latest").resolve() == run_dir  # no new run directory: no ledger, no Locust, no target
    assert len([p for p in reports.iterdir() if p.name != "latest"]) == 1
