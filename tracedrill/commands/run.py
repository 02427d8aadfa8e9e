"""`tracedrill run`: load, wait, verify, report."""

from __future__ import annotations

import argparse
from pathlib import Path

from tracedrill.commands.common import EPILOG, add_verification_flags, drill_options
from tracedrill.console import Console
from tracedrill.drill import run_drill
from tracedrill.loadgen import DEFAULT_LOCUSTFILE, LoadPlan


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
    where = run.add_argument_group("target and backends")
    where.add_argument(
        "--target",
        metavar="URL",
        help="verify an app that is already running at URL instead of starting the bundled one",
    )
    where.add_argument(
        "--backends",
        choices=("local", "cloud"),
        default="local",
        help="local: start the embedded emulators (default); cloud: the real services, "
        "configured by the usual environment variables (see README)",
    )
    where.add_argument("--app-workers", type=int, default=2, help="gunicorn workers of the bundled target (default 2)")
    where.add_argument(
        "--disable",
        default="",
        metavar="LIST",
        help="switch off instrumentations in the bundled target: comma list of "
        "otel,xray,cloudwatch,rollbar (shows the verifiers catching it)",
    )
    where.add_argument(
        "--honeycomb-plan",
        choices=("enterprise", "free"),
        default="enterprise",
        help="local Honeycomb plan: free has no Query Data API, so per-span checks are unverifiable",
    )
    add_verification_flags(run.add_argument_group("verification"))
    run.add_argument("locust_args", nargs=argparse.REMAINDER, help=argparse.SUPPRESS)


def main(args: argparse.Namespace, console: Console) -> int:
    extra = list(args.locust_args)
    if extra and extra[0] == "--":
        extra = extra[1:]
    options = drill_options(args)
    options.plan = LoadPlan(args.users, args.spawn_rate, args.run_time, args.locustfile, tuple(extra))
    options.backends = args.backends
    options.target = args.target
    options.app_workers = args.app_workers
    options.disable = tuple(x.strip() for x in args.disable.split(",") if x.strip())
    options.honeycomb_plan = args.honeycomb_plan
    return run_drill(options, console)
