"""Flags and option-building shared by the commands that verify (run, verify)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tracedrill.drill import DrillOptions, UsageError
from verifiers.expectations import DEFAULT_EXPECTATIONS
from verifiers.polling import WaitSettings

EPILOG = """exit codes: 0 every check passed (unverifiable checks are reported, not failed, unless
--fail-on-unverifiable); 1 a check failed or timed out; 2 usage or configuration error."""


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
        "--fail-on-unverifiable",
        action="store_true",
        help="exit 1 when a check cannot be decided (e.g. Honeycomb without the Query Data API)",
    )
    group.add_argument("--reports-dir", type=Path, default=Path("reports"), help="where run directories go")


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
