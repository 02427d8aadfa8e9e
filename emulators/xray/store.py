"""Durable storage for the X-Ray emulator: segment documents, per-trace summaries, sampling reports.

Every accepted document is kept as sent (one row per trace, kind and id). A complete document
replaces an earlier one with the same id; an in-progress one replaces only an in-progress one,
so a late "in progress" fragment never hides a finished segment. Whenever a trace gains a
document its summary and filter facts are recomputed in the same transaction.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from emulators._store import SqliteStore
from emulators.xray.segments import SegmentDocument
from emulators.xray.summary import TraceRecord

# GetTraceSummaries TimeRangeType -> the column it orders and filters by.
RANGE_COLUMNS = {"TraceId": "id_time", "Event": "start_time", "Service": "end_time"}

Rebuild = Callable[[str, list[SegmentDocument]], TraceRecord]


@dataclass(frozen=True)
class ScannedTrace:
    trace_id: str
    key: float
    summary: str
    facts: str


class XRayStore(SqliteStore):
    SCHEMA = """
    CREATE TABLE IF NOT EXISTS documents (
        trace_id TEXT NOT NULL,
        kind TEXT NOT NULL,
        doc_id TEXT NOT NULL,
        parent_id TEXT,
        in_progress INTEGER NOT NULL,
        body TEXT NOT NULL,
        size INTEGER NOT NULL,
        received_at REAL NOT NULL,
        PRIMARY KEY (trace_id, kind, doc_id)
    );
    CREATE TABLE IF NOT EXISTS traces (
        trace_id TEXT PRIMARY KEY,
        id_time REAL NOT NULL,
        start_time REAL,
        end_time REAL,
        updated_at REAL NOT NULL,
        summary TEXT NOT NULL,
        facts TEXT NOT NULL
    );
    CREATE INDEX IF NOT EXISTS traces_by_id_time ON traces (id_time, trace_id);
    CREATE INDEX IF NOT EXISTS traces_by_start_time ON traces (start_time, trace_id);
    CREATE INDEX IF NOT EXISTS traces_by_end_time ON traces (end_time, trace_id);
    CREATE TABLE IF NOT EXISTS sampling_statistics (
        rule_name TEXT NOT NULL,
        client_id TEXT NOT NULL,
        timestamp REAL NOT NULL,
        request_count INTEGER NOT NULL,
        sampled_count INTEGER NOT NULL,
        borrow_count INTEGER NOT NULL,
        received_at REAL NOT NULL
    );
    """

    def put_documents(self, docs: Sequence[SegmentDocument], rebuild: Rebuild, now: float) -> None:
        """Store ``docs`` and refresh the summary of every trace they touch, atomically."""
        if not docs:
            return
        with self.transaction() as conn:
            conn.executemany(
                """
                INSERT INTO documents (trace_id, kind, doc_id, parent_id, in_progress, body, size, received_at)
                VALUES (?, ?, ?, ?, ?, ?, ?, ?)
                ON CONFLICT (trace_id, kind, doc_id) DO UPDATE SET
                    parent_id = excluded.parent_id, in_progress = excluded.in_progress, body = excluded.body,
                    size = excluded.size, received_at = excluded.received_at
                WHERE excluded.in_progress = 0 OR documents.in_progress = 1
                """,
                [
                    (d.trace_id, d.kind, d.id, d.parent_id, int(d.in_progress), json.dumps(d.body), d.raw_size, now)
                    for d in docs
                ],
            )
            for trace_id in dict.fromkeys(d.trace_id for d in docs):
                record = rebuild(trace_id, _documents(conn, trace_id))
                conn.execute(
                    """
                    INSERT INTO traces (trace_id, id_time, start_time, end_time, updated_at, summary, facts)
                    VALUES (?, ?, ?, ?, ?, ?, ?)
                    ON CONFLICT (trace_id) DO UPDATE SET
                        start_time = excluded.start_time, end_time = excluded.end_time,
                        updated_at = excluded.updated_at, summary = excluded.summary, facts = excluded.facts
                    """,
                    (
                        trace_id,
                        record.id_time,
                        record.start_time,
                        record.end_time,
                        now,
                        json.dumps(record.summary),
                        json.dumps(record.facts),
                    ),
                )

    def documents(self, trace_id: str) -> list[SegmentDocument]:
        return _documents(self._conn(), trace_id)

    def documents_of(self, trace_ids: Sequence[str]) -> dict[str, list[SegmentDocument]]:
        """``documents`` of several traces in one query (a trace without any is left out)."""
        marks = ", ".join("?" for _ in trace_ids)
        found: dict[str, list[SegmentDocument]] = {}
        for row in self.query(
            "SELECT trace_id, kind, doc_id, parent_id, in_progress, body, size FROM documents"
            f" WHERE trace_id IN ({marks}) ORDER BY rowid",
            list(trace_ids),
        ):
            found.setdefault(row["trace_id"], []).append(_document(row))
        return found

    def summary(self, trace_id: str) -> dict[str, Any] | None:
        return self.summaries_of([trace_id]).get(trace_id)

    def summaries_of(self, trace_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        """Each trace's summary, in one query (a trace not stored is left out)."""
        marks = ", ".join("?" for _ in trace_ids)
        rows = self.query(f"SELECT trace_id, summary FROM traces WHERE trace_id IN ({marks})", list(trace_ids))
        return {row["trace_id"]: json.loads(row["summary"]) for row in rows}

    def scan(
        self, range_type: str, start: float, end: float, after: tuple[float, str] | None, limit: int
    ) -> list[ScannedTrace]:
        """Traces whose ``range_type`` time lies in [start, end], newest first, strictly after ``after``."""
        column = RANGE_COLUMNS[range_type]
        sql = f"SELECT trace_id, {column} AS k, summary, facts FROM traces WHERE {column} BETWEEN ? AND ?"
        params: list[Any] = [start, end]
        if after is not None:
            sql += f" AND ({column} < ? OR ({column} = ? AND trace_id < ?))"
            params += [after[0], after[0], after[1]]
        sql += f" ORDER BY {column} DESC, trace_id DESC LIMIT ?"
        params.append(limit)
        return [ScannedTrace(r["trace_id"], float(r["k"]), r["summary"], r["facts"]) for r in self.query(sql, params)]

    def add_sampling_statistics(self, rows: Iterable[tuple[str, str, float, int, int, int]], now: float) -> None:
        self.execute_many(
            "INSERT INTO sampling_statistics (rule_name, client_id, timestamp, request_count, sampled_count,"
            " borrow_count, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
            [(*row, now) for row in rows],
        )

    def counts(self) -> dict[str, int]:
        return {
            table: int(self.query(f"SELECT COUNT(*) AS n FROM {table}")[0]["n"])
            for table in ("documents", "traces", "sampling_statistics")
        }


def _documents(conn: sqlite3.Connection, trace_id: str) -> list[SegmentDocument]:
    rows = conn.execute(
        "SELECT trace_id, kind, doc_id, parent_id, in_progress, body, size FROM documents"
        " WHERE trace_id = ? ORDER BY rowid",
        (trace_id,),
    )
    return [_document(row) for row in rows]


def _document(row: sqlite3.Row) -> SegmentDocument:
    return SegmentDocument(
        trace_id=row["trace_id"],
        id=row["doc_id"],
        kind=row["kind"],
        parent_id=row["parent_id"],
        in_progress=bool(row["in_progress"]),
        body=json.loads(row["body"]),
        raw_size=row["size"],
    )
