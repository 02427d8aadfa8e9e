"""The budget ledger: every run's usage per backend account and calendar month (UTC), in SQLite.

Where: ``--budget-db PATH``, else ``$TRACEDRILL_DATA_DIR/budget.sqlite3``, else
``$XDG_DATA_HOME/tracedrill/budget.sqlite3``, else ``~/.local/share/tracedrill/budget.sqlite3``.

Safe with several runs writing at once: WAL mode, and every write is one ``BEGIN IMMEDIATE``
transaction (SQLite serialises them; a writer waits up to a minute for the lock). Each connection
is opened for one operation, so threads and processes never share one.

Schema (``PRAGMA user_version`` = 1)::

    runs   (run_id, backend) -> account, month, started_at, load_seconds, requests, users, profile,
                                source (measured | lower-bound | estimated), note, recorded_at
    usage  (run_id, backend, month, metric) -> amount, at

``usage.month``/``at`` say when the usage happened: the run's load for what the backend accepted, the
time of reading for the verifier's own cost (a later ``tracedrill verify`` adds its cost to its month).
Recording a run again replaces what was accepted and adds what was read.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Collection, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from verifiers.model import Backend

DB_NAME = "budget.sqlite3"
DATA_DIR_ENV = "TRACEDRILL_DATA_DIR"
LOCK_TIMEOUT_S = 60.0
SCHEMA_VERSION = 1

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS runs (
        run_id TEXT NOT NULL,
        backend TEXT NOT NULL,
        account TEXT NOT NULL,
        month TEXT NOT NULL,
        started_at REAL NOT NULL,
        load_seconds REAL NOT NULL,
        requests INTEGER NOT NULL,
        users INTEGER NOT NULL,
        profile TEXT NOT NULL,
        source TEXT NOT NULL,
        note TEXT NOT NULL DEFAULT '',
        recorded_at REAL NOT NULL,
        PRIMARY KEY (run_id, backend)
    )""",
    """CREATE TABLE IF NOT EXISTS usage (
        run_id TEXT NOT NULL,
        backend TEXT NOT NULL,
        month TEXT NOT NULL,
        metric TEXT NOT NULL,
        amount REAL NOT NULL,
        at REAL NOT NULL,
        PRIMARY KEY (run_id, backend, month, metric),
        FOREIGN KEY (run_id, backend) REFERENCES runs (run_id, backend)
    )""",
    "CREATE INDEX IF NOT EXISTS runs_by_account ON runs (backend, account, month)",
    "CREATE INDEX IF NOT EXISTS usage_by_month ON usage (backend, month)",
)


def default_db_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get(DATA_DIR_ENV):
        return Path(env[DATA_DIR_ENV]).expanduser() / DB_NAME
    if env.get("XDG_DATA_HOME"):
        return Path(env["XDG_DATA_HOME"]).expanduser() / "tracedrill" / DB_NAME
    return Path.home() / ".local" / "share" / "tracedrill" / DB_NAME


def month_of(epoch_s: float) -> str:
    """The calendar month (UTC) an instant falls in: ``"2026-12"``."""
    return datetime.fromtimestamp(epoch_s, UTC).strftime("%Y-%m")


@dataclass(frozen=True)
class RunEntry:
    """One run's row for one backend."""

    run_id: str
    backend: Backend
    account: str
    started_at: float  # load start, epoch s
    load_seconds: float
    requests: int  # answered requests: the ones the app emitted telemetry for
    users: int
    profile: str  # traffic profile (locustfile, expectations, switches): history is used only within one
    source: str
    note: str = ""
    usage: dict[str, float] = field(default_factory=dict)  # filled when read back: every month summed

    @property
    def month(self) -> str:
        return month_of(self.started_at)


class BudgetLedger:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.closing(self._connect()) as conn:
            conn.execute("PRAGMA journal_mode=WAL")  # persistent: readers never block the writer
        with self._write() as conn:
            if conn.execute("PRAGMA user_version").fetchone()[0] == 0:
                for statement in _SCHEMA:
                    conn.execute(statement)
                conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")

    def __repr__(self) -> str:
        return f"BudgetLedger({str(self.path)!r})"

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=LOCK_TIMEOUT_S, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {int(LOCK_TIMEOUT_S * 1000)}")
        return conn

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; IMMEDIATE takes the write lock up front, so read-modify-write never races."""
        with contextlib.closing(self._connect()) as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _read(self, sql: str, params: tuple[object, ...] = ()) -> list[sqlite3.Row]:
        with contextlib.closing(self._connect()) as conn:
            return list(conn.execute(sql, params))

    # ---- writing ----

    def record(
        self,
        entry: RunEntry,
        accepted: Mapping[str, float],
        verification: Mapping[str, float],
        read_at: float,
    ) -> None:
        """Record one backend's usage for a run, atomically. ``accepted`` replaces what an earlier record of the
        same run said; ``verification`` (the cost of the reads made at ``read_at``) is added."""
        with self._write() as conn:
            conn.execute(
                """INSERT INTO runs (run_id, backend, account, month, started_at, load_seconds, requests, users,
                                     profile, source, note, recorded_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (run_id, backend) DO UPDATE SET
                       source = excluded.source, note = excluded.note, recorded_at = excluded.recorded_at""",
                (
                    entry.run_id, entry.backend, entry.account, entry.month, entry.started_at, entry.load_seconds,
                    entry.requests, entry.users, entry.profile, entry.source, entry.note, read_at,
                ),
            )  # fmt: skip
            conn.executemany(
                """INSERT INTO usage (run_id, backend, month, metric, amount, at) VALUES (?, ?, ?, ?, ?, ?)
                   ON CONFLICT (run_id, backend, month, metric) DO UPDATE SET amount = excluded.amount""",
                [(entry.run_id, entry.backend, entry.month, m, a, entry.started_at) for m, a in accepted.items()],
            )
            conn.executemany(
                """INSERT INTO usage (run_id, backend, month, metric, amount, at) VALUES (?, ?, ?, ?, ?, ?)
                   ON CONFLICT (run_id, backend, month, metric) DO UPDATE SET amount = amount + excluded.amount""",
                [(entry.run_id, entry.backend, month_of(read_at), m, a, read_at) for m, a in verification.items()],
            )

    # ---- reading ----

    def month_to_date(self, backend: Backend, account: str, month: str) -> dict[str, float]:
        rows = self._read(
            """SELECT u.metric, SUM(u.amount) AS amount FROM usage u
               JOIN runs r ON r.run_id = u.run_id AND r.backend = u.backend
               WHERE u.backend = ? AND r.account = ? AND u.month = ? GROUP BY u.metric""",
            (backend, account, month),
        )
        return {row["metric"]: float(row["amount"]) for row in rows}

    def daily(self, backend: Backend, account: str, month: str) -> dict[int, dict[str, float]]:
        """Usage by day of the month (UTC): day -> metric -> amount."""
        rows = self._read(
            """SELECT CAST(strftime('%d', u.at, 'unixepoch') AS INTEGER) AS day, u.metric, SUM(u.amount) AS amount
               FROM usage u JOIN runs r ON r.run_id = u.run_id AND r.backend = u.backend
               WHERE u.backend = ? AND r.account = ? AND u.month = ? GROUP BY day, u.metric""",
            (backend, account, month),
        )
        days: dict[int, dict[str, float]] = {}
        for row in rows:
            days.setdefault(int(row["day"]), {})[row["metric"]] = float(row["amount"])
        return days

    def accounts(self, month: str) -> list[tuple[Backend, str]]:
        """Every (backend, account) with usage in ``month``."""
        rows = self._read(
            """SELECT DISTINCT r.backend, r.account FROM usage u
               JOIN runs r ON r.run_id = u.run_id AND r.backend = u.backend
               WHERE u.month = ? ORDER BY r.backend, r.account""",
            (month,),
        )
        return [(row["backend"], row["account"]) for row in rows]

    def runs(
        self,
        *,
        month: str | None = None,
        backend: Backend | None = None,
        account: str | None = None,
        profile: str | None = None,
        sources: Collection[str] = (),
        limit: int | None = None,
    ) -> list[RunEntry]:
        """Runs, newest first, each with its usage (all months summed)."""
        where, params = [], []
        for column, value in (("month", month), ("backend", backend), ("account", account), ("profile", profile)):
            if value is not None:
                where.append(f"r.{column} = ?")
                params.append(value)
        if sources:
            where.append(f"r.source IN ({', '.join('?' for _ in sources)})")
            params += list(sources)
        clause = f"WHERE {' AND '.join(where)}" if where else ""
        rows = self._read(
            f"SELECT r.* FROM runs r {clause} ORDER BY r.started_at DESC, r.run_id, r.backend"
            + (f" LIMIT {int(limit)}" if limit else ""),
            tuple(params),
        )
        usage: dict[tuple[str, str], dict[str, float]] = {}
        if rows:
            ids = sorted({row["run_id"] for row in rows})
            for u in self._read(
                f"""SELECT run_id, backend, metric, SUM(amount) AS amount FROM usage
                    WHERE run_id IN ({", ".join("?" for _ in ids)}) GROUP BY run_id, backend, metric""",
                tuple(ids),
            ):
                usage.setdefault((u["run_id"], u["backend"]), {})[u["metric"]] = float(u["amount"])
        return [
            RunEntry(
                run_id=row["run_id"],
                backend=row["backend"],
                account=row["account"],
                started_at=float(row["started_at"]),
                load_seconds=float(row["load_seconds"]),
                requests=int(row["requests"]),
                users=int(row["users"]),
                profile=row["profile"],
                source=row["source"],
                note=row["note"],
                usage=usage.get((row["run_id"], row["backend"]), {}),
            )
            for row in rows
        ]
