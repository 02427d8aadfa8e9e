"""Honeycomb WHERE filters compiled to predicates over one event's columns.

Documented rule: an event that lacks the filtered column (or holds null in it) never matches,
whatever the operator, even ``!=``; only ``does-not-exist`` matches such events. Filter values
are compared in the type of the event's value (``"200"`` matches the integer 200, ``"true"``
the boolean true), as Honeycomb coerces a filter value to the column's type.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

Predicate = Callable[[dict[str, Any]], bool]
ValueTest = Callable[[Any], bool]

FILTER_OPS = (
    "=", "!=", ">", ">=", "<", "<=",
    "starts-with", "does-not-start-with", "ends-with", "does-not-end-with",
    "exists", "does-not-exist", "contains", "does-not-contain", "in", "not-in",
)  # fmt: skip
VALUELESS_OPS = ("exists", "does-not-exist")
LIST_OPS = ("in", "not-in")


class _Incomparable:
    """The filter value cannot be expressed in the type of the event's value."""


INCOMPARABLE = _Incomparable()


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_scalar(value: Any) -> bool:
    """A value a filter may compare with: string, number or boolean."""
    return isinstance(value, (str, int, float, bool))


def as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def coerce(target: Any, raw: Any) -> Any:
    """``raw`` (a filter value) in the type of ``target`` (an event value), or INCOMPARABLE."""
    if isinstance(target, bool):
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in ("true", "false"):
            return raw.lower() == "true"
        return INCOMPARABLE
    if is_number(target):
        if is_number(raw):
            return raw
        if isinstance(raw, str):
            try:
                number = float(raw.strip())
            except ValueError:
                return INCOMPARABLE
            return number if math.isfinite(number) else INCOMPARABLE
        return INCOMPARABLE
    if isinstance(raw, (str, bool, int, float)):
        return as_text(raw)
    return INCOMPARABLE


def _equals(value: Any, raw: Any) -> bool:
    other = coerce(value, raw)
    return other is not INCOMPARABLE and bool(value == other)


def _ordered(compare: Callable[[Any, Any], bool]) -> Callable[[Any], ValueTest]:
    def build(raw: Any) -> ValueTest:
        def test(value: Any) -> bool:
            other = coerce(value, raw)
            if other is INCOMPARABLE or isinstance(value, bool):
                return False
            return compare(value, other)

        return test

    return build


def _text(compare: Callable[[str, str], bool], negate: bool = False) -> Callable[[Any], ValueTest]:
    def build(raw: Any) -> ValueTest:
        needle = as_text(raw)

        def test(value: Any) -> bool:
            # A str is its own text (as_text's str(value)); skipping the call matters once per event.
            return compare(value if type(value) is str else as_text(value), needle) != negate

        return test

    return build


def _membership(negate: bool) -> Callable[[Any], ValueTest]:
    def build(raw: Any) -> ValueTest:
        options: Sequence[Any] = raw
        return lambda value: any(_equals(value, option) for option in options) != negate

    return build


_VALUE_TESTS: dict[str, Callable[[Any], ValueTest]] = {
    "=": lambda raw: lambda value: _equals(value, raw),
    "!=": lambda raw: lambda value: not _equals(value, raw),
    ">": _ordered(lambda a, b: a > b),
    ">=": _ordered(lambda a, b: a >= b),
    "<": _ordered(lambda a, b: a < b),
    "<=": _ordered(lambda a, b: a <= b),
    "starts-with": _text(str.startswith),
    "does-not-start-with": _text(str.startswith, negate=True),
    "ends-with": _text(str.endswith),
    "does-not-end-with": _text(str.endswith, negate=True),
    "contains": _text(lambda haystack, needle: needle in haystack),
    "does-not-contain": _text(lambda haystack, needle: needle in haystack, negate=True),
    "in": _membership(negate=False),
    "not-in": _membership(negate=True),
}


def value_test(op: str, raw: Any) -> ValueTest:
    """The test a present, non-null value must pass for ``op`` with filter value ``raw``."""
    return _VALUE_TESTS[op](raw)


def compile_filter(column: str, op: str, raw: Any) -> Predicate:
    if op == "exists":
        return lambda event: event.get(column) is not None
    if op == "does-not-exist":
        return lambda event: event.get(column) is None
    test = value_test(op, raw)

    def predicate(event: dict[str, Any]) -> bool:
        value = event.get(column)
        return value is not None and test(value)

    return predicate


def compile_filters(filters: Sequence[dict[str, Any]], combination: str) -> Predicate:
    prefixes = _prefix_set(filters, combination)
    if prefixes is not None:
        return prefixes
    predicates = [compile_filter(f["column"], f["op"], f.get("value")) for f in filters]
    if not predicates:
        return lambda event: True
    if len(predicates) == 1:
        return predicates[0]
    # Plain loops, not any()/all() over a generator: this runs once per event.
    if combination == "OR":

        def some(event: dict[str, Any]) -> bool:
            for predicate in predicates:
                if predicate(event):
                    return True
            return False

        return some

    def every(event: dict[str, Any]) -> bool:
        for predicate in predicates:
            if not predicate(event):
                return False
        return True

    return every


def _prefix_set(filters: Sequence[dict[str, Any]], combination: str) -> Predicate | None:
    """Several ``starts-with`` OR-ed (or ``does-not-start-with`` AND-ed) on one column, optionally OR-ed
    with its ``does-not-exist``, as one str.startswith over a tuple: the same answer, one test per event."""
    wanted = "starts-with" if combination == "OR" else "does-not-start-with"
    ops = {f["op"] for f in filters}
    if len(filters) < 2 or len({f["column"] for f in filters}) != 1 or not ops <= {wanted, "does-not-exist"}:
        return None
    if wanted not in ops or (combination == "AND" and "does-not-exist" in ops):
        return None
    column = filters[0]["column"]
    needles = tuple(as_text(f.get("value")) for f in filters if f["op"] == wanted)
    or_missing = "does-not-exist" in ops
    negate = wanted == "does-not-start-with"

    def predicate(event: dict[str, Any]) -> bool:
        value = event.get(column)
        if value is None:
            return or_missing
        return (value if type(value) is str else as_text(value)).startswith(needles) != negate

    return predicate
