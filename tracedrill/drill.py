"""`tracedrill run` and `tracedrill verify`: the main job, step by step.

start backends -> start target -> Locust -> stop target (flushes the SDKs) -> poll + verify
-> summary.json, junit.xml, report.html -> stop what we started. Each step says what it does.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from emulators.stack import (
    LocalStack,
    StackConfig,
    StackEndpoints,
    app_environment,
    served_rules,
    verifier_environment,
)
from loadtests.ledger import LedgerWriter, ledger_path
from target_app.faults import CORRECT, FAULT_ENV, PROFILES
from target_app.server import TargetProcess, TargetStartError, start_target
from tracedrill import budgeting, local
from tracedrill.console import Console
from tracedrill.loadgen import LoadPlan, run_locust
from tracedrill.probe import recorded_probe
from tracedrill.rundir import RUN_FILE, RunRecord, create_run_dir, new_run_id
from tracedrill.sampling import SamplingOptions, SamplingPlan, SamplingSetupError, plan_sampling
from verifiers.base import RunWindow, Verifier, make_verifiers
from verifiers.budget.allowances import BudgetConfigError
from verifiers.budget.book import BudgetExceeded
from verifiers.connections import Connections
from verifiers.expectations import DEFAULT_EXPECTATIONS, Expectations, ServiceNames, load_expectations
from verifiers.model import Backend, BackendReport, SentRequest, read_ledger
from verifiers.polling import PollResult, WaitSettings
from verifiers.sampling.config import SamplingConfig, attach, sampling_section
from verifiers.summary import build_summary, console_table, failing_checks, write_summary
from verifiers.verify import verify_run

# Exit codes (documented in --help): the CI contract.
EXIT_PASS, EXIT_FAIL, EXIT_USAGE = 0, 1, 2

# Items carry the time they were emitted; widen the query window so clock skew and batching
# delays never push a real item outside it. Extras are still decided by id, not by time; a short
# lead keeps the traffic just before the run (another drill, a manual request) out of the window.
WINDOW_BEFORE_S = 1.0
MAX_APP_WORKERS = 64
WINDOW_AFTER_S = 60.0
# Honeycomb queries reach back 7 days at most: a longer run cannot be verified, and a window of years (a
# time in milliseconds) would be millions of reads.
MAX_RUN_SPAN_S = 7 * 86400


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
    fail_on_unverifiable: bool = True  # unverifiable is not passed: exit 1 unless --allow-unverifiable
    quiet: bool = False
    budget: budgeting.BudgetOptions = field(default_factory=budgeting.BudgetOptions)
    fault: str = CORRECT  # a target_app.faults profile the bundled target runs (never with --target)
    # backends "stack": a local stack that is already running (`tracedrill stack up`, tracedrill mutants)
    stack: StackEndpoints | None = None
    stack_dir: Path | None = None  # its data directory (for `tracedrill verify` later)
    # Run the bundled target and verify under these names instead of the expectations' [service] ones
    # (keeps runs apart on a shared stack).
    names: ServiceNames | None = None
    pytest_reports: bool = True  # junit.xml and report.html (a pytest run of their own)
    sampling: SamplingOptions = field(default_factory=SamplingOptions)  # the sampling under test (issue 5)


@contextlib.contextmanager
def _local_stack(
    data_dir: Path, plan: str, console: Console, sampling_rules: Path | None = None
) -> Iterator[LocalStack]:
    config = StackConfig(data_dir=data_dir, ports=local.LocalPorts.ephemeral(), honeycomb_plan=plan)
    if sampling_rules is not None:  # --xray-rule: what the X-Ray emulator serves the app
        config.sampling_rules = sampling_rules
    stack = LocalStack(config)
    console.step(f"starting the local backends (data in {data_dir})")
    stack.start()
    try:
        yield stack
    finally:
        console.step("stopping the local backends")
        stack.stop()


@dataclass
class DrillSession:
    """What a drill has running before load starts: its run directory, the backends and the target."""

    run_dir: Path
    record: RunRecord
    expectations: Expectations
    connections: Connections
    target: TargetProcess | None = None
    budget: budgeting.DrillBudget | None = None  # the budget guard's forecast, recorded with the run's usage
    locust_env: dict[str, str] = field(default_factory=dict)  # added to Locust's environment (sampling mode)

    def stop_target(self, console: Console) -> None:
        if self.target is not None and self.target.running():
            console.step("stopping the target app (its SDKs flush on shutdown)")
            self.target.stop()


class VerificationObserver(Protocol):
    """Watches a verification while it polls (the web UI's Verification tab)."""

    def watch(
        self, verifiers: list[Verifier[Any]], sent: Sequence[SentRequest], expectations: Expectations
    ) -> list[Verifier[Any]]: ...

    def progress(self, backend: Backend, message: str) -> None: ...


@contextlib.contextmanager
def drill_session(options: DrillOptions, console: Console) -> Iterator[DrillSession]:
    """The run directory, the backends and the bundled target, shared by `run` and `ui`; stops what it started."""
    _validate(options)
    expectations = _load_expectations(options.expectations)
    budget = _budget_guard(options, expectations, console)  # before anything starts or any request is sent
    sampling = _sampling_plan(options)
    # Cloud credentials are checked before the run directory exists: a config error leaves nothing behind.
    cloud_connections = _cloud_connections() if options.backends == "cloud" else None
    run_id = new_run_id()
    try:
        run_dir = create_run_dir(options.reports_dir, run_id)
    except OSError as exc:
        raise UsageError(f"--reports-dir {options.reports_dir}: cannot create the run directory ({exc})") from exc
    console.step(f"run {run_id}: reports in {run_dir}")
    names = options.names or expectations.service
    record = RunRecord(
        run_id=run_id,
        backends=options.backends,
        target_url=options.target or "",
        started_target=options.target is None,
        service_name=names.name,
        log_group=names.log_group,
        rollbar_environment=names.rollbar_environment,
        expectations=str(options.expectations.resolve()),
        honeycomb_plan=options.honeycomb_plan,
        load={
            "users": options.plan.users,
            "spawn_rate": options.plan.spawn_rate,
            "run_time": options.plan.run_time,
            "locustfile": str(options.plan.locustfile),
            "extra_args": list(options.plan.extra_args),
            "processes": options.plan.processes,
        },
        local_data_dir="local-backends" if options.backends == "local" else None,
        stack_dir=str(options.stack_dir.resolve()) if options.stack_dir else None,
        sampling=sampling.config.to_dict(),
    )
    with contextlib.ExitStack() as stack:
        if options.backends == "local":
            local_stack = stack.enter_context(
                _local_stack(run_dir / "local-backends", options.honeycomb_plan, console, sampling.stack_rules)
            )
            app_env = {**os.environ, **app_environment(local_stack.endpoints)}
            connections = Connections.from_env(verifier_environment(local_stack.endpoints))
        elif options.stack is not None:
            app_env = {**os.environ, **app_environment(options.stack)}
            connections = Connections.from_env(verifier_environment(options.stack))
        else:
            assert cloud_connections is not None
            app_env = dict(os.environ)
            connections = cloud_connections
        if options.disable:
            app_env["TRACEDRILL_DISABLE"] = ",".join(options.disable)
        app_env[FAULT_ENV] = options.fault
        if options.names is not None:
            app_env.update(_name_environment(options.names))
        app_env.update(sampling.app_env)
        session = DrillSession(run_dir, record, expectations, connections, budget=budget)
        session.locust_env = sampling.locust_env
        if options.target is None:
            session.target = _start_target(app_env, options.app_workers, run_dir, console, sampling.traceparent)
            stack.callback(session.stop_target, console)  # after an error too; a run stops it earlier to flush
            record.target_url = session.target.url
        record.load_start = time.time()
        record.save(run_dir)
        yield session


def run_drill(options: DrillOptions, console: Console) -> int:
    """The whole `tracedrill run`; returns the exit code."""
    with drill_session(options, console) as session:
        record, run_dir = session.record, session.run_dir
        plan = options.plan
        where = f" on a Locust master and {plan.processes} workers" if plan.processes > 1 else ""
        console.step(
            f"Locust: {plan.users} users, spawn rate {plan.spawn_rate}/s, "
            f"{plan.run_time} against {record.target_url}{where}"
        )
        locust_env = {**os.environ, **session.locust_env} if session.locust_env else None
        code = run_locust(plan, record.target_url, run_dir, console, env=locust_env)
        record.load_end = time.time()
        session.stop_target(console)
        record.save(run_dir)
        if code != 0:
            console.out(f"Locust exited with code {code}; see {run_dir / 'locust.log'}")
            return EXIT_USAGE
        return verify_session(session, options, console)
    raise AssertionError("unreachable")  # pragma: no cover - ExitStack does not swallow exceptions


def verify_session(
    session: DrillSession, options: DrillOptions, console: Console, observer: VerificationObserver | None = None
) -> int:
    """Verify what the session sent so far and write the reports; the exit code of the verdict."""
    return _verify_and_report(
        session.run_dir, session.record, session.connections, session.expectations, options, console, observer,
        budget=session.budget,
    )  # fmt: skip


def reverify(run_dir: Path, options: DrillOptions, console: Console) -> int:
    """`tracedrill verify reports/<run-id>`: verify a finished run again, sending no load."""
    record = RunRecord.load_from(run_dir)
    # The file the run was verified with: moved or edited since, it is reported as run.json's, not a flag's.
    expectations = _load_expectations(Path(record.expectations), f"{run_dir / RUN_FILE} names expectations")
    if record.backends in ("local", "stack"):
        data_dir = run_dir / record.local_data_dir if record.local_data_dir else None
        if record.backends == "stack":  # reopen that stack's data (it may still be running: SQLite allows both)
            data_dir = Path(record.stack_dir) if record.stack_dir else None
        if data_dir is None:
            raise UsageError(f"{run_dir}/run.json names no local data directory")
        if not data_dir.is_dir():  # reopening it would verify an empty, new stack: every item "missing"
            raise UsageError(
                f"{run_dir / RUN_FILE} names the data directory {data_dir}, which is gone: the telemetry "
                "this run wrote is not there to verify any more"
            )
        # The same sampling rules as when the data was written: GetSamplingRules is part of what is verified.
        with _local_stack(data_dir, record.honeycomb_plan, console, served_rules(data_dir)) as local_stack:
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
    observer: VerificationObserver | None = None,
    budget: budgeting.DrillBudget | None = None,
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
    verifiers = make_verifiers(connections, expectations, min_intervals_s=options.wait.backend_intervals_s)
    attach(verifiers, SamplingConfig.from_dict(record.sampling) if record.sampling is not None else None)
    if observer is not None:
        verifiers = observer.watch(verifiers, sent, expectations)

    def progress(backend: Backend, message: str) -> None:
        console.step(f"{backend}: {message}")
        if observer is not None:
            observer.progress(backend, message)

    polled: list[PollResult] = []  # every backend's polls, with the cost of all of them: the budget ledger
    reports = verify_run(sent, window, verifiers, expectations, options.wait, progress, on_polled=polled.append)
    spent = budgeting.after_verify(budget, options, record, sent, polled, expectations, connections, console)
    return _write_reports(run_dir, record, sent, reports, options, console, spent)


def _window(record: RunRecord, sent: list[SentRequest]) -> RunWindow:
    start = min(min(s.start for s in sent), record.load_start or float("inf"))
    end = max(max(s.end for s in sent), record.load_end)
    if not end - start <= MAX_RUN_SPAN_S:  # also catches a NaN or infinite time
        raise UsageError(
            f"the run spans {end - start:,.0f} s (from the sent-ledger's times and run.json's load_start/load_end), "
            f"more than the {MAX_RUN_SPAN_S // 86400} days a verification reads; one of those times is wrong"
        )
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
    budget: dict[str, Any] | None = None,  # the budget section (None: budget off)
) -> int:
    summary = build_summary(
        record.run_id,
        sent,
        reports,
        options.fail_on_unverifiable,
        extra={
            "backends_mode": record.backends,
            "target": record.target_url,
            **({"budget": budget} if budget else {}),
            **_sampling_extra(record, reports),
        },
    )
    write_summary(run_dir / "summary.json", summary)
    if options.pytest_reports:
        _pytest_reports(run_dir, console)
    console.out("")
    console.out(console_table(reports))
    if budget:
        console.out("")
        console.out(budgeting.budget_text(budget))
    problems = failing_checks(summary)
    if problems:
        console.out("")
        for line in problems:
            console.out(line)
    console.out(f"\nverdict: {summary['verdict'].upper()}  reports: {run_dir}")
    return EXIT_PASS if summary["verdict"] == "pass" else EXIT_FAIL


def _pytest_reports(run_dir: Path, console: Console) -> None:
    """junit.xml and report.html come from real pytest, one item per check."""
    run_dir = run_dir.resolve()  # pytest runs inside run_dir: a relative path (the default reports/) would miss
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


def _start_target(
    env: Mapping[str, str], workers: int, run_dir: Path, console: Console, traceparent: bool = True
) -> TargetProcess:
    console.step(f"starting the target app under gunicorn ({workers} workers)")
    with LedgerWriter(ledger_path(run_dir, "readiness-probe")) as ledger:
        probe = recorded_probe(ledger, traceparent=traceparent)
        try:
            target = start_target(env, port=0, workers=workers, log_path=run_dir / "target.log", probe=probe)
        except TargetStartError as exc:  # most often a bad setting in the app's environment: say which
            raise UsageError(f"the target app did not start: {exc}") from exc
    console.step(f"target app ready at {target.url}")
    return target


def _name_environment(names: ServiceNames) -> dict[str, str]:
    """The bundled target's variables for its service name, log group and Rollbar environment."""
    return {
        "OTEL_SERVICE_NAME": names.name,
        "AWS_XRAY_TRACING_NAME": names.name,
        "CLOUDWATCH_LOG_GROUP": names.log_group,
        "ROLLBAR_ENVIRONMENT": names.rollbar_environment,
    }


def _cloud_connections() -> Connections:
    from verifiers.connections import ConfigError

    try:
        return Connections.from_env(os.environ)
    except ConfigError as exc:
        raise UsageError(str(exc)) from exc


def _budget_guard(options: DrillOptions, expectations: Expectations, console: Console) -> budgeting.DrillBudget | None:
    """The budget guard (see tracedrill/budgeting.py): a refusal is a usage error, exit code 2."""
    try:
        return budgeting.before_run(options, expectations, _cloud_connections, console)
    except (BudgetExceeded, BudgetConfigError) as exc:
        raise UsageError(str(exc)) from exc
    except (OSError, sqlite3.Error) as exc:
        raise UsageError(
            f"the budget ledger {options.budget.ledger_path()} cannot be used ({exc}); "
            "choose another with --budget-db PATH, or run without the budget (--no-budget)"
        ) from exc


def _sampling_plan(options: DrillOptions) -> SamplingPlan:
    try:
        return plan_sampling(
            options.sampling,
            backends=options.backends if options.stack is None else "stack",
            bundled_target=options.target is None,
            app_workers=options.app_workers,
            environ=os.environ,
        )
    except SamplingSetupError as exc:
        raise UsageError(str(exc)) from exc


def _sampling_extra(record: RunRecord, reports: Sequence[BackendReport]) -> dict[str, Any]:
    """summary.json "sampling", when a sampling check ran."""
    entries = [(r.backend, r.sampling) for r in reports if r.sampling]
    if not entries:
        return {}
    config = SamplingConfig.from_dict(record.sampling) if record.sampling is not None else None
    return {"sampling": sampling_section(config, entries)}


def _load_expectations(path: Path, source: str = "--expect") -> Expectations:
    """The expectations file ``source`` (the flag, or the run record that named it) points at."""
    try:
        return load_expectations(path)
    except FileNotFoundError as exc:
        raise UsageError(f"{source} {path}: file not found") from exc
    except IsADirectoryError as exc:
        raise UsageError(f"{source} {path}: is a directory; give the expectations TOML file") from exc
    except ValueError as exc:
        raise UsageError(f"{source} {path}: {exc}") from exc


def _validate(options: DrillOptions) -> None:
    try:
        options.plan.validate()
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    if options.backends not in ("local", "cloud", "stack"):
        raise UsageError(f"--backends must be 'local', 'cloud' or 'stack', got {options.backends!r}")
    if options.backends == "stack" and options.stack is None:
        raise UsageError("--backends stack needs a running `tracedrill stack up` (see --stack-dir)")
    if options.backends == "local" and options.target is not None:
        raise UsageError(
            "--target with --backends local: an app that is already running cannot know the ports of the "
            "backends this run would start; run `tracedrill stack up`, start the app with the environment it "
            "prints, then `tracedrill run --target URL --backends stack`"
        )
    if options.fault not in PROFILES:
        raise UsageError(f"--fault {options.fault!r} is not a fault profile; valid profiles are {', '.join(PROFILES)}")
    if options.fault != CORRECT and options.target is not None:
        raise UsageError(
            f"--fault {options.fault} changes the bundled target app; an app at --target was not started by "
            "tracedrill, so it cannot run a fault profile (leave out --target, or --fault)"
        )
    if not 1 <= options.app_workers <= MAX_APP_WORKERS:
        raise UsageError(f"--app-workers must be between 1 and {MAX_APP_WORKERS}, got {options.app_workers}")
    unknown = set(options.disable) - {"otel", "xray", "cloudwatch", "rollbar"}
    if unknown:
        raise UsageError(f"--disable takes otel, xray, cloudwatch, rollbar; unknown: {', '.join(sorted(unknown))}")
