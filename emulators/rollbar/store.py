"""Durable storage of Rollbar items (groups) and their occurrences (instances)."""

from __future__ import annotations

import json
import sqlite3
import time
from dataclasses import dataclass
from typing import Any

from emulators._store import SqliteStore
from emulators.rollbar.payload import NewOccurrence

# Real item and occurrence ids are large and never equal an item's counter; starting far apart
# makes a client that mixes up id and counter fail here as it would against the real service.
ITEM_ID_BASE = 270_000_000
OCCURRENCE_ID_BASE = 3_200_000_000


@dataclass(frozen=True)
class ItemRecord:
    id: int
    counter: int
    environment: str
    fingerprint: str
    title: str
    level: str
    status: str
    framework: str | None
    platform: str | None
    language: str | None
    total_occurrences: int
    first_occurrence_id: int
    first_occurrence_timestamp: int
    last_occurrence_id: int
    last_occurrence_timestamp: int


@dataclass(frozen=True)
class InstanceRecord:
    id: int
    item_id: int
    uuid: str
    timestamp: int
    data: dict[str, Any]


@dataclass(frozen=True)
class IngestResult:
    uuid: str
    stored: bool  # False when the uuid was already stored: Rollbar discards the second payload
    item_id: int
    occurrence_id: int


@dataclass(frozen=True)
class ItemFilter:
    """Empty tuples mean "any"."""

    statuses: tuple[str, ...] = ()
    levels: tuple[str, ...] = ()
    environments: tuple[str, ...] = ()
    frameworks: tuple[str, ...] = ()
    ids: tuple[int, ...] = ()


_ITEM_COLUMNS = ", ".join(ItemRecord.__dataclass_fields__)


def _item(row: sqlite3.Row) -> ItemRecord:
    return ItemRecord(**{key: row[key] for key in row.keys()})


def _instance(row: sqlite3.Row) -> InstanceRecord:
    return InstanceRecord(
        id=row["id"], item_id=row["item_id"], uuid=row["uuid"], timestamp=row["timestamp"], data=json.loads(row["data"])
    )


class RollbarStore(SqliteStore):
    """One project's items and occurrences; an item is unique per (environment, fingerprint)."""

    SCHEMA = """
    CREATE TABLE IF NOT EXISTS items (
        id INTEGER PRIMARY KEY,
        counter INTEGER NOT NULL UNIQUE,
        environment TEXT NOT NULL,
        fingerprint TEXT NOT NULL,
        title TEXT NOT NULL,
        level TEXT NOT NULL,
        status TEXT NOT NULL DEFAULT 'active',
        framework TEXT,
        platform TEXT,
        language TEXT,
        total_occurrences INTEGER NOT NULL,
        first_occurrence_id INTEGER NOT NULL,
        first_occurrence_timestamp INTEGER NOT NULL,
        last_occurrence_id INTEGER NOT NULL,
        last_occurrence_timestamp INTEGER NOT NULL,
        UNIQUE (environment, fingerprint)
    );
    CREATE TABLE IF NOT EXISTS occurrences (
        id INTEGER PRIMARY KEY,
        item_id INTEGER NOT NULL REFERENCES items (id),
        uuid TEXT NOT NULL UNIQUE,
        timestamp INTEGER NOT NULL,
        received_at REAL NOT NULL,
        data TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS occurrences_by_item ON occurrences (item_id, id);
    CREATE INDEX IF NOT EXISTS items_by_last_seen ON items (last_occurrence_timestamp, id);
    """

    def ingest(self, occurrence: NewOccurrence) -> IngestResult:
        """Store ``occurrence`` and fold it into its item (created on first sight), atomically."""
        with self.transaction() as conn:
            dup = conn.execute("SELECT id, item_id FROM occurrences WHERE uuid = ?", (occurrence.uuid,)).fetchone()
            if dup is not None:
                return IngestResult(occurrence.uuid, False, dup["item_id"], dup["id"])
            occurrence_id = self._next_id(conn, "occurrences", OCCURRENCE_ID_BASE)
            item = conn.execute(
                "SELECT id FROM items WHERE environment = ? AND fingerprint = ?",
                (occurrence.environment, occurrence.fingerprint),
            ).fetchone()
            if item is None:
                item_id = self._next_id(conn, "items", ITEM_ID_BASE)
                counter = conn.execute("SELECT COALESCE(MAX(counter), 0) + 1 FROM items").fetchone()[0]
                # The first occurrence decides title and level (Rollbar's documented behaviour).
                conn.execute(
                    "INSERT INTO items (id, counter, environment, fingerprint, title, level, framework, platform,"
                    " language, total_occurrences, first_occurrence_id, first_occurrence_timestamp,"
                    " last_occurrence_id, last_occurrence_timestamp) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?)",
                    (
                        item_id,
                        counter,
                        occurrence.environment,
                        occurrence.fingerprint,
                        occurrence.title,
                        occurrence.level,
                        occurrence.framework,
                        occurrence.platform,
                        occurrence.language,
                        occurrence_id,
                        occurrence.timestamp,
                        occurrence_id,
                        occurrence.timestamp,
                    ),
                )
            else:
                item_id = item["id"]
                conn.execute(
                    "UPDATE items SET total_occurrences = total_occurrences + 1, last_occurrence_id = ?,"
                    " last_occurrence_timestamp = ? WHERE id = ?",
                    (occurrence_id, occurrence.timestamp, item_id),
                )
            conn.execute(
                "INSERT INTO occurrences (id, item_id, uuid, timestamp, received_at, data) VALUES (?, ?, ?, ?, ?, ?)",
                (
                    occurrence_id,
                    item_id,
                    occurrence.uuid,
                    occurrence.timestamp,
                    time.time(),
                    json.dumps(occurrence.data),
                ),
            )
        return IngestResult(occurrence.uuid, True, item_id, occurrence_id)

    @staticmethod
    def _next_id(conn: sqlite3.Connection, table: str, base: int) -> int:
        return int(conn.execute(f"SELECT COALESCE(MAX(id), ?) + 1 FROM {table}", (base,)).fetchone()[0])

    def get_item(self, item_id: int) -> ItemRecord | None:
        rows = self.query(f"SELECT {_ITEM_COLUMNS} FROM items WHERE id = ?", (item_id,))
        return _item(rows[0]) if rows else None

    def get_item_by_counter(self, counter: int) -> ItemRecord | None:
        rows = self.query(f"SELECT {_ITEM_COLUMNS} FROM items WHERE counter = ?", (counter,))
        return _item(rows[0]) if rows else None

    def list_items(self, where: ItemFilter, offset: int, limit: int) -> tuple[list[ItemRecord], int]:
        """Matching items, most recently seen first, and how many match in total."""
        clauses: list[str] = []
        params: list[Any] = []
        for column, values in (
            ("status", where.statuses),
            ("level", where.levels),
            ("environment", where.environments),
            ("framework", where.frameworks),
            ("id", where.ids),
        ):
            if values:
                clauses.append(f"{column} IN ({', '.join('?' * len(values))})")
                params.extend(values)
        condition = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        total = int(self.query(f"SELECT COUNT(*) FROM items {condition}", params)[0][0])
        rows = self.query(
            f"SELECT {_ITEM_COLUMNS} FROM items {condition}"
            " ORDER BY last_occurrence_timestamp DESC, id DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return [_item(row) for row in rows], total

    def list_instances(
        self, item_id: int | None, offset: int, limit: int, before_id: int | None = None
    ) -> list[InstanceRecord]:
        """Occurrences newest first (descending id), optionally of one item and below a cursor id."""
        clauses: list[str] = []
        params: list[Any] = []
        if item_id is not None:
            clauses.append("item_id = ?")
            params.append(item_id)
        if before_id is not None:
            clauses.append("id < ?")
            params.append(before_id)
        condition = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        rows = self.query(
            f"SELECT id, item_id, uuid, timestamp, data FROM occurrences {condition} ORDER BY id DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return [_instance(row) for row in rows]

    def get_instance(self, instance_id: int) -> InstanceRecord | None:
        rows = self.query("SELECT id, item_id, uuid, timestamp, data FROM occurrences WHERE id = ?", (instance_id,))
        return _instance(rows[0]) if rows else None

    def counts(self) -> tuple[int, int]:
        """(items, occurrences) stored."""
        row = self.query("SELECT (SELECT COUNT(*) FROM items), (SELECT COUNT(*) FROM occurrences)")[0]
        return int(row[0]), int(row[1])
