"""Centralized sampling: the rules GetSamplingRules serves and the quotas GetSamplingTargets hands out.

Rules come from a JSON file in one of the shapes people already have: the CreateSamplingRule
input ``{"SamplingRule": {...}}``, the console/CLI export ``{"SamplingRules": [...]}``, the
GetSamplingRules output ``{"SamplingRuleRecords": [{"SamplingRule": {...}}]}``, or a bare list.
The implicit ``Default`` rule (priority 10000, reservoir 1/s, fixed rate 5 %) is always there; a
rule named ``Default`` in the file changes only its FixedRate and ReservoirSize, as
UpdateSamplingRule does. The file is re-read when its modification time changes, and that time
is the rules' ModifiedAt / LastRuleModification, so SDKs pick up edits on their next poll.

Quota split (ReservoirQuota): a rule's ReservoirSize is per second for all clients together. On
every GetSamplingTargets call the reporting client is recorded for the rule; the clients that
reported for that rule within the last 1.5 x Interval (15 s: one polling interval plus slack for
the SDK's jitter) share the reservoir equally: each gets ``size // n``, and the ``size % n``
leftover requests go one each to the first clients in ClientID order. The quotas therefore sum
to exactly ReservoirSize among active clients (a lone client gets it all; with more clients than
requests some get 0 and rely on FixedRate). A client learns a new share on its next poll.
"""

from __future__ import annotations

import json
import logging
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("tracedrill.emulators.xray")

DEFAULT_RULE_NAME = "Default"
TARGET_INTERVAL_SECONDS = 10
ACTIVE_CLIENT_WINDOW_SECONDS = 1.5 * TARGET_INTERVAL_SECONDS
# The developer guide's example: "The quota is good for five minutes ... or until a new quota is assigned".
QUOTA_TTL_SECONDS = 300

_DEFAULT_RULE: dict[str, Any] = {
    "RuleName": DEFAULT_RULE_NAME,
    "ResourceARN": "*",
    "Priority": 10000,
    "FixedRate": 0.05,
    "ReservoirSize": 1,
    "ServiceName": "*",
    "ServiceType": "*",
    "Host": "*",
    "HTTPMethod": "*",
    "URLPath": "*",
    "Version": 1,
    "Attributes": {},
}
_STRING_FIELDS = {
    "ResourceARN": 500,
    "ServiceName": 64,
    "ServiceType": 64,
    "Host": 64,
    "HTTPMethod": 10,
    "URLPath": 128,
}


class SamplingRulesError(ValueError):
    """The rules file cannot be used; the message names the file, the rule and the field."""


def parse_rules(data: Any, source: str) -> list[dict[str, Any]]:
    """Validated SamplingRule dicts from any of the accepted file shapes."""
    if isinstance(data, dict) and "SamplingRule" in data:
        raw = [data["SamplingRule"]]
    elif isinstance(data, dict) and "SamplingRules" in data:
        raw = data["SamplingRules"]
    elif isinstance(data, dict) and "SamplingRuleRecords" in data:
        raw = [r.get("SamplingRule") if isinstance(r, dict) else r for r in data["SamplingRuleRecords"]]
    elif isinstance(data, list):
        raw = data
    else:
        raise SamplingRulesError(f'{source}: expected {{"SamplingRule": {{...}}}} or {{"SamplingRules": [...]}}')
    if not isinstance(raw, list):
        raise SamplingRulesError(f"{source}: SamplingRules must be a list")
    rules = [_validate_rule(rule, f"{source}: rule #{i + 1}") for i, rule in enumerate(raw)]
    names = [r["RuleName"] for r in rules]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise SamplingRulesError(f"{source}: duplicate RuleName {', '.join(duplicates)}")
    return rules


def _validate_rule(rule: Any, where: str) -> dict[str, Any]:
    if not isinstance(rule, dict):
        raise SamplingRulesError(f"{where}: must be an object")
    name = rule.get("RuleName")
    if not isinstance(name, str) or not 1 <= len(name) <= 32:
        raise SamplingRulesError(f"{where}: RuleName must be a string of 1-32 characters")
    where = f"{where} ({name})"
    if name == DEFAULT_RULE_NAME:
        out = dict(_DEFAULT_RULE)
        for field in ("FixedRate", "ReservoirSize"):
            if field in rule:
                out[field] = rule[field]
        _check_numbers(out, where)
        return out
    missing = [f for f in ("Priority", "FixedRate", "ReservoirSize", "Version", *_STRING_FIELDS) if f not in rule]
    if missing:
        raise SamplingRulesError(f"{where}: missing {', '.join(missing)}")
    for field, limit in _STRING_FIELDS.items():
        value = rule[field]
        if not isinstance(value, str) or len(value) > limit:
            raise SamplingRulesError(f"{where}: {field} must be a string of at most {limit} characters")
    priority = rule["Priority"]
    if not _is_int(priority) or not 1 <= priority <= 9999:
        raise SamplingRulesError(f"{where}: Priority must be an integer from 1 to 9999")
    if rule["Version"] != 1 or not _is_int(rule["Version"]):
        raise SamplingRulesError(f"{where}: Version must be 1")
    attributes = rule.get("Attributes", {})
    if (
        not isinstance(attributes, dict)
        or len(attributes) > 5
        or not all(isinstance(k, str) and isinstance(v, str) for k, v in attributes.items())
    ):
        raise SamplingRulesError(f"{where}: Attributes must map at most 5 strings to strings")
    out = {key: rule[key] for key in _DEFAULT_RULE if key in rule}
    out["Attributes"] = dict(attributes)
    _check_numbers(out, where)
    return out


def _check_numbers(rule: dict[str, Any], where: str) -> None:
    rate = rule["FixedRate"]
    if isinstance(rate, bool) or not isinstance(rate, int | float) or not math.isfinite(rate) or not 0 <= rate <= 1:
        raise SamplingRulesError(f"{where}: FixedRate must be a number from 0 to 1")
    if not _is_int(rule["ReservoirSize"]) or rule["ReservoirSize"] < 0:
        raise SamplingRulesError(f"{where}: ReservoirSize must be a non-negative integer")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(frozen=True)
class RuleRecord:
    rule: dict[str, Any]  # API SamplingRule, RuleARN included
    created_at: float
    modified_at: float

    @property
    def name(self) -> str:
        return str(self.rule["RuleName"])

    def to_api(self) -> dict[str, Any]:
        return {"SamplingRule": dict(self.rule), "CreatedAt": self.created_at, "ModifiedAt": self.modified_at}


class SamplingRuleSet:
    """The rules of one emulator; re-reads ``path`` when it changes (a bad edit keeps the old rules)."""

    def __init__(self, path: Path | None, region: str, account_id: str, clock: Callable[[], float]) -> None:
        self._path = path
        self._region = region
        self._account = account_id
        self._started = clock()
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._records: list[RuleRecord] = []
        if path is not None and not path.is_file():
            raise SamplingRulesError(f"sampling rules file {path} does not exist")
        self._reload(force=True)

    def records(self) -> list[RuleRecord]:
        self._reload()
        return list(self._records)

    def find(self, name: str) -> RuleRecord | None:
        return next((r for r in self.records() if r.name == name), None)

    def last_modification(self) -> float:
        return max(r.modified_at for r in self.records())

    def _reload(self, force: bool = False) -> None:
        with self._lock:
            mtime = self._path.stat().st_mtime if self._path is not None and self._path.exists() else None
            if not force and mtime == self._mtime:
                return
            try:
                rules = self._read_file()
            except (OSError, ValueError) as exc:
                if force:
                    raise SamplingRulesError(str(exc)) from exc
                log.warning("keeping the previous sampling rules: %s", exc)
                self._mtime = mtime
                return
            stamp = mtime if mtime is not None else self._started
            if not any(r["RuleName"] == DEFAULT_RULE_NAME for r in rules):
                rules.append(dict(_DEFAULT_RULE))
            records = []
            for rule in rules:
                rule = dict(rule)
                rule["RuleARN"] = f"arn:aws:xray:{self._region}:{self._account}:sampling-rule/{rule['RuleName']}"
                records.append(RuleRecord(rule=rule, created_at=stamp, modified_at=stamp))
            records.sort(key=lambda r: (r.rule["Priority"], r.name))
            self._records = records
            self._mtime = mtime

    def _read_file(self) -> list[dict[str, Any]]:
        if self._path is None:
            return []
        try:
            data = json.loads(self._path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as exc:
            raise SamplingRulesError(f"{self._path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from exc
        except json.JSONDecodeError as exc:
            raise SamplingRulesError(f"{self._path}: not valid JSON: {exc}") from exc
        except OSError as exc:
            raise SamplingRulesError(f"{self._path}: cannot read the sampling rules ({exc.strerror})") from exc
        return parse_rules(data, str(self._path))


class QuotaAllocator:
    """Shares each rule's ReservoirSize between the clients that reported recently (see module doc)."""

    def __init__(self, window: float = ACTIVE_CLIENT_WINDOW_SECONDS) -> None:
        self._window = window
        self._seen: dict[str, dict[str, float]] = {}
        self._lock = threading.Lock()

    def allocate(self, rule_name: str, reservoir_size: int, client_id: str, now: float) -> int:
        with self._lock:
            clients = self._seen.setdefault(rule_name, {})
            clients[client_id] = now
            for other, seen in list(clients.items()):
                if now - seen > self._window:
                    del clients[other]
            active = sorted(clients)
        share, leftover = divmod(reservoir_size, len(active))
        return share + (1 if active.index(client_id) < leftover else 0)
