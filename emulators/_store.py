"""A small durable SQLite store shared by every emulator.

One connection per thread (SQLite connections are not shareable across threads), WAL mode
so readers never block the writer, and one lock around writes so concurrent requests
cannot interleave a multi-statement insert.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any


class SqliteStore:
    """Base class: subclasses set ``SCHEMA`` (a string of CREATE statements)."""

    SCHEMA = ""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._write_lock = threading.RLock()
        with self._write_lock:
            conn = self._conn()
            conn.executescript(self.SCHEMA)
            conn.commit()

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, check_same_thread=False)
            conn.row_factory = sqlite3.Row
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            self._local.conn = conn
        return conn

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[sqlite3.Row]:
        return list(self._conn().execute(sql, params))

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one write statement; returns lastrowid."""
        with self._write_lock:
            conn = self._conn()
            cur = conn.execute(sql, params)
            conn.commit()
            return int(cur.lastrowid or 0)

    def execute_many(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        """Write many rows in one transaction: all or nothing."""
        with self._write_lock:
            conn = self._conn()
            with conn:
                conn.executemany(sql, rows)

    def transaction(self) -> _Transaction:
        """``with store.transaction() as conn:`` for multi-statement atomic writes."""
        return _Transaction(self)


class _Transaction:
    def __init__(self, store: SqliteStore) -> None:
        self._store = store

    def __enter__(self) -> sqlite3.Connection:
        self._store._write_lock.acquire()
        conn = self._store._conn()
        conn.execute("BEGIN")
        return conn

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        conn = self._store._conn()
        try:
            if exc_type is None:
                conn.commit()
            else:
                conn.rollback()
        finally:
            self._store._write_lock.release()
