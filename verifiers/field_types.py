"""Dataclasses read from JSON, and whether they hold the types their fields declare.

JSON files a person may edit or a program may cut short (the sent-ledger, run.json) are read into
dataclasses; a value of the wrong type would otherwise surface later as a TypeError far from its cause.
Only the shapes those records use are understood: str, int, float, bool, dict, list, Any and unions of
them with None.
"""

from __future__ import annotations

import json
import types
import typing
from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar, Union

Record = TypeVar("Record")


def record_from_json(make: Callable[..., Record], text: str | bytes) -> Record:
    """The dataclass ``make`` builds from the JSON object ``text``, its field types checked; ValueError
    (not JSON) or TypeError (not an object, unknown or missing keys, a value of the wrong type) otherwise."""
    fields = json.loads(text)
    if not isinstance(fields, dict):
        raise TypeError(f"a JSON {type(fields).__name__}, not an object")
    record = make(**fields)
    if problems := wrong_field_types(record):
        raise TypeError("; ".join(problems))
    return record


def wrong_field_types(record: object) -> list[str]:
    """``"field: expected int or None, got str"`` for every field of ``record`` whose value does not fit."""
    problems = []
    kind: type = type(record)
    for name, allowed, label in _field_checks(kind):
        value = getattr(record, name)
        # bool is an int to isinstance, but true is no number of seconds or status code
        if not isinstance(value, allowed) or (isinstance(value, bool) and bool not in allowed):
            problems.append(f"{name}: expected {label}, got {type(value).__name__}")
    return problems


@cache
def _field_checks(cls: type) -> tuple[tuple[str, tuple[type, ...], str], ...]:
    checks = []
    for name, hint in typing.get_type_hints(cls).items():
        allowed = _allowed(hint)
        if allowed is not None:
            checks.append(
                (
                    name,
                    allowed,
                    " or ".join(_type_name(t, allowed) for t in allowed if t is not int or float not in allowed),
                )
            )
    return tuple(checks)


def _type_name(kind: type, allowed: tuple[type, ...]) -> str:
    return "None" if kind is type(None) else "a number" if kind is float else kind.__name__


def _allowed(hint: Any) -> tuple[type, ...] | None:
    """The runtime types that satisfy ``hint``; None: anything goes."""
    if hint is Any:
        return None
    if typing.get_origin(hint) in (Union, types.UnionType):
        parts = [_allowed(arg) for arg in typing.get_args(hint)]
        return None if any(p is None for p in parts) else tuple(t for p in parts if p for t in p)
    if hint is type(None):
        return (type(None),)
    if hint is float:  # JSON writes 2.0 as 2
        return (float, int)
    origin = typing.get_origin(hint) or hint
    return (origin,) if isinstance(origin, type) else None
