"""Durable CloudWatch Logs data: log groups (per region), log streams and every accepted event.

Events are ordered by (timestamp, id); ``id`` only grows (AUTOINCREMENT), so it also orders events by
ingestion and is never reused after a delete, which keeps pagination positions stable.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

from emulators._store import SqliteStore
from emulators.cloudwatch_logs.tokens import Boundary


@dataclass(frozen=True)
class GroupRow:
    id: int
    region: str
    name: str
    creation_time: int
    retention_days: int | None
    log_group_class: str
    kms_key_id: str | None
    deletion_protection: bool
    stored_bytes: int


@dataclass(frozen=True)
class StreamRow:
    id: int
    group_id: int
    name: str
    creation_time: int
    first_event_ts: int | None
    last_event_ts: int | None
    last_ingestion: int | None
    upload_seq: int


class EventRow(NamedTuple):
    """One stored event (a tuple: a read makes one per event it scans, so it must be cheap to build)."""

    id: int
    stream_name: str
    timestamp: int
    ingestion_time: int
    message: str

    @property
    def key(self) -> tuple[int, int]:
        return (self.timestamp, self.id)


@dataclass(frozen=True)
class NewGroup:
    region: str
    name: str
    creation_time: int
    log_group_class: str = "STANDARD"
    kms_key_id: str | None = None
    deletion_protection: bool = False
    tags: dict[str, str] | None = None


@dataclass(frozen=True)
class EventScope:
    """Which events of a group to read: one stream, stream names or a name prefix, and a timestamp range."""

    group_id: int
    start: int = 0
    end: int = 2**63 - 1  # inclusive
    stream_id: int | None = None
    stream_names: Sequence[str] | None = None
    stream_prefix: str | None = None


class LogsStore(SqliteStore):
    SCHEMA = """
    CREATE TABLE IF NOT EXISTS log_groups (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        region TEXT NOT NULL,
        name TEXT NOT NULL,
        creation_time INTEGER NOT NULL,
        retention_days INTEGER,
        log_group_class TEXT NOT NULL,
        kms_key_id TEXT,
        deletion_protection INTEGER NOT NULL DEFAULT 0,
        tags TEXT NOT NULL DEFAULT '{}',
        stored_bytes INTEGER NOT NULL DEFAULT 0,
        UNIQUE (region, name)
    );
    CREATE TABLE IF NOT EXISTS log_streams (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        group_id INTEGER NOT NULL,
        name TEXT NOT NULL,
        creation_time INTEGER NOT NULL,
        first_event_ts INTEGER,
        last_event_ts INTEGER,
        last_ingestion INTEGER,
        upload_seq INTEGER NOT NULL DEFAULT 0,
        UNIQUE (group_id, name)
    );
    CREATE TABLE IF NOT EXISTS log_events (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        group_id INTEGER NOT NULL,
        stream_id INTEGER NOT NULL,
        timestamp INTEGER NOT NULL,
        ingestion_time INTEGER NOT NULL,
        message TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS log_events_by_group ON log_events (group_id, timestamp, id);
    CREATE INDEX IF NOT EXISTS log_events_by_stream ON log_events (stream_id, timestamp, id);
    """

    # -- log groups ------------------------------------------------------------------------------

    def create_group(self, group: NewGroup) -> bool:
        """False when a group of that name already exists in the region."""
        with self.transaction() as conn:
            cur = conn.execute(
                "INSERT INTO log_groups (region, name, creation_time, log_group_class, kms_key_id,"
                " deletion_protection, tags) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (region, name) DO NOTHING",
                (
                    group.region,
                    group.name,
                    group.creation_time,
                    group.log_group_class,
                    group.kms_key_id,
                    int(group.deletion_protection),
                    json.dumps(group.tags or {}),
                ),
            )
            return cur.rowcount == 1

    def get_group(self, region: str, name: str) -> GroupRow | None:
        rows = self.query("SELECT * FROM log_groups WHERE region = ? AND name = ?", (region, name))
        return _group(rows[0]) if rows else None

    def list_groups(self, region: str) -> list[GroupRow]:
        """Every group of the region in ASCII order of name (SQLite's binary collation)."""
        return [_group(r) for r in self.query("SELECT * FROM log_groups WHERE region = ? ORDER BY name", (region,))]

    def delete_group(self, group_id: int) -> None:
        with self.transaction() as conn:
            conn.execute("DELETE FROM log_events WHERE group_id = ?", (group_id,))
            conn.execute("DELETE FROM log_streams WHERE group_id = ?", (group_id,))
            conn.execute("DELETE FROM log_groups WHERE id = ?", (group_id,))

    def set_retention(self, group_id: int, days: int | None) -> None:
        self.execute("UPDATE log_groups SET retention_days = ? WHERE id = ?", (days, group_id))

    # -- log streams -----------------------------------------------------------------------------

    def create_stream(self, group_id: int, name: str, creation_time: int) -> bool | None:
        """True if created, False if it already exists, None if the group is gone."""
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM log_groups WHERE id = ?", (group_id,)).fetchone() is None:
                return None
            cur = conn.execute(
                "INSERT INTO log_streams (group_id, name, creation_time) VALUES (?, ?, ?)"
                " ON CONFLICT (group_id, name) DO NOTHING",
                (group_id, name, creation_time),
            )
            return cur.rowcount == 1

    def get_stream(self, group_id: int, name: str) -> StreamRow | None:
        rows = self.query("SELECT * FROM log_streams WHERE group_id = ? AND name = ?", (group_id, name))
        return _stream(rows[0]) if rows else None

    def list_streams(self, group_id: int, by_last_event: bool, descending: bool) -> list[StreamRow]:
        columns = ["COALESCE(last_event_ts, 0)", "name"] if by_last_event else ["name"]
        order = ", ".join(f"{column} DESC" if descending else column for column in columns)
        rows = self.query(f"SELECT * FROM log_streams WHERE group_id = ? ORDER BY {order}", (group_id,))
        return [_stream(r) for r in rows]

    # -- events ----------------------------------------------------------------------------------

    def append_events(
        self, stream: StreamRow, events: Sequence[tuple[int, str]], ingestion_time: int, stored_bytes: int
    ) -> int | None:
        """Stores ``(timestamp, message)`` events atomically; returns the stream's new upload sequence,
        or None if the stream was deleted meanwhile."""
        with self.transaction() as conn:
            if conn.execute("SELECT 1 FROM log_streams WHERE id = ?", (stream.id,)).fetchone() is None:
                return None
            conn.executemany(
                "INSERT INTO log_events (group_id, stream_id, timestamp, ingestion_time, message)"
                " VALUES (?, ?, ?, ?, ?)",
                [(stream.group_id, stream.id, ts, ingestion_time, message) for ts, message in events],
            )
            if events:
                low, high = min(ts for ts, _ in events), max(ts for ts, _ in events)
                conn.execute(
                    "UPDATE log_streams SET first_event_ts = MIN(COALESCE(first_event_ts, ?), ?),"
                    " last_event_ts = MAX(COALESCE(last_event_ts, ?), ?), last_ingestion = ? WHERE id = ?",
                    (low, low, high, high, ingestion_time, stream.id),
                )
                conn.execute(
                    "UPDATE log_groups SET stored_bytes = stored_bytes + ? WHERE id = ?",
                    (stored_bytes, stream.group_id),
                )
            conn.execute("UPDATE log_streams SET upload_seq = upload_seq + 1 WHERE id = ?", (stream.id,))
            row = conn.execute("SELECT upload_seq FROM log_streams WHERE id = ?", (stream.id,)).fetchone()
            return int(row[0])

    def iter_events(self, scope: EventScope, boundary: Boundary) -> Iterator[EventRow]:
        """Events in scope on the far side of ``boundary``, nearest first, read lazily."""
        where = ["e.group_id = ?", "e.timestamp >= ?", "e.timestamp <= ?"]
        params: list[Any] = [scope.group_id, scope.start, scope.end]
        if scope.stream_id is not None:
            where.append("e.stream_id = ?")
            params.append(scope.stream_id)
        if scope.stream_names is not None:
            where.append(f"s.name IN ({', '.join('?' * len(scope.stream_names))})")
            params.extend(scope.stream_names)
        if scope.stream_prefix is not None:
            where.append("substr(s.name, 1, ?) = ?")
            params.extend([len(scope.stream_prefix), scope.stream_prefix])
        where.append("(e.timestamp, e.id) >= (?, ?)" if boundary.forward else "(e.timestamp, e.id) < (?, ?)")
        params.extend(boundary.key)
        direction = "" if boundary.forward else " DESC"
        sql = (
            "SELECT e.id, s.name AS stream_name, e.timestamp, e.ingestion_time, e.message"
            " FROM log_events e JOIN log_streams s ON s.id = e.stream_id"
            f" WHERE {' AND '.join(where)} ORDER BY e.timestamp{direction}, e.id{direction}"
        )
        cursor = self._conn().cursor()
        cursor.row_factory = None  # the columns come in EventRow's order
        try:
            yield from map(EventRow._make, cursor.execute(sql, params))
        finally:
            cursor.close()  # a half-read SELECT would otherwise keep this thread's read snapshot open


def _group(row: sqlite3.Row) -> GroupRow:
    return GroupRow(
        id=row["id"],
        region=row["region"],
        name=row["name"],
        creation_time=row["creation_time"],
        retention_days=row["retention_days"],
        log_group_class=row["log_group_class"],
        kms_key_id=row["kms_key_id"],
        deletion_protection=bool(row["deletion_protection"]),
        stored_bytes=row["stored_bytes"],
    )


def _stream(row: sqlite3.Row) -> StreamRow:
    return StreamRow(
        id=row["id"],
        group_id=row["group_id"],
        name=row["name"],
        creation_time=row["creation_time"],
        first_event_ts=row["first_event_ts"],
        last_event_ts=row["last_event_ts"],
        last_ingestion=row["last_ingestion"],
        upload_seq=row["upload_seq"],
    )
