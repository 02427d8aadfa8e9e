"""The Honeycomb emulator's SQL prefilters never change a query's result.

On mixed-type data (strings with SQL LIKE metacharacters, quotes, non-ASCII, NUL and lone surrogates;
numbers, booleans, nulls, missing columns; an event SQLite's JSON functions cannot read) every filter gives
the same rows with the prefilters as the Python evaluator alone over every event, and the SQL narrowing
alone keeps a superset. Both SQL paths are checked: an ordinary column (read with SQLite's JSON functions)
and trace.trace_id (read from the columns the store fills at ingest, or when it migrates an old data dir).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from emulators.honeycomb.filters import compile_filter, compile_filters
from emulators.honeycomb.otlp import DatasetBatch, Event
from emulators.honeycomb.prefilter import TRACE_ID_COLUMN, Prefilter, sql_prefilters
from emulators.honeycomb.query import RunOptions, Window, reads_columns, run_query
from emulators.honeycomb.store import HoneycombStore

DATASET = "svc"
START = 1_700_000_040
WINDOW = Window(START, START + 60)
OPTIONS = RunOptions(disable_series=True, limit=10_000)
COLUMNS = ["c", TRACE_ID_COLUMN]  # the JSON path and the trace id columns

VALUES: list[Any] = [
    "abc", "ABC", "ab", "a", "", "ab%", "a%c", "a_c", "abXc", "%x", "_x", "it's", "it''s", 'q"uote', "back\\slash",
    "tab\tx", "new\nline", "12", "1", "1.5", "true", "tr", "false", "é-accent", "😀-emoji", "\u2028sep", "a\x00b", "a",
    "\ud800lone", "\ud83dAbc", 1, 12, 1.5, 2.0, -3, 0, 10**20, 1e16, True, False, None, "MISSING",
]  # fmt: skip
NEEDLES: list[Any] = [
    "a", "ab", "abc", "A", "ab%", "a%", "%", "a_", "_", "it'", "it''", 'q"', "back\\", "tab\t", "1", "12", "1.5",
    "true", "tr", "f", "é", "😀", "a\x00", "\ud800", "-", "100", 1, 12, 1.5, True, False,
]  # fmt: skip


def events() -> list[Event]:
    """One event per value, in both columns; plus events holding NaN and Infinity elsewhere (Python's json
    writes them, SQLite's JSON functions refuse them)."""
    found = []
    for i, value in enumerate(VALUES):
        fields: dict[str, Any] = {"id": f"e{i}", "other": value if i % 3 else "abc"}
        if value != "MISSING":
            fields["c"] = fields[TRACE_ID_COLUMN] = value
        found.append(Event(START + i * 0.5, 1, fields))
    found.append(Event(START + 30, 1, {"id": "nan", "c": "abc", TRACE_ID_COLUMN: "abc", "n": float("nan")}))
    found.append(Event(START + 31, 1, {"id": "inf", "c": 12, TRACE_ID_COLUMN: 12, "n": float("inf")}))
    return found


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> HoneycombStore:
    db = HoneycombStore(tmp_path_factory.mktemp("prefilter") / "honeycomb.sqlite3")
    db.write_batches([DatasetBatch(DATASET, events())], now=START, may_create_datasets=True)
    return db


def f(op: str, value: Any = None, column: str = "c") -> dict[str, Any]:
    return {"column": column, "op": op} | ({} if value is None else {"value": value})


def on(column: str, filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """``filters`` with column "c" moved to ``column``."""
    return [{**x, "column": column} if x["column"] == "c" else x for x in filters]


def result_ids(db: HoneycombStore, spec: dict[str, Any], prefiltered: bool) -> set[str]:
    full = {"breakdowns": ["id"], "calculations": [{"op": "COUNT"}], **spec}
    prefilters = sql_prefilters(full) if prefiltered else []
    rows = db.iter_events([DATASET], WINDOW.start, WINDOW.end, prefilters)
    return {row["data"]["id"] for row in run_query(full, rows, WINDOW, OPTIONS)["results"]}


def sql_ids(db: HoneycombStore, spec: dict[str, Any]) -> set[str]:
    return {fields["id"] for _, _, fields in db.iter_events([DATASET], WINDOW.start, WINDOW.end, sql_prefilters(spec))}


def check(db: HoneycombStore, spec: dict[str, Any]) -> set[str]:
    expected = result_ids(db, spec, prefiltered=False)
    assert result_ids(db, spec, prefiltered=True) == expected, spec
    assert sql_ids(db, spec) >= expected, spec
    return expected


@pytest.mark.parametrize("column", COLUMNS)
@pytest.mark.parametrize("op", ["starts-with", "does-not-start-with"])
@pytest.mark.parametrize("needle", NEEDLES, ids=repr)
def test_prefix_filters_keep_exactly_the_evaluators_rows(
    store: HoneycombStore, column: str, op: str, needle: Any
) -> None:
    check(store, {"filters": [f(op, needle, column)]})


@pytest.mark.parametrize("column", COLUMNS)
@pytest.mark.parametrize("value", ["abc", "ab%", "a_c", "it's", 'q"uote', "é-accent", "😀-emoji", "a\x00b", "nope"])
def test_equality_filters_keep_exactly_the_evaluators_rows(store: HoneycombStore, column: str, value: str) -> None:
    check(store, {"filters": [f("=", value, column)]})
    check(store, {"filters": [f("in", [value, "abc", "\ud800lone"], column)]})


COMBINATIONS = [
    [f("starts-with", "a"), f("starts-with", "1")],
    [f("starts-with", "ab"), f("starts-with", "it'")],
    [f("starts-with", "a"), f("=", "true")],
    [f("starts-with", "a"), f("starts-with", "1", column="other")],
    [f("does-not-start-with", "a"), f("does-not-start-with", "1")],
    [f("does-not-start-with", "ab"), f("starts-with", "a", column="other")],
    [f("=", "abc"), f("in", ["ab%", "it's"])],
    [f("starts-with", "a"), f("exists")],
    [f("starts-with", "é"), f("starts-with", "a")],
    [f("starts-with", "a"), f("starts-with", "1"), f("does-not-exist")],  # the verifier's first part
    [f("=", "abc"), f("does-not-exist")],
    [f("does-not-exist"), f("starts-with", "a", column="other")],
    [f("does-not-start-with", "a"), f("does-not-exist")],
    [f("starts-with", "a"), f("does-not-start-with", "ab")],
]
COMBINATION_IDS = [" ".join(f"{x['op']}:{x.get('value')!r}" for x in fs) for fs in COMBINATIONS]


@pytest.mark.parametrize("column", COLUMNS)
@pytest.mark.parametrize("combination", ["AND", "OR"])
@pytest.mark.parametrize("filters", COMBINATIONS, ids=COMBINATION_IDS)
def test_combined_filters_keep_exactly_the_evaluators_rows(
    store: HoneycombStore, filters: list[dict[str, Any]], combination: str, column: str
) -> None:
    check(store, {"filters": on(column, filters), "filter_combination": combination})


@pytest.mark.parametrize("combination", ["AND", "OR"])
@pytest.mark.parametrize("filters", COMBINATIONS, ids=COMBINATION_IDS)
def test_compiled_filters_answer_as_each_filter_does(filters: list[dict[str, Any]], combination: str) -> None:
    """compile_filters may fold filters into one test (starts-with over a tuple); the answer per event is
    still each filter's own, combined with AND or OR."""
    compiled = compile_filters(filters, combination)
    each = [compile_filter(x["column"], x["op"], x.get("value")) for x in filters]
    for value in VALUES:
        event = {} if value == "MISSING" else {"c": value, "other": value}
        answers = [p(event) for p in each]
        assert compiled(event) == (any(answers) if combination == "OR" else all(answers)), (filters, value)


@pytest.mark.parametrize("column", COLUMNS)
@pytest.mark.parametrize(
    "filters, combination",
    [
        ([f("starts-with", "ab")], "AND"),
        ([f("does-not-start-with", p) for p in ("a", "1", "t")], "AND"),  # the verifier's "rest" part
        ([f("starts-with", p) for p in ("ab", "12", "it")], "OR"),  # the verifier's per-second parts
        ([f("starts-with", "ab"), f("starts-with", "1"), f("does-not-exist")], "OR"),
    ],
)
def test_the_prefilters_narrow_in_sql(
    store: HoneycombStore, filters: list[dict[str, Any]], combination: str, column: str
) -> None:
    """Not vacuous: the verifier's shapes become SQL conditions that leave events out before decoding, while
    the events SQL cannot judge (a number, a boolean; with SQLite's JSON functions, the event with NaN)
    reach the evaluator."""
    spec = {"filters": on(column, filters), "filter_combination": combination}
    assert sql_prefilters(spec)
    kept = sql_ids(store, spec)
    assert kept < sql_ids(store, {})
    unjudged = {f"e{i}" for i, v in enumerate(VALUES) if v is not None and not isinstance(v, str)} | {"inf"}
    assert unjudged | ({"nan"} if column == "c" else set()) <= kept
    check(store, spec)


def test_filters_sql_cannot_judge_get_no_prefilter() -> None:
    assert sql_prefilters({"filters": [f("starts-with", "é")]}) == []  # not ASCII
    assert sql_prefilters({"filters": [f("starts-with", "a\x00")]}) == []
    assert sql_prefilters({"filters": [f("=", "12")]}) == []  # the number 12 equals "12"
    assert sql_prefilters({"filters": [f("starts-with", "a", column='c"')]}) == []
    assert sql_prefilters({"filters": [f("does-not-start-with", "a"), f("does-not-start-with", "b")]}) == [
        Prefilter("c", ("a", "b"), "not-prefix")
    ]
    mixed = [f("starts-with", "a"), f("starts-with", "b", column="d")]
    assert sql_prefilters({"filters": mixed, "filter_combination": "OR"}) == []
    assert len(sql_prefilters({"filters": mixed, "filter_combination": "AND"})) == 2
    either = [f("starts-with", "a"), f("starts-with", "b"), f("does-not-exist")]
    assert sql_prefilters({"filters": either, "filter_combination": "OR"}) == [
        Prefilter("c", ("a", "b"), "prefix", missing=True)
    ]
    assert not Prefilter(TRACE_ID_COLUMN, ("a",), "prefix").reads_json


def test_a_count_over_time_decodes_no_event(store: HoneycombStore) -> None:
    spec = {"calculations": [{"op": "COUNT"}], "granularity": 1}
    assert not reads_columns(spec)
    assert reads_columns({**spec, "breakdowns": ["c"]}) and reads_columns({**spec, "filters": [f("exists")]})
    assert reads_columns({"calculations": [{"op": "MAX", "column": "c"}]})
    series = RunOptions(disable_series=False, total_by_aggregate=True)
    skipped = run_query(spec, store.iter_events([DATASET], WINDOW.start, WINDOW.end, columns=False), WINDOW, series)
    decoded = run_query(spec, store.iter_events([DATASET], WINDOW.start, WINDOW.end), WINDOW, series)
    assert skipped == decoded
    assert decoded["total_by_aggregate"]["data"]["COUNT"] == len(VALUES) + 2


def test_a_data_dir_from_before_the_trace_id_columns_is_migrated(tmp_path: Path) -> None:
    """Events an earlier version stored (no trace_kind/trace_id columns, user_version 0) get the columns
    when the store opens; trace id prefilters then answer exactly as on freshly ingested events."""
    path = tmp_path / "honeycomb.sqlite3"
    old = sqlite3.connect(path)
    old.executescript(
        """CREATE TABLE datasets (slug TEXT PRIMARY KEY, name TEXT NOT NULL, created_at REAL NOT NULL,
                                  last_written_at REAL);
           CREATE TABLE events (id INTEGER PRIMARY KEY, dataset TEXT NOT NULL, ts REAL NOT NULL,
                                sample_rate INTEGER NOT NULL, data TEXT NOT NULL);
           CREATE INDEX events_by_dataset_time ON events (dataset, ts);"""
    )
    old.execute("INSERT INTO datasets VALUES (?, ?, ?, ?)", (DATASET, DATASET, START, START))
    old.executemany(
        "INSERT INTO events (dataset, ts, sample_rate, data) VALUES (?, ?, ?, ?)",
        [(DATASET, e.timestamp, e.sample_rate, json.dumps(e.fields)) for e in events()]
        + [(DATASET, START + 32, 1, "not json")],  # unreadable: kept for the evaluator (which then fails loudly)
    )
    old.commit()
    old.close()
    migrated = HoneycombStore(path)
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == HoneycombStore.SCHEMA_VERSION
    kinds = dict(conn.execute("SELECT json_extract(data, '$.id'), trace_kind FROM events WHERE json_valid(data)"))
    kind = {value: kinds[f"e{VALUES.index(value)}"] for value in ("abc", 12, "MISSING", None, "a\x00b", "\ud800lone")}
    assert kind == {"abc": "text", 12: "other", "MISSING": "absent", None: "absent", "a\x00b": "other"} | {
        "\ud800lone": "other"
    }
    assert conn.execute("SELECT trace_kind FROM events WHERE data = 'not json'").fetchone()[0] == "other"
    conn.execute("DELETE FROM events WHERE data = 'not json'")
    conn.commit()
    fresh = HoneycombStore(tmp_path / "fresh.sqlite3")
    fresh.write_batches([DatasetBatch(DATASET, events())], now=START, may_create_datasets=True)
    for needle in ("a", "ab", "1", "abc"):
        for op in ("starts-with", "does-not-start-with"):
            spec = {"filters": [f(op, needle, TRACE_ID_COLUMN)]}
            assert check(migrated, spec) == check(fresh, spec)
    HoneycombStore(path)  # opening again finds nothing left to migrate


@pytest.mark.parametrize("column", ["café", "tab\tcol", "😀", 'q"uote', "back\\slash"])
@pytest.mark.parametrize("op, value", [("=", "abc"), ("in", ["abc"]), ("starts-with", "ab")])
def test_a_column_name_json_escapes_still_finds_its_rows(tmp_path: Path, column: str, op: str, value: Any) -> None:
    # The store's json.dumps escapes such a key, where SQLite's JSON path would not find it: no prefilter.
    db = HoneycombStore(tmp_path / "honeycomb.sqlite3")
    db.write_batches([DatasetBatch(DATASET, [Event(START, 1, {"id": "e", column: "abc"})])], START, True)
    assert check(db, {"filters": [f(op, value, column)]}) == {"e"}
