"""Durable storage for the Honeycomb emulator: datasets, columns, events, queries, query results.

Events keep their columns as JSON text next to an indexed (dataset, timestamp) pair, so a query
narrows by dataset and time in SQL before any JSON is decoded.
"""

from __future__ import annotations

import json
import re
import secrets
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from emulators._store import SqliteStore
from emulators.honeycomb.otlp import DatasetBatch

ALL_DATASETS = "__all__"
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


@dataclass(frozen=True)
class Prefilter:
    """``column IN values`` (string values only): a safe SQL narrowing before exact evaluation."""

    column: str
    values: tuple[str, ...]


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
        data TEXT NOT NULL
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
                    "INSERT INTO events (dataset, ts, sample_rate, data) VALUES (?, ?, ?, ?)",
                    [(slug, e.timestamp, e.sample_rate, json.dumps(e.fields)) for e in batch.events],
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
        self, slugs: Sequence[str], start: float, end: float, prefilters: Sequence[Prefilter] = ()
    ) -> Iterator[tuple[float, int, dict[str, Any]]]:
        """(timestamp, sample rate, columns) of events in ``slugs`` with start <= ts < end."""
        if not slugs:
            return
        sql = [f"SELECT ts, sample_rate, data FROM events WHERE dataset IN ({_marks(slugs)}) AND ts >= ? AND ts < ?"]
        params: list[Any] = [*slugs, start, end]
        for pre in prefilters:
            sql.append(f"AND json_extract(data, ?) IN ({_marks(pre.values)})")
            params += [_json_path(pre.column), *pre.values]
        for ts, sample_rate, data in self._conn().execute(" ".join(sql), params):
            yield ts, sample_rate, json.loads(data)

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
        rows = self.query("SELECT dataset, body FROM query_results WHERE id = ?", (result_id,))
        return (rows[0]["dataset"], json.loads(rows[0]["body"])) if rows else None


def _marks(values: Sequence[Any]) -> str:
    return ", ".join("?" for _ in values)


def _json_path(column: str) -> str:
    return '$."' + column.replace("\\", "\\\\").replace('"', '\\"') + '"'
