"""Bookkeeping for one run: the pre-flight forecast and guard, then recording what the run cost.

Both produce plain dicts (the ``budget`` section of summary.json); ``render`` turns them into text and HTML.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from verifiers.budget.allowances import Allowance, BudgetConfig
from verifiers.budget.forecast import (
    HISTORY_RUNS,
    MEASURED_SOURCES,
    AllowanceForecast,
    Emission,
    RequestForecast,
    amount,
    forecast_allowance,
    forecast_requests,
    from_expectations,
    from_history,
    from_sent,
    month_seconds,
    outlook,
)
from verifiers.budget.ledger import BudgetLedger, RunEntry, month_of
from verifiers.budget.render import fmt
from verifiers.budget.traffic import LocustfileTraffic
from verifiers.budget.usage import ACCEPTED_METRICS, BackendUsage, measure
from verifiers.expectations import Expectations
from verifiers.model import BACKENDS, Backend, SentRequest
from verifiers.polling import PollResult


class BudgetExceeded(Exception):
    """The guard refused the run; the message says which allowance, by how much, and what to do."""


@dataclass(frozen=True)
class Plan:
    """What is about to be sent, as far as the budget cares."""

    users: int
    run_time_s: float
    traffic: LocustfileTraffic
    profile: str  # runs with the same profile emit alike: their history drives the forecast


def emission(
    ledger: BudgetLedger,
    backend: Backend,
    account: str,
    profile: str,
    exp: Expectations,
    traffic: LocustfileTraffic,
    sent: Sequence[SentRequest] = (),
) -> Emission:
    """Usage per request: measured in earlier runs of the profile, else what the expectations say the requests
    ``sent`` (after a run) or the locustfile's routes (before one) emit."""
    history = ledger.runs(
        backend=backend, account=account, profile=profile, sources=MEASURED_SOURCES, limit=HISTORY_RUNS
    )
    return from_history(history) or from_sent(backend, exp, sent) or from_expectations(backend, exp, traffic)


@dataclass
class Preflight:
    requests: RequestForecast
    forecasts: list[AllowanceForecast]
    month: str
    allow_overage: bool = False

    @property
    def over(self) -> list[AllowanceForecast]:
        return [f for f in self.forecasts if f.exceeds]

    def section(self) -> dict[str, Any]:
        return {
            "month": self.month,
            "requests": round(self.requests.requests),
            "requests_basis": self.requests.basis,
            "allow_overage": self.allow_overage,
            "exceeds": [f.allowance.name for f in self.over],
            "allowances": {
                f.allowance.name: {
                    "account": f.account,
                    "forecast": f.forecast,
                    "month_to_date": f.month_to_date,
                    "remaining": f.remaining,
                    "basis": f.basis,
                }
                for f in self.forecasts
            },
        }


def preflight(
    ledger: BudgetLedger,
    config: BudgetConfig,
    accounts: Mapping[Backend, str],
    plan: Plan,
    exp: Expectations,
    now: float | None = None,
    backends: Sequence[Backend] = BACKENDS,
) -> Preflight:
    """Forecast every allowance for ``plan``. Raises nothing: the caller decides (see ``check``)."""
    month = month_of(time.time() if now is None else now)
    runs = ledger.runs(profile=plan.profile, sources=MEASURED_SOURCES, limit=4 * HISTORY_RUNS)
    by_run = {r.run_id: r for r in runs}  # one row per run: requests, users and duration are the same per backend
    requests = forecast_requests(plan.users, plan.run_time_s, list(by_run.values())[:HISTORY_RUNS], plan.traffic)
    forecasts = []
    for backend in backends:
        account = accounts[backend]
        per_request = emission(ledger, backend, account, plan.profile, exp, plan.traffic)
        used = ledger.month_to_date(backend, account, month)
        for allowance in config.for_backend(backend):
            forecasts.append(forecast_allowance(allowance, account, requests.requests, per_request, used))
    return Preflight(requests, forecasts, month)


def check(pre: Preflight, allow_overage: bool, ledger_path: Path) -> None:
    """The guard: raise BudgetExceeded when the forecast passes what is left, unless overage is allowed."""
    pre.allow_overage = allow_overage
    if not pre.over or allow_overage:
        return
    lines = [
        f"  {f.allowance.title} (account {f.account}): this run is forecast to use {fmt(f.forecast, f.allowance)}, "
        f"but only {fmt(f.remaining, f.allowance)} are left of the {fmt(f.allowance.limit, f.allowance)} allowance "
        f"for {pre.month} ({fmt(f.month_to_date, f.allowance)} used); forecast from {f.basis}"
        for f in pre.over
    ]
    raise BudgetExceeded(
        "budget guard refused the run before sending any request (exit code 2):\n"
        + "\n".join(lines)
        + f"\n  planned: about {pre.requests.requests:,.0f} requests ({pre.requests.basis})"
        + "\n  lower --users or --run-time, raise the allowance (--allowance NAME=N or the budget TOML), "
        + f"or pass --allow-overage to run anyway. Ledger: {ledger_path}"
    )


# ---- after the run ---------------------------------------------------------------------------


@dataclass(frozen=True)
class RunFacts:
    run_id: str
    started_at: float  # load start
    load_seconds: float
    requests: int  # answered requests (the app emitted telemetry for these)
    users: int
    profile: str
    traffic: LocustfileTraffic = field(default_factory=lambda: LocustfileTraffic((), None, ""))


def _estimate(
    usage: BackendUsage,
    ledger: BudgetLedger,
    account: str,
    facts: RunFacts,
    exp: Expectations,
    sent: Sequence[SentRequest],
) -> BackendUsage:
    """Fill a backend's accepted usage that could not be counted, from its usage per request."""
    if usage.accepted is not None:
        return usage
    per = emission(ledger, usage.backend, account, facts.profile, exp, facts.traffic, sent)
    usage.accepted = {m: per.per_request.get(m, 0.0) * facts.requests for m in ACCEPTED_METRICS[usage.backend]}
    usage.note = f"estimated from {per.basis}: {usage.note}"
    return usage


def record_run(
    ledger: BudgetLedger,
    config: BudgetConfig,
    accounts: Mapping[Backend, str],
    facts: RunFacts,
    polled: Sequence[PollResult],
    sent: Sequence[SentRequest],
    exp: Expectations,
    *,
    mode: str,
    forecast: Preflight | None = None,
    now: float | None = None,
) -> dict[str, Any]:
    """Measure, record and look ahead; returns the ``budget`` section of summary.json."""
    now = time.time() if now is None else now
    run_month = month_of(facts.started_at)
    backends: dict[str, Any] = {}
    allowances: list[dict[str, Any]] = []
    for result in polled:
        backend, account = result.backend, accounts[result.backend]
        usage = _estimate(measure(result, sent, exp), ledger, account, facts, exp, sent)
        entry = RunEntry(
            facts.run_id, backend, account, facts.started_at, facts.load_seconds, facts.requests, facts.users,
            facts.profile, usage.source, usage.note,
        )  # fmt: skip
        ledger.record(entry, usage.accepted or {}, usage.verification, now)
        backends[backend] = {
            "account": account,
            "source": usage.source,
            "usage": usage.metrics(),
            "unattributed": usage.unattributed,
            "note": usage.note,
        }
        for allowance in config.for_backend(backend):
            month = run_month if allowance.traffic else month_of(now)
            allowances.append(
                allowance_row(ledger, allowance, account, month, amount(allowance, usage.metrics()), facts, now)
            )
    return {
        "mode": mode,
        "month": run_month,
        "ledger": str(ledger.path),
        "observed": {
            "requests": facts.requests,
            "load_seconds": round(facts.load_seconds, 3),
            "requests_per_s": round(facts.requests / facts.load_seconds, 3) if facts.load_seconds > 0 else None,
        },
        "backends": backends,
        "allowances": allowances,
        "forecast": forecast.section() if forecast else None,
        "as_of": now,
    }


def allowance_row(
    ledger: BudgetLedger,
    allowance: Allowance,
    account: str,
    month: str,
    this_run: float,
    facts: RunFacts,
    now: float,
) -> dict[str, Any]:
    """One allowance after a run: this run, month to date, how long it lasts, and the daily series for the chart."""
    used = amount(allowance, ledger.month_to_date(allowance.backend, account, month))
    look = outlook(allowance, account, this_run, used, facts.requests, facts.load_seconds, month)
    return {
        **allowance_info(allowance),
        "account": account,
        "month": month,
        "this_run": this_run,
        "month_to_date": used,
        "remaining": look.remaining,
        "used_fraction": look.used_fraction,
        "per_request": look.per_request,
        "at_requests_per_s": facts.requests / facts.load_seconds if facts.load_seconds > 0 else None,
        "lasts_s": look.lasts_s,
        "remaining_lasts_s": look.remaining_lasts_s,
        "sustainable_requests_per_s": look.sustainable_rps,
        "safe_requests_per_s": look.safe_rps,
        "runs_left": look.runs_left,
        "projected_month_end": projected_month_end(used, month, now),
        "daily": daily_series(ledger, allowance, account, month),
    }


def allowance_info(allowance: Allowance) -> dict[str, Any]:
    return {
        "name": allowance.name,
        "backend": allowance.backend,
        "label": allowance.label,
        "unit": allowance.unit,
        "limit": allowance.limit,
        "traffic": allowance.traffic,
        "source": allowance.source,
    }


def daily_series(ledger: BudgetLedger, allowance: Allowance, account: str, month: str) -> list[list[float]]:
    """``[[day, cumulative amount], ...]`` for the days of ``month`` with usage."""
    total = 0.0
    series = []
    for day, usage in sorted(ledger.daily(allowance.backend, account, month).items()):
        total += amount(allowance, usage)
        series.append([day, total])
    return series


def projected_month_end(used: float, month: str, now: float) -> float | None:
    """Month-to-date usage extrapolated to the month's end at the pace so far (None outside the month)."""
    start = datetime.strptime(month + "-01", "%Y-%m-%d").replace(tzinfo=UTC).timestamp()
    elapsed = now - start
    total = month_seconds(month)
    if elapsed <= 0 or elapsed >= total:
        return None
    return used * total / elapsed


# ---- the month so far (`tracedrill budget`) -------------------------------------------------------


def run_info(run: RunEntry) -> dict[str, Any]:
    return {
        "run_id": run.run_id,
        "started_at": datetime.fromtimestamp(run.started_at, UTC).isoformat(timespec="seconds"),
        "requests": run.requests,
        "load_seconds": round(run.load_seconds, 3),
        "users": run.users,
        "source": run.source,
        "note": run.note,
        "usage": run.usage,
    }


def month_view(
    ledger: BudgetLedger, config: BudgetConfig, month: str, now: float | None = None, runs: int = 20
) -> dict[str, Any]:
    """Month to date per backend account, its runs (newest first), and the outlook at the newest run's rate."""
    now = time.time() if now is None else now
    accounts = []
    for backend, account in sorted(ledger.accounts(month), key=lambda k: (BACKENDS.index(k[0]), k[1])):
        used = ledger.month_to_date(backend, account, month)
        month_runs = ledger.runs(month=month, backend=backend, account=account)
        newest = month_runs[0] if month_runs else None
        allowances = []
        for allowance in config.for_backend(backend):
            spent = amount(allowance, used)
            row: dict[str, Any] = {
                **allowance_info(allowance),
                "account": account,
                "month": month,
                "month_to_date": spent,
                "remaining": max(0.0, allowance.limit - spent),
                "used_fraction": spent / allowance.limit if allowance.limit else None,
                "projected_month_end": projected_month_end(spent, month, now),
                "daily": daily_series(ledger, allowance, account, month),
                "forecast": None,
            }
            if newest is not None:
                look = outlook(
                    allowance, account, amount(allowance, newest.usage), spent, newest.requests,
                    newest.load_seconds, month,
                )  # fmt: skip
                row["forecast"] = {
                    "based_on_run": newest.run_id,
                    "at_requests_per_s": newest.requests / newest.load_seconds if newest.load_seconds > 0 else None,
                    "per_request": look.per_request,
                    "lasts_s": look.lasts_s,
                    "remaining_lasts_s": look.remaining_lasts_s,
                    "sustainable_requests_per_s": look.sustainable_rps,
                    "safe_requests_per_s": look.safe_rps,
                    "runs_left": look.runs_left,
                }
            allowances.append(row)
        accounts.append(
            {
                "backend": backend,
                "account": account,
                "month_to_date": used,
                "allowances": allowances,
                "runs_total": len(month_runs),
                "runs": [run_info(r) for r in month_runs[:runs]],
            }
        )
    return {"month": month, "ledger": str(ledger.path), "as_of": now, "accounts": accounts}
