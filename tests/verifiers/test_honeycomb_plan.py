"""A big Honeycomb read planned from one COUNT query: the parts partition the rows exactly, fit one result each,
and a multi-minute run costs about as many query results as its rows need, against the real emulator."""

from __future__ import annotations

import math
import random
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import replace

import pytest

from emulators._server import serve
from emulators.honeycomb.api import HoneycombSettings, create_app
from emulators.honeycomb.store import HoneycombStore
from tests.verifiers import EXP, HEALTH, ledger, window
from tests.verifiers import test_honeycomb_split as split
from verifiers import honeycomb
from verifiers.honeycomb_parts import MINUTE, Part, count_spec, counts_by_second, plan
from verifiers.model import SentRequest

T0 = 1_760_000_040  # a whole minute

Row = tuple[float, str | None]  # (timestamp, trace id)


def _in(part: Part, ts: float, trace_id: str | None) -> bool:
    """The filter semantics: a filter never matches a row without the column, except does-not-exist."""
    if not part.start <= ts < part.end:
        return False
    if part.any_of or part.or_no_trace_id:  # OR
        return (trace_id is None and part.or_no_trace_id) or (
            trace_id is not None and any(trace_id.startswith(p) for p in part.any_of)
        )
    return split._in(part, ts, trace_id)


def _per_second(part: Part, rows: list[Row]) -> list[float]:
    counts = [0.0] * (part.end - part.start)
    for ts, _ in rows:
        counts[int(ts) - part.start] += 1
    return counts


def _generated(rng: random.Random, start: int, seconds: int, rate: int, straddle: float = 0.0) -> list[Row]:
    """The load generator's rows: trace ids start with the epoch second they were sent in."""
    rows: list[Row] = []
    for second in range(start, start + seconds):
        for _ in range(rng.randint(rate // 2, rate)):
            late = rng.random() < straddle  # the span starts in the next second
            rows.append((second + (1.001 if late else rng.random()), f"{second:08x}{rng.getrandbits(96):024x}"))
    return rows


def _odd(rng: random.Random, part: Part, n: int) -> list[Row]:
    """Rows the generator did not make: random trace ids, odd ones, none at all."""
    rows: list[Row] = []
    for _ in range(n):
        ts = rng.uniform(part.start, part.end)
        kind = rng.random()
        if kind < 0.7:
            rows.append((ts, f"{rng.getrandbits(128):032x}"))
        elif kind < 0.9:
            rows.append((ts, rng.choice(["", "6", "ABCDEF", "zz-top", "68E77828"])))
        else:
            rows.append((ts, None))
    return rows


def _check_partition(parts: list[Part], rows: list[Row], window_part: Part) -> list[int]:
    """Every row is in exactly one part; the parts cover the window in whole minutes. Returns rows per part."""
    assert all(p.start % MINUTE == 0 and p.end % MINUTE == 0 for p in parts)
    assert min(p.start for p in parts) == window_part.start and max(p.end for p in parts) == window_part.end
    sizes = [0] * len(parts)
    for ts, trace_id in rows:
        holders = [i for i, p in enumerate(parts) if _in(p, ts, trace_id)]
        assert len(holders) == 1, (ts, trace_id, [parts[i] for i in holders])
        sizes[holders[0]] += 1
    return sizes


@pytest.mark.parametrize("seed", range(6))
def test_planned_parts_partition_any_rows_exactly(seed: int) -> None:
    rng = random.Random(seed)
    whole = Part(T0, T0 + 8 * MINUTE)
    rows: list[Row] = []
    for _ in range(rng.randint(1, 3)):  # bursts at different rates
        start = rng.randrange(whole.start + 30, whole.end - 200)
        rows += _generated(rng, start, rng.randint(20, 150), rng.choice([20, 80, 400]), straddle=0.02)
    rows = [r for r in rows if r[0] < whole.end] + _odd(rng, whole, rng.choice([0, 50, 3000]))
    seen = [t for _, t in rows[:1000] if t]
    parts = plan(whole, _per_second(whole, rows), seen, 1000)
    _check_partition(parts, rows, whole)
    for part in parts:  # and each part still splits into parts that partition it
        children = part.split([t for ts, t in rows if t and _in(part, ts, t)][:50])
        mine = [(ts, t) for ts, t in rows if _in(part, ts, t)]
        if children:
            assert all(sum(_in(c, ts, t) for c in children) == 1 for ts, t in mine)


def test_generator_rows_get_parts_that_each_fit_one_result():
    rng = random.Random(11)
    whole = Part(T0, T0 + 12 * MINUTE)
    rows = _generated(rng, T0 + 75, 9 * MINUTE, 40)  # about 1,600 rows a minute for 9 minutes
    limit = 1000
    parts = plan(whole, _per_second(whole, rows), [t for _, t in rows[:limit] if t], limit)
    sizes = _check_partition(parts, rows, whole)
    assert max(sizes) <= limit  # the estimates hold: no part comes back full
    assert len(parts) <= math.ceil(len(rows) / limit) + 3  # within a few of the fewest possible
    assert all(len(p.filters()) <= 40 for p in parts)


def test_random_trace_ids_are_split_by_leading_digits():
    rng = random.Random(5)
    whole = Part(T0, T0 + 2 * MINUTE)
    rows = [(rng.uniform(T0, T0 + 60), f"{rng.getrandbits(128):032x}") for _ in range(3500)]
    parts = plan(whole, _per_second(whole, rows), [t for _, t in rows[:1000] if t], 1000)
    sizes = _check_partition(parts, rows, whole)
    assert len(parts) <= 6 and max(sizes) <= 1000 * 1.15  # evenly spread ids: estimates are close


def test_minutes_that_pack_well_are_read_by_time_alone() -> None:
    whole = Part(T0, T0 + 10 * MINUTE)
    rows: list[Row] = [(T0 + i * 600 / 4900, f"{T0 + i * 600 // 4900:08x}{i:024x}") for i in range(4900)]
    parts = plan(whole, _per_second(whole, rows), [t for _, t in rows if t], 1000)
    assert [p.end - p.start for p in parts] == [2 * MINUTE] * 5  # 980 rows each: no trace id filter needed
    assert all(not p.filters() for p in parts)
    assert _check_partition(parts, rows, whole) == [980] * 5


def test_a_sparse_run_takes_no_more_results_than_its_rows_need():
    rng = random.Random(3)
    whole = Part(T0, T0 + 10 * MINUTE)
    rows = _generated(rng, T0, 10 * MINUTE, 6)  # about 270 rows a minute: 3 minutes would not fit
    parts = plan(whole, _per_second(whole, rows), [t for _, t in rows if t], 1000)
    sizes = _check_partition(parts, rows, whole)
    assert max(sizes) <= 1000 and len(parts) <= math.ceil(len(rows) / 1000) + 1


def test_count_spec_buckets_divide_a_minute_within_honeycombs_bounds():
    for minutes in range(1, 361):
        duration = minutes * MINUTE
        spec = count_spec(Part(T0, T0 + duration))
        assert spec is not None and spec["calculations"] == [{"op": "COUNT"}] and "breakdowns" not in spec
        g = spec["granularity"]
        assert MINUTE % g == 0 and duration / 1000 <= g <= duration / 10


def test_counts_by_second_spread_each_bucket_and_skip_junk():
    part = Part(T0, T0 + MINUTE)
    series = [
        {"time": "2025-10-09T08:54:00Z", "data": {"COUNT": 10}},  # T0, 5-second buckets
        {"time": "2025-10-09T08:54:55Z", "data": {"COUNT": 5}},
        {"time": "not a time", "data": {"COUNT": 99}},
        {"time": "2025-10-09T08:54:10Z", "data": {"COUNT": True}},
        "junk",
    ]
    counts = counts_by_second(part, 5, series)
    assert counts[:5] == [2.0] * 5 and counts[55:] == [1.0] * 5 and sum(counts) == 15


# ---- against the real emulator ----

LIMIT = 300  # a small row limit keeps the run small; the plan scales with it


@pytest.fixture(scope="module")
def multi_minute(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[SentRequest]]]:
    """The emulator holding a run of about 1,600 health requests over 4 minutes: 400 a minute."""
    settings = HoneycombSettings.local(query_results_per_minute=0)
    store = HoneycombStore(tmp_path_factory.mktemp("hc-plan") / "hc.sqlite3")
    running = serve("honeycomb-plan", create_app(store, settings), port=0)
    try:
        rng = random.Random(2)
        base = (int(time.time()) - 600) // MINUTE * MINUTE + 10
        sent = []
        for i, r in enumerate(ledger(*([HEALTH] * 1600), t0=base)):
            second = base + i * 240 // 1600
            trace_id = f"{second:08x}{rng.getrandbits(96):024x}"
            sent.append(
                replace(r, start=second + 0.3, end=second + 0.35, trace_id=trace_id, xray_trace_id=f"1-{trace_id}")
            )
        split._send(running.url, "plan-flask", [split._server_span(r) for r in sent])
        yield running.url, sent
    finally:
        running.stop()


def _spans(obs: honeycomb.HoneycombObservation) -> Counter[tuple[tuple[str, object], ...]]:
    return Counter(tuple(sorted(s.columns.items())) for s in obs.spans)


def test_a_multi_minute_run_costs_about_the_results_its_rows_need(multi_minute, monkeypatch):
    url, sent = multi_minute
    w = window(sent, service="plan-flask")
    whole = split._verifier(url).poll(w)  # one result holds everything at the real limit: the reference
    assert not whole.truncated and whole.cost_units["query_results"] == 1

    monkeypatch.setattr(honeycomb, "QUERY_RESULT_LIMIT", LIMIT)
    verifier = split._verifier(url)
    obs = verifier.poll(w)
    assert not obs.truncated
    assert obs.cost_units["query_results"] <= math.ceil(len(sent) / LIMIT) + 2  # the full read, the count, parts
    assert _spans(obs) == _spans(whole)  # every row once: the same spans as the unsplit read
    report, reference = verifier.verify(sent, obs, EXP), verifier.verify(sent, whole, EXP)
    assert [(c.name, c.status) for c in report.checks] == [(c.name, c.status) for c in reference.checks]
    assert (report.expected, report.found, report.missing, report.extra) == (len(sent), len(sent), 0, 0)
    again = verifier.poll(w)  # the next poll reads the planned parts straight away
    assert _spans(again) == _spans(whole)
    assert again.cost_units["query_results"] == obs.cost_units["query_results"] - 2
