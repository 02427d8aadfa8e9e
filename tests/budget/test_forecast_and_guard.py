"""The forecast (locustfile read as text, expectations, history) and the guard that refuses or allows a run."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.verifiers import EXP
from tracedrill import budgeting
from tracedrill.console import Console
from tracedrill.drill import DrillOptions
from tracedrill.loadgen import DEFAULT_LOCUSTFILE, LoadPlan
from verifiers.budget.accounts import LOCAL_ACCOUNT, fingerprint, resolve_accounts
from verifiers.budget.allowances import BudgetConfigError, load_budget_config, parse_quantity
from verifiers.budget.book import BudgetExceeded, Plan, check, preflight
from verifiers.budget.forecast import ASSUMED_LOG_LINE_BYTES, forecast_requests, from_expectations, from_history
from verifiers.budget.ledger import BudgetLedger, RunEntry
from verifiers.budget.traffic import LocustfileTraffic, PlannedRoute, read_locustfile
from verifiers.connections import Connections
from verifiers.expectations import load_expectations

NOW = datetime(2026, 12, 10, tzinfo=UTC).timestamp()
REPO = Path(__file__).resolve().parents[2]


def locustfile(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "locustfile.py"
    path.write_text(body)
    return path


def test_the_locustfile_is_read_as_text_routes_weights_statuses_and_wait_time(tmp_path: Path):
    path = locustfile(
        tmp_path,
        "from locust import HttpUser, between\n"
        "ROUTES = (Route('home', '/api/activities/home', 6, 200), Route(name='fault', path='/api/fault', weight=1,"
        " expected_status=500), Route('health', '/api/health', 2))\n"
        "class U(HttpUser):\n    wait_time = between(0.5, 1.5)\n",
    )
    traffic = read_locustfile(path)
    assert traffic.routes == (
        PlannedRoute("home", "/api/activities/home", 6, 200),
        PlannedRoute("fault", "/api/fault", 1, 500),
        PlannedRoute("health", "/api/health", 2, 200),
    )
    assert traffic.requests_per_user_s == pytest.approx(1.0) and traffic.wait_time == "between(0.5, 1.5)"
    for wait, rate in (("constant(2)", 0.5), ("constant_pacing(0.25)", 4.0), ("constant_throughput(3)", 3.0)):
        assert read_locustfile(locustfile(tmp_path, f"wait_time = {wait}\n")).requests_per_user_s == rate
    assert read_locustfile(locustfile(tmp_path, "wait_time = my_wait()\n")).requests_per_user_s is None
    assert read_locustfile(locustfile(tmp_path, "this is not python")).routes == ()
    # The bundled locustfile, never imported (Locust would monkey-patch the test process):
    bundled = read_locustfile(DEFAULT_LOCUSTFILE)
    assert {"home", "fault", "rollbar_test", "user_activities_invalid"} <= {r.name for r in bundled.routes}
    assert {r.name: r.status for r in bundled.routes}["fault"] == 500
    # Read, never run: a file that would blow up on import is still understood.
    exploding = locustfile(tmp_path, "raise RuntimeError('imported!')\nROUTES = [Route('a', '/a', 1)]\n")
    assert read_locustfile(exploding).routes == (PlannedRoute("a", "/a", 1, 200),)


def test_per_request_emission_from_the_expectations_weighted_by_route():
    home = PlannedRoute("home", "/api/activities/home", 3, 200)
    fault = PlannedRoute("fault", "/api/fault", 1, 500)
    only_home = from_expectations("honeycomb", EXP, LocustfileTraffic((home,), None, ""))
    assert only_home.per_request == {"events": 2.0} and not only_home.from_history  # server span + mock-data span
    mixed = LocustfileTraffic((home, fault), None, "")
    # fault: the server span and its exception span event (error status)
    assert from_expectations("honeycomb", EXP, mixed).per_request["events"] == pytest.approx((3 * 2 + 1 * 2) / 4)
    assert from_expectations("rollbar", EXP, mixed).per_request == {"occurrences": pytest.approx(1 / 4)}
    logs = from_expectations("cloudwatch_logs", EXP, mixed).per_request
    assert logs["events_ingested"] == pytest.approx((3 * 2 + 1 * 1) / 4)  # home: access + hello line
    assert logs["bytes_ingested"] == pytest.approx(logs["events_ingested"] * (ASSUMED_LOG_LINE_BYTES + 26))
    assert from_expectations("xray", EXP, mixed).per_request["traces_recorded"] == 1.0  # every request may be sampled


def run(run_id: str, requests: int, users: int, seconds: float, **usage: float) -> RunEntry:
    return RunEntry(run_id, "rollbar", "local", NOW, seconds, requests, users, "p", "measured", usage=usage)


def test_history_beats_assumptions_for_requests_and_per_request_usage():
    traffic = LocustfileTraffic((), 1.0 / 0.6, "between(0.2, 1.0)")
    history = [run("a", 100, 5, 10.0, occurrences=10), run("b", 300, 10, 10.0, occurrences=20)]
    requests = forecast_requests(4, 30.0, history, traffic)
    assert requests.per_user_s == pytest.approx(400 / 150) and requests.requests == pytest.approx(400 / 150 * 120)
    assert forecast_requests(4, 30.0, [], traffic).requests == pytest.approx(4 * 30 / 0.6)
    assert forecast_requests(4, 30.0, [], LocustfileTraffic((), None, "")).requests == 120.0
    emission = from_history(history)
    assert emission is not None and emission.per_request == {"occurrences": pytest.approx(30 / 400)}
    assert from_history([]) is None


def test_allowances_from_defaults_toml_and_flags(tmp_path: Path):
    assert parse_quantity("20M", "x") == 20e6 and parse_quantity("5GB", "x") == 5e9
    assert (
        parse_quantity("5GiB", "x") == 5 * 2**30 and parse_quantity("100k", "x") == 1e5 and parse_quantity(7, "x") == 7
    )
    config_file = tmp_path / "budget.toml"
    config_file.write_text('[allowances]\n"rollbar.occurrences" = "2k"\n[accounts]\nrollbar = "my-project"\n')
    config = load_budget_config(config_file, ["honeycomb.events=1M"])
    assert config.allowance("rollbar.occurrences").limit == 2000
    assert config.allowance("honeycomb.events").limit == 1e6
    assert config.allowance("xray.traces_recorded").limit == 100_000  # untouched default
    assert config.accounts == {"rollbar": "my-project"}
    with pytest.raises(BudgetConfigError, match="did you mean 'rollbar.occurrences'"):
        load_budget_config(None, ["rollbar.ocurrences=5"])
    with pytest.raises(BudgetConfigError, match="not a quantity"):
        load_budget_config(None, ["rollbar.occurrences=lots"])


def test_local_runs_never_share_an_account_with_the_cloud_and_secrets_are_only_hashed():
    assert set(resolve_accounts("local", None, {"rollbar": "my-project"}).values()) == {LOCAL_ACCOUNT}
    cloud = Connections(rollbar_read_token="rb-secret-token", honeycomb_api_key="hc", aws_region="us-east-1")
    accounts = resolve_accounts("cloud", cloud, {"honeycomb": "team-x", "xray": "aws:1", "cloudwatch_logs": "aws:1"})
    assert accounts["rollbar"] == f"rollbar:token-{fingerprint('rb-secret-token')}"
    assert "rb-secret-token" not in accounts["rollbar"] and len(fingerprint("x")) == 12


def test_the_guard_refuses_a_run_past_what_is_left_and_allow_overage_lets_it_through(tmp_path: Path):
    ledger = BudgetLedger(tmp_path / "b.sqlite3")
    config = load_budget_config(None, ["rollbar.occurrences=100"])
    accounts = resolve_accounts("local", None)
    plan = Plan(10, 60.0, read_locustfile(DEFAULT_LOCUSTFILE), "p")
    pre = preflight(ledger, config, accounts, plan, EXP, now=NOW)
    rollbar = next(f for f in pre.forecasts if f.allowance.name == "rollbar.occurrences")
    assert (
        rollbar.forecast > 100 and rollbar.exceeds and [f.allowance.name for f in pre.over] == [rollbar.allowance.name]
    )
    with pytest.raises(BudgetExceeded) as refused:
        check(pre, allow_overage=False, ledger_path=ledger.path)
    message = str(refused.value)
    assert "rollbar occurrences" in message and "exit code 2" in message and "--allow-overage" in message
    check(pre, allow_overage=True, ledger_path=ledger.path)  # no exception: the run goes ahead

    # Usage already recorded this month shrinks what is left: a run that fits alone no longer fits.
    small = Plan(1, 10.0, plan.traffic, "p")
    assert not preflight(ledger, config, accounts, small, EXP, now=NOW).over
    ledger.record(run("earlier", 10, 1, 10.0), {"occurrences": 99}, {}, NOW)
    assert [f.allowance.name for f in preflight(ledger, config, accounts, small, EXP, now=NOW).over] == [
        "rollbar.occurrences"
    ]


def options(tmp_path: Path, *allowances: str, allow_overage: bool = False, run_time: str | None = "1m") -> DrillOptions:
    opts = DrillOptions(plan=LoadPlan(users=10, run_time=run_time))
    opts.budget = budgeting.BudgetOptions(db=tmp_path / "b.sqlite3", allowances=allowances, allow_overage=allow_overage)
    return opts


def test_before_run_refuses_allows_with_overage_and_is_off_without_a_run_time(tmp_path: Path):
    console = Console(open(os.devnull, "w"))
    with pytest.raises(BudgetExceeded):
        budgeting.before_run(options(tmp_path, "honeycomb.events=10"), EXP, None, console)
    allowed = budgeting.before_run(options(tmp_path, "honeycomb.events=10", allow_overage=True), EXP, None, console)
    assert allowed is not None and allowed.preflight is not None and allowed.preflight.over
    until_stopped = budgeting.before_run(options(tmp_path, "honeycomb.events=10", run_time=None), EXP, None, console)
    assert until_stopped is not None and until_stopped.preflight is None
    off = options(tmp_path, "honeycomb.events=10")
    off.budget.enabled = False
    assert budgeting.before_run(off, EXP, None, console) is None


def test_past_the_default_allowances_a_local_run_is_warned_not_refused(tmp_path: Path):
    """The emulators cost nothing: only allowances the user set are enforced on the local stack."""
    huge = options(tmp_path)
    huge.plan = LoadPlan(users=5000, run_time="1h")  # far past Rollbar's default 5,000 occurrences
    warned = budgeting.before_run(huge, EXP, None, Console(open(os.devnull, "w")))
    assert warned is not None and warned.preflight is not None and warned.preflight.over
    enforced = options(tmp_path, "rollbar.occurrences=5000")
    enforced.plan = huge.plan
    with pytest.raises(BudgetExceeded):
        budgeting.before_run(enforced, EXP, None, Console(open(os.devnull, "w")))


def test_tracedrill_run_is_refused_with_exit_2_before_anything_starts_or_any_request_is_sent(tmp_path: Path):
    reports = tmp_path / "reports"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AWS_", "ROLLBAR_", "HONEYCOMB_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "tracedrill.cli", "run", "--run-time", "30s", "--allowance", "rollbar.occurrences=0",
         "--budget-db", str(tmp_path / "b.sqlite3"), "--reports-dir", str(reports)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "budget guard refused the run before sending any request (exit code 2)" in proc.stdout
    assert "rollbar occurrences" in proc.stdout
    # No run directory, so no sent-ledger, no locust.log, no target log: nothing was started or sent.
    assert not reports.exists()
    assert "Locust:" not in proc.stdout and "starting the" not in proc.stdout


def test_locusts_own_run_time_after_the_separator_is_the_one_the_guard_plans_with(tmp_path: Path):
    # `--run-time 1s -- -t 10m` runs ten minutes: the guard must forecast ten minutes, not one second.
    reports = tmp_path / "reports"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AWS_", "ROLLBAR_", "HONEYCOMB_"))}
    proc = subprocess.run(
        [sys.executable, "-m", "tracedrill.cli", "run", "--run-time", "1s", "--allowance", "rollbar.occurrences=50",
         "--budget-db", str(tmp_path / "b.sqlite3"), "--reports-dir", str(reports), "--", "-t", "10m", "-u", "20"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "budget guard refused the run" in proc.stdout and not reports.exists()


def test_a_locustfile_of_plain_tasks_is_read_and_forecast_at_each_routes_costliest_status():
    # An app's own locustfile (no Route() calls): its @task methods, their weights, paths and methods.
    traffic = read_locustfile(REPO / "tests" / "fixtures" / "other_locustfile.py")
    assert traffic.routes == (
        PlannedRoute("list_orders", "/orders", 3, None, "GET"),
        PlannedRoute("get_order", "/orders/1001", 2, None, "GET"),
        PlannedRoute("get_missing_order", "/orders/9999", 1, None, "GET"),
        PlannedRoute("create_order", "/orders", 1, None, "POST"),
        PlannedRoute("boom", "/boom", 1, None, "GET"),
    )
    orders = load_expectations(REPO / "tests" / "fixtures" / "other_app.toml")
    rollbar = from_expectations("rollbar", orders, traffic)
    # /boom reports an error whatever the locustfile says it answers: the forecast is never 0 for it
    assert rollbar.per_request["occurrences"] > 0 and "costliest status" in rollbar.basis
    # what a route answers, when written (Route(..., 200)), is taken as is
    known = LocustfileTraffic((PlannedRoute("home", "/api/activities/home", 1, 200),), None, "")
    unknown = LocustfileTraffic((PlannedRoute("home", "/api/activities/home", 1, None),), None, "")
    assert from_expectations("rollbar", EXP, known).per_request == {"occurrences": 0.0}
    assert from_expectations("honeycomb", EXP, unknown).per_request["events"] >= 2.0
