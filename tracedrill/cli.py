"""The `tracedrill` command: parse flags and hand over to the subcommand. No logic lives here."""

from __future__ import annotations

import argparse
import signal
import sys
from collections.abc import Sequence

from tracedrill import __version__
from tracedrill.commands import COMMANDS
from tracedrill.console import Console
from tracedrill.drill import EXIT_USAGE, UsageError
from tracedrill.rundir import RunRecordError
from verifiers.model import LedgerError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tracedrill",
        description="Drive load at an instrumented service, then prove its telemetry arrived in Honeycomb, "
        "AWS X-Ray, CloudWatch Logs and Rollbar.",
    )
    parser.add_argument("--version", action="version", version=f"tracedrill {__version__}")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS.values():
        command.add_parser(subparsers)
    return parser


def _stop_on_sigterm() -> None:
    """SIGTERM (CI timeouts, `kill`) unwinds like Ctrl-C, so the target, Locust and the stack are stopped."""

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    console = Console()
    _stop_on_sigterm()
    try:
        return int(COMMANDS[args.command].main(args, console))
    except (UsageError, LedgerError, RunRecordError) as exc:
        console.out(f"tracedrill: error: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        console.out("tracedrill: interrupted")
        return 130


if __name__ == "__main__":
    sys.exit(main())
