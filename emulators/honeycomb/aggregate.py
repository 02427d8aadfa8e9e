"""Honeycomb calculations (COUNT, SUM, AVG, Pnn, ...) over groups of events.

Events carry a sample rate; like Honeycomb, COUNT, SUM, AVG and percentiles count an event
``sample_rate`` times (``usage_mode`` turns that off). Percentiles interpolate linearly between
the two nearest ranks of the (weighted) sorted values. Events without a numeric value in the
column are left out of SUM/AVG/MIN/MAX/Pnn.
"""

from __future__ import annotations

import bisect
import math
import operator
from collections.abc import Sequence
from typing import Any

from emulators.honeycomb.filters import is_number

# (timestamp, weight, columns)
Row = tuple[float, int, dict[str, Any]]

PERCENTILES = {
    "P001": 0.001, "P01": 0.01, "P05": 0.05, "P10": 0.10, "P20": 0.20, "P25": 0.25, "P50": 0.50,
    "P75": 0.75, "P80": 0.80, "P90": 0.90, "P95": 0.95, "P99": 0.99, "P999": 0.999,
}  # fmt: skip
NUMERIC_OPS = ("SUM", "AVG", "MIN", "MAX", *PERCENTILES)
COMPUTED_OPS = ("COUNT", "COUNT_DISTINCT", *NUMERIC_OPS)


def calc_key(op: str, column: str | None) -> str:
    """How Honeycomb names a calculation in results: ``COUNT``, ``P99(duration_ms)``."""
    return f"{op}({column})" if column else op


def calculate(op: str, column: str | None, rows: Sequence[Row], usage_mode: bool = False) -> Any:
    if op == "COUNT":
        return len(rows) if usage_mode else sum(map(operator.itemgetter(1), rows))
    assert column is not None  # validated: every op but COUNT names a column
    if op == "COUNT_DISTINCT":
        return len({(type(v).__name__, v) for _, _, f in rows if (v := f.get(column)) is not None})
    pairs = [(f[column], 1 if usage_mode else weight) for _, weight, f in rows if is_number(f.get(column))]
    if not pairs:
        return None
    if op == "SUM":
        return sum(value * weight for value, weight in pairs)
    if op == "AVG":
        return sum(value * weight for value, weight in pairs) / sum(weight for _, weight in pairs)
    if op == "MIN":
        return min(value for value, _ in pairs)
    if op == "MAX":
        return max(value for value, _ in pairs)
    return percentile(pairs, PERCENTILES[op])


def percentile(pairs: Sequence[tuple[float, int]], fraction: float) -> float:
    """Linear interpolation at rank fraction*(n-1) of the values, each repeated ``weight`` times."""
    ordered = sorted(pairs, key=lambda pair: pair[0])
    cumulative: list[int] = []
    total = 0
    for _, weight in ordered:
        total += weight
        cumulative.append(total)
    rank = fraction * (total - 1)
    low, high = math.floor(rank), math.ceil(rank)

    def value_at(position: int) -> float:
        return float(ordered[bisect.bisect_right(cumulative, position)][0])

    low_value = value_at(low)
    return low_value + (value_at(high) - low_value) * (rank - low)


def having_passes(value: Any, op: str, target: Any) -> bool:
    if value is None:
        return False
    if op == "in":
        return any(value == t for t in target)
    if op == "not-in":
        return all(value != t for t in target)
    comparisons = {
        "=": value == target,
        "!=": value != target,
        ">": value > target,
        ">=": value >= target,
        "<": value < target,
        "<=": value <= target,
    }
    return comparisons[op]


def _sort_key(value: Any) -> tuple[int, Any]:
    # Mixed types cannot be compared directly: numbers, then text, then booleans.
    if isinstance(value, bool):
        return (2, value)
    if is_number(value):
        return (0, value)
    return (1, str(value))


def order_rows(rows: list[tuple[Any, ...]], keys: Sequence[tuple[int | None, bool]]) -> list[tuple[Any, ...]]:
    """Sort result rows (tuples) by (column index, descending) pairs, first pair most significant; nulls
    last. A key that is no column of the rows (index None) is null in every row: it keeps their order."""
    for index, descending in reversed(keys):
        if index is None:
            continue
        present = [r for r in rows if r[index] is not None]
        absent = [r for r in rows if r[index] is None]
        if all(type(r[index]) in (int, float) for r in present):
            # Numbers only (the usual COUNT): the same order as _sort_key's, without a tuple per row.
            present.sort(key=operator.itemgetter(index), reverse=descending)
        else:
            present.sort(key=lambda r: _sort_key(r[index]), reverse=descending)
        rows = present + absent
    return rows
