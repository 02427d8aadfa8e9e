"""`tracedrill run` and `tracedrill verify`: the main job, step by step.

start backends -> start target -> Locust -> stop target (flushes the SDKs) -> poll + verify
-> summary.json, junit.xml, report.html -> stop what we started. Each step says what it does.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from emulators.stack import LocalStack, StackConfig, app_environment, verifier_environment
from loadtests.ledger import LedgerWriter, ledger_path
from target_app.server import TargetProcess, start_target
from tracedrill import local
from tracedrill.console import Console
from tracedrill.loadgen import LoadPlan, run_locust
from tracedrill.probe import recorded_probe
from tracedrill.rundir import RunRecord, create_run_dir, new_run_id
from verifiers.base import RunWindow, make_verifiers
from verifiers.connections import Connections
from verifiers.expectations import DEFAULT_EXPECTATIONS, Expectations, load_expectations
from verifiers.model import BackendReport, SentRequest, read_ledger
from verifiers.polling import WaitSettings
from verifiers.summary import build_summary, console_table, failing_checks, write_summary
from verifiers.verify import verify_run

# Exit codes (documented in --help): the CI contract.
EXIT_PASS, EXIT_FAIL, EXIT_USAGE = 0, 1, 2

# Items carry the time they were emitted; widen the query window so clock skew and batching
# delays never push a real item outside it. Extras are still decided by id, not by time.
WINDOW_BEFORE_S = 5.0
WINDOW_AFTER_S = 60.0


class UsageError(Exception):
    """Bad flags or configuration: exit code 2, with a message naming the setting and the fix."""


@dataclass
class DrillOptions:
    plan: LoadPlan = field(default_factory=LoadPlan)
    backends: str = "local"  # "local": the embedded emulators; "cloud": the real services from the environment
    target: str | None = None  # URL of an app already running; None starts the bundled target
    expectations: Path = DEFAULT_EXPECTATIONS
    reports_dir: Path = Path("reports")
    wait: WaitSettings = field(default_factory=WaitSettings)
    app_workers: int = 2
    disable: tuple[str, ...] = ()  # instrumentations to switch off in the bundled target
    honeycomb_plan: str = "enterprise"
    fail_on_unverifiable: bool = False
    quiet: bool = False


@contextlib.contextmanager
def _local_stack(data_dir: Path, plan: str, console: Console) -> Iterator[LocalStack]:
    stack = LocalStack(StackConfig(data_dir=data_dir, ports=local.LocalPorts.ephemeral(), honeycomb_plan=plan))
    console.step(f"starting the local backends (data in {data_dir})")
    stack.start()
    try:
        yield stack
    finally:
        console.step("stopping the local backends")
        stack.stop()


def run_drill(options: DrillOptions, console: Console) -> int:
    """The whole `tracedrill run`; returns the exit code."""
    _validate(options)
    expectations = _load_expectations(options.expectations)
    run_id = new_run_id()
    run_dir = create_run_dir(options.reports_dir, run_id)
    console.step(f"run {run_id}: reports in {run_dir}")
    record = RunRecord(
        run_id=run_id,
        backends=options.backends,
        target_url=options.target or "",
        started_target=options.target is None,
        service_name=expectations.service.name,
        log_group=expectations.service.log_group,
        rollbar_environment=expectations.service.rollbar_environment,
        expectations=str(options.expectations.resolve()),
        honeycomb_plan=options.honeycomb_plan,
        load={
            "users": options.plan.users,
            "spawn_rate": options.plan.spawn_rate,
            "run_time": options.plan.run_time,
            "locustfile": str(options.plan.locustfile),
            "extra_args": list(options.plan.extra_args),
        },
        local_data_dir="local-backends" if options.backends == "local" else None,
    )
    with contextlib.ExitStack() as stack:
        if options.backends == "local":
            local_stack = stack.enter_context(_local_stack(run_dir / "local-backends", options.honeycomb_plan, console))
            app_env = {**os.environ, **app_environment(local_stack.endpoints)}
            connections = Connections.from_env(verifier_environment(local_stack.endpoints))
        else:
            app_env = dict(os.environ)
            connections = _cloud_connections()
        if options.disable:
            app_env["TRACEDRILL_DISABLE"] = ",".join(options.disable)
        target = None
        if options.target is None:
            target = _start_target(app_env, options.app_workers, run_dir, console)
            record.target_url = target.url
        record.load_start = time.time()
        record.save(run_dir)
        console.step(
            f"Locust: {options.plan.users} users, spawn rate {options.plan.spawn_rate}/s, "
            f"{options.plan.run_time} against {record.target_url}"
        )
        code = run_locust(options.plan, record.target_url, run_dir, console)
        record.load_end = time.time()
        if target is not None:
            console.step("stopping the target app (its SDKs flush on shutdown)")
            target.stop()
        record.save(run_dir)
        if code != 0:
            console.out(f"Locust exited with code {code}; see {run_dir / 'locust.log'}")
            return EXIT_USAGE
        return _verify_and_report(run_dir, record, connections, expectations, options, console)
    raise AssertionError("unreachable")  # pragma: no cover - ExitStack does not swallow exceptions


def reverify(run_dir: Path, options: DrillOptions, console: Console) -> int:
    """`tracedrill verify reports/<run-id>`: verify a finished run again, sending no load."""
    record = RunRecord.load_from(run_dir)
    expectations = _load_expectations(Path(record.expectations))
    if record.backends == "local":
        if record.local_data_dir is None:
            raise UsageError(f"{run_dir}/run.json names no local data directory")
        with _local_stack(run_dir / record.local_data_dir, record.honeycomb_plan, console) as local_stack:
            connections = Connections.from_env(verifier_environment(local_stack.endpoints))
            return _verify_and_report(run_dir, record, connections, expectations, options, console)
    return _verify_and_report(run_dir, record, _cloud_connections(), expectations, options, console)


def _verify_and_report(
    run_dir: Path,
    record: RunRecord,
    connections: Connections,
    expectations: Expectations,
    options: DrillOptions,
    console: Console,
) -> int:
    sent = read_ledger(run_dir)
    console.step(
        f"sent-ledger: {len(sent)} requests; verifying (settle {options.wait.settle_s:.0f}s, "
        f"deadline {options.wait.deadline_s:.0f}s)"
    )
    if not sent:
        console.out("no requests were recorded in the sent-ledger: nothing to verify")
        return EXIT_FAIL
    window = _window(record, sent)
    reports = verify_run(
        sent,
        window,
        make_verifiers(connections, expectations),
        expectations,
        options.wait,
        lambda backend, msg: console.step(f"{backend}: {msg}"),
    )
    return _write_reports(run_dir, record, sent, reports, options, console)


def _window(record: RunRecord, sent: list[SentRequest]) -> RunWindow:
    start = min(min(s.start for s in sent), record.load_start or float("inf"))
    end = max(max(s.end for s in sent), record.load_end)
    return RunWindow(
        run_id=record.run_id,
        start=start - WINDOW_BEFORE_S,
        end=end + WINDOW_AFTER_S,
        service_name=record.service_name,
        log_group=record.log_group,
        rollbar_environment=record.rollbar_environment,
    )


def _write_reports(
    run_dir: Path,
    record: RunRecord,
    sent: list[SentRequest],
    reports: list[BackendReport],
    options: DrillOptions,
    console: Console,
) -> int:
    summary = build_summary(
        record.run_id,
        sent,
        reports,
        options.fail_on_unverifiable,
        extra={"backends_mode": record.backends, "target": record.target_url},
    )
    write_summary(run_dir / "summary.json", summary)
    _pytest_reports(run_dir, console)
    console.out("")
    console.out(console_table(reports))
    problems = failing_checks(reports)
    if problems:
        console.out("")
        for line in problems:
            console.out(line)
    console.out(f"\nverdict: {summary['verdict'].upper()}  reports: {run_dir}")
    return EXIT_PASS if summary["verdict"] == "pass" else EXIT_FAIL


def _pytest_reports(run_dir: Path, console: Console) -> None:
    """junit.xml and report.html come from real pytest, one item per check."""
    command = [
        sys.executable, "-m", "pytest", str(run_dir / "summary.json"),
        "-p", "verifiers.pytest_plugin", "-p", "no:cacheprovider",
        "--rootdir", str(run_dir), "-c", os.devnull, "-q", "--no-header",
        "--junitxml", str(run_dir / "junit.xml"), "-o", "junit_suite_name=tracedrill",
        "--html", str(run_dir / "report.html"), "--self-contained-html",
    ]  # fmt: skip
    with (run_dir / "pytest.log").open("w", encoding="utf-8") as log:
        code = subprocess.call(command, stdout=log, stderr=subprocess.STDOUT, cwd=run_dir)
    # pytest exits 1 when a check failed: expected. Anything above means the report itself broke.
    if code > 1:
        console.out(f"pytest could not write the reports (exit {code}); see {run_dir / 'pytest.log'}")


def _start_target(env: Mapping[str, str], workers: int, run_dir: Path, console: Console) -> TargetProcess:
    console.step(f"starting the target app under gunicorn ({workers} workers)")
    with LedgerWriter(ledger_path(run_dir, "readiness-probe")) as ledger:
        target = start_target(
            env, port=0, workers=workers, log_path=run_dir / "target.log", probe=recorded_probe(ledger)
        )
    console.step(f"target app ready at {target.url}")
    return target


def _cloud_connections() -> Connections:
    from verifiers.connections import ConfigError

    try:
        return Connections.from_env(os.environ)
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc


def _load_expectations(path: Path) -> Expectations:
    try:
        return load_expectations(path)
    except FileNotFoundError as exc:
        raise UsageError(f"--expect {path}: file not found") from exc
    except ValueError as exc:
        raise UsageError(f"--expect {path}: {exc}") from exc


def _validate(options: DrillOptions) -> None:
    try:
        options.plan.validate()
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if options.backends not in ("local", "cloud"):
        raise UsageError(f"--backends must be 'local' or 'cloud', got {options.backends!r}")
    if options.app_workers < 1:
        raise UsageError(f"--app-workers must be at least 1, got {options.app_workers}")
    unknown = set(options.disable) - {"otel", "xray", "cloudwatch", "rollbar"}
    if unknown:
        raise UsageError(f"--disable takes otel, xray, cloudwatch, rollbar; unknown: {', '.join(sorted(unknown))}")
