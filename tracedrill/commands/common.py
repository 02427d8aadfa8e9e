"""Flags and option-building shared by the commands that verify (run, verify)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import NoReturn

from emulators.stack import DEFAULT_DATA_DIR, ENDPOINTS_FILE, read_endpoints, silent_endpoint
from tracedrill.drill import DrillOptions, UsageError
from tracedrill.loadgen import LoadPlan
from tracedrill.rundir import BACKEND_MODES, HONEYCOMB_PLANS
from verifiers.expectations import DEFAULT_EXPECTATIONS
from verifiers.polling import WaitSettings

EPILOG = """exit codes: 0 every check passed; 1 a check failed, timed out or could not be decided
(unverifiable; --allow-unverifiable accepts those), or a request got no response; 2 usage or
configuration error."""


def add_verification_flags(group: argparse._ActionsContainer, with_expect: bool = True) -> None:
    if with_expect:
        group.add_argument(
            "--expect",
            type=Path,
            default=None,
            metavar="FILE",
            help="expectations file (TOML) describing what the service emits per route "
            "(default: the bundled Cruddur expectations; format in README)",
        )
    group.add_argument(
        "--settle",
        type=float,
        default=8.0,
        metavar="SECONDS",
        help="a backend is complete when its counts stay unchanged this long (default 8)",
    )
    group.add_argument(
        "--deadline",
        type=float,
        default=120.0,
        metavar="SECONDS",
        help="stop waiting for a backend after this long (default 120)",
    )
    group.add_argument(
        "--allow-unverifiable",
        dest="fail_on_unverifiable",
        action="store_false",
        help="exit 0 even when some checks cannot be decided (e.g. Honeycomb without the Query Data API); "
        "they are still reported as unverifiable, never as passed",
    )
    group.add_argument("--reports-dir", type=Path, default=Path("reports"), help="where run directories go")


def add_target_flags(group: argparse._ActionsContainer) -> None:
    """Where the load goes and where telemetry is verified (`run` and `ui`)."""
    group.add_argument(
        "--target",
        metavar="URL",
        help="verify an app that is already running at URL instead of starting the bundled one",
    )
    group.add_argument(
        "--backends",
        choices=BACKEND_MODES,
        default="local",
        help="local: start the embedded emulators (default); cloud: the real services, "
        "configured by the usual environment variables (see README); stack: a `tracedrill stack up` "
        "that is already running, e.g. for an app you started yourself with --target",
    )
    group.add_argument(
        "--stack-dir",
        type=Path,
        default=DEFAULT_DATA_DIR,
        metavar="DIR",
        help=f"with --backends stack: the --data-dir of that `tracedrill stack up` (default {DEFAULT_DATA_DIR})",
    )
    group.add_argument("--app-workers", type=int, default=2, help="gunicorn workers of the bundled target (default 2)")
    group.add_argument(
        "--disable",
        default="",
        metavar="LIST",
        help="switch off instrumentations in the bundled target: comma list of "
        "otel,xray,cloudwatch,rollbar (shows the verifiers catching it)",
    )
    group.add_argument(
        "--honeycomb-plan",
        choices=HONEYCOMB_PLANS,
        default="enterprise",
        help="local Honeycomb plan: free has no Query Data API, so per-span checks are unverifiable",
    )


def apply_target_flags(args: argparse.Namespace, options: DrillOptions) -> None:
    options.backends = args.backends
    options.target = args.target
    options.app_workers = args.app_workers
    options.disable = tuple(x.strip() for x in args.disable.split(",") if x.strip())
    options.honeycomb_plan = args.honeycomb_plan
    if args.backends == "stack":
        options.stack_dir = args.stack_dir
        try:
            options.stack = read_endpoints(args.stack_dir)
        except FileNotFoundError:
            raise UsageError(
                f"--backends stack: no running stack in {args.stack_dir} (no {ENDPOINTS_FILE}); start one with "
                f"`tracedrill stack up --data-dir {args.stack_dir}`"
            ) from None
        except ValueError as exc:
            raise UsageError(
                f"--backends stack: {exc}; remove it and start a stack with `tracedrill stack up --data-dir "
                f"{args.stack_dir}`"
            ) from None
        if silent := silent_endpoint(options.stack):
            raise UsageError(
                f"--backends stack: nothing answers at {silent[0]} ({silent[1]}), named in "
                f"{args.stack_dir / ENDPOINTS_FILE}: its stack has stopped; start one with "
                f"`tracedrill stack up --data-dir {args.stack_dir}`"
            )


def add_processes_flag(group: argparse._ActionsContainer) -> None:
    group.add_argument(
        "--processes",
        type=int,
        default=1,
        metavar="N",
        help="send load from N Locust worker processes under a Locust master (default 1: one process); "
        "every worker writes its own sent-ledger file into the run directory",
    )


def drill_options(args: argparse.Namespace) -> DrillOptions:
    try:
        wait = WaitSettings(settle_s=args.settle, deadline_s=args.deadline)
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    return DrillOptions(
        wait=wait,
        reports_dir=args.reports_dir,
        fail_on_unverifiable=args.fail_on_unverifiable,
        expectations=getattr(args, "expect", None) or DEFAULT_EXPECTATIONS,
    )


class _ShapeParser(argparse.ArgumentParser):
    """Reads Locust's flags for the load's shape out of the arguments after `--` the way Locust's own
    argparse parser does (``-u5``, ``--users=5``, abbreviations like ``--user 5`` or ``--run-t 1h``), so
    that what tracedrill prints, records in run.json, forecasts and guards is the load Locust runs.
    Locust's environment variables and config files cannot change these three: tracedrill always passes
    them on Locust's command line, which wins over both."""

    def __init__(self) -> None:
        super().__init__(prog="tracedrill ... --", add_help=False, allow_abbrev=True)
        self.add_argument("-u", "--users", type=int, dest="users")
        self.add_argument("-r", "--spawn-rate", type=float, dest="spawn_rate")
        self.add_argument("-t", "--run-time", dest="run_time")

    def error(self, message: str) -> NoReturn:
        raise UsageError(f"Locust flags after --: {message} (users need a whole number, -t a timespan like 30s)")


def load_plan(args: argparse.Namespace) -> LoadPlan:
    """The Locust plan of `run` and `ui`; Locust's own flags come after `--` and pass through verbatim,
    except the load's shape (users, spawn rate, run time), which becomes the plan's."""
    extra = list(args.locust_args)
    if extra and extra[0] == "--":
        extra = extra[1:]
    shape, rest = _ShapeParser().parse_known_args(extra)
    return LoadPlan(
        args.users if shape.users is None else shape.users,
        args.spawn_rate if shape.spawn_rate is None else shape.spawn_rate,
        args.run_time if shape.run_time is None else shape.run_time,
        args.locustfile,
        tuple(rest),
        processes=args.processes,
    )
