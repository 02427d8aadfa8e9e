"""Honeycomb runs bigger than one query result (10,000 rows): the read is split into parts that each fit,
against the real emulator; and a result that is still cut off keeps failing on what its rows do show."""

from __future__ import annotations

import json
import random
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import pytest
import requests

from emulators._server import serve
from emulators.honeycomb.api import HoneycombSettings, create_app
from emulators.honeycomb.store import HoneycombStore
from tests.verifiers import EVERY_ROUTE, EXP, HEALTH, HOME, check, ledger, window
from tests.verifiers import test_honeycomb_checks as hc
from tracedrill import local
from verifiers.connections import Connections
from verifiers.honeycomb import QUERY_RESULT_LIMIT, HoneycombVerifier
from verifiers.honeycomb_parts import Part, initial_parts
from verifiers.model import SentRequest

# ---- a truncated result still fails on what it shows ----


def test_a_duplicate_server_span_in_a_truncated_result_still_fails():
    sent = ledger(*EVERY_ROUTE, HOME)
    report = hc.verify(hc.good_rows(sent), sent, counts={hc.span_id(sent[0], 1): 2}, truncated=True)
    assert check(report, "exactly one server span").status == "fail"
    assert "duplicated: 1" in check(report, "exactly one server span").detail
    assert "other problems may be hidden" in check(report, "exactly one server span").detail
    assert check(report, "no duplicate span ids").status == "fail"
    assert report.status == "fail"


def test_wrong_attributes_and_unexpected_spans_in_a_truncated_result_still_fail():
    sent = ledger(HOME, HEALTH)
    rows = hc.good_rows(sent)
    rows[sent[0].request_id][0]["http.status_code"] = 500
    rows[sent[1].request_id].append(hc.child_row(sent[1]))
    report = hc.verify(rows, sent, truncated=True)
    assert check(report, "http.status_code").status == "fail"
    assert check(report, "no unexpected spans").status == "fail"


def test_absence_in_a_truncated_result_is_unverifiable_not_failed():
    sent = ledger(HOME, HEALTH)
    rows = hc.good_rows(sent)
    rows[sent[1].request_id] = []  # maybe cut off, maybe lost: undecided
    report = hc.verify(rows, sent, truncated=True)
    assert check(report, "exactly one server span").status == "unverifiable"
    assert report.status == "unverifiable"


# ---- the parts partition the rows ----


def _in(part: Part, ts: float, trace_id: str | None) -> bool:
    """The filter semantics: a filter never matches a row without the column."""
    if not part.start <= ts < part.end:
        return False
    if part.no_trace_id:
        return trace_id is None
    if trace_id is None:
        return not part.prefix and not part.excluded
    return trace_id.startswith(part.prefix) and not any(trace_id.startswith(e) for e in part.excluded)


def _rows(t0: int, n: int, rng: random.Random) -> list[tuple[float, str | None]]:
    rows: list[tuple[float, str | None]] = []
    for _ in range(n):
        ts = t0 + rng.uniform(0, 240)
        second = int(ts - rng.choice((0, 0, 0, 1, 30)))  # mostly the same second, some older
        kind = rng.random()
        if kind < 0.8:
            trace_id: str | None = f"{second:08x}{rng.getrandbits(96):024x}"
        elif kind < 0.93:
            trace_id = f"{rng.getrandbits(128):032x}"  # not the generator's: the app's own
        elif kind < 0.95:  # what OTLP or a span attribute may also hold: empty, short, not lowercase hex
            trace_id = rng.choice(["", f"{second:08x}"[: rng.randint(1, 8)], "ABCDEF", "zz", f"{second:08X}"])
        else:
            trace_id = None
        rows.append((ts, trace_id))
    return rows


def test_every_split_partitions_its_rows_down_to_single_digits():
    rng = random.Random(7)
    t0 = 1_760_000_000
    rows = _rows(t0, 3000, rng)
    parts = initial_parts(t0 + 30, t0 + 200, 60)
    assert all(p.start % 60 == 0 and p.end % 60 == 0 for p in parts)
    assert all(any(_in(p, ts, tid) for p in parts) for ts, tid in rows)
    frontier = list(parts)
    depth = 0
    while frontier:
        nxt = []
        for part in frontier:
            mine = [(ts, tid) for ts, tid in rows if _in(part, ts, tid)]
            if len(mine) < 40:
                continue  # "fits in a result": a leaf
            returned = [tid for _, tid in rng.sample(mine, 30) if tid]  # a cut-off result shows some rows
            children = part.split(returned)
            if part.no_trace_id:
                assert children == []  # rows without a trace id cannot be split by it
                continue
            assert children, part
            for ts, tid in mine:
                assert sum(_in(c, ts, tid) for c in children) == 1, (part, children, ts, tid)
            nxt += children
        frontier = nxt
        depth += 1
        assert depth < 40  # every split makes progress
    assert depth >= 5  # went below the minute and the second


def test_a_minute_splits_by_the_prefixes_its_rows_show():
    t0 = 1_760_000_040  # 0x68e77828: +7 is 0x68e7782f, +9 is 0x68e77831
    minute = Part(t0, t0 + 60)
    seen = [f"{t0 + s:08x}{n:024x}" for s in (0, 7, 9) for n in range(3)]
    children = minute.split(seen)
    assert children[0] == Part(t0, t0 + 60, no_trace_id=True)
    assert [c.prefix for c in children[1:-1]] == ["68e7782", "68e7783"]  # the 16-second blocks the rows show
    assert children[-1] == Part(t0, t0 + 60, excluded=("68e7782", "68e7783"))  # what the rows did not show
    one_second = Part(t0, t0 + 60, prefix="68e77828")
    digits = [f"68e77828{d}" for d in "0123456789abcdef"]
    random_ids = [f"{p}{n:023x}" for p in digits for n in range(2)]
    # All 16 digits have a part, and the rest still has one: ids that are short or not lowercase hex.
    rest = Part(t0, t0 + 60, prefix="68e77828", excluded=tuple(digits))
    assert one_second.split(random_ids) == [Part(t0, t0 + 60, d) for d in digits] + [rest]
    assert one_second.split([]) == [Part(t0, t0 + 60, d) for d in digits] + [rest]
    whole = "68e77828" + "1" * 24
    assert one_second.split([whole]) == [Part(t0, t0 + 60, whole), Part(t0, t0 + 60, "68e77828", (whole,))]
    assert Part(t0, t0 + 60, prefix=whole).split([whole]) == []
    assert Part(t0, t0 + 60, no_trace_id=True).split() == []


def test_a_part_spec_filters_on_the_trace_id():
    spec = Part(120, 180, "ab", ("abc",)).spec(["name"], 10_000)
    assert (spec["start_time"], spec["end_time"], spec["limit"]) == (120, 180, 10_000)
    assert spec["filters"] == [
        {"column": "trace.trace_id", "op": "starts-with", "value": "ab"},
        {"column": "trace.trace_id", "op": "does-not-start-with", "value": "abc"},
    ]
    assert Part(120, 180, no_trace_id=True).filters() == [{"column": "trace.trace_id", "op": "does-not-exist"}]
    assert "filters" not in Part(120, 180).spec(["name"], 10)


def test_a_long_window_is_cut_below_six_hours():
    parts = initial_parts(1_760_000_000, 1_760_000_000 + 13 * 3600, 60)
    assert len(parts) == 3 and all(p.end - p.start <= 6 * 3600 for p in parts)
    assert all(a.end == b.start for a, b in zip(parts, parts[1:], strict=False))


# ---- the real emulator, holding more than 10,000 spans ----


BIG = QUERY_RESULT_LIMIT + 60


@pytest.fixture(scope="module")
def honeycomb(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[SentRequest]]]:
    """The emulator holding one big run whose span of request 5 was sent twice."""
    settings = HoneycombSettings.local(query_results_per_minute=0)  # the 10-a-minute limit would take minutes
    store = HoneycombStore(tmp_path_factory.mktemp("hc") / "hc.sqlite3")
    running = serve("honeycomb-big", create_app(store, settings), port=0)
    try:
        sent = _big_run(BIG, seed=1)
        spans = [_server_span(r) for r in sent]
        _send(running.url, "big-flask", spans + [spans[5]])
        yield running.url, sent
    finally:
        running.stop()


def _big_run(n: int, seed: int) -> list[SentRequest]:
    """``n`` health requests over 20 seconds of one minute, trace ids random after the epoch second."""
    rng = random.Random(seed)
    base = (int(time.time()) - 180) // 60 * 60 + 20
    out = []
    for i, r in enumerate(ledger(*([HEALTH] * n), t0=base)):
        second = base + i % 20
        trace_id = f"{second:08x}{rng.getrandbits(96):024x}"
        r = replace(
            r, start=second + 0.5, end=second + 0.55, trace_id=trace_id, xray_trace_id=f"1-{second:08x}-{trace_id[8:]}"
        )
        out.append(r)
    return out


def _server_span(r: SentRequest) -> dict[str, Any]:
    ns = int(r.start * 1e9)
    return {
        "traceId": r.trace_id,
        "spanId": hc.span_id(r, 1),
        "parentSpanId": r.parent_span_id,
        "name": "GET /api/health",
        "kind": 2,
        "startTimeUnixNano": str(ns),
        "endTimeUnixNano": str(ns + 1_000_000),
        "attributes": [
            {"key": "app.request_id", "value": {"stringValue": r.request_id}},
            {"key": "http.status_code", "value": {"intValue": "200"}},
        ],
    }


def _send(url: str, service: str, spans: list[dict[str, Any]]) -> None:
    for start in range(0, len(spans), 4000):
        body = {
            "resourceSpans": [
                {
                    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": service}}]},
                    "scopeSpans": [{"scope": {"name": "test"}, "spans": spans[start : start + 4000]}],
                }
            ]
        }
        answer = requests.post(
            f"{url}/v1/traces",
            data=json.dumps(body),
            timeout=30,
            headers={"Content-Type": "application/json", "x-honeycomb-team": local.LOCAL_HONEYCOMB_KEY},
        )
        assert answer.status_code == 200, answer.text


def _verifier(url: str) -> HoneycombVerifier:
    verifier = HoneycombVerifier(Connections(honeycomb_api_key=local.LOCAL_HONEYCOMB_KEY, honeycomb_api_url=url), EXP)
    verifier.pace_queries(0)
    return verifier


def test_more_than_one_query_result_of_spans_is_read_whole(honeycomb):
    url, sent = honeycomb
    verifier = _verifier(url)
    told: list[str] = []
    verifier.progress = told.append
    w = window(sent, service="big-flask")
    obs = verifier.poll(w)
    assert not obs.truncated
    assert verifier.item_count(obs) == len(sent) + 1  # every span, the duplicate too
    report = verifier.verify(sent, obs, EXP)
    # Exact counts, and only the duplicate fails: nothing was cut off, nothing is missing.
    assert (report.expected, report.found, report.missing, report.extra) == (len(sent), len(sent), 0, 0)
    assert [c.name for c in report.checks if c.status == "fail"] == [
        "every request has exactly one server span with its trace id",
        "no duplicate span ids",
    ]
    assert "1 of" in check(report, "exactly one server span").detail
    assert sent[5].request_id in check(report, "exactly one server span").detail
    assert check(report, "server span's parent").status == "pass"
    assert any(
        note.startswith(f"more than {QUERY_RESULT_LIMIT} span rows: read in") for note in report.note.split("; ")
    )
    assert told and "takes longer" in told[0]
    first = obs.cost_units["query_results"]
    # The next poll starts from the parts that fit: no query result is spent on a part that comes back full.
    again = verifier.poll(w)
    assert not again.truncated and verifier.item_count(again) == len(sent) + 1
    assert again.cost_units["query_results"] < first
