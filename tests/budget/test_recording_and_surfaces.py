"""Recording a verified run, and every surface: the run's table, summary.json, report.html and `tracedrill budget`."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.verifiers import EXP, FAULT, HOME, ledger, window
from tracedrill import budgeting, cli
from tracedrill.console import Console
from tracedrill.drill import DrillOptions
from tracedrill.rundir import RunRecord
from verifiers.budget.render import chart_svg, fmt, html_section, run_text
from verifiers.cloudwatch_logs import LogEvent, LogsObservation
from verifiers.connections import Connections
from verifiers.honeycomb import HoneycombObservation, Span
from verifiers.model import CheckResult, WaitOutcome
from verifiers.polling import PollResult
from verifiers.rollbar import Occurrence, RollbarObservation
from verifiers.summary import write_summary
from verifiers.xray import XRayObservation

SENT = ledger(HOME, HOME, FAULT)
WINDOW = window(SENT)


def polled_results() -> list[PollResult]:
    """What verifying SENT found: every backend, with the reads it took."""
    home1, home2, fault = SENT
    hc = HoneycombObservation("honeycomb", WINDOW)
    hc.spans = [Span({"trace.trace_id": r.trace_id, "name": "x"}, 2) for r in SENT] + [
        Span({"trace.trace_id": fault.trace_id, "meta.annotation_type": "span_event"})
    ]
    xr = XRayObservation("xray", WINDOW, summaries={home1.xray_trace_id: {}, fault.xray_trace_id: {}})
    logs = LogsObservation("cloudwatch_logs", WINDOW)
    logs.events = [LogEvent(f"line request_id={r.request_id}", 0, "s", str(i)) for i, r in enumerate(SENT)]
    rb = RollbarObservation("rollbar", WINDOW)
    rb.occurrences = [Occurrence("1", "1", 0.0, "error", "local", fault.request_id, "RuntimeError", None)]
    results = []
    for obs, costs in ((hc, {"query_results": 2}), (xr, {"traces_scanned": 6, "traces_retrieved": 4}),
                       (logs, {"bytes_read": 500}), (rb, {})):  # fmt: skip
        result = PollResult(obs.backend, observation=obs, wait=WaitOutcome("settled", 4.0, 2))
        result.cost_units.update(costs)
        result.api_calls.update({"call": 3})
        results.append(result)
    return results


def record(tmp_path: Path) -> RunRecord:
    return RunRecord(
        run_id="20261203T170000Z-abc123", backends="local", target_url="http://127.0.0.1:1", started_target=True,
        service_name=EXP.service.name, log_group="cruddur", rollbar_environment="local", expectations=str(EXP.source),
        honeycomb_plan="enterprise", load={"users": 3, "locustfile": "loadtests/locustfile.py"},
        load_start=SENT[0].start, load_end=SENT[0].start + 2.0,
    )  # fmt: skip


def after_verify(tmp_path: Path) -> dict[str, Any]:
    options = DrillOptions()
    options.budget = budgeting.BudgetOptions(db=tmp_path / "b.sqlite3")
    section = budgeting.after_verify(
        None, options, record(tmp_path), SENT, polled_results(), EXP, Connections(), Console(io.StringIO())
    )
    assert section is not None
    return section


def test_a_verified_run_is_recorded_and_verifying_it_again_adds_only_the_reads(tmp_path: Path):
    first = after_verify(tmp_path)
    assert first["backends"]["honeycomb"]["usage"] == {"events": 7, "query_results": 2, "api_calls": 3}
    assert first["backends"]["xray"]["usage"]["traces_recorded"] == 2
    line_bytes = sum(len(f"line request_id={r.request_id}".encode()) + 26 for r in SENT)
    assert first["backends"]["cloudwatch_logs"]["usage"]["bytes_ingested"] == line_bytes
    assert first["backends"]["rollbar"]["usage"]["occurrences"] == 1
    rows = {a["name"]: a for a in first["allowances"]}
    assert rows["honeycomb.events"]["this_run"] == 7 == rows["honeycomb.events"]["month_to_date"]
    assert rows["xray.traces_retrieved_or_scanned"]["this_run"] == 10
    # 3 requests in 2 s: 7 events at 3.5 events/s; 20M lasts 20M / 3.5 s; sustainable = 20M / month / (7/3).
    assert rows["honeycomb.events"]["lasts_s"] == pytest.approx(20_000_000 / 3.5)
    assert rows["honeycomb.events"]["sustainable_requests_per_s"] == pytest.approx(20e6 / (31 * 86400) / (7 / 3))
    assert rows["xray.traces_retrieved_or_scanned"]["runs_left"] == pytest.approx((1_000_000 - 10) / 10)
    # X-Ray records 2 of 3 requests here; sampling shifts with the rate, so also the rate safe at 1 trace a request.
    month = 31 * 86400
    assert rows["xray.traces_recorded"]["sustainable_requests_per_s"] == pytest.approx(100_000 / month / (2 / 3))
    assert rows["xray.traces_recorded"]["safe_requests_per_s"] == pytest.approx(100_000 / month)
    assert rows["honeycomb.events"]["safe_requests_per_s"] is None
    again = after_verify(tmp_path)
    rows = {a["name"]: a for a in again["allowances"]}
    assert rows["honeycomb.events"]["month_to_date"] == 7  # accepted once, however often it is verified
    assert rows["xray.traces_retrieved_or_scanned"]["month_to_date"] == 20  # every read costs


def test_without_the_query_api_honeycomb_is_estimated_from_the_expectations_then_from_measured_runs(tmp_path: Path):
    results = polled_results()
    results[0].observation.query_unavailable = "the Query Data API needs the Enterprise plan"
    options = DrillOptions()
    options.budget = budgeting.BudgetOptions(db=tmp_path / "b.sqlite3")
    console = Console(io.StringIO())
    section = budgeting.after_verify(None, options, record(tmp_path), SENT, results, EXP, Connections(), console)
    assert section is not None
    honeycomb = section["backends"]["honeycomb"]
    # home: server + mock-data span (x2); fault: server span + its exception event
    assert honeycomb["source"] == "estimated" and honeycomb["usage"]["events"] == 2 + 2 + 2
    assert "expectations file for the requests sent" in honeycomb["note"] and "Enterprise" in honeycomb["note"]
    assert "honeycomb: estimated" in run_text(section)

    after_verify(tmp_path)  # a measured run of the same profile: 7 events for 3 requests
    again = replace(record(tmp_path), run_id="20261203T180000Z-def456")
    section = budgeting.after_verify(None, options, again, SENT, results, EXP, Connections(), console)
    assert section is not None
    assert section["backends"]["honeycomb"]["usage"]["events"] == pytest.approx(7 / 3 * 3)
    assert "measured in 1 earlier run" in section["backends"]["honeycomb"]["note"]


def test_the_run_table_summary_section_and_report_chart(tmp_path: Path):
    section = after_verify(tmp_path)
    text = run_text(section)
    assert "honeycomb events (20M events)" in text and "7 events" in text and "sustainable" in text
    assert "xray 6 traces scanned, 4 traces retrieved" in text and "more runs like this" in text
    assert " whole, " in text and " what is left" in text  # the whole allowance, then what is left of it
    assert f"(UTC, {section['mode']} backends)" in text  # the mode of the backends; accounts are in their column
    html = html_section(section)
    assert "<svg" in html and "Free-tier budget" in html and "aws.amazon.com/xray/pricing" in html
    assert fmt(999_724, "traces") == "1M traces" and fmt(11_306, "bytes") == "11.3 kB"
    section["allowances"][0]["account"] = "<script>"
    assert "<script>" not in chart_svg(section["allowances"], section["month"], time.time())

    summary = {
        "run_id": "r",
        "verdict": "pass",
        "checks": [asdict_check(CheckResult("honeycomb", "a check", "pass", "ok"))],
        "budget": after_verify(tmp_path),
    }
    path = tmp_path / "run" / "summary.json"
    path.parent.mkdir()
    write_summary(path, summary)
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(path), "-p", "verifiers.pytest_plugin", "-p", "no:cacheprovider",
         "--rootdir", str(path.parent), "-c", "/dev/null", "-q", "--html", str(path.parent / "report.html"),
         "--self-contained-html"],
        cwd=path.parent, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout
    report = (path.parent / "report.html").read_text()
    assert "Free-tier budget" in report and "<svg" in report and "honeycomb events" in report


def asdict_check(c: CheckResult) -> dict[str, str]:
    return {"backend": c.backend, "name": c.name, "status": c.status, "detail": c.detail}


def test_tracedrill_budget_shows_month_to_date_runs_and_forecast(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    after_verify(tmp_path)
    month = time.strftime("%Y-%m", time.gmtime(SENT[0].start))
    db = str(tmp_path / "b.sqlite3")
    assert cli.main(["budget", "--json", "--month", month, "--budget-db", db]) == 0
    view = json.loads(capsys.readouterr().out)
    assert [a["backend"] for a in view["accounts"]] == ["honeycomb", "xray", "cloudwatch_logs", "rollbar"]
    honeycomb = view["accounts"][0]
    assert honeycomb["account"] == "local" and honeycomb["month_to_date"]["events"] == 7
    (run,) = honeycomb["runs"]
    assert run["run_id"] == "20261203T170000Z-abc123" and run["usage"]["events"] == 7 and run["requests"] == 3
    forecast = honeycomb["allowances"][0]["forecast"]
    assert forecast["based_on_run"] == run["run_id"] and forecast["per_request"] == pytest.approx(7 / 3)

    assert cli.main(["budget", "--month", month, "--budget-db", db]) == 0
    text = capsys.readouterr().out
    assert "honeycomb, account local" in text and "20261203T170000Z-abc123" in text
    assert cli.main(["budget", "--month", "2026-13", "--budget-db", db]) == 2
    assert "--month '2026-13': use YYYY-MM" in capsys.readouterr().out
    assert cli.main(["budget", "--month", "2026-01", "--budget-db", db]) == 0
    assert "no runs recorded in 2026-01" in capsys.readouterr().out  # the month asked for, not "this month"
    assert cli.main(["budget", "--json", "--budget-db", str(tmp_path / "none.sqlite3")]) == 0
    assert json.loads(capsys.readouterr().out)["accounts"] == []
    assert not (tmp_path / "none.sqlite3").exists()  # looking never creates a ledger
