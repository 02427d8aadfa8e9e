"""Monthly free-tier allowances: the defaults (each with its source), and overrides from a TOML file or flags.

An allowance is drawn on by one or more usage metrics of one backend (see ``verifiers.budget.usage``).
*Traffic* allowances grow with the load (events, traces recorded, log bytes, occurrences); the X-Ray
"retrieved or scanned" allowance is spent only by reading, i.e. by the verifier itself.

Override file (TOML; default ``<data dir>/budget.toml`` when it exists, else ``--budget-config FILE``)::

    [allowances]
    "honeycomb.events" = "20M"                # plain numbers or k/M/G (x1000) and KB/MB/GB, KiB/MiB/GiB
    "cloudwatch_logs.bytes_ingested" = "5GB"

    [accounts]                                # name the account a backend's usage is kept under
    rollbar = "cruddur-project"               # (default: derived from the credentials, see accounts.py)

Flags: ``--allowance honeycomb.events=1M`` (repeatable) win over the file.
"""

from __future__ import annotations

import difflib
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from verifiers.model import BACKENDS, Backend


class BudgetConfigError(ValueError):
    """An allowance or account setting is wrong; the message names it and the fix."""


@dataclass(frozen=True)
class Allowance:
    name: str  # "<backend>.<what>", the name used in flags and the TOML file
    backend: Backend
    label: str  # what a person reads: "events", "traces recorded", ...
    metrics: tuple[str, ...]  # the usage metrics that draw on it (summed)
    limit: float  # per calendar month
    unit: str  # "events", "traces", "bytes", "occurrences"
    traffic: bool  # True: spent by the load; False: spent only by reading (the verifier's own queries)
    source: str  # where the default comes from
    # The most one request can use, when there is such a bound (a request is at most one X-Ray trace):
    # then a request rate is sustainable however the usage per request changes with the rate (sampling).
    max_per_request: float | None = None

    @property
    def title(self) -> str:
        return f"{self.backend} {self.label}"


# The defaults. Where a figure is only in third-party material, the source says so (see
# /work/shared/reference/backend-apis.md for what is confirmed); override it when your plan differs.
DEFAULT_ALLOWANCES: tuple[Allowance, ...] = (
    Allowance(
        "honeycomb.events",
        "honeycomb",
        "events",
        ("events",),
        20_000_000,
        "events",
        traffic=True,
        # Counting rule (every span, span event and span link is one event; calendar months): Honeycomb
        # docs, manage-data-volume/usage-center. The 20M figure itself: third-party pages only, UNCONFIRMED.
        source="Honeycomb Free plan, 20M events/month (third-party figure, unconfirmed on an official page)",
    ),
    Allowance(
        "xray.traces_recorded",
        "xray",
        "traces recorded",
        ("traces_recorded",),
        100_000,
        "traces",
        traffic=True,
        source="AWS X-Ray pricing (aws.amazon.com/xray/pricing): 100,000 traces recorded free each month",
        # Sampling is not linear in the rate (a reservoir records the first requests each second), so the
        # share recorded at one rate does not hold at another: the bound gives a rate that is safe regardless.
        max_per_request=1.0,
    ),
    Allowance(
        "xray.traces_retrieved_or_scanned",
        "xray",
        "traces retrieved or scanned",
        ("traces_scanned", "traces_retrieved"),
        1_000_000,
        "traces",
        traffic=False,
        source="AWS X-Ray pricing (aws.amazon.com/xray/pricing): 1,000,000 traces retrieved or scanned free each month",
    ),
    Allowance(
        "cloudwatch_logs.bytes_ingested",
        "cloudwatch_logs",
        "log data ingested",
        ("bytes_ingested",),
        # AWS bills "5 GB" without saying here whether a GB is 10^9 or 2^30 bytes: the smaller is
        # used so the guard errs on the safe side. Bytes = UTF-8 message + 26 per event (PutLogEvents).
        5_000_000_000,
        "bytes",
        traffic=True,
        source="AWS free tier (CloudWatch Logs): 5 GB data ingested a month, taken as 5x10^9 bytes",
    ),
    Allowance(
        "rollbar.occurrences",
        "rollbar",
        "occurrences",
        ("occurrences",),
        5_000,
        "occurrences",
        traffic=True,
        # Rollbar counts per billing cycle, which may not start on the 1st: the ledger uses calendar months.
        source="Rollbar Free plan, 5,000 occurrences/month (third-party figure, unconfirmed)",
    ),
)

_BYTE_UNITS = {"b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30}
_COUNT_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9}
_QUANTITY = re.compile(r"^\s*(?P<number>\d+(?:\.\d+)?(?:e\d+)?)\s*(?P<unit>[a-zA-Z]*)\s*$")


def parse_quantity(text: str | int | float, where: str) -> float:
    """``20000000``, ``20M``, ``100k``, ``5GB``, ``5GiB``, ``1e6`` -> a number (>= 0)."""
    if isinstance(text, bool):
        raise BudgetConfigError(f"{where}: {text!r} is not a quantity")
    if isinstance(text, int | float):
        value = float(text)
    else:
        match = _QUANTITY.match(text)
        unit = match["unit"].lower() if match else ""
        factor = _BYTE_UNITS.get(unit) or _COUNT_UNITS.get(unit)
        if match is None or factor is None:
            raise BudgetConfigError(f"{where}: {text!r} is not a quantity like 20000000, 20M, 100k, 5GB or 5GiB")
        value = float(match["number"]) * factor
    if value < 0:
        raise BudgetConfigError(f"{where}: must not be negative, got {text!r}")
    return value


@dataclass(frozen=True)
class BudgetConfig:
    allowances: tuple[Allowance, ...] = DEFAULT_ALLOWANCES
    accounts: Mapping[Backend, str] | None = None  # explicit account names; others are derived

    def allowance(self, name: str) -> Allowance:
        return next(a for a in self.allowances if a.name == name)

    def for_backend(self, backend: Backend) -> list[Allowance]:
        return [a for a in self.allowances if a.backend == backend]


def _override(allowances: tuple[Allowance, ...], name: str, raw: Any, where: str) -> tuple[Allowance, ...]:
    names = [a.name for a in allowances]
    if name not in names:
        close = difflib.get_close_matches(name, names, n=1)
        hint = f" - did you mean '{close[0]}'?" if close else f" (known: {', '.join(names)})"
        raise BudgetConfigError(f"{where}: unknown allowance '{name}'{hint}")
    limit = parse_quantity(raw, f"{where} {name}")
    return tuple(replace(a, limit=limit, source=f"set by {where}") if a.name == name else a for a in allowances)


def load_budget_config(path: Path | None = None, overrides: Iterable[str] = ()) -> BudgetConfig:
    """Defaults, then the TOML file (if given), then ``NAME=VALUE`` flags."""
    allowances = DEFAULT_ALLOWANCES
    accounts: dict[Backend, str] = {}
    if path is not None:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError as exc:
            raise BudgetConfigError(f"--budget-config {path}: file not found") from exc
        except tomllib.TOMLDecodeError as exc:
            raise BudgetConfigError(f"--budget-config {path}: not valid TOML: {exc}") from exc
        unknown = set(data) - {"allowances", "accounts"}
        if unknown:
            raise BudgetConfigError(
                f"{path}: unknown table(s) {', '.join(sorted(unknown))} (allowed: allowances, accounts)"
            )
        for name, raw in (data.get("allowances") or {}).items():
            allowances = _override(allowances, name, raw, str(path))
        for backend, account in (data.get("accounts") or {}).items():
            if backend not in BACKENDS:
                raise BudgetConfigError(f"{path}: [accounts] {backend!r} is not a backend ({', '.join(BACKENDS)})")
            if not isinstance(account, str) or not account.strip():
                raise BudgetConfigError(f"{path}: [accounts] {backend} must be a non-empty string")
            accounts[backend] = account.strip()
    for flag in overrides:
        name, sep, raw = flag.partition("=")
        if not sep:
            raise BudgetConfigError(f"--allowance {flag!r}: use NAME=VALUE, e.g. --allowance honeycomb.events=1M")
        allowances = _override(allowances, name.strip(), raw.strip(), "--allowance")
    return BudgetConfig(allowances, accounts or None)
