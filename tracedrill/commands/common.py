"""Flags and option-building shared by the commands that verify (run, verify)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from emulators.stack import DEFAULT_DATA_DIR, ENDPOINTS_FILE, read_endpoints, silent_endpoint
from tracedrill.drill import DrillOptions, UsageError
from tracedrill.loadgen import LoadPlan
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
        choices=("local", "cloud", "stack"),
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
        choices=("enterprise", "free"),
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


# Locust's flags for the load's shape: given after `--` they still win, and they are taken into the plan so
# that what tracedrill prints, records in run.json, forecasts and guards is the load Locust runs.
_LOAD_SHAPE_FLAGS = {"-u": "users", "--users": "users", "-r": "spawn_rate", "--spawn-rate": "spawn_rate",
                     "-t": "run_time", "--run-time": "run_time"}  # fmt: skip


def load_plan(args: argparse.Namespace) -> LoadPlan:
    """The Locust plan of `run` and `ui`; Locust's own flags come after `--` and pass through verbatim,
    except the load's shape (users, spawn rate, run time), which becomes the plan's."""
    extra = list(args.locust_args)
    if extra and extra[0] == "--":
        extra = extra[1:]
    shape: dict[str, Any] = {"users": args.users, "spawn_rate": args.spawn_rate, "run_time": args.run_time}
    rest: list[str] = []
    arguments = iter(extra)
    for arg in arguments:
        flag, equals, value = arg.partition("=")
        name = _LOAD_SHAPE_FLAGS.get(flag)
        if name is None:
            rest.append(arg)
            continue
        if not equals:
            value = next(arguments, "")
        shape[name] = _shape_value(flag, name, value)
    return LoadPlan(
        shape["users"], shape["spawn_rate"], shape["run_time"], args.locustfile, tuple(rest), processes=args.processes
    )


_SHAPE_TYPES: dict[str, tuple[type, str]] = {
    "users": (int, "a whole number"),
    "spawn_rate": (float, "a number"),
    "run_time": (str, "a timespan like 30s"),
}


def _shape_value(flag: str, name: str, value: str) -> Any:
    kind, described = _SHAPE_TYPES[name]
    try:
        if value:
            return kind(value)
    except ValueError:
        pass
    raise UsageError(f"{flag} after --: needs {described}, got {value!r}")
