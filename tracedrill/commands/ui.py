"""`tracedrill ui`: Locust's web UI with a live Verification tab, on the local stack and the bundled target."""

from __future__ import annotations

import argparse

from tracedrill.commands.common import EPILOG
from tracedrill.commands.run import add_drill_arguments, drill_options_from
from tracedrill.console import Console
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
    add_drill_arguments(
        ui,
        load_title="load (prefills Locust's start form)",
        run_time_default=None,
        run_time_help="stop each test after this long, e.g. 30s (default: until stopped)",
    )


def main(args: argparse.Namespace, console: Console) -> int:
    options = drill_options_from(args)
    # SIGTERM unwinds like Ctrl-C (tracedrill.cli), so the target app and the backends are stopped.
    return run_ui(options, console)
