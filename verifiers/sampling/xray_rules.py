"""X-Ray sampling rules as the Python SDK sees them: which rule decides each request.

Two kinds of rule documents, told apart by their shape:

- centralized rules (the X-Ray service's rules, polled through the daemon): the CreateSamplingRule
  input ``{"SamplingRule": {...}}``, a ``{"SamplingRules": [...]}`` export, the GetSamplingRules
  output ``{"SamplingRuleRecords": [...]}`` or a bare list. ReservoirSize is per second for the
  whole service (the quota is shared between processes). The implicit ``Default`` rule (1/s, 5 %)
  is added when the document lacks it.
- local rules (the SDK's own file, versions 1 and 2): ``{"version": 2, "rules": [...], "default":
  {...}}``. ``fixed_target`` is per second *per process*: every process has its own reservoir.

Matching follows aws_xray_sdk 2.x: centralized rules in (Priority, RuleName) order, the first whose
ServiceName, Host, HTTPMethod and URLPath patterns all match (``*``/``?`` wildcards, case-insensitive),
else Default; rules the SDK skips (Version != 1, ResourceARN != ``*``, Attributes set) never match.
Local rules in file order on host, method and path, else the default rule.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

Mode = Literal["centralized", "local"]
DEFAULT_RULE = "Default"
# The implicit Default rule, and the SDK's built-in local rule used before centralized rules arrive.
DEFAULT_RESERVOIR, DEFAULT_RATE = 1, 0.05


class RulesError(ValueError):
    """A rules document the check cannot use; the message names the source and the field."""


@dataclass(frozen=True)
class XRayRule:
    name: str
    reservoir: int  # ReservoirSize (centralized, per service) or fixed_target (local, per process)
    rate: float  # FixedRate / rate
    priority: int = 10000
    service: str = "*"
    host: str = "*"
    method: str = "*"
    path: str = "*"
    ignored: str = ""  # why the SDK skips this rule (it then never matches); "" when it is used

    @property
    def is_default(self) -> bool:
        return self.name == DEFAULT_RULE

    def describe(self) -> str:
        return f"{self.name} (reservoir {self.reservoir}/s, fixed rate {self.rate:g})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "reservoir": self.reservoir,
            "rate": self.rate,
            "priority": self.priority,
            "service": self.service,
            "host": self.host,
            "method": self.method,
            "path": self.path,
            **({"ignored": self.ignored} if self.ignored else {}),
        }


@dataclass(frozen=True)
class XRayRuleSet:
    mode: Mode
    rules: tuple[XRayRule, ...]  # in the order the SDK tries them, the default rule last
    source: str = ""
    document: Mapping[str, Any] | Sequence[Any] = field(default_factory=dict, compare=False)

    @property
    def default(self) -> XRayRule:
        return self.rules[-1]

    def match(self, service: str, host: str, method: str, path: str) -> XRayRule:
        for rule in self.rules[:-1]:
            if rule.ignored:
                continue
            if self.mode == "centralized" and not wildcard_match(rule.service, service):
                continue
            if all(wildcard_match(p, t) for p, t in ((rule.host, host), (rule.method, method), (rule.path, path))):
                return rule
        return self.default

    def rule(self, name: str) -> XRayRule:
        return next(r for r in self.rules if r.name == name)


def wildcard_match(pattern: str, text: str) -> bool:
    """The SDK's ``wildcard_match``: ``*`` any run, ``?`` one character, case-insensitive, whole text."""
    if pattern == "*":
        return True
    return _compiled(pattern).fullmatch(text) is not None


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    parts = ("." if c == "?" else ".*" if c == "*" else re.escape(c) for c in pattern)
    return re.compile("".join(parts), re.IGNORECASE | re.DOTALL)


def load_rules(path: Path) -> XRayRuleSet:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise RulesError(f"{path}: cannot read the sampling rules ({exc.strerror})") from None
    except UnicodeDecodeError as exc:
        raise RulesError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise RulesError(f"{path}: not valid JSON ({exc})") from None
    return parse_rules(data, str(path))


def parse_rules(data: Any, source: str) -> XRayRuleSet:
    """Rules from any accepted document shape (see the module docstring)."""
    if isinstance(data, dict) and "version" in data:
        return _local(data, source)
    if isinstance(data, dict) and "SamplingRule" in data:
        raw: Any = [data["SamplingRule"]]
    elif isinstance(data, dict) and "SamplingRules" in data:
        raw = data["SamplingRules"]
    elif isinstance(data, dict) and "SamplingRuleRecords" in data:
        raw = [r.get("SamplingRule") if isinstance(r, dict) else r for r in data["SamplingRuleRecords"]]
    elif isinstance(data, list):
        raw = data
    else:
        raise RulesError(
            f'{source}: expected centralized rules ({{"SamplingRule": {{...}}}}, {{"SamplingRules": [...]}}, '
            f'GetSamplingRules output) or a local rules file ({{"version": 2, ...}})'
        )
    if not isinstance(raw, list):
        raise RulesError(f"{source}: the rules must be a list")
    rules = [_centralized_rule(r, f"{source}: rule #{i + 1}") for i, r in enumerate(raw)]
    default = next((r for r in rules if r.is_default), XRayRule(DEFAULT_RULE, DEFAULT_RESERVOIR, DEFAULT_RATE))
    others = sorted((r for r in rules if not r.is_default), key=lambda r: (r.priority, r.name))
    return XRayRuleSet("centralized", (*others, default), source, data)


def _centralized_rule(rule: Any, where: str) -> XRayRule:
    if not isinstance(rule, dict):
        raise RulesError(f"{where}: must be an object")
    name = rule.get("RuleName")
    if not isinstance(name, str) or not name:
        raise RulesError(f"{where}: RuleName must be a non-empty string")
    where = f"{where} ({name})"
    reservoir, rate = _number(rule, "ReservoirSize", where, integer=True), _number(rule, "FixedRate", where)
    if name == DEFAULT_RULE:
        return XRayRule(name, int(reservoir), rate)
    ignored = ""
    if rule.get("Version", 1) != 1:
        ignored = f"Version {rule.get('Version')!r} (the SDK uses version 1 rules only)"
    elif rule.get("ResourceARN", "*") != "*":
        ignored = "ResourceARN is not '*' (the SDK skips such rules)"
    elif rule.get("Attributes"):
        ignored = "Attributes are set (the SDK skips such rules)"
    priority = rule.get("Priority", 10000)
    if isinstance(priority, bool) or not isinstance(priority, int):
        raise RulesError(f"{where}: Priority must be an integer")
    return XRayRule(
        name,
        int(reservoir),
        rate,
        priority,
        service=_pattern(rule, "ServiceName", where),
        host=_pattern(rule, "Host", where),
        method=_pattern(rule, "HTTPMethod", where),
        path=_pattern(rule, "URLPath", where),
        ignored=ignored,
    )


def _local(data: dict[str, Any], source: str) -> XRayRuleSet:
    version = data.get("version")
    if version not in (1, 2):
        raise RulesError(f"{source}: local rules version must be 1 or 2, got {version!r}")
    host_key = "host" if version == 2 else "service_name"
    if not isinstance(data.get("default"), dict):
        raise RulesError(f"{source}: local rules need a 'default' rule")
    default = data["default"]
    rules = []
    for i, rule in enumerate(data.get("rules") or []):
        where = f"{source}: rules[{i}]"
        if not isinstance(rule, dict):
            raise RulesError(f"{where}: must be an object")
        for key in (host_key, "http_method", "url_path"):
            if not isinstance(rule.get(key), str) or not rule[key]:
                raise RulesError(f"{where}: '{key}' is required (a wildcard pattern)")
        rules.append(
            XRayRule(
                str(rule.get("description") or f"rule {i + 1}"),
                int(_number(rule, "fixed_target", where, integer=True)),
                _number(rule, "rate", where),
                priority=i + 1,
                host=rule[host_key],
                method=rule["http_method"],
                path=rule["url_path"],
            )
        )
    where = f"{source}: default"
    fallback = XRayRule(
        DEFAULT_RULE, int(_number(default, "fixed_target", where, integer=True)), _number(default, "rate", where)
    )
    return XRayRuleSet("local", (*rules, fallback), source, data)


def _number(rule: Mapping[str, Any], key: str, where: str, *, integer: bool = False) -> float:
    value = rule.get(key)
    kind = "a non-negative integer" if integer else "a number from 0 to 1"
    if isinstance(value, bool) or not isinstance(value, int if integer else int | float):
        raise RulesError(f"{where}: {key} must be {kind}, got {value!r}")
    number = float(value)
    if number < 0 or (not integer and number > 1):
        raise RulesError(f"{where}: {key} must be {kind}, got {value!r}")
    return number


def _pattern(rule: Mapping[str, Any], key: str, where: str) -> str:
    value = rule.get(key, "*")
    if not isinstance(value, str):
        raise RulesError(f"{where}: {key} must be a string pattern")
    return value
