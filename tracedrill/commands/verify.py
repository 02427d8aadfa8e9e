"""`tracedrill verify reports/<run-id>`: verify a finished run again, sending no load."""

from __future__ import annotations

import argparse
from pathlib import Path

from tracedrill.commands.budget import add_budget_flags, budget_options
from tracedrill.commands.common import EPILOG, add_verification_flags, drill_options
from tracedrill.console import Console
from tracedrill.drill import UsageError, reverify
from tracedrill.rundir import RUN_FILE


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ver = subparsers.add_parser(
        "verify",
        help="verify a finished run again, without sending load",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ver.add_argument("run_dir", type=Path, help="a run directory, e.g. reports/latest")
    add_verification_flags(ver, with_expect=False)
    add_budget_flags(ver, guard=False)  # the reads cost X-Ray scans again: recorded unless --no-budget


def main(args: argparse.Namespace, console: Console) -> int:
    options = drill_options(args)
    options.budget = budget_options(args)
    run_dir = args.run_dir.resolve()
    if not (run_dir / RUN_FILE).is_file():
        if run_dir.is_dir():
            raise UsageError(
                f"{args.run_dir} has no {RUN_FILE}: its run stopped before sending load (its logs are there); "
                "verify a run that sent load, e.g. an older one in the same reports directory"
            )
        raise UsageError(f"{args.run_dir} is not a run directory; give one such as reports/latest")
    return reverify(run_dir, options, console)
