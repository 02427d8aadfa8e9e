"""`tracedrill budget`: the free-tier ledger for a month: month to date, per run, and the outlook.

Also the budget flags `run` and `verify` share (``add_budget_flags``, ``budget_options``).
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
import time
from pathlib import Path
from typing import Any

from tracedrill.budgeting import BudgetOptions
from tracedrill.console import Console
from tracedrill.drill import UsageError
from verifiers.budget.allowances import BudgetConfigError
from verifiers.budget.book import month_view
from verifiers.budget.ledger import BudgetLedger, month_of
from verifiers.budget.render import month_text

_MONTH = re.compile(r"^\d{4}-(0[1-9]|1[0-2])$")


def add_budget_flags(parser: argparse.ArgumentParser, *, guard: bool, record: bool = True) -> None:
    """``guard``: the run's --allow-overage; ``record``: --no-budget (the command records into the ledger)."""
    group = parser.add_argument_group("free-tier budget (see README: Free-tier budgets)")
    group.add_argument(
        "--budget-db",
        type=Path,
        metavar="PATH",
        help="the budget ledger (SQLite); default $TRACEDRILL_DATA_DIR/budget.sqlite3, else "
        "$XDG_DATA_HOME/tracedrill/budget.sqlite3, else ~/.local/share/tracedrill/budget.sqlite3",
    )
    group.add_argument(
        "--budget-config",
        type=Path,
        metavar="FILE",
        help="TOML with [allowances] and [accounts] (default: budget.toml next to the ledger, if any)",
    )
    group.add_argument(
        "--allowance",
        action="append",
        default=[],
        metavar="NAME=N",
        help="a monthly allowance, e.g. honeycomb.events=20M, xray.traces_recorded=100k, "
        "xray.traces_retrieved_or_scanned=1M, cloudwatch_logs.bytes_ingested=5GB, rollbar.occurrences=5000 "
        "(repeatable; the defaults are the free tiers)",
    )
    if guard:
        group.add_argument(
            "--allow-overage",
            action="store_true",
            help="run even when the forecast passes what is left of an allowance this month "
            "(otherwise the run is refused before any request is sent, exit code 2)",
        )
    if record:
        group.add_argument(
            "--no-budget",
            action="store_true",
            help="leave the budget ledger alone: no forecast, no guard, nothing recorded",
        )


def budget_options(args: argparse.Namespace) -> BudgetOptions:
    return BudgetOptions(
        enabled=not getattr(args, "no_budget", False),
        db=args.budget_db,
        config=args.budget_config,
        allowances=tuple(args.allowance),
        allow_overage=getattr(args, "allow_overage", False),
    )


def add_parser(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "budget",
        help="free-tier usage: month to date, per run, and how long each allowance lasts",
        description="What the recorded runs used of each backend's monthly free-tier allowance, per backend "
        "account (local runs are kept apart from cloud accounts), the runs themselves, and, at the newest run's "
        "request rate, how long each allowance lasts and the request rate it sustains for a whole month.",
    )
    parser.add_argument("--month", metavar="YYYY-MM", help="the calendar month (UTC) to show (default: this month)")
    parser.add_argument("--runs", type=int, default=20, metavar="N", help="show the newest N runs (default 20)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of tables")
    add_budget_flags(parser, guard=False, record=False)


def main(args: argparse.Namespace, console: Console) -> int:
    month = args.month or month_of(time.time())
    if not _MONTH.match(month):
        raise UsageError(f"--month {month!r}: use YYYY-MM, e.g. {month_of(time.time())}")
    if args.runs < 0:
        raise UsageError(f"--runs must be 0 or more, got {args.runs}")
    options = budget_options(args)
    try:
        config = options.load_config()
        path = options.ledger_path()
        if not path.is_file():
            view: dict[str, Any] = {"month": month, "ledger": str(path), "accounts": []}  # do not create it
        else:
            view = month_view(BudgetLedger(path), config, month, runs=args.runs)
    except BudgetConfigError as exc:
        raise UsageError(str(exc)) from exc
    except (OSError, sqlite3.Error) as exc:
        raise UsageError(f"the budget ledger {options.ledger_path()} cannot be read: {exc}") from exc
    console.out(json.dumps(view, indent=2) if args.json else month_text(view))
    return 0
