"""summary.json, the console table and the pytest items all say the same thing."""

from __future__ import annotations

import json
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

from verifiers.model import BackendReport, CheckResult, CheckStatus, SentRequest
from verifiers.summary import build_summary, console_table, verdict, write_summary


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
    assert verdict(_reports()) == "pass"
    assert verdict(_reports("fail")) == "fail"
    assert verdict(_reports("timed-out")) == "fail"
    assert verdict(_reports(), fail_on_unverifiable=True) == "fail"


def test_summary_has_the_documented_shape() -> None:
    summary = build_summary("run-1", _sent(3), _reports("fail"))
    assert summary["run_id"] == "run-1" and summary["verdict"] == "fail"
    assert summary["sent"]["total"] == 3
    assert summary["backends"]["honeycomb"] | {} == {**summary["backends"]["honeycomb"], "missing": 1}
    assert summary["backends"]["xray"]["expected"] is None
    assert {"backend", "name", "status", "detail"} == set(summary["checks"][0])
    assert len(summary["checks"]) == 3


def test_console_table_lists_every_backend_with_dash_for_undecidable() -> None:
    table = console_table(_reports("fail"))
    lines = table.splitlines()
    assert lines[0].split() == ["backend", "expected", "found", "missing", "extra", "status", "waited"]
    xray = next(line for line in lines if line.startswith("xray"))
    assert xray.split()[1:4] == ["-", "2", "-"]
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
        "every request has exactly one server span",
        "every trace found belongs to a request we sent",
        "occurrences per fault request",
    }
    failure = by_name["every request has exactly one server span"].find("failure")
    assert failure is not None
    assert "1 missing: r2" in (failure.get("message") or "") + (failure.text or "")
    skipped = by_name["occurrences per fault request"].find("skipped")
    assert skipped is not None and "unverifiable" in (skipped.get("message") or "")
    assert by_name["every trace found belongs to a request we sent"].find("failure") is None
    assert {c.get("classname") for c in by_name.values()} >= {"summary.json.honeycomb", "summary.json.xray"}
    assert json.loads((tmp_path / "summary.json").read_text())["verdict"] == "fail"
