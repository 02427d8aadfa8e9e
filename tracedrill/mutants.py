"""The mutation matrix: one drill per fault profile on one shared local stack, and whether each was caught.

A profile is *caught* when its drill fails (exit 1) on the check a person would expect to catch that
mistake; ``correct`` is caught when its drill passes. ``tracedrill mutants`` and
``tests/mutants/test_matrix.py`` both run :func:`run_matrix`.

The profiles share one stack but never see each other's telemetry: each runs the bundled target under
its own service name, log group and Rollbar environment, with its own copy of the journal's X-Ray
sampling rule (so reservoir quotas are not shared between profiles either). The stack is private to
the matrix, so its Honeycomb emulator runs without the 10-queries-a-minute limit and is polled every
second; ``tracedrill run`` keeps the real limits.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from emulators.stack import DEFAULT_SAMPLING_RULES, LocalStack, StackConfig
from target_app.faults import CORRECT
from tracedrill import budgeting, local
from tracedrill.console import Console
from tracedrill.drill import EXIT_FAIL, EXIT_PASS, DrillOptions, run_drill
from tracedrill.loadgen import LoadPlan
from verifiers.expectations import DEFAULT_EXPECTATIONS, ServiceNames, honeycomb_slug, load_expectations
from verifiers.model import Backend
from verifiers.polling import WaitSettings

RULE_NAME_MAX = 32  # X-Ray's limit on a sampling rule name


@dataclass(frozen=True)
class Catch:
    """A check that catches a profile: its backend, a stable fragment of its name, and of its detail."""

    backend: Backend
    check: str
    detail: str = ""

    def matches(self, check: Mapping[str, Any]) -> bool:
        return (
            check.get("status") == "fail"
            and check.get("backend") == self.backend
            and self.check in str(check.get("name", ""))
            and self.detail in str(check.get("detail", ""))
        )

    def describe(self) -> str:
        return f"{self.backend}: ...{self.check}..." + (f" ({self.detail})" if self.detail else "")


@dataclass(frozen=True)
class Load:
    """The load of one profile's drill: short, but enough for its mistake to show."""

    users: int = 12
    run_time: str = "5s"
    app_workers: int = 2


@dataclass(frozen=True)
class Mutant:
    profile: str
    catches: tuple[Catch, ...]  # caught when any of these checks failed (none for `correct`: it must pass)
    load: Load = field(default_factory=Load)
    # Why the SDKs in use make this mistake harmless, when they do: its drill then passes and is not counted.
    rescued_by: str = ""
    # The X-Ray rule's FixedRate for this profile (None: the journal's): 1.0 samples every request, for a
    # mistake that only shows in sampled traces and is not about sampling.
    xray_fixed_rate: float | None = None


HOME_ATTRIBUTES = "are on span 'home-activities-mock-data'"
SERVER_SPANS = "every request has exactly one server span"
ACCESS_LINES = "exactly one 'access line' log line"

# What catches each profile: the check a person would look at first for that mistake.
MUTANTS: Mapping[str, Mutant] = {
    m.profile: m
    for m in (
        # Longest first: the matrix runs profiles side by side, the slowest should start first.
        Mutant(
            "xray-no-sampling-proxy",
            (Catch("xray", "the sampled count matches the rule"),),
            Load(users=24, run_time="15s", app_workers=1),
        ),
        Mutant(CORRECT, ()),
        Mutant("attr-after-end", (Catch("honeycomb", HOME_ATTRIBUTES, "app.now missing"),)),
        Mutant("attr-wrong-span", (Catch("honeycomb", HOME_ATTRIBUTES, "misplaced"),)),
        Mutant(
            "subsegment-double-end",
            (Catch("xray", "are on subsegment 'user-activities'", "misplaced"),),
            xray_fixed_rate=1.0,
        ),
        Mutant("rollbar-never-init", (Catch("rollbar", "route 'fault': exactly one error RuntimeError", "missing"),)),
        Mutant("no-cloudwatch-handler", (Catch("cloudwatch_logs", ACCESS_LINES, "missing"),)),
        Mutant("logger-none", (Catch("cloudwatch_logs", "exactly one 'hello line' log line", "missing"),)),
        Mutant(
            "fork-unsafe-otel",
            (Catch("honeycomb", SERVER_SPANS, "missing"),),
            rescued_by="the OpenTelemetry SDK re-creates the BatchSpanProcessor export thread in every forked "
            "worker (os.register_at_fork, opentelemetry-python#2242) and the worker flushes it at exit, so a provider "
            "made before the fork loses nothing",
        ),
        Mutant("otlp-endpoint-no-path", (Catch("honeycomb", SERVER_SPANS, "/v1/traces"),)),
        Mutant(
            "bsp-queue-overflow",
            (
                Catch("honeycomb", "exactly one span 'home-activities-mock-data'", "missing"),
                Catch("honeycomb", SERVER_SPANS, "missing"),
            ),
        ),
        Mutant("duplicate-log-handler", (Catch("cloudwatch_logs", ACCESS_LINES, "duplicated"),)),
    )
}


@dataclass(frozen=True)
class Outcome:
    """One profile's drill: its exit code, the checks that failed, and whether the mistake was caught."""

    profile: str
    exit_code: int
    verdict: str
    failed: tuple[dict[str, Any], ...]  # summary.json check entries with status fail or timed-out
    caught_by: dict[str, Any] | None  # the expected check that failed (None for `correct`, or when missed)
    run_dir: Path | None
    error: str = ""  # the drill could not run (a usage error, a crash): never caught
    summary: dict[str, Any] = field(default_factory=dict, repr=False)

    @property
    def passed(self) -> bool:
        return not self.error and self.exit_code == EXIT_PASS and self.verdict == "pass"

    @property
    def state(self) -> str:
        """caught | missed | rescued (a profile the SDKs make harmless, whose drill passed: not counted)."""
        if self.profile == CORRECT:
            return "caught" if self.passed else "missed"
        if self.passed and MUTANTS[self.profile].rescued_by:
            return "rescued"
        return "caught" if not self.error and self.exit_code == EXIT_FAIL and self.caught_by else "missed"

    @property
    def caught(self) -> bool:
        return self.state == "caught"

    @property
    def first_failing(self) -> str:
        if self.error:
            return f"error: {self.error}"
        if not self.failed:
            return "(no check failed)"
        first = self.caught_by or self.failed[0]
        return f"{first['status'].upper()} {first['backend']}: {first['name']}"


@dataclass(frozen=True)
class MatrixOptions:
    reports_dir: Path
    profiles: Sequence[str] = tuple(MUTANTS)
    parallel: int = 2  # drills at a time: each is a gunicorn and a Locust process (2 suits 2 cores)
    settle_s: float = 3.0
    deadline_s: float = 60.0

    def __post_init__(self) -> None:
        unknown = [p for p in self.profiles if p not in MUTANTS]
        if unknown:
            raise ValueError(f"unknown profile(s) {', '.join(unknown)}; valid profiles are {', '.join(MUTANTS)}")
        if self.parallel < 1:
            raise ValueError(f"parallel must be at least 1, got {self.parallel}")


def profile_names(profile: str) -> ServiceNames:
    """The names one profile's drill runs under, so the profiles sharing a stack stay apart."""
    base = load_expectations(DEFAULT_EXPECTATIONS).service
    name = f"{base.name}-{profile}"
    return ServiceNames(
        name=name,
        honeycomb_dataset=honeycomb_slug(name),
        log_group=f"{base.log_group}-{profile}",
        rollbar_environment=f"mutants-{profile}",
    )


def sampling_rules(profiles: Sequence[str], source: Path = DEFAULT_SAMPLING_RULES) -> dict[str, Any]:
    """The journal's rule once per profile, each for that profile's service name only."""
    rule = json.loads(source.read_text(encoding="utf-8"))["SamplingRule"]
    rules = []
    for p in profiles:
        rate = MUTANTS[p].xray_fixed_rate
        own = {**rule, "RuleName": f"{rule['RuleName']}-{p}"[:RULE_NAME_MAX], "ServiceName": profile_names(p).name}
        rules.append(own if rate is None else {**own, "FixedRate": rate})
    return {"SamplingRules": rules}


@contextlib.contextmanager
def matrix_stack(data_dir: Path, profiles: Sequence[str] = tuple(MUTANTS)) -> Iterator[LocalStack]:
    """The stack the profiles share: ephemeral loopback ports, Honeycomb without its query limit."""
    data_dir.mkdir(parents=True, exist_ok=True)
    rules = data_dir / "xray-sampling-rules.json"
    rules.write_text(json.dumps(sampling_rules(profiles), indent=2) + "\n", encoding="utf-8")
    config = StackConfig(
        data_dir=data_dir,
        ports=local.LocalPorts.ephemeral(),
        sampling_rules=rules,
        honeycomb_query_results_per_minute=0,
    )
    with LocalStack(config) as stack:
        yield stack


def drill_options(mutant: Mutant, stack: LocalStack, options: MatrixOptions) -> DrillOptions:
    load = mutant.load
    return DrillOptions(
        plan=LoadPlan(users=load.users, spawn_rate=float(load.users), run_time=load.run_time),
        backends="stack",
        stack=stack.endpoints,
        stack_dir=stack.config.data_dir,
        reports_dir=options.reports_dir / mutant.profile,
        wait=WaitSettings(
            settle_s=options.settle_s, deadline_s=options.deadline_s, backend_intervals_s={"honeycomb": 1.0}
        ),
        app_workers=load.app_workers,
        fault=mutant.profile,
        names=profile_names(mutant.profile),
        pytest_reports=False,
        budget=budgeting.BudgetOptions(enabled=False),  # a private local stack: nothing to spend
        # Caught means a check failed; a check a short drill cannot decide (e.g. no sampled trace of a rare
        # route) neither catches a profile nor fails `correct`. It is still reported as unverifiable.
        fail_on_unverifiable=False,
    )


def run_profile(mutant: Mutant, stack: LocalStack, options: MatrixOptions) -> Outcome:
    """One drill; its output goes to ``<reports>/<profile>.log``, its reports to ``<reports>/<profile>/``."""
    drill = drill_options(mutant, stack, options)
    drill.reports_dir.mkdir(parents=True, exist_ok=True)
    log_path = options.reports_dir / f"{mutant.profile}.log"
    with log_path.open("w", encoding="utf-8") as log:
        try:
            code = run_drill(drill, Console(stream=log))
        except Exception as exc:  # one broken drill must not hide the others' results
            return Outcome(mutant.profile, -1, "error", (), None, None, error=f"{type(exc).__name__}: {exc}")
    run_dir = (drill.reports_dir / "latest").resolve()
    summary_path = run_dir / "summary.json"
    if not summary_path.is_file():
        return Outcome(mutant.profile, code, "error", (), None, run_dir, error=f"no summary.json; see {log_path}")
    summary = json.loads(summary_path.read_text(encoding="utf-8"))
    failed = tuple(c for c in summary.get("checks", []) if c.get("status") in ("fail", "timed-out"))
    caught_by = next((c for c in failed for catch in mutant.catches if catch.matches(c)), None)
    return Outcome(mutant.profile, code, str(summary.get("verdict")), failed, caught_by, run_dir, summary=summary)


def run_matrix(
    options: MatrixOptions,
    stack: LocalStack,
    on_outcome: Callable[[Outcome], None] = lambda _: None,
) -> list[Outcome]:
    """Every profile's drill against ``stack`` (see :func:`matrix_stack`), ``options.parallel`` at a time.

    Outcomes come back in ``options.profiles`` order; ``on_outcome`` sees each as soon as it is known.
    """
    mutants = [MUTANTS[p] for p in options.profiles]

    def one(mutant: Mutant) -> Outcome:
        outcome = run_profile(mutant, stack, options)
        on_outcome(outcome)
        return outcome

    with ThreadPoolExecutor(max_workers=options.parallel, thread_name_prefix="mutant") as pool:
        return list(pool.map(one, mutants))


def score(outcomes: Sequence[Outcome]) -> str:
    """``mutation score: CAUGHT/TOTAL``; rescued profiles are left out of both."""
    counted = [o for o in outcomes if o.state != "rescued"]
    return f"mutation score: {sum(o.caught for o in counted)}/{len(counted)}"


def all_caught(outcomes: Sequence[Outcome]) -> bool:
    return all(o.state in ("caught", "rescued") for o in outcomes)
