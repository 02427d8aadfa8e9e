"""Durable storage for the Honeycomb emulator: datasets, columns, events, queries, query results.

Events keep their columns as JSON text next to an indexed (dataset, timestamp) pair, so a query
narrows by dataset and time in SQL before any JSON is decoded, and next to their trace id as SQL may
compare it (see prefilter.py), so a query by trace id prefix narrows without parsing any JSON.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from emulators._store import SqliteStore
from emulators.honeycomb.otlp import DatasetBatch
from emulators.honeycomb.prefilter import OTHER, Prefilter, sql_marks, trace_id_columns

ALL_DATASETS = "__all__"
NO_COLUMNS: dict[str, Any] = {}  # the columns of an event nobody reads: shared, never written to
_BASE58 = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz"
_NON_ALNUM = re.compile(r"[^a-z0-9]")


def dataset_slug(name: str) -> str:
    """Honeycomb's slug: lower case, every character other than a-z0-9 becomes '-'."""
    return _NON_ALNUM.sub("-", name.lower())


def new_id(length: int = 11) -> str:
    """A base58 id shaped like Honeycomb's (e.g. ``yUheCUmgZ8p``)."""
    return "".join(secrets.choice(_BASE58) for _ in range(length))


def column_type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "float"
    return "string"


class DatasetCreationDenied(Exception):
    """The events name a dataset that does not exist and the key may not create datasets."""


@dataclass(frozen=True)
class DatasetInfo:
    slug: str
    name: str
    created_at: float
    last_written_at: float | None
    columns_count: int


@dataclass(frozen=True)
class ColumnInfo:
    id: str
    key_name: str
    type: str
    hidden: bool
    created_at: float
    updated_at: float
    last_written: float


@dataclass(frozen=True)
class StoredQuery:
    id: str
    dataset: str
    spec: dict[str, Any]


class HoneycombStore(SqliteStore):
    SCHEMA = """
    CREATE TABLE IF NOT EXISTS datasets (
        slug TEXT PRIMARY KEY,
        name TEXT NOT NULL,
        created_at REAL NOT NULL,
        last_written_at REAL
    );
    CREATE TABLE IF NOT EXISTS columns (
        dataset TEXT NOT NULL,
        key_name TEXT NOT NULL,
        id TEXT NOT NULL,
        type TEXT NOT NULL,
        hidden INTEGER NOT NULL DEFAULT 0,
        created_at REAL NOT NULL,
        updated_at REAL NOT NULL,
        last_written REAL NOT NULL,
        PRIMARY KEY (dataset, key_name)
    );
    CREATE TABLE IF NOT EXISTS events (
        id INTEGER PRIMARY KEY,
        dataset TEXT NOT NULL,
        ts REAL NOT NULL,
        sample_rate INTEGER NOT NULL,
        data TEXT NOT NULL,
        trace_kind TEXT,
        trace_id TEXT
    );
    CREATE INDEX IF NOT EXISTS events_by_dataset_time ON events (dataset, ts);
    CREATE TABLE IF NOT EXISTS queries (
        id TEXT PRIMARY KEY,
        dataset TEXT NOT NULL,
        spec TEXT NOT NULL,
        created_at REAL NOT NULL
    );
    CREATE TABLE IF NOT EXISTS query_results (
        id TEXT PRIMARY KEY,
        dataset TEXT NOT NULL,
        query_id TEXT NOT NULL,
        created_at REAL NOT NULL,
        body TEXT NOT NULL
    );
    """

    # The events' trace_kind/trace_id columns (see prefilter.py) came with schema version 1.
    SCHEMA_VERSION = 1

    def __init__(self, path: Path | str) -> None:
        super().__init__(path)
        self._migrate()

    def _migrate(self) -> None:
        """Bring a data dir written by an earlier version up to SCHEMA_VERSION: events written before
        trace_kind/trace_id existed get them, from their stored columns as ingest would have set them."""
        with self.transaction() as conn:
            if conn.execute("PRAGMA user_version").fetchone()[0] >= self.SCHEMA_VERSION:
                return
            if "trace_kind" not in {row[1] for row in conn.execute("PRAGMA table_info(events)")}:
                conn.execute("ALTER TABLE events ADD COLUMN trace_kind TEXT")
                conn.execute("ALTER TABLE events ADD COLUMN trace_id TEXT")
            last = 0
            while True:
                rows = conn.execute(
                    "SELECT id, data FROM events WHERE id > ? ORDER BY id LIMIT 5000", (last,)
                ).fetchall()
                if not rows:
                    break
                conn.executemany(
                    "UPDATE events SET trace_kind = ?, trace_id = ? WHERE id = ?",
                    [(*_stored_trace_id(data), event_id) for event_id, data in rows],
                )
                last = rows[-1][0]
            conn.execute(f"PRAGMA user_version = {self.SCHEMA_VERSION}")

    # --- ingest ---------------------------------------------------------------------------------

    def write_batches(self, batches: Sequence[DatasetBatch], now: float, may_create_datasets: bool) -> int:
        """Store every event of every batch in one transaction; returns the number stored."""
        written = 0
        with self.transaction() as conn:
            for batch in batches:
                if not batch.events:
                    continue
                slug = dataset_slug(batch.dataset_name)
                self._ensure_dataset(conn, slug, batch.dataset_name, now, may_create_datasets)
                conn.executemany(
                    "INSERT INTO events (dataset, ts, sample_rate, data, trace_kind, trace_id)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    [
                        (slug, e.timestamp, e.sample_rate, json.dumps(e.fields), *trace_id_columns(e.fields))
                        for e in batch.events
                    ],
                )
                self._touch_columns(conn, slug, batch, now)
                written += len(batch.events)
        return written

    @staticmethod
    def _ensure_dataset(conn: sqlite3.Connection, slug: str, name: str, now: float, may_create: bool) -> None:
        exists = conn.execute("SELECT 1 FROM datasets WHERE slug = ?", (slug,)).fetchone()
        if exists:
            conn.execute("UPDATE datasets SET last_written_at = ? WHERE slug = ?", (now, slug))
            return
        if not may_create:
            raise DatasetCreationDenied(f"dataset {name!r} does not exist and this API key may not create datasets")
        conn.execute(
            "INSERT INTO datasets (slug, name, created_at, last_written_at) VALUES (?, ?, ?, ?)",
            (slug, name, now, now),
        )

    @staticmethod
    def _touch_columns(conn: sqlite3.Connection, slug: str, batch: DatasetBatch, now: float) -> None:
        # A column's type is fixed by the first value ever written to it.
        first_types: dict[str, str] = {}
        for event in batch.events:
            for key, value in event.fields.items():
                if key not in first_types:
                    first_types[key] = column_type(value)
        conn.executemany(
            """INSERT INTO columns (dataset, key_name, id, type, created_at, updated_at, last_written)
               VALUES (?, ?, ?, ?, ?, ?, ?)
               ON CONFLICT (dataset, key_name) DO UPDATE SET last_written = excluded.last_written""",
            [(slug, key, new_id(), kind, now, now, now) for key, kind in first_types.items()],
        )

    # --- datasets and columns -------------------------------------------------------------------

    def list_datasets(self) -> list[DatasetInfo]:
        rows = self.query(
            """SELECT d.slug, d.name, d.created_at, d.last_written_at,
                      (SELECT COUNT(*) FROM columns c WHERE c.dataset = d.slug) AS columns_count
               FROM datasets d ORDER BY d.created_at, d.slug"""
        )
        return [
            DatasetInfo(r["slug"], r["name"], r["created_at"], r["last_written_at"], r["columns_count"]) for r in rows
        ]

    def get_dataset(self, slug: str) -> DatasetInfo | None:
        return next((d for d in self.list_datasets() if d.slug == slug), None)

    def list_columns(self, slug: str) -> list[ColumnInfo]:
        """Columns of one dataset, or of the whole environment for ``__all__`` (merged by name)."""
        sql = "SELECT * FROM columns" + ("" if slug == ALL_DATASETS else " WHERE dataset = ?")
        params: tuple[str, ...] = () if slug == ALL_DATASETS else (slug,)
        merged: dict[str, ColumnInfo] = {}
        for r in self.query(sql + " ORDER BY created_at, rowid", params):
            seen = merged.get(r["key_name"])
            last_written = max(r["last_written"], seen.last_written) if seen else r["last_written"]
            merged[r["key_name"]] = ColumnInfo(
                id=seen.id if seen else r["id"],
                key_name=r["key_name"],
                type=seen.type if seen else r["type"],
                hidden=bool(r["hidden"]),
                created_at=seen.created_at if seen else r["created_at"],
                updated_at=seen.updated_at if seen else r["updated_at"],
                last_written=last_written,
            )
        return list(merged.values())

    # --- events ---------------------------------------------------------------------------------

    def iter_events(
        self,
        slugs: Sequence[str],
        start: float,
        end: float,
        prefilters: Sequence[Prefilter] = (),
        columns: bool = True,
    ) -> Iterator[tuple[float, int, dict[str, Any]]]:
        """(timestamp, sample rate, columns) of events in ``slugs`` with start <= ts < end; without
        ``columns`` (a query that reads none, like a COUNT over time) every event's columns are left
        undecoded and given as an empty mapping."""
        if not slugs:
            return
        where = f"FROM events WHERE dataset IN ({sql_marks(slugs)}) AND ts >= ? AND ts < ?"
        params: list[Any] = [*slugs, start, end]
        for pre in prefilters:
            if not pre.reads_json:
                condition, condition_params = pre.sql()
                where += f" AND ({condition})"
                params += condition_params
        parsing = [pre.sql() for pre in prefilters if pre.reads_json]
        if parsing:
            # SQLite's JSON functions raise on what Python's json module wrote but SQLite cannot read (NaN,
            # Infinity): such events skip these prefilters and are left to the exact evaluation.
            where += " AND CASE WHEN json_valid(data) THEN " + " AND ".join(f"({c})" for c, _ in parsing)
            where += " ELSE 1 END"
            params += [p for _, ps in parsing for p in ps]
        cursor = self._conn().cursor()
        cursor.row_factory = None  # plain tuples: these loops run once per event
        if not columns:
            for ts, sample_rate in cursor.execute(f"SELECT ts, sample_rate {where}", params):
                yield ts, sample_rate, NO_COLUMNS
            return
        for ts, sample_rate, data in cursor.execute(f"SELECT ts, sample_rate, data {where}", params):
            yield ts, sample_rate, _decode_object(data)

    # --- queries and results --------------------------------------------------------------------

    def save_query(self, query_id: str, dataset: str, spec: dict[str, Any], now: float) -> None:
        self.execute(
            "INSERT INTO queries (id, dataset, spec, created_at) VALUES (?, ?, ?, ?)",
            (query_id, dataset, json.dumps(spec), now),
        )

    def get_query(self, query_id: str) -> StoredQuery | None:
        rows = self.query("SELECT id, dataset, spec FROM queries WHERE id = ?", (query_id,))
        return StoredQuery(rows[0]["id"], rows[0]["dataset"], json.loads(rows[0]["spec"])) if rows else None

    def save_query_result(self, result_id: str, dataset: str, query_id: str, now: float, body: dict[str, Any]) -> None:
        self.execute(
            "INSERT INTO query_results (id, dataset, query_id, created_at, body) VALUES (?, ?, ?, ?, ?)",
            (result_id, dataset, query_id, now, json.dumps(body)),
        )

    def get_query_result(self, result_id: str) -> tuple[str, dict[str, Any]] | None:
        """(dataset, stored body) of a query result."""
        found = self.get_query_result_json(result_id)
        return (found[0], json.loads(found[1])) if found else None

    def get_query_result_json(self, result_id: str) -> tuple[str, str] | None:
        """(dataset, stored body as JSON text): what GET answers, without decoding and encoding it again."""
        rows = self.query("SELECT dataset, body FROM query_results WHERE id = ?", (result_id,))
        return (rows[0]["dataset"], rows[0]["body"]) if rows else None


# JSONDecoder's scanner (set in its __init__, not in the type stubs): decodes one value at an index.
_SCAN_ONCE: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def _decode_object(text: str) -> Any:
    """``json.loads(text)`` for the JSON this store writes (no surrounding whitespace) without json.loads'
    per-call overhead (whitespace checks and wrappers: a quarter of the time); anything else goes to json.loads."""
    try:
        value, end = _SCAN_ONCE(text, 0)
    except StopIteration:
        return json.loads(text)
    return value if end == len(text) else json.loads(text)


def _stored_trace_id(data: str) -> tuple[str, str | None]:
    try:
        fields = _decode_object(data)
    except ValueError:
        return OTHER, None  # unreadable: SQL never judges the event, the evaluator does
    return trace_id_columns(fields) if isinstance(fields, dict) else (OTHER, None)
