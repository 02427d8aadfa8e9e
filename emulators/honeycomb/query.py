"""The Query Data API: query spec validation, the time window a result covers, and evaluation.

Validation follows the Query Specification (docs.honeycomb.io/api/query-specification and the
public OpenAPI description); every error names the offending field. Parts of the spec the
emulator cannot evaluate (HEATMAP, CONCURRENCY, RATE_*, calculated fields, formulas, relational
fields, time comparison) are accepted when the query is created, as Honeycomb accepts them, but
running them answers 501 with the reason: never a silently wrong result.
"""

from __future__ import annotations

import enum
import math
from collections.abc import Callable, Iterable, Sequence
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
    LIST_OPS,
    VALUELESS_OPS,
    Predicate,
    compile_filters,
    is_number,
    is_scalar,
)
from emulators.honeycomb.store import NO_COLUMNS

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
        if not isinstance(value, list) or not value or not all(is_scalar(v) for v in value):
            raise QueryError(f"{where}.value: {op} needs a non-empty list of values")
    elif not is_scalar(value):
        raise QueryError(f"{where}.value: {op} needs a single string, number or boolean value")


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


def reads_columns(spec: dict[str, Any]) -> bool:
    """Whether evaluating the query looks at any event's columns (filters, breakdowns, calculations on a
    column); a COUNT over time alone does not, and needs no event decoded."""
    return bool(spec.get("filters") or spec.get("breakdowns") or any(col for _, col in calculations(spec)))


# A group: its breakdown values, then their types (True, 1 and 1.0 are equal in Python, separate groups
# here). One flat tuple: the fewer objects a query keeps alive per group, the less the GC has to walk.
GroupKey = tuple[Any, ...]


@dataclass
class _Groups:
    """The matching events by group: each group's COUNT, and its events when anything else needs them."""

    counts: dict[GroupKey, int]
    members: dict[GroupKey, list[Row]]


class _Keep(enum.Enum):
    """What a query needs of each group's events besides the COUNT."""

    NOTHING = "nothing"
    TIMES = "times"  # time and weight: a COUNT series
    EVENTS = "events"  # the columns too: other calculations


def _group(
    rows: Iterable[Row], match: Predicate | None, breakdowns: list[str], usage_mode: bool, keep: _Keep
) -> _Groups:
    groups = _Groups({}, {})
    counts, members = groups.counts, groups.members
    for row in rows:  # once per event in the window: kept lean
        fields = row[2]
        if match is not None and not match(fields):
            continue
        values = tuple(map(fields.get, breakdowns))
        key = values + tuple(map(type, values))
        counts[key] = counts.get(key, 0) + (1 if usage_mode else row[1])
        if keep is not _Keep.NOTHING:
            if keep is _Keep.TIMES:
                row = (row[0], row[1], NO_COLUMNS)  # a COUNT series needs no columns: don't hold on to them
            group = members.get(key)
            if group is None:
                members[key] = [row]
            else:
                group.append(row)
    return groups


class _Calculations:
    def __init__(self, calcs: list[tuple[str, str | None]], usage_mode: bool) -> None:
        self.calcs = calcs
        self.usage_mode = usage_mode
        self.count_only = all(op == "COUNT" for op, _ in calcs)

    def values(self, events: Sequence[Row], count: int | None = None) -> tuple[Any, ...]:
        """Each calculation over ``events``; ``count``: their COUNT when already known."""
        if count is None:
            count = calculate("COUNT", None, events, self.usage_mode)
        if self.count_only:
            return (count,) * len(self.calcs)
        return tuple(count if op == "COUNT" else calculate(op, col, events, self.usage_mode) for op, col in self.calcs)


def run_query(spec: dict[str, Any], rows: Iterable[Row], window: Window, options: RunOptions) -> dict[str, Any]:
    """The ``data`` of a query result: results (and series, totals) for the matching events."""
    filters = spec.get("filters") or []
    match = compile_filters(filters, spec.get("filter_combination", "AND")) if filters else None
    breakdowns: list[str] = spec.get("breakdowns") or []
    calcs = _Calculations(calculations(spec), bool(spec.get("usage_mode")))
    names = [calc_key(op, col) for op, col in calcs.calcs]
    columns = [*breakdowns, *names]  # a result row's keys, in order (a repeated name keeps its first place)
    # COUNT needs only a running total per group; only other calculations and the series need the events.
    if not calcs.count_only:
        keep = _Keep.EVENTS
    else:
        keep = _Keep.NOTHING if options.disable_series else _Keep.TIMES
    groups = _group(rows, match, breakdowns, calcs.usage_mode, keep)
    members = groups.members

    width = len(breakdowns)
    # Rows are ranked as tuples (breakdown values, calculations, then the group's key) and only those shown
    # become dicts; a repeated column name reads as the dict would hold it: its last value.
    index = {name: i for i, name in enumerate(columns)}

    def as_dict(values: tuple[Any, ...]) -> dict[str, Any]:
        # Filled from a literal: the GC never tracks such a dict of scalars (dict(...) would be tracked).
        row: dict[str, Any] = {}
        row.update(zip(columns, values, strict=True))
        return row

    def summarize(values: tuple[Any, ...], events: Sequence[Row]) -> dict[str, Any]:
        return as_dict(values + calcs.values(events))

    table = [key[:width] + calcs.values(members.get(key, ()), count) + (key,) for key, count in groups.counts.items()]
    havings = spec.get("havings") or []
    if havings:
        table = [row for row in table if _passes_havings(row, index, havings)]
    ordered = order_rows(table, [(index.get(name), descending) for name, descending in _order_keys(spec, calcs.calcs)])
    limit = options.limit if options.disable_series and options.limit else spec.get("limit") or DEFAULT_LIMIT
    shown = ordered[:limit]
    shown_keys: list[GroupKey] = [row[-1] for row in shown]
    data: dict[str, Any] = {"series": [], "results": [{"data": as_dict(row[:-1])} for row in shown]}
    if not options.disable_series:
        data["series"] = _series(spec, window, [(key[:width], members[key]) for key in shown_keys], summarize)
    if options.total_by_aggregate:
        everything = [row for events in members.values() for row in events]
        total = calcs.values(everything, sum(groups.counts.values()))
        data["total_by_aggregate"] = {"data": dict(zip(names, total, strict=True))}
    if options.other_by_aggregate:
        shown_set = set(shown_keys)
        hidden = [key for key in groups.counts if key not in shown_set]
        others = [row for key in hidden for row in members.get(key, ())]
        other = calcs.values(others, sum(groups.counts[key] for key in hidden))
        data["other_by_aggregate"] = {"data": dict(zip(names, other, strict=True))}
    return data


def _passes_havings(row: tuple[Any, ...], index: dict[str, int], havings: list[dict[str, Any]]) -> bool:
    return all(
        having_passes(row[index[calc_key(h["calculate_op"], h.get("column"))]], h["op"], h["value"]) for h in havings
    )


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
    spec: dict[str, Any],
    window: Window,
    groups: list[tuple[tuple[Any, ...], list[Row]]],
    summarize: Callable[[tuple[Any, ...], Sequence[Row]], dict[str, Any]],
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
