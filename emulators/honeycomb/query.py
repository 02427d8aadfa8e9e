"""The Query Data API: query spec validation, the time window a result covers, and evaluation.

Validation follows the Query Specification (docs.honeycomb.io/api/query-specification and the
public OpenAPI description); every error names the offending field. Parts of the spec the
emulator cannot evaluate (HEATMAP, CONCURRENCY, RATE_*, calculated fields, formulas, relational
fields, time comparison) are accepted when the query is created, as Honeycomb accepts them, but
running them answers 501 with the reason: never a silently wrong result.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from emulators.honeycomb.aggregate import (
    COMPUTED_OPS,
    NUMERIC_OPS,
    PERCENTILES,
    Row,
    calc_key,
    calculate,
    having_passes,
    order_rows,
)
from emulators.honeycomb.filters import (
    FILTER_OPS,
    INCOMPARABLE,
    LIST_OPS,
    VALUELESS_OPS,
    coerce,
    compile_filters,
    is_number,
)
from emulators.honeycomb.store import Prefilter

CALC_OPS = (
    "COUNT", "CONCURRENCY", "SUM", "AVG", "COUNT_DISTINCT", "HEATMAP", "MAX", "MIN",
    *PERCENTILES, "RATE_AVG", "RATE_SUM", "RATE_MAX",
)  # fmt: skip
NO_COLUMN_OPS = ("COUNT", "CONCURRENCY")
# The OpenAPI HavingOp enum lists = != > >= < <=; the query-builder docs also list in/not-in for
# HAVING, and the UI sends the same spec, so both are accepted here.
HAVING_OPS = ("=", "!=", ">", ">=", "<", "<=", "in", "not-in")
RELATIONAL_PREFIXES = ("root.", "parent.", "any.", "any2.", "any3.", "none.")
MAX_ITEMS = 100  # breakdowns, calculations, filters, orders, havings
MAX_LIMIT = 10_000
DEFAULT_LIMIT = 100
DEFAULT_TIME_RANGE = 7200
MAX_QUERY_SECONDS = 7 * 86400
# Documented truncation of a result's bounds: (longest duration, step).
_TRUNCATION = ((6 * 3600, 60), (2 * 86400, 300), (MAX_QUERY_SECONDS, 1800))


class QueryError(Exception):
    """A query (or query result request) the service refuses; ``status`` is the HTTP status."""

    def __init__(self, message: str, status: int = 400, fields: Sequence[str] = ()) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.fields = tuple(fields)


# --- validation -------------------------------------------------------------------------------


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _items(spec: dict[str, Any], name: str) -> list[Any]:
    value = spec.get(name)
    if value is None:
        return []
    if not isinstance(value, list):
        raise QueryError(f"{name}: must be a list")
    if len(value) > MAX_ITEMS:
        raise QueryError(f"{name}: at most {MAX_ITEMS} entries are allowed, got {len(value)}")
    return value


def _objects(spec: dict[str, Any], name: str) -> list[dict[str, Any]]:
    items = _items(spec, name)
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            raise QueryError(f"{name}[{i}]: must be an object")
    return items


def _calc_column(where: str, op: Any, column: Any, ops: Sequence[str]) -> None:
    if op not in ops:
        raise QueryError(f"{where}: unknown op {op!r}; valid ops are {', '.join(ops)}")
    if op in NO_COLUMN_OPS:
        if column is not None:
            raise QueryError(f"{where}: {op} does not take a column")
    elif not isinstance(column, str) or not column:
        raise QueryError(f"{where}: {op} needs a column")


def calculations(spec: dict[str, Any]) -> list[tuple[str, str | None]]:
    """(op, column) pairs; a spec without calculations means COUNT."""
    calcs = [(c.get("op", "COUNT"), c.get("column")) for c in spec.get("calculations") or []]
    return calcs or [("COUNT", None)]


def validate_spec(spec: Any) -> dict[str, Any]:
    """Check a query spec as ``POST /1/queries`` does; returns it unchanged or raises QueryError."""
    if not isinstance(spec, dict):
        raise QueryError("the query spec must be a JSON object")
    for i, calc in enumerate(_objects(spec, "calculations")):
        _calc_column(f"calculations[{i}].op", calc.get("op", "COUNT"), calc.get("column"), CALC_OPS)
    breakdowns = _items(spec, "breakdowns")
    for i, breakdown in enumerate(breakdowns):
        if not isinstance(breakdown, str) or not breakdown:
            raise QueryError(f"breakdowns[{i}]: must be a column name")
    for i, item in enumerate(_objects(spec, "filters")):
        _validate_filter(f"filters[{i}]", item)
    if spec.get("filter_combination", "AND") not in ("AND", "OR"):
        raise QueryError(f"filter_combination: must be AND or OR, got {spec['filter_combination']!r}")
    calcs = calculations(spec)
    for i, order in enumerate(_objects(spec, "orders")):
        _validate_order(f"orders[{i}]", order, calcs, breakdowns)
    for i, having in enumerate(_objects(spec, "havings")):
        _validate_having(f"havings[{i}]", having, calcs)
    limit = spec.get("limit")
    if limit is not None and (not _is_int(limit) or not 1 <= limit <= MAX_LIMIT):
        raise QueryError(f"limit: must be an integer between 1 and {MAX_LIMIT}, got {limit!r}")
    _validate_time(spec)
    return spec


def _validate_filter(where: str, item: dict[str, Any]) -> None:
    column, op, value = item.get("column"), item.get("op"), item.get("value")
    if not isinstance(column, str) or not column:
        raise QueryError(f"{where}.column: a filter needs a column")
    if op not in FILTER_OPS:
        raise QueryError(f"{where}.op: unknown filter op {op!r}; valid ops are {', '.join(FILTER_OPS)}")
    if op in VALUELESS_OPS:
        if value is not None:
            raise QueryError(f"{where}.value: {op} takes no value")
    elif op in LIST_OPS:
        if not isinstance(value, list) or not value or not all(_is_scalar(v) for v in value):
            raise QueryError(f"{where}.value: {op} needs a non-empty list of values")
    elif not _is_scalar(value):
        raise QueryError(f"{where}.value: {op} needs a single string, number or boolean value")


def _is_scalar(value: Any) -> bool:
    return isinstance(value, (str, int, float, bool))


def _validate_order(
    where: str, order: dict[str, Any], calcs: list[tuple[str, str | None]], breakdowns: list[Any]
) -> None:
    if order.get("order", "ascending") not in ("ascending", "descending"):
        raise QueryError(f"{where}.order: must be ascending or descending")
    op, column = order.get("op"), order.get("column")
    if op is None:
        if column not in breakdowns:
            raise QueryError(f"{where}: column {column!r} must be one of the breakdowns")
        return
    if op == "HEATMAP":
        raise QueryError(f"{where}.op: results cannot be ordered by HEATMAP")
    if (op, column) not in calcs:
        raise QueryError(f"{where}: {calc_key(op, column)} must appear in calculations")


def _validate_having(where: str, having: dict[str, Any], calcs: list[tuple[str, str | None]]) -> None:
    op, column = having.get("calculate_op"), having.get("column")
    _calc_column(f"{where}.calculate_op", op, column, [o for o in CALC_OPS if o != "HEATMAP"])
    assert isinstance(op, str)
    if (op, column) not in calcs:
        raise QueryError(f"{where}: {calc_key(op, column)} must appear in calculations")
    compare, value = having.get("op"), having.get("value")
    if compare not in HAVING_OPS:
        raise QueryError(f"{where}.op: unknown having op {compare!r}; valid ops are {', '.join(HAVING_OPS)}")
    if compare in LIST_OPS:
        if not isinstance(value, list) or not value or not all(is_number(v) for v in value):
            raise QueryError(f"{where}.value: {compare} needs a non-empty list of numbers")
    elif not is_number(value):
        raise QueryError(f"{where}.value: must be a number")


def _validate_time(spec: dict[str, Any]) -> None:
    for name in ("start_time", "end_time", "time_range", "granularity"):
        value = spec.get(name)
        if value is not None and (not _is_int(value) or value < 1):
            raise QueryError(f"{name}: must be a positive integer (seconds), got {value!r}")
    start, end, span = spec.get("start_time"), spec.get("end_time"), spec.get("time_range")
    if start is not None and end is not None:
        if span is not None:
            raise QueryError("time_range: cannot be combined with both start_time and end_time")
        if start >= end:
            raise QueryError("start_time: must be before end_time")
    granularity = spec.get("granularity")
    if granularity is not None:
        duration = query_duration(spec)
        if not duration / 1000 <= granularity <= duration:
            raise QueryError(f"granularity: must be between time range/1000 and the time range ({duration} s)")


def query_duration(spec: dict[str, Any]) -> int:
    start, end = spec.get("start_time"), spec.get("end_time")
    if start is not None and end is not None:
        return int(end - start)
    return int(spec.get("time_range") or DEFAULT_TIME_RANGE)


def referenced_columns(spec: dict[str, Any]) -> set[str]:
    """Columns a query reads (relational prefixes stripped), which must exist in the dataset."""
    calculated = {c.get("name") for c in spec.get("calculated_fields") or [] if isinstance(c, dict)}
    names = {column for _, column in calculations(spec) if column}
    names.update(spec.get("breakdowns") or [])
    names.update(f["column"] for f in spec.get("filters") or [])
    names.update(h["column"] for h in spec.get("havings") or [] if h.get("column"))
    return {_strip_relational(name) for name in names if name not in calculated}


def _strip_relational(column: str) -> str:
    for prefix in RELATIONAL_PREFIXES:
        if column.startswith(prefix):
            return column[len(prefix) :]
    return column


def check_column_types(spec: dict[str, Any], types: dict[str, str]) -> None:
    """Numeric calculations need numeric columns."""
    for op, column in calculations(spec):
        if op in NUMERIC_OPS and column and types.get(column) in ("string", "boolean"):
            raise QueryError(f"calculations: {op} needs a numeric column; {column!r} is a {types[column]} column")


def unsupported_reason(spec: dict[str, Any]) -> str | None:
    """Why the emulator cannot evaluate this (valid) spec, or None."""
    for op, _ in calculations(spec):
        if op not in COMPUTED_OPS:
            return f"the {op} calculation is not supported by this emulator"
    for name in ("calculated_fields", "formulas"):
        if spec.get(name):
            return f"{name} are not supported by this emulator"
    if spec.get("compare_time_offset_seconds"):
        return "compare_time_offset_seconds is not supported by this emulator"
    if any(c.get("filters") or c.get("name") for c in spec.get("calculations") or []):
        return "per-calculation filters and named calculations are not supported by this emulator"
    columns = [f["column"] for f in spec.get("filters") or []] + list(spec.get("breakdowns") or [])
    if any(column.startswith(RELATIONAL_PREFIXES) for column in columns):
        return "relational fields (root., parent., any., none.) are not supported by this emulator"
    return None


# --- time window ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    start: int
    end: int  # exclusive


def resolve_window(spec: dict[str, Any], now: float) -> Window:
    """The [start, end) a query result covers when created at ``now``.

    Enforces the documented restrictions (at most 7 days long, within the last 7 days) and
    truncates both bounds down: to the minute up to 6 h, 5 min up to 2 days, 30 min up to 7 days.
    """
    start: float | None = spec.get("start_time")
    end: float | None = spec.get("end_time")
    span = spec.get("time_range") or DEFAULT_TIME_RANGE
    if start is None:
        end = now if end is None else end
        start = end - span
    elif end is None:
        end = start + span
    duration = end - start
    if duration > MAX_QUERY_SECONDS:
        raise QueryError(f"time_range: a query result covers at most 7 days, this query covers {duration:.0f} s")
    if start < now - MAX_QUERY_SECONDS:
        raise QueryError("start_time: only the last 7 days of data can be queried")
    step = next(step for longest, step in _TRUNCATION if duration <= longest)
    return Window(int(math.floor(start / step) * step), int(math.floor(end / step) * step))


# --- evaluation -------------------------------------------------------------------------------


@dataclass(frozen=True)
class RunOptions:
    disable_series: bool = False
    limit: int | None = None  # overrides the spec's limit (only with disable_series)
    total_by_aggregate: bool = False
    other_by_aggregate: bool = False


def sql_prefilters(spec: dict[str, Any]) -> list[Prefilter]:
    """AND-ed ``=``/``in`` filters on text values that SQL can apply exactly like the evaluator.

    Only text that no number or boolean could equal after coercion qualifies, and only for
    plain column names, so the prefilter never drops an event the evaluator would keep.
    """
    filters = spec.get("filters") or []
    if spec.get("filter_combination", "AND") == "OR" and len(filters) > 1:
        return []
    found = []
    for f in filters:
        values = [f.get("value")] if f["op"] == "=" else f.get("value") if f["op"] == "in" else None
        column = f["column"]
        if values and '"' not in column and "\\" not in column and all(_text_only(v) for v in values):
            found.append(Prefilter(column, tuple(values)))
    return found


def _text_only(value: Any) -> bool:
    return isinstance(value, str) and coerce(0, value) is INCOMPARABLE and coerce(True, value) is INCOMPARABLE


def run_query(spec: dict[str, Any], rows: Iterable[Row], window: Window, options: RunOptions) -> dict[str, Any]:
    """The ``data`` of a query result: results (and series, totals) for the matching events."""
    match = compile_filters(spec.get("filters") or [], spec.get("filter_combination", "AND"))
    breakdowns: list[str] = spec.get("breakdowns") or []
    calcs = calculations(spec)
    usage_mode = bool(spec.get("usage_mode"))
    groups: dict[tuple[Any, ...], list[Row]] = {}
    for row in rows:
        if match(row[2]):
            key = tuple(_group_value(row[2].get(b)) for b in breakdowns)
            groups.setdefault(key, []).append(row)

    def summarize(key: tuple[Any, ...], members: Sequence[Row]) -> dict[str, Any]:
        values = {b: v for b, (_, v) in zip(breakdowns, key, strict=True)}
        values.update({calc_key(op, col): calculate(op, col, members, usage_mode) for op, col in calcs})
        return values

    table = [(summarize(key, members), key) for key, members in groups.items()]
    table = [(row, key) for row, key in table if _passes_havings(row, spec.get("havings") or [])]
    ordered = order_rows([row for row, _ in table], _order_keys(spec, calcs))
    keys_by_row = {id(row): key for row, key in table}
    limit = options.limit if options.disable_series and options.limit else spec.get("limit") or DEFAULT_LIMIT
    shown = ordered[:limit]
    shown_keys = [keys_by_row[id(row)] for row in shown]
    data: dict[str, Any] = {"series": [], "results": [{"data": row} for row in shown]}
    if not options.disable_series:
        data["series"] = _series(spec, window, [(key, groups[key]) for key in shown_keys], summarize)
    if options.total_by_aggregate:
        everything = [row for members in groups.values() for row in members]
        data["total_by_aggregate"] = {"data": _aggregates(calcs, everything, usage_mode)}
    if options.other_by_aggregate:
        hidden = set(groups) - set(shown_keys)
        others = [row for key in hidden for row in groups[key]]
        data["other_by_aggregate"] = {"data": _aggregates(calcs, others, usage_mode)}
    return data


def _group_value(value: Any) -> tuple[str, Any]:
    # Tag with the type so True, 1 and 1.0 stay separate groups.
    return (type(value).__name__, value)


def _aggregates(calcs: list[tuple[str, str | None]], rows: Sequence[Row], usage_mode: bool) -> dict[str, Any]:
    return {calc_key(op, col): calculate(op, col, rows, usage_mode) for op, col in calcs}


def _passes_havings(row: dict[str, Any], havings: list[dict[str, Any]]) -> bool:
    return all(having_passes(row[calc_key(h["calculate_op"], h.get("column"))], h["op"], h["value"]) for h in havings)


def _order_keys(spec: dict[str, Any], calcs: list[tuple[str, str | None]]) -> list[tuple[str, bool]]:
    orders = spec.get("orders") or []
    if not orders:
        # Unspecified in the docs: without orders, rows come largest first by the first calculation.
        op, column = calcs[0]
        return [(calc_key(op, column), True)]
    return [
        (calc_key(o["op"], o.get("column")) if o.get("op") else o["column"], o.get("order") == "descending")
        for o in orders
    ]


def _series(
    spec: dict[str, Any], window: Window, groups: list[tuple[tuple[Any, ...], list[Row]]], summarize: Any
) -> list[dict[str, Any]]:
    duration = max(1, window.end - window.start)
    # Unspecified default granularity: about 120 buckets per result.
    step = spec.get("granularity") or max(1, duration // 120)
    series: list[dict[str, Any]] = []
    for key, members in groups:
        buckets: dict[int, list[Row]] = {}
        for row in members:
            buckets.setdefault(int((row[0] - window.start) // step), []).append(row)
        for index in sorted(buckets):
            at = datetime.fromtimestamp(window.start + index * step, tz=UTC)
            series.append({"time": at.strftime("%Y-%m-%dT%H:%M:%SZ"), "data": summarize(key, buckets[index])})
    series.sort(key=lambda entry: entry["time"])
    return series
