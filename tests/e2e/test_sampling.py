"""End to end: X-Ray sampling rules served by the local X-Ray emulator, the real SDK in gunicorn workers,
Locust load, and the sampling checks reading X-Ray back. One stack for every case (the emulator re-reads
its rules file when it changes); a fresh app per case, since the SDK keeps its rules and quotas.
A few seconds of load each: within the SDK's first 10 s (start-up request, then borrowing 1/s per
process, then the fixed rate), which is exactly what the model predicts for a short run.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulators.stack import LocalStack, StackConfig, app_environment, verifier_environment
from loadtests.ledger import LedgerWriter, ledger_path
from target_app.server import start_target
from tracedrill import local
from tracedrill.console import Console
from tracedrill.loadgen import LoadPlan, run_locust
from tracedrill.probe import recorded_probe
from verifiers.base import RunWindow, make_verifiers
from verifiers.connections import Connections
from verifiers.expectations import load_expectations
from verifiers.model import BackendReport, read_ledger
from verifiers.polling import WaitSettings
from verifiers.sampling.config import SamplingConfig, attach
from verifiers.verify import verify_run

from .conftest import run_tracedrill

pytestmark = pytest.mark.e2e

LOAD = LoadPlan(users=10, spawn_rate=20, run_time="4s")
WORKERS = 2


def centralized(reservoir: int, rate: float) -> dict[str, Any]:
    return {
        "SamplingRule": {
            "RuleName": "Cruddur",
            "ResourceARN": "*",
            "Priority": 9000,
            "FixedRate": rate,
            "ReservoirSize": reservoir,
            "ServiceName": local.DEFAULT_SERVICE_NAME,
            "ServiceType": "*",
            "Host": "*",
            "HTTPMethod": "*",
            "URLPath": "*",
            "Version": 1,
        }
    }


def local_rules(fixed_target: int, rate: float) -> dict[str, Any]:
    rule = {"description": "Cruddur", "host": "*", "http_method": "*", "url_path": "*"}
    default = {"fixed_target": 1, "rate": 0.05}
    return {"version": 2, "rules": [{**rule, "fixed_target": fixed_target, "rate": rate}], "default": default}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, Path]]:
    data = tmp_path_factory.mktemp("sampling-stack")
    rules = data / "rules.json"
    rules.write_text(json.dumps(centralized(5, 0.1)))
    with LocalStack(StackConfig(data_dir=data, ports=local.LocalPorts.ephemeral(), sampling_rules=rules)) as s:
        yield s, rules


def _serve(rules: Path, document: dict[str, Any]) -> None:
    rules.write_text(json.dumps(document))
    future = time.time() + 1  # a new modification time even within the file system's time resolution
    os.utime(rules, (future, future))


def _drill(
    stack: LocalStack,
    run_dir: Path,
    app_env: dict[str, str],
    expect: dict[str, Any] | None = None,
    *,
    otel: tuple[str, float] | None = None,
) -> BackendReport:
    """Start the app, send the load, stop the app, verify X-Ray (or, with ``otel``, Honeycomb) with the
    sampling checks."""
    disabled = "cloudwatch,rollbar" + (",xray" if otel else ",otel")
    env = {**app_environment(stack.endpoints), "TRACEDRILL_DISABLE": disabled, **app_env}
    console = Console(io.StringIO())
    run_dir.mkdir(parents=True, exist_ok=True)
    with LedgerWriter(ledger_path(run_dir, "readiness-probe")) as ledger:
        target = start_target(
            env, port=0, workers=WORKERS, log_path=run_dir / "target.log", probe=recorded_probe(ledger)
        )
    try:
        assert run_locust(LOAD, target.url, run_dir, console) == 0, (run_dir / "locust.log").read_text()[-2000:]
    finally:
        target.stop()
    sent = read_ledger(run_dir)
    expectations = load_expectations()
    window = RunWindow(
        "sampling-e2e",
        min(s.start for s in sent) - 5,
        max(s.end for s in sent) + 60,
        local.DEFAULT_SERVICE_NAME,
        expectations.service.log_group,
        expectations.service.rollbar_environment,
    )
    verifiers = make_verifiers(
        Connections.from_env(verifier_environment(stack.endpoints)),
        expectations,
        backends=("honeycomb" if otel else "xray",),
    )
    config = SamplingConfig(
        otel_sampler=otel[0] if otel else None,
        otel_sampler_arg=otel[1] if otel else None,
        xray_rules=expect,
        xray_rules_source="test",
        app_processes=WORKERS,
    )
    attach(verifiers, config)
    [report] = verify_run(sent, window, verifiers, expectations, WaitSettings(settle_s=2, deadline_s=40), _quiet)
    return report


def _quiet(backend: str, message: str) -> None:
    return None


def _sampling_checks(report: BackendReport) -> dict[str, dict[str, str]]:
    return {c.name: {"status": c.status, "detail": c.detail} for c in report.checks if "sampling" in c.name}


@pytest.mark.parametrize(("reservoir", "rate"), [(5, 0.1), (1, 0.05), (0, 1.0), (0, 0.0)])
def test_each_rule_passes_with_the_numbers_it_implies(
    stack: tuple[LocalStack, Path], tmp_path: Path, reservoir: int, rate: float
) -> None:
    local_stack, rules = stack
    _serve(rules, centralized(reservoir, rate))
    report = _drill(local_stack, tmp_path, {}, centralized(reservoir, rate))
    checks = _sampling_checks(report)
    count = next(c for name, c in checks.items() if "sampled count" in name)
    if reservoir > 0:
        # A 4 s drill ends before the SDK's first quota arrives (it borrows 1 a second meanwhile), so a
        # reservoir rule samples about as its silent fallback would: the check says it cannot tell.
        assert count["status"] in ("pass", "unverifiable"), checks
        assert count["status"] == "pass" or "too few requests to tell the rule from the SDK's" in count["detail"]
        del checks[next(name for name in checks if "sampled count" in name)]
    assert len(checks) >= 2 and all(c["status"] == "pass" for c in checks.values()), checks
    section = report.sampling["xray"] if report.sampling else {}
    [rule] = section["by_rule"]
    processes = section["processes_seen"]
    assert 1 <= processes <= WORKERS and rule["startup_samples"] == processes
    requests, observed = section["requests"], section["observed"]
    assert requests > 20 and section["interval"][0] <= observed <= section["interval"][1]
    if rate == 1.0:  # everything, except requests decided by the built-in rule (5 %) while the rules loaded
        assert requests - rule["early_requests"] <= observed <= requests
    if (reservoir, rate) == (0, 0.0):
        # Each process's first request (the SDK's built-in rule), and on a slow start a few more decided by
        # that rule (1 a second + 5 %) before the rules arrived; never one once they did.
        assert processes <= observed <= processes + rule["early_requests"] and section["interval"][0] == processes
    if reservoir > 0 and rate < 1:
        # at most the start-up requests, one borrowed per process and second, plus the fixed rate
        assert observed < requests


def test_an_expectation_that_differs_from_the_served_rule_fails(stack: tuple[LocalStack, Path], tmp_path: Path) -> None:
    local_stack, rules = stack
    _serve(rules, centralized(1, 0.05))
    report = _drill(local_stack, tmp_path, {}, centralized(1, 0.5))
    checks = _sampling_checks(report)
    count = next(c for name, c in checks.items() if "sampled count" in name)
    assert count["status"] == "fail", checks
    assert "OUTSIDE" in count["detail"] and "fewer than expected" in count["detail"]
    section = report.sampling["xray"] if report.sampling else {}
    assert section["verdict"] == "fail" and section["observed"] < section["interval"][0]


def test_per_process_local_reservoirs_fail_a_shared_quota_expectation(
    stack: tuple[LocalStack, Path], tmp_path: Path
) -> None:
    """The reservoir multiplied by the worker count: local rules give every process its own 5/s."""
    rules_file = tmp_path / "local-rules.json"
    rules_file.write_text(json.dumps(local_rules(5, 0.0)))
    app_env = {"TRACEDRILL_XRAY_SAMPLING": "local", "TRACEDRILL_XRAY_LOCAL_RULES": str(rules_file)}
    report = _drill(stack[0], tmp_path / "run", app_env, centralized(5, 0.0))
    checks = _sampling_checks(report)
    failed = {name for name, c in checks.items() if c["status"] == "fail"}
    assert any("sampled count" in name for name in failed), checks
    section = report.sampling["xray"] if report.sampling else {}
    assert section["observed"] > section["interval"][1]


def test_a_traceidratio_sampler_keeps_exactly_the_traces_it_must(
    stack: tuple[LocalStack, Path], tmp_path: Path
) -> None:
    """The generator's traceparent is continued (its trace ids) but its sampled flag is ignored."""
    app_env = {"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.5"}
    report = _drill(stack[0], tmp_path, app_env, otel=("traceidratio", 0.5))
    otel = report.sampling["otel"] if report.sampling else {}
    assert (
        otel["verdict"] == "pass" and otel["kept_but_should_have_dropped"] == otel["dropped_but_should_have_kept"] == 0
    )
    assert 0 < otel["expected"] == otel["observed"] < otel["decided"]
    assert otel["traceparent"] == "sampled" and otel["app_traceresponse_disagrees"] == 0
    # Honeycomb expects spans only for the kept traces: nothing missing, every check passes.
    assert report.missing == 0 and all(c.status == "pass" for c in report.checks), [
        (c.name, c.detail) for c in report.checks if c.status != "pass"
    ]


def test_the_run_command_reports_sampling_and_verify_rechecks_it_the_same_way(tmp_path: Path) -> None:
    """`tracedrill run --xray-rule --otel-sampler parentbased_traceidratio`: the root sampler decides (no
    traceparent), summary.json has the sampling section, report.html its chart, run.json the configuration."""
    rule = tmp_path / "rule.json"
    rule.write_text(json.dumps(centralized(1, 0.5)))  # far enough from the SDK's fallback to tell in 5 s
    reports = tmp_path / "reports"
    common = ["--settle", "3", "--reports-dir", str(reports)]
    proc = _tracedrill(
        "run", "--run-time", "5s", "--users", "10", "--spawn-rate", "20", "--no-budget", "--xray-rule", str(rule),
        "--otel-sampler", "parentbased_traceidratio", "--otel-sampler-arg", "0.25", *common, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    run_dir = (reports / "latest").resolve()
    summary = json.loads((run_dir / "summary.json").read_text())
    otel, xray = summary["sampling"]["otel"], summary["sampling"]["xray"]
    assert otel["traceparent"] == "none" and "root sampler" in otel["mode"]
    assert otel["verdict"] == "pass" and otel["undecidable"] == 0 and 0 < otel["observed"] == otel["expected"]
    assert summary["backends"]["honeycomb"]["missing"] == 0
    assert xray["verdict"] == "pass" and xray["configured"]["rules"][0]["reservoir"] == 1
    assert xray["interval"][0] <= xray["observed"] <= xray["interval"][1]
    assert {"sampled", "sent", "low", "high"} <= set(xray["per_second"][0])
    record = json.loads((run_dir / "run.json").read_text())
    assert record["sampling"]["otel_sampler"] == "parentbased_traceidratio" and record["sampling"]["xray_rules"]
    html = (run_dir / "report.html").read_text()
    assert "<svg" in html and "X-Ray sampling per second" in html
    sampling_checks = [c for c in summary["checks"] if "sampling" in c["name"].lower()]
    assert len(sampling_checks) == 4 and all(c["status"] == "pass" for c in sampling_checks)

    again = _tracedrill("verify", str(run_dir), *common, cwd=tmp_path)
    assert again.returncode == 0, again.stdout[-4000:]
    rechecked = json.loads(((reports / "latest").resolve() / "summary.json").read_text())["sampling"]
    assert rechecked["otel"]["observed"] == otel["observed"] and rechecked["xray"]["observed"] == xray["observed"]
    assert rechecked["xray"]["configured"]["rules"] == xray["configured"]["rules"]


_tracedrill = run_tracedrill
