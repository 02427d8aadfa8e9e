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

A read that is too big is better planned than found by halving: :func:`plan` takes the per-second event
counts of one cheap COUNT query (:func:`count_spec`; a count bounds the rows of a query broken down by
every column) and packs whole minutes into parts that fit. Where the rows are denser than a result holds,
consecutive minutes become a chunk read in parts by trace id prefix (runs of the generator's epoch seconds,
or leading digits of random ids), each an OR of ``starts-with`` filters, and one part "the rest" excludes
every listed prefix: again an exact partition. Estimates may be off (data still arriving); a part that
comes back full is split like any other.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from itertools import accumulate
from typing import Any

TRACE_ID_COLUMN = "trace.trace_id"
MINUTE = 60
MAX_WINDOW_S = 6 * 3600  # longer ranges are truncated to 5 minutes, not to the minute
TRACE_ID_DIGITS = 32
SECOND_DIGITS = 8  # the generator's trace ids start with the epoch second in 8 hex digits
HEX = "0123456789abcdef"
FILL = 0.98  # plan parts to at most this share of the row limit: estimates are not exact
TINY = 0.01  # a prefix estimated below this share of a part is left to "the rest"
MAX_CHUNK_RESULTS = 8  # a chunk read by prefix spans at most this many results' rows (each part scans it)
MAX_FILTERS = 40  # more filters than this in one query: plan that chunk by time only


@dataclass(frozen=True)
class Part:
    """Rows in ``[start, end)`` (whole minutes) whose trace id starts with ``prefix`` and with none of
    ``excluded``; or, with ``no_trace_id``, the rows that have no trace id at all; or, with ``any_of``,
    the rows whose trace id starts with one of those prefixes, and with ``or_no_trace_id`` the rows
    without a trace id too."""

    start: int
    end: int
    prefix: str = ""
    excluded: tuple[str, ...] = ()
    no_trace_id: bool = False
    any_of: tuple[str, ...] = ()
    or_no_trace_id: bool = False

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
            spec["filter_combination"] = "OR" if self._alternatives else "AND"
        return spec

    @property
    def _alternatives(self) -> bool:
        return bool(self.any_of) or self.or_no_trace_id

    def filters(self) -> list[dict[str, Any]]:
        if self._alternatives:  # combined with OR
            found = [{"column": TRACE_ID_COLUMN, "op": "starts-with", "value": p} for p in self.any_of]
            return found + ([{"column": TRACE_ID_COLUMN, "op": "does-not-exist"}] if self.or_no_trace_id else [])
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
        if self._alternatives:  # one part per alternative, each split further as it needs
            parts = [Part(self.start, self.end, p) for p in self.any_of]
            parts += [Part(self.start, self.end, no_trace_id=True)] if self.or_no_trace_id else []
            return parts if len(parts) > 1 else parts[0].split(seen)
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
        # The rest, even when every next hex digit has its part: a trace id may be empty, shorter than the
        # prefix, or not lowercase hex at all (OTLP allows an empty one; a span attribute may set any value).
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


# ---- planning a big read from the event counts ----------------------------------------------------------


def count_spec(part: Part) -> dict[str, Any] | None:
    """A COUNT over ``part``'s window in time buckets (its result's ``series``), or None when no bucket
    Honeycomb allows (time range / 1000 to time range / 10) divides a minute."""
    duration = part.end - part.start
    granularity = next((g for g in (1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60) if duration <= g * 1000), None)
    if granularity is None or granularity * 10 > duration:
        return None
    return {
        "calculations": [{"op": "COUNT"}],
        "start_time": part.start,
        "end_time": part.end,
        "granularity": granularity,
    }


def counts_by_second(part: Part, granularity: int, series: Iterable[Any]) -> list[float]:
    """Events per second of ``part``'s window from a count result's series (a bucket spread evenly)."""
    per_second = [0.0] * (part.end - part.start)
    for entry in series:
        if not isinstance(entry, dict):
            continue
        count = (entry.get("data") or {}).get("COUNT")
        at = _epoch(entry.get("time"))
        if at is None or not isinstance(count, int | float) or isinstance(count, bool) or count <= 0:
            continue
        first = int(at) - part.start
        for second in range(max(first, 0), min(first + granularity, len(per_second))):
            per_second[second] += count / granularity
    return per_second


def _epoch(value: Any) -> float | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def plan(part: Part, per_second: Sequence[float], seen: Iterable[str], limit: int) -> list[Part]:
    """Parts that together hold exactly ``part``'s rows, each estimated to fit one result of ``limit`` rows.

    ``per_second``: events per second of the part's window (a bound on its rows); ``seen``: trace ids its
    full result returned (which say whether trace ids start with the generator's epoch second). Consecutive
    minutes are grouped into chunks to spend the fewest query results: a chunk that fits is one part; a
    denser one is read by trace id prefix (:func:`_by_prefix`), holding at most MAX_CHUNK_RESULTS results'
    rows since each of its parts scans all of them."""
    budget = limit * FILL
    minutes = [sum(per_second[i : i + MINUTE]) for i in range(0, len(per_second), MINUTE)]
    total = [0.0, *accumulate(minutes)]
    # best[i]: (query results, rows scanned, start of the last chunk) for the first i minutes
    best: list[tuple[float, float, int]] = [(0, 0.0, 0)] + [(math.inf, math.inf, 0)] * len(minutes)
    for i in range(1, len(minutes) + 1):
        for j in range(i - 1, -1, -1):
            rows = total[i] - total[j]
            if rows > budget and rows > MAX_CHUNK_RESULTS * limit and i - j > 1:
                break  # longer chunks only hold more
            results = 1 if rows <= budget else math.ceil(rows / budget)
            option = (best[j][0] + results, best[j][1] + results * rows, j)
            best[i] = min(best[i], option)
    chunks: list[tuple[int, int]] = []
    i = len(minutes)
    while i > 0:
        j = best[i][2]
        chunks.append((j, i))
        i = j
    share = _generator_share(seen, part)
    parts: list[Part] = []
    for j, i in reversed(chunks):
        window = Part(part.start + j * MINUTE, min(part.start + i * MINUTE, part.end))
        if total[i] - total[j] <= budget:
            parts.append(window)
        else:
            seconds = per_second[j * MINUTE : i * MINUTE]
            parts += _by_prefix(window, seconds, share, budget) or [window]  # too many filters: by time only
    return parts


def _generator_share(seen: Iterable[str], part: Part) -> float:
    """The share of ``seen`` trace ids that start with an epoch second near the part's window (the load
    generator's), the rest taken for random ids."""
    ids = list(seen)
    if not ids:
        return 0.0
    near = 0
    for trace_id in ids:
        head = trace_id[:SECOND_DIGITS]
        if len(head) == SECOND_DIGITS and all(c in HEX for c in head):
            near += part.start - 3600 <= int(head, 16) <= part.end + 3600
    return near / len(ids)


def _by_prefix(window: Part, per_second: Sequence[float], share: float, budget: float) -> list[Part] | None:
    """``window``'s rows in parts by trace id prefix: groups of prefixes estimated at most ``budget`` rows
    each (an OR of ``starts-with``; the first also takes the rows without a trace id), and the rest
    (``does-not-start-with`` every listed prefix: the ids no group lists, and one group that fits beside
    them). None when a part would need more than MAX_FILTERS filters."""
    if share >= 0.5 and max(per_second, default=0.0) * share <= budget:
        groups, rest = _by_second(window, per_second, share, budget)
    else:
        groups, rest = _by_digits(window, per_second, share, budget)
    # The rest needs no part of its own when one group fits beside it: that group is then simply not listed.
    fits = [i for i, (_, rows) in enumerate(groups) if rest + rows <= budget]
    if fits and len(groups) > 1:
        del groups[fits[-1]]
    shown = [_compress(prefixes) for prefixes, _ in groups]
    if not shown:
        return None
    parts = [
        Part(window.start, window.end, any_of=tuple(prefixes), or_no_trace_id=i == 0)
        for i, prefixes in enumerate(shown)
    ]
    parts.append(Part(window.start, window.end, excluded=tuple(_compress([p for g in shown for p in g]))))
    return None if any(len(p.filters()) > MAX_FILTERS for p in parts) else parts


Groups = list[tuple[list[str], float]]  # (prefixes, estimated rows)


def _by_second(window: Part, per_second: Sequence[float], share: float, budget: float) -> tuple[Groups, float]:
    """The generator's ids by their epoch second: consecutive seconds in groups of about equal rows (as few
    as fit), each the fewest prefixes that cover its seconds; and the rows of other ids."""
    generated = [share * n for n in per_second]
    busy = [i for i, n in enumerate(generated) if n > 0]
    groups: Groups = []
    if busy:
        total = sum(generated)
        target = total / math.ceil(total / budget)
        first, rows = busy[0], 0.0
        for i in range(busy[0], busy[-1] + 1):
            if rows > 0 and (rows + generated[i] > budget or rows >= target * 0.999):
                groups.append((_cover(window.start + first, window.start + i), rows))
                first, rows = i, 0.0
            rows += generated[i]
        groups.append((_cover(window.start + first, window.start + busy[-1] + 1), rows))
    return groups, (1 - share) * sum(per_second)


def _by_digits(window: Part, per_second: Sequence[float], share: float, budget: float) -> tuple[Groups, float]:
    """Random ids (and generator ids too dense for one second a group) by leading digits: the prefix tree
    refined until each leaf is estimated to fit, its leaves in groups; and the rows of leaves too small to
    list."""
    cumulative = [0.0, *accumulate(per_second)]
    events = cumulative[-1]

    def estimate(prefix: str) -> float:
        """Rows whose trace id starts with ``prefix``: generator ids by their second, random ids evenly."""
        head = prefix[:SECOND_DIGITS]
        seconds = events
        if head:
            width = 16 ** (SECOND_DIGITS - len(head))
            low = int(head, 16) * width - window.start
            seconds = cumulative[_clamp(low + width, len(per_second))] - cumulative[_clamp(low, len(per_second))]
        generated = share * seconds / 16 ** max(len(prefix) - SECOND_DIGITS, 0)
        return generated + (1 - share) * events / 16 ** len(prefix)

    leaves: list[tuple[str, float]] = []  # disjoint prefixes, in order
    pending = [""]
    while pending:
        prefix = pending.pop()
        rows = estimate(prefix)
        if rows <= budget or len(prefix) >= TRACE_ID_DIGITS:
            leaves.append((prefix, rows))
        else:
            pending += [prefix + d for d in reversed(HEX)]
    groups: Groups = []
    rest = 0.0
    for prefix, rows in leaves:
        if rows <= TINY * budget:
            rest += rows
        elif groups and groups[-1][1] + rows <= budget:
            groups[-1] = ([*groups[-1][0], prefix], groups[-1][1] + rows)
        else:
            groups.append(([prefix], rows))
    return groups, rest


def _cover(low: int, high: int) -> list[str]:
    """The fewest trace id prefixes that hold exactly the epoch seconds ``[low, high)``."""
    found = []
    while low < high:
        size, digits = 1, SECOND_DIGITS
        while digits > 1 and low % (size * 16) == 0 and low + size * 16 <= high:
            size, digits = size * 16, digits - 1
        found.append(f"{low // size:0{digits}x}")
        low += size
    return found


def _clamp(index: int, length: int) -> int:
    return min(max(index, 0), length)


def _compress(prefixes: Sequence[str]) -> list[str]:
    """The same trace ids with fewer prefixes: all 16 one digit longer than a prefix become that prefix
    (never the empty prefix: a filter needs a value)."""
    found = set(prefixes)
    changed = True
    while changed:
        changed = False
        for prefix in sorted(found, key=len, reverse=True):
            parent = prefix[:-1]
            if prefix in found and parent and all(parent + d in found for d in HEX):
                found -= {parent + d for d in HEX}
                found.add(parent)
                changed = True
    return sorted(found)
