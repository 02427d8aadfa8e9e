"""End to end: the real `tracedrill` command, Locust, gunicorn, the SDKs and the local stack."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from typing import Any

import pytest

from .conftest import all_passed_but_a_short_runs_sampling_count, run_tracedrill, stack_up

pytestmark = pytest.mark.e2e

# Enough requests that every route, the rare fault route included, is almost surely exercised.
SHORT_DRILL = ["--run-time", "8s", "--users", "10", "--spawn-rate", "10", "--settle", "5", "--deadline", "60"]


_tracedrill = run_tracedrill


def _summary(reports: Path) -> dict[str, Any]:
    return dict(json.loads((reports / "latest" / "summary.json").read_text()))


def test_a_correct_drill_passes_with_exact_counts_and_can_be_verified_again(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    proc = _tracedrill("run", *SHORT_DRILL, "--reports-dir", str(reports), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]

    summary = _summary(reports)
    assert summary["verdict"] == "pass"
    sent = summary["sent"]
    routes = sent["by_route"]
    # A readiness probe that timed out on a busy machine has no response: nothing is expected of it.
    unanswered_probes = sent["no_response"]
    assert sent["total"] > 20 and unanswered_probes <= routes.get("readiness_probe", 0)
    backends = summary["backends"]
    home = routes.get("home", 0)
    # Honeycomb: one server span per request plus the home child span; CloudWatch: one access line
    # per request plus the home hello line. Nothing missing, nothing extra.
    for name in ("honeycomb", "cloudwatch_logs"):
        assert backends[name]["expected"] == sent["total"] - unanswered_probes + home, name
        assert backends[name]["found"] == backends[name]["expected"], name
        assert backends[name]["missing"] == 0 and backends[name]["extra"] == 0, name
    rollbar_expected = routes.get("fault", 0) + routes.get("rollbar_test", 0)
    assert backends["rollbar"]["expected"] == backends["rollbar"]["found"] == rollbar_expected
    assert 0 < backends["xray"]["found"] <= sent["total"] and backends["xray"]["extra"] == 0
    assert all_passed_but_a_short_runs_sampling_count(summary["checks"]), summary["checks"]
    assert {c["backend"] for c in summary["checks"]} == {"load", "honeycomb", "xray", "cloudwatch_logs", "rollbar"}

    run_dir = (reports / "latest").resolve()
    for name in ("junit.xml", "report.html", "locust.html", "locust_stats.csv", "run.json"):
        assert (run_dir / name).is_file(), name
    ledger_lines = sum(len(p.read_text().splitlines()) for p in run_dir.glob("sent*.jsonl"))
    assert ledger_lines == sent["total"]
    assert "verdict: PASS" in proc.stdout

    again = _tracedrill("verify", str(reports / "latest"), "--settle", "3", "--reports-dir", str(reports), cwd=tmp_path)
    assert again.returncode == 0, again.stdout[-4000:]
    reverified = _summary(reports)
    assert reverified["backends"]["honeycomb"]["found"] == backends["honeycomb"]["found"]
    assert reverified["backends"]["xray"]["found"] == backends["xray"]["found"]


def test_switching_off_the_cloudwatch_handler_fails_the_log_check_with_the_missing_count(tmp_path: Path) -> None:
    """Also on Honeycomb's free plan: per-span checks are unverifiable there, never passed."""
    reports = tmp_path / "reports"
    proc = _tracedrill(
        "run",
        *SHORT_DRILL,
        "--disable",
        "cloudwatch",
        "--honeycomb-plan",
        "free",
        "--reports-dir",
        str(reports),
        cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stdout[-4000:] + proc.stderr[-2000:]
    summary = _summary(reports)
    assert summary["verdict"] == "fail"
    logs = summary["backends"]["cloudwatch_logs"]
    assert logs["found"] == 0 and logs["missing"] == logs["expected"] > 0
    failed = [c for c in summary["checks"] if c["status"] == "fail"]
    assert failed and {c["backend"] for c in failed} == {"cloudwatch_logs"}
    access = next(c for c in failed if "access line" in c["name"])
    answered = summary["sent"]["total"] - summary["sent"]["no_response"]
    assert f"{answered} of {answered} requests failed (missing: {answered})" in access["detail"]
    assert "FAIL cloudwatch_logs" in proc.stdout and "verdict: FAIL" in proc.stdout
    # The other backends still verify; Honeycomb as far as a plan without the Query Data API allows.
    assert summary["backends"]["rollbar"]["status"] == "pass"
    assert summary["backends"]["xray"]["status"] == "pass"
    honeycomb = [c for c in summary["checks"] if c["backend"] == "honeycomb"]
    assert summary["backends"]["honeycomb"]["status"] == "unverifiable"
    assert any(c["status"] == "pass" and "/1/auth" in c["name"] for c in honeycomb)
    assert any(c["status"] == "unverifiable" and "Enterprise" in c["detail"] for c in honeycomb)
    assert not any(c["status"] == "pass" and "server span" in c["name"] for c in honeycomb)


def test_an_unreachable_target_fails_the_run_instead_of_passing_on_nothing(tmp_path: Path) -> None:
    with socket.socket() as sock:  # a loopback port nothing listens on
        sock.bind(("127.0.0.1", 0))
        closed = sock.getsockname()[1]
    reports = tmp_path / "reports"
    with stack_up(tmp_path / "stack"):
        proc = _tracedrill(
            "run", "--target", f"http://127.0.0.1:{closed}",
            "--backends", "stack", "--stack-dir", str(tmp_path / "stack"),
            "--run-time", "3s", "--users", "2", "--settle", "2", "--reports-dir", str(reports), cwd=tmp_path,
        )  # fmt: skip
    assert proc.returncode == 1, proc.stdout[-3000:]
    summary = _summary(reports)
    assert summary["verdict"] == "fail"
    load = next(c for c in summary["checks"] if c["backend"] == "load")
    assert load["status"] == "fail" and "got no response" in load["detail"]
