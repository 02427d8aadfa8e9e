"""The free-tier budget around a drill: the guard before anything starts, the ledger entry after verifying.

``before_run`` runs before the local backends, the target app or Locust start: a refused run sends
nothing and leaves no run directory. ``after_verify`` records what every backend accepted and what the
verifier's own reads cost, and returns the ``budget`` section of summary.json (its table ends the run).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tracedrill.console import Console
from tracedrill.loadgen import parse_timespan
from verifiers.budget.accounts import resolve_accounts
from verifiers.budget.allowances import BudgetConfig, load_budget_config
from verifiers.budget.book import Plan, Preflight, RunFacts, check, preflight, record_run
from verifiers.budget.ledger import BudgetLedger, default_db_path
from verifiers.budget.render import preflight_lines, run_text
from verifiers.budget.traffic import LocustfileTraffic, read_locustfile
from verifiers.connections import Connections
from verifiers.expectations import Expectations
from verifiers.model import Backend, SentRequest
from verifiers.polling import PollResult

if TYPE_CHECKING:
    from tracedrill.drill import DrillOptions
    from tracedrill.rundir import RunRecord

CONFIG_NAME = "budget.toml"  # read from the ledger's directory when --budget-config is not given


@dataclass
class BudgetOptions:
    enabled: bool = True
    db: Path | None = None  # None: the default data directory (see verifiers/budget/ledger.py)
    config: Path | None = None  # None: budget.toml next to the ledger, when it exists
    allowances: tuple[str, ...] = ()  # NAME=VALUE overrides
    allow_overage: bool = False

    def ledger_path(self) -> Path:
        return self.db or default_db_path()

    def explicit(self) -> bool:
        """Whether the user set allowances (flags or a budget TOML) rather than relying on the defaults."""
        default_file = self.ledger_path().parent / CONFIG_NAME
        return bool(self.allowances) or self.config is not None or default_file.is_file()

    def load_config(self) -> BudgetConfig:
        path = self.config
        if path is None and (self.ledger_path().parent / CONFIG_NAME).is_file():
            path = self.ledger_path().parent / CONFIG_NAME
        return load_budget_config(path, self.allowances)


@dataclass
class DrillBudget:
    """The budget of one drill, open from the guard to the ledger entry."""

    ledger: BudgetLedger
    config: BudgetConfig
    accounts: dict[Backend, str]
    mode: str
    profile: str
    traffic: LocustfileTraffic
    users: int
    preflight: Preflight | None = field(default=None)


def traffic_profile(
    locustfile: Path, expectations: Path, target: str | None, switches: Mapping[str, object] | None = None
) -> str:
    """Runs with the same profile emit alike per request, so their history forecasts the next one."""
    parts = [f"locustfile={locustfile.resolve()}", f"expect={expectations.resolve()}", f"target={target or 'bundled'}"]
    parts += [f"{k}={v}" for k, v in sorted((switches or {}).items())]
    return "; ".join(parts)


def emission_switches(options: DrillOptions) -> dict[str, object]:
    """The drill options besides the locustfile that change what each request emits. Read with getattr: they
    belong to other features (fault profiles, sampling) and an option they drop must not break the budget."""
    sampling = getattr(options, "sampling", None)
    switches: dict[str, object] = {
        "disable": ",".join(sorted(options.disable)),
        "fault": getattr(options, "fault", None),
        "otel_sampler": getattr(sampling, "otel_sampler", None),
        "otel_sampler_arg": getattr(sampling, "otel_sampler_arg", None),
        "xray_rule": getattr(sampling, "xray_rule", None),
    }
    # Defaults (no switch, the "correct" fault profile) leave the profile as it always was.
    return {k: v for k, v in switches.items() if v not in (None, "", "correct")}


def open_budget(
    options: BudgetOptions,
    mode: str,
    connections: Callable[[], Connections] | None,
    profile: str,
    locustfile: Path,
    users: int,
) -> DrillBudget:
    config = options.load_config()
    accounts = resolve_accounts(mode, connections() if mode == "cloud" and connections else None, config.accounts)
    ledger = BudgetLedger(options.ledger_path())
    return DrillBudget(ledger, config, accounts, mode, profile, read_locustfile(locustfile), users)


def before_run(
    options: DrillOptions,
    expectations: Expectations,
    connections: Callable[[], Connections] | None,
    console: Console,
) -> DrillBudget | None:
    """Forecast the run and refuse it (BudgetExceeded) if it would pass what is left of an allowance."""
    if not options.budget.enabled:
        return None
    plan = options.plan
    profile = traffic_profile(plan.locustfile, options.expectations, options.target, emission_switches(options))
    budget = open_budget(options.budget, options.backends, connections, profile, plan.locustfile, plan.users)
    if plan.run_time is None:
        console.step("budget: no --run-time, so no forecast: the budget guard is off for this run")
        return budget
    traffic = Plan(plan.users, float(parse_timespan(plan.run_time)), budget.traffic, profile)
    budget.preflight = preflight(budget.ledger, budget.config, budget.accounts, traffic, expectations)
    allowances = {a.name: a for a in budget.config.allowances}
    for line in preflight_lines(budget.preflight.section(), allowances):
        console.step(line)
    # The embedded emulators cost nothing: past the *default* free tiers a local run is only warned about;
    # allowances the user set (--allowance, a budget TOML) are enforced everywhere.
    enforce = options.backends == "cloud" or options.budget.explicit()
    check(budget.preflight, options.budget.allow_overage or not enforce, budget.ledger.path)
    if budget.preflight.over and not enforce:
        console.step(
            "budget: past the default free-tier allowance on the local stack; a warning only "
            "(local backends cost nothing; set --allowance to enforce a budget here)"
        )
    elif budget.preflight.over:
        console.step("budget: --allow-overage given, running past the allowance")
    return budget


def after_verify(
    budget: DrillBudget | None,
    options: DrillOptions,
    record: RunRecord,
    sent: Sequence[SentRequest],
    polled: Sequence[PollResult],
    expectations: Expectations,
    connections: Connections,
    console: Console,
) -> dict[str, Any] | None:
    """Record the run in the ledger; the ``budget`` section of summary.json (None: budget off or not recorded)."""
    if not options.budget.enabled:
        return None
    try:
        if budget is None:  # `tracedrill verify`: the run's own settings, as far as run.json keeps them
            locustfile = Path(str(record.load.get("locustfile") or ""))
            target = None if record.started_target else record.target_url
            profile = traffic_profile(locustfile, Path(record.expectations), target)
            users = int(record.load.get("users") or 0)
            budget = open_budget(options.budget, record.backends, lambda: connections, profile, locustfile, users)
        answered = [s for s in sent if s.status is not None]
        started = record.load_start or min(s.start for s in sent)
        ended = record.load_end or max(s.end for s in sent)
        duration = max(0.0, ended - started)
        facts = RunFacts(record.run_id, started, duration, len(answered), budget.users, budget.profile, budget.traffic)
        section = record_run(
            budget.ledger, budget.config, budget.accounts, facts, polled, sent, expectations,
            mode=budget.mode, forecast=budget.preflight,
        )  # fmt: skip
    except (sqlite3.Error, OSError, ValueError) as exc:
        # The verdict matters more than the bookkeeping: say what failed and carry on.
        console.out(f"budget: this run could not be recorded in {options.budget.ledger_path()}: {exc}")
        return None
    return section


def budget_text(section: dict[str, Any]) -> str:
    return run_text(section)
