"""`tracedrill mutants`: run the bundled target with every fault profile and show which the verifiers caught."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from target_app.faults import CORRECT, PROFILES
from tracedrill.console import Console
from tracedrill.drill import EXIT_FAIL, EXIT_PASS, UsageError
from tracedrill.mutants import MUTANTS, MatrixOptions, Outcome, all_caught, matrix_stack, run_matrix, score

DESCRIPTION = """Run one short drill per fault profile (TRACEDRILL_FAULT, see `tracedrill run --fault`) on one
shared local stack, and print per profile whether the verifiers caught the mistake and the first
failing check.

Counting: a fault profile is caught when its drill fails on the check that should catch that
mistake; `correct` is caught when its drill passes. A profile the SDKs in use make harmless (the
line says why) is "rescued" when its drill passes, and left out of the score. The last line is
`mutation score: CAUGHT/TOTAL`. Exit code 0 only when every counted profile is caught.

The stack is private to this command: its Honeycomb emulator runs without the 10-queries-a-minute
limit, so Honeycomb is polled every second."""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "mutants",
        help="prove the verifiers catch known instrumentation mistakes (the fault profiles)",
        description=DESCRIPTION,
        epilog="profiles:\n" + "\n".join(f"  {name:24} {text}" for name, text in PROFILES.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--profile",
        action="append",
        choices=list(MUTANTS),
        metavar="PROFILE",
        help="run only this profile (repeatable; default: all of them)",
    )
    parser.add_argument("--parallel", type=int, default=2, metavar="N", help="drills running side by side (default 2)")
    parser.add_argument(
        "--reports-dir",
        type=Path,
        default=Path("reports"),
        help="the matrix goes to REPORTS_DIR/mutants-<time>/: one directory and one log per profile",
    )


def main(args: argparse.Namespace, console: Console) -> int:
    reports = args.reports_dir / time.strftime("mutants-%Y%m%dT%H%M%SZ", time.gmtime())
    try:
        options = MatrixOptions(reports_dir=reports, profiles=tuple(args.profile or MUTANTS), parallel=args.parallel)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    console.step(f"mutants: {len(options.profiles)} profiles, {options.parallel} at a time; reports in {reports}")
    with matrix_stack(reports / "local-backends", options.profiles) as stack:
        outcomes = run_matrix(options, stack, lambda o: console.step(f"{o.profile}: {o.state}"))
    console.out("")
    width = max(len(o.profile) for o in outcomes)
    for outcome in outcomes:
        console.out(_line(outcome, width))
    console.out(f"\n{score(outcomes)}")
    return EXIT_PASS if all_caught(outcomes) else EXIT_FAIL


def _line(outcome: Outcome, width: int) -> str:
    mutant = MUTANTS[outcome.profile]
    if outcome.profile == CORRECT:
        what = "passed" if outcome.caught else f"failed: {outcome.first_failing}"
    elif outcome.state == "rescued":
        what = f"passed: {mutant.rescued_by}"
    else:
        what = outcome.first_failing
        if not outcome.caught and not outcome.error:
            what += f"  (expected: {'; or '.join(c.describe() for c in mutant.catches)})"
    return f"{outcome.profile.ljust(width)}  {outcome.state:7}  {what}"
