"""`tracedrill verify reports/<run-id>`: verify a finished run again, sending no load."""

from __future__ import annotations

import argparse
from pathlib import Path

from tracedrill.commands.common import EPILOG, add_verification_flags, drill_options
from tracedrill.console import Console
from tracedrill.drill import reverify


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ver = subparsers.add_parser(
        "verify",
        help="verify a finished run again, without sending load",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ver.add_argument("run_dir", type=Path, help="a run directory, e.g. reports/latest")
    add_verification_flags(ver, with_expect=False)


def main(args: argparse.Namespace, console: Console) -> int:
    return reverify(args.run_dir.resolve(), drill_options(args), console)
