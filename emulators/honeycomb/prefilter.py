"""SQL prefilters: conditions the store applies before it decodes an event, so that a query result decodes
only the events that can match. A prefilter may keep events the filters reject (the exact evaluation in
filters.py runs on every decoded event anyway); it never drops one they keep.

Which filters qualify (``sql_prefilters``): ``=``/``in`` with text values no number or boolean could equal
after coercion; ``starts-with``/``does-not-start-with`` with any value whose text (the evaluator compares
as text) is ASCII, where SQLite's substr counts characters exactly as Python does. Only plain column names,
and never text SQLite keeps differently from Python (an escaped NUL ends a string in its JSON functions; a
lone surrogate cannot be bound). With AND each qualifying filter narrows; with OR only filters that all
qualify, on one column and of one kind (``=``/``in``, or ``starts-with``, with ``does-not-exist`` on that
column allowed), as one condition for their union.

A value that is text is tested; a missing or null one is dropped (no filter but does-not-exist matches it);
any other (number, boolean, an event SQLite's JSON functions cannot read, such as one holding NaN) is kept.
``trace.trace_id``, which the verifier splits its reads by, is read from columns the store fills at ingest
(:func:`trace_id_columns`) instead of parsing each event's JSON.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from emulators.honeycomb.filters import INCOMPARABLE, as_text, coerce, is_scalar

TRACE_ID_COLUMN = "trace.trace_id"
TEXT, ABSENT, OTHER = "text", "absent", "other"  # the events table's trace_kind


def trace_id_columns(fields: Mapping[str, Any]) -> tuple[str, str | None]:
    """(trace_kind, trace_id) of an event: its trace id as SQL may compare it, or why it may not."""
    value = fields.get(TRACE_ID_COLUMN)
    if value is None:
        return ABSENT, None
    if isinstance(value, str) and sql_safe(value):
        return TEXT, value
    return OTHER, None


def sql_safe(text: str) -> bool:
    """Text SQLite holds and compares as Python does: no NUL, no lone surrogate."""
    return "\x00" not in text and not any("\ud800" <= c <= "\udfff" for c in text)


@dataclass(frozen=True)
class Prefilter:
    """``in``: the column holds one of ``values``. ``prefix`` / ``not-prefix``: its text starts with one /
    none of ``values``. ``missing``: events without the column are kept too (an OR with does-not-exist)."""

    column: str
    values: tuple[str, ...]
    op: str = "in"
    missing: bool = False

    @property
    def reads_json(self) -> bool:
        """Whether the condition parses the event's JSON (not for trace.trace_id)."""
        return self.column != TRACE_ID_COLUMN

    def sql(self) -> tuple[str, list[Any]]:
        """The SQL condition on an events row, and its parameters."""
        if self.reads_json:
            path = _json_path(self.column)
            kind, kind_params, absent = "COALESCE(json_type(data, ?), 'null')", [path], "null"
            value, value_params = "json_extract(data, ?)", [path]
        else:
            kind, kind_params, absent = "trace_kind", [], ABSENT
            value, value_params = "trace_id", []
        params: list[Any] = [*kind_params]
        if self.op == "in":
            test = f"{value} IN ({sql_marks(self.values)})"
            params += [*value_params, *self.values]
        else:
            by_length: dict[int, list[str]] = {}
            for needle in self.values:
                by_length.setdefault(len(needle), []).append(needle)
            starts = []
            for length, needles in by_length.items():
                starts.append(f"substr({value}, 1, ?) IN ({sql_marks(needles)})")
                params += [*value_params, length, *needles]
            test = " OR ".join(starts)
            test = f"({test})" if self.op == "prefix" else f"NOT ({test})"
        # A kind SQL does not know (NULL: a row the migration could not read) is kept, as "other" is.
        return f"CASE {kind} WHEN '{absent}' THEN {int(self.missing)} WHEN '{TEXT}' THEN {test} ELSE 1 END", params


def sql_prefilters(spec: dict[str, Any]) -> list[Prefilter]:
    """The prefilters of a (validated) query spec; see the module docstring for which filters qualify."""
    filters = spec.get("filters") or []
    if spec.get("filter_combination", "AND") == "OR" and len(filters) > 1:
        return _union(filters)
    found = [p for p in map(_prefilter, filters) if p is not None]
    # does-not-start-with filters on one column: one condition ("none of"), one read of the value per event.
    excluded: dict[str, list[str]] = {}
    for p in found:
        if p.op == "not-prefix":
            excluded.setdefault(p.column, []).extend(p.values)
    narrowing = [p for p in found if p.op != "not-prefix"]
    return narrowing + [Prefilter(column, tuple(dict.fromkeys(v)), "not-prefix") for column, v in excluded.items()]


def _union(filters: list[dict[str, Any]]) -> list[Prefilter]:
    """OR-ed filters as one prefilter, or none."""
    missing = [f for f in filters if f["op"] == "does-not-exist"]
    found = [_prefilter(f) for f in filters if f["op"] != "does-not-exist"]
    usable = [p for p in found if p is not None and p.op != "not-prefix"]
    if not usable or len(usable) < len(found):
        return []
    op = usable[0].op
    kinds = {(p.column, p.op) for p in usable} | {(f["column"], op) for f in missing}
    if len(kinds) != 1:
        return []
    values = tuple(dict.fromkeys(v for p in usable for v in p.values))
    return [Prefilter(usable[0].column, values, op, missing=bool(missing))]


def _prefilter(f: dict[str, Any]) -> Prefilter | None:
    op, column, value = f["op"], f["column"], f.get("value")
    # The store writes events with json.dumps, which escapes a non-ASCII or control character in a key;
    # SQLite's JSON path then does not find the key, and the prefilter would drop a matching row.
    if json.dumps(column) != f'"{column}"':
        return None
    if op in ("=", "in"):
        values = [value] if op == "=" else list(value or [])
        if values and all(_text_only(v) for v in values):
            return Prefilter(column, tuple(str(v) for v in values))
    elif op in ("starts-with", "does-not-start-with") and is_scalar(value):
        needle = as_text(value)
        if needle and needle.isascii() and sql_safe(needle):
            return Prefilter(column, (needle,), "prefix" if op == "starts-with" else "not-prefix")
    return None


def _text_only(value: Any) -> bool:
    return (
        isinstance(value, str)
        and sql_safe(value)
        and coerce(0, value) is INCOMPARABLE
        and coerce(True, value) is INCOMPARABLE
    )


def sql_marks(values: Sequence[Any]) -> str:
    """One ``?`` per value, comma-separated."""
    return ", ".join("?" for _ in values)


def _json_path(column: str) -> str:
    return '$."' + column.replace("\\", "\\\\").replace('"', '\\"') + '"'
