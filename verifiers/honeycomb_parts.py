"""Split a Honeycomb read into parts small enough that each query result holds all of its rows.

One query result returns at most 10,000 rows; a bigger run would be cut off. A part is a time window
in whole minutes (Honeycomb truncates query bounds to the minute for ranges up to 6 h, so a window
is never split below one minute) and, when one minute still holds too many rows, a set of trace ids
chosen by prefix with the ``starts-with`` / ``does-not-start-with`` filters.

A part that came back full is split by what its (cut off) rows show: the trace id prefixes they
share, one hex digit longer. The load generator's trace ids start with 8 hex digits of epoch
seconds, so a minute first splits into the seconds (or 16-second blocks) its rows came from, then a
second into the next, random, hex digit. Whatever the rows did not show is one more part, "the
rest" (``does-not-start-with`` each chosen prefix), and rows without a trace id get a part of their
own (no filter matches a row that lacks the column): the parts of a part always partition its rows.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any

TRACE_ID_COLUMN = "trace.trace_id"
MINUTE = 60
MAX_WINDOW_S = 6 * 3600  # longer ranges are truncated to 5 minutes, not to the minute
TRACE_ID_DIGITS = 32
HEX = "0123456789abcdef"


@dataclass(frozen=True)
class Part:
    """Rows in ``[start, end)`` (whole minutes) whose trace id starts with ``prefix`` and with none of
    ``excluded``; or, with ``no_trace_id``, the rows that have no trace id at all."""

    start: int
    end: int
    prefix: str = ""
    excluded: tuple[str, ...] = ()
    no_trace_id: bool = False

    def spec(self, columns: Sequence[str], limit: int) -> dict[str, Any]:
        """The query spec: COUNT broken down by ``columns`` over this part."""
        spec: dict[str, Any] = {
            "breakdowns": list(columns),
            "calculations": [{"op": "COUNT"}],
            "start_time": self.start,
            "end_time": self.end,
            "limit": limit,
        }
        filters = self.filters()
        if filters:
            spec["filters"] = filters
            spec["filter_combination"] = "AND"
        return spec

    def filters(self) -> list[dict[str, Any]]:
        if self.no_trace_id:
            return [{"column": TRACE_ID_COLUMN, "op": "does-not-exist"}]
        # A filter never matches a row without the column: those rows are the no_trace_id part's.
        found = [{"column": TRACE_ID_COLUMN, "op": "starts-with", "value": self.prefix}] if self.prefix else []
        found += [{"column": TRACE_ID_COLUMN, "op": "does-not-start-with", "value": e} for e in self.excluded]
        return found

    def split(self, seen: Iterable[str] = ()) -> list[Part]:
        """Parts that together hold exactly this part's rows; [] when it cannot be split further. ``seen``:
        trace ids of the rows its full result did return, which choose the prefixes worth a part each."""
        if self.end - self.start > MINUTE:
            middle = self.start + (self.end - self.start) // (2 * MINUTE) * MINUTE
            return [replace(self, end=middle), replace(self, start=middle)]
        if self.no_trace_id or len(self.prefix) >= TRACE_ID_DIGITS:
            return []
        parts = [Part(self.start, self.end, no_trace_id=True)] if not self.prefix and not self.excluded else []
        ids = {t for t in seen if self._holds(t)}
        if ids:  # the prefixes the rows share, one digit longer (a single trace: its whole id)
            depth = min(len(os.path.commonprefix(sorted(ids))) + 1, TRACE_ID_DIGITS)
            targets = sorted({t[:depth] for t in ids})
        else:
            targets = [p for d in HEX if not self._excludes(p := self.prefix + d)]
        parts += [Part(self.start, self.end, t, tuple(e for e in self.excluded if e.startswith(t))) for t in targets]
        digits = {self.prefix + d for d in HEX}
        if digits <= set(targets) | set(self.excluded):
            return parts  # every next digit has its part (or was excluded before): no rest
        return parts + [replace(self, excluded=self.excluded + tuple(targets))]

    def _holds(self, trace_id: str) -> bool:
        return trace_id.startswith(self.prefix) and not self._excludes(trace_id)

    def _excludes(self, prefix: str) -> bool:
        return any(prefix.startswith(e) for e in self.excluded)


def initial_parts(start: float, end: float, pad_s: int) -> list[Part]:
    """The run's window, padded, in whole minutes, cut into ranges Honeycomb truncates to the minute."""
    first = math.floor((math.floor(start) - pad_s) / MINUTE) * MINUTE
    last = math.ceil((math.ceil(end) + pad_s) / MINUTE) * MINUTE
    return [Part(s, min(s + MAX_WINDOW_S, last)) for s in range(first, last, MAX_WINDOW_S)]
