"""summary.json, the console table and the pytest items all say the same thing."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

from verifiers.model import PROBE_ROUTE_NAME, BackendReport, CheckResult, CheckStatus, SentRequest
from verifiers.summary import build_summary, console_table, failing_checks, verdict, write_summary


def _sent(n: int) -> list[SentRequest]:
    return [
        SentRequest(
            f"r{i}",
            "home",
            "GET",
            "http://t/api/activities/home",
            "/api/activities/home",
            1.0,
            2.0,
            200,
            f"{i:032x}",
            f"{i + 1:016x}",
            f"1-{i:08x}-{i:024x}",
            "w1",
        )
        for i in range(n)
    ]


def _reports(honeycomb_status: CheckStatus = "pass") -> list[BackendReport]:
    return [
        BackendReport(
            "honeycomb",
            3,
            3 if honeycomb_status == "pass" else 2,
            0 if honeycomb_status == "pass" else 1,
            0,
            [
                CheckResult(
                    "honeycomb",
                    "every request has exactly one server span",
                    honeycomb_status,
                    "3 of 3" if honeycomb_status == "pass" else "1 missing: r2",
                )
            ],
        ),
        BackendReport(
            "xray",
            None,
            2,
            None,
            0,
            [CheckResult("xray", "every trace found belongs to a request we sent", "pass", "2 traces")],
        ),
        BackendReport(
            "rollbar",
            0,
            0,
            0,
            0,
            [CheckResult("rollbar", "occurrences per fault request", "unverifiable", "no read token")],
        ),
    ]


def test_verdict_rolls_up_fail_timed_out_and_optionally_unverifiable() -> None:
    assert verdict(_reports(), fail_on_unverifiable=False) == "pass"
    assert verdict(_reports("fail"), fail_on_unverifiable=False) == "fail"
    assert verdict(_reports("timed-out"), fail_on_unverifiable=False) == "fail"
    assert verdict(_reports()) == "fail"  # by default an undecided check is not a passed one


def test_requests_without_a_response_fail_the_run_but_a_slow_readiness_probe_does_not() -> None:
    sent = _sent(3)
    dead = [replace(sent[0], status=None), *sent[1:]]
    summary = build_summary("run-1", dead, _reports(), fail_on_unverifiable=False)
    assert summary["verdict"] == "fail"
    load = summary["checks"][0]
    assert load["status"] == "fail" and "1 of 3 requests got no response" in load["detail"]
    probe = replace(sent[0], name=PROBE_ROUTE_NAME, status=None)
    probed = build_summary("run-1", [probe, *sent[1:]], _reports(), fail_on_unverifiable=False)
    assert probed["verdict"] == "pass"
    # the ledger's count and the check's count differ by the probe: the detail says so
    assert probed["checks"][0]["detail"] == "all 2 requests answered (the sent-ledger also holds 1 readiness probe)"


def test_a_check_with_nothing_to_look_at_does_not_fail_a_strict_run() -> None:
    vacuous = CheckResult(
        "rollbar",
        "route 'fault': one occurrence per request",
        "unverifiable",
        "nothing to check: no answered request of route 'fault'",
    )
    reports = [*_reports()[:2], BackendReport("rollbar", 0, 0, 0, 0, [vacuous])]
    assert verdict(reports) == "pass"
    assert verdict(_reports()) == "fail"  # "no read token" could not be decided: strict runs fail on it


def test_a_run_where_nothing_could_be_decided_fails() -> None:
    only_unverifiable = [r for r in _reports() if r.backend == "rollbar"]
    assert verdict(only_unverifiable, fail_on_unverifiable=False) == "fail"
    assert verdict([]) == "fail"


def test_summary_has_the_documented_shape() -> None:
    summary = build_summary("run-1", _sent(3), _reports("fail"))
    assert summary["run_id"] == "run-1" and summary["verdict"] == "fail"
    assert summary["sent"]["total"] == 3
    assert summary["backends"]["honeycomb"] | {} == {**summary["backends"]["honeycomb"], "missing": 1}
    assert summary["backends"]["xray"]["expected"] is None
    assert {"backend", "name", "status", "detail"} == set(summary["checks"][0])
    assert [c["backend"] for c in summary["checks"]] == ["load", "honeycomb", "xray", "rollbar"]
    assert summary["checks"][0]["status"] == "pass"  # every request was answered


def test_console_table_lists_every_backend_with_dash_for_undecidable() -> None:
    table = console_table(_reports("fail"))
    lines = table.splitlines()
    assert lines[0].split() == ["backend", "expected", "found", "missing", "extra", "status", "waited"]
    xray = next(line for line in lines if line.startswith("xray"))
    assert xray.split()[1:4] == ["-", "2", "-"]
    assert lines[-1] == "xray: '-' because the expected count cannot be decided (report.html says why)"
    noted = [replace(r, note="it samples at random") if r.backend == "xray" else r for r in _reports("fail")]
    assert console_table(noted).splitlines()[-1] == "xray: '-' because it samples at random"
    assert "fail" in next(line for line in lines if line.startswith("honeycomb"))


def test_pytest_plugin_makes_one_item_per_check_grouped_by_backend(tmp_path: Path) -> None:
    write_summary(tmp_path / "summary.json", build_summary("run-1", _sent(3), _reports("fail")))
    junit = tmp_path / "junit.xml"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            str(tmp_path / "summary.json"),
            "-p",
            "verifiers.pytest_plugin",
            "-p",
            "no:cacheprovider",
            "--rootdir",
            str(tmp_path),
            "-c",
            "/dev/null",
            "-q",
            "--junitxml",
            str(junit),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    assert proc.returncode == 1, proc.stdout + proc.stderr  # one check failed
    root = ET.parse(junit).getroot()
    cases = root.iter("testcase")
    by_name = {c.get("name"): c for c in cases}
    assert set(by_name) == {
        "every request got a response from the target",
        "every request has exactly one server span",
        "every trace found belongs to a request we sent",
        "occurrences per fault request",
    }
    failure = by_name["every request has exactly one server span"].find("failure")
    assert failure is not None
    assert "1 missing: r2" in (failure.get("message") or "") + (failure.text or "")
    skipped = by_name["occurrences per fault request"].find("skipped")
    assert skipped is not None and "unverifiable" in (skipped.get("message") or "")
    passed = by_name["every trace found belongs to a request we sent"]
    assert passed.find("failure") is None
    details = [p.get("value") for p in passed.iter("property") if p.get("name") == "detail"]
    assert details == ["2 traces"]  # a passing check keeps its detail in the report
    assert {c.get("classname") for c in by_name.values()} >= {"summary.json.honeycomb", "summary.json.xray"}
    assert json.loads((tmp_path / "summary.json").read_text())["verdict"] == "fail"


def test_failing_lines_group_one_reason_and_say_how_to_accept_undecided_checks() -> None:
    refused = "Honeycomb answered HTTP 403: this plan has no Query Data API"
    checks = [CheckResult("honeycomb", f"check {n}", "unverifiable", refused) for n in range(13)]
    checks.append(CheckResult("honeycomb", "one more", "unverifiable", "a different reason"))
    report = BackendReport("honeycomb", None, 0, None, 0, checks)
    decided = BackendReport("rollbar", 0, 0, 0, 0, [CheckResult("rollbar", "occurrences", "pass", "ok")])
    summary = build_summary("r1", _sent(3), [report, decided], fail_on_unverifiable=True)
    lines = failing_checks(summary)
    assert lines[0] == f"UNVERIFIABLE honeycomb: 13 checks (check 0; check 1; …) — {refused}"
    assert lines[1] == "UNVERIFIABLE honeycomb: one more — a different reason"
    assert "--allow-unverifiable accepts them" in lines[-1] and len(lines) == 3
    # with no check passed at all the flag would not pass the run either: no hint
    alone = build_summary("r1", _sent(3), [report])  # the load check passes; no backend check does
    assert alone["verdict"] == "fail" and build_summary("r1", _sent(3), [report], False)["verdict"] == "fail"
    assert not any("--allow-unverifiable" in line for line in failing_checks(alone))
    # a decided failure is the reason of its own: no hint that accepting undecided checks would pass the run
    failed = replace(report, checks=[*checks, CheckResult("honeycomb", "counted", "fail", "2 missing")])
    assert not any("--allow-unverifiable" in line for line in failing_checks(build_summary("r1", _sent(3), [failed])))
