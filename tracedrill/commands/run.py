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
from tracedrill.drill import DrillOptions, run_drill
from tracedrill.loadgen import DEFAULT_LOCUSTFILE


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = subparsers.add_parser(
        "run", help="run a drill: load, wait, verify, report",
        epilog=EPILOG + "\n\nLocust flags pass through after `--`, e.g.  tracedrill run -- --loglevel DEBUG",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # fmt: skip
    add_drill_arguments(
        run,
        load_title="load (Locust)",
        run_time_default="20s",
        run_time_help="how long to send load, e.g. 20s, 1m30s (default 20s)",
    )


def add_drill_arguments(
    parser: argparse.ArgumentParser, *, load_title: str, run_time_default: str | None, run_time_help: str
) -> None:
    """Every flag of a drill, shared by `run` and `ui` (which differ only in how long load lasts by default)."""
    load = parser.add_argument_group(load_title)
    load.add_argument("--users", type=int, default=10, help="concurrent Locust users (default 10)")
    load.add_argument("--spawn-rate", type=float, default=10.0, help="users started per second (default 10)")
    load.add_argument("--run-time", default=run_time_default, help=run_time_help)
    load.add_argument(
        "--locustfile",
        type=Path,
        default=DEFAULT_LOCUSTFILE,
        help="replace the bundled Cruddur locustfile (it must write the sent-ledger, see README)",
    )
    add_processes_flag(load)
    where = parser.add_argument_group("target and backends")
    add_target_flags(where)
    where.add_argument(
        "--fault",
        choices=list(PROFILES),
        default=CORRECT,
        metavar="PROFILE",
        help="make the bundled target run a known instrumentation mistake (TRACEDRILL_FAULT): "
        f"{', '.join(PROFILES)}; the run should then fail (see `tracedrill mutants`). Default: correct",
    )
    add_verification_flags(parser.add_argument_group("verification"))
    add_sampling_flags(parser.add_argument_group("sampling under test"))
    add_budget_flags(parser, guard=True)
    parser.add_argument("locust_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def drill_options_from(args: argparse.Namespace) -> DrillOptions:
    options = drill_options(args)
    options.plan = load_plan(args)
    apply_target_flags(args, options)
    options.fault = args.fault
    options.budget = budget_options(args)
    options.sampling = sampling_options(args)
    return options


def main(args: argparse.Namespace, console: Console) -> int:
    return run_drill(drill_options_from(args), console)
