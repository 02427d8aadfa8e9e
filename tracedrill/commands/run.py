"""`tracedrill run`: load, wait, verify, report."""

from __future__ import annotations

import argparse
from pathlib import Path

from target_app.faults import CORRECT, PROFILES
from tracedrill.commands.budget import add_budget_flags, budget_options
from tracedrill.commands.common import (
    EPILOG,
    add_processes_flag,
    add_target_flags,
    add_verification_flags,
    apply_target_flags,
    drill_options,
    load_plan,
)
from tracedrill.commands.sampling_flags import add_sampling_flags, sampling_options
from tracedrill.console import Console
from tracedrill.drill import run_drill
from tracedrill.loadgen import DEFAULT_LOCUSTFILE


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = subparsers.add_parser(
        "run", help="run a drill: load, wait, verify, report",
        epilog=EPILOG + "\n\nLocust flags pass through after `--`, e.g.  tracedrill run -- --loglevel DEBUG",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    load = run.add_argument_group("load (Locust)")
    load.add_argument("--users", type=int, default=10, help="concurrent Locust users (default 10)")
    load.add_argument("--spawn-rate", type=float, default=10.0, help="users started per second (default 10)")
    load.add_argument("--run-time", default="20s", help="how long to send load, e.g. 20s, 1m30s (default 20s)")
    load.add_argument(
        "--locustfile",
        type=Path,
        default=DEFAULT_LOCUSTFILE,
        help="replace the bundled Cruddur locustfile (it must write the sent-ledger, see README)",
    )
    add_processes_flag(load)
    where = run.add_argument_group("target and backends")
    add_target_flags(where)
    where.add_argument(
        "--fault",
        choices=list(PROFILES),
        default=CORRECT,
        metavar="PROFILE",
        help="make the bundled target run a known instrumentation mistake (TRACEDRILL_FAULT): "
        f"{', '.join(PROFILES)}; the run should then fail (see `tracedrill mutants`). Default: correct",
    )
    add_verification_flags(run.add_argument_group("verification"))
    add_sampling_flags(run.add_argument_group("sampling under test"))
    add_budget_flags(run, guard=True)
    run.add_argument("locust_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def main(args: argparse.Namespace, console: Console) -> int:
    options = drill_options(args)
    options.plan = load_plan(args)
    apply_target_flags(args, options)
    options.fault = args.fault
    options.budget = budget_options(args)
    options.sampling = sampling_options(args)
    return run_drill(options, console)
