"""`tracedrill ui`: Locust's web UI with a live Verification tab, on the local stack and the bundled target."""

from __future__ import annotations

import argparse
from pathlib import Path

from tracedrill.commands.common import (
    EPILOG,
    add_processes_flag,
    add_target_flags,
    add_verification_flags,
    apply_target_flags,
    drill_options,
    load_plan,
)
from tracedrill.console import Console
from tracedrill.loadgen import DEFAULT_LOCUSTFILE
from tracedrill.ui import run_ui

DESCRIPTION = """Start the backends and the target as `run` does, then Locust's web UI (on 127.0.0.1:8089
unless Locust flags after `--` say otherwise). Start a test there; when it stops (or on "Verify now")
the Verification tab polls every backend and shows expected / found / missing / extra and every check
while it polls. Finished verifications are also VERIFY entries in Locust's statistics, CSV and HTML
report and exit code. Each verification covers every request this session has sent. Ctrl-C quits."""


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    ui = subparsers.add_parser(
        "ui",
        help="Locust's web UI with a live Verification tab",
        description=DESCRIPTION,
        epilog=EPILOG.replace("exit codes:", "exit codes (Locust's own, plus the last verification):")
        + "\n\nLocust flags pass through after `--`, e.g.  tracedrill ui -- --web-port 8090 --autostart",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    load = ui.add_argument_group("load (prefills Locust's start form)")
    load.add_argument("--users", type=int, default=10, help="concurrent Locust users (default 10)")
    load.add_argument("--spawn-rate", type=float, default=10.0, help="users started per second (default 10)")
    load.add_argument(
        "--run-time", default=None, help="stop each test after this long, e.g. 30s (default: until stopped)"
    )
    load.add_argument(
        "--locustfile",
        type=Path,
        default=DEFAULT_LOCUSTFILE,
        help="replace the bundled Cruddur locustfile (it must write the sent-ledger, see README)",
    )
    add_processes_flag(load)
    add_target_flags(ui.add_argument_group("target and backends"))
    add_verification_flags(ui.add_argument_group("verification"))
    ui.add_argument("locust_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def main(args: argparse.Namespace, console: Console) -> int:
    options = drill_options(args)
    options.plan = load_plan(args)
    apply_target_flags(args, options)
    # SIGTERM unwinds like Ctrl-C (tracedrill.cli), so the target app and the backends are stopped.
    return run_ui(options, console)
