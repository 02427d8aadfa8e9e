"""The SQLite ledger: per account and month, re-recording replaces what was accepted and adds what was read,
and concurrent writers (threads and processes) lose nothing."""

from __future__ import annotations

import multiprocessing
import threading
from datetime import UTC, datetime
from pathlib import Path

from verifiers.budget.ledger import BudgetLedger, RunEntry, default_db_path, month_of
from verifiers.model import Backend

DEC = datetime(2026, 12, 3, 17, 0, tzinfo=UTC).timestamp()
NOV = datetime(2026, 11, 30, 23, 59, tzinfo=UTC).timestamp()


def entry(run_id: str, account: str = "local", started_at: float = DEC, backend: Backend = "xray") -> RunEntry:
    return RunEntry(run_id, backend, account, started_at, 10.0, 100, 5, "profile-a", "measured")


def test_the_data_directory_follows_the_environment(tmp_path: Path):
    assert default_db_path({"TRACEDRILL_DATA_DIR": str(tmp_path)}) == tmp_path / "budget.sqlite3"
    assert default_db_path({"XDG_DATA_HOME": str(tmp_path)}) == tmp_path / "tracedrill" / "budget.sqlite3"
    assert default_db_path({}) == Path.home() / ".local" / "share" / "tracedrill" / "budget.sqlite3"
    assert month_of(DEC) == "2026-12" and month_of(NOV) == "2026-11"


def test_usage_is_kept_per_account_and_calendar_month(tmp_path: Path):
    ledger = BudgetLedger(tmp_path / "b.sqlite3")
    ledger.record(entry("r1"), {"traces_recorded": 10}, {"traces_scanned": 30}, DEC)
    ledger.record(entry("r2"), {"traces_recorded": 5}, {"traces_scanned": 15}, DEC)
    ledger.record(entry("r3", account="aws:123456789012"), {"traces_recorded": 7}, {}, DEC)
    ledger.record(entry("r4", started_at=NOV), {"traces_recorded": 100}, {}, NOV)
    assert ledger.month_to_date("xray", "local", "2026-12") == {"traces_recorded": 15, "traces_scanned": 45}
    assert ledger.month_to_date("xray", "aws:123456789012", "2026-12") == {"traces_recorded": 7}
    assert ledger.month_to_date("xray", "local", "2026-11") == {"traces_recorded": 100}
    assert ledger.month_to_date("honeycomb", "local", "2026-12") == {}
    assert ledger.accounts("2026-12") == [("xray", "aws:123456789012"), ("xray", "local")]
    assert ledger.daily("xray", "local", "2026-12") == {3: {"traces_recorded": 15, "traces_scanned": 45}}
    assert [r.run_id for r in ledger.runs(month="2026-12", account="local")] == ["r1", "r2"]


def test_recording_a_run_again_replaces_what_was_accepted_and_adds_what_reading_it_cost(tmp_path: Path):
    ledger = BudgetLedger(tmp_path / "b.sqlite3")
    ledger.record(entry("r1", started_at=NOV), {"traces_recorded": 10}, {"traces_scanned": 30}, NOV)
    # `tracedrill verify` in December: one late trace more, and its own scans, which happen in December.
    ledger.record(entry("r1", started_at=NOV), {"traces_recorded": 11}, {"traces_scanned": 33}, DEC)
    assert ledger.month_to_date("xray", "local", "2026-11") == {"traces_recorded": 11, "traces_scanned": 30}
    assert ledger.month_to_date("xray", "local", "2026-12") == {"traces_scanned": 33}
    (run,) = ledger.runs()
    assert run.usage == {"traces_recorded": 11, "traces_scanned": 63}


RUNS_PER_WRITER = 40


def write_runs(path: str, writer: str) -> None:
    ledger = BudgetLedger(Path(path))  # each writer opens the (maybe not yet existing) file itself
    for n in range(RUNS_PER_WRITER):
        ledger.record(entry(f"{writer}-{n}"), {"traces_recorded": 1}, {"traces_scanned": 2}, DEC)
        # The same run recorded again: accepted replaced (stays 1), reads added (2 more).
        ledger.record(entry(f"{writer}-{n}"), {"traces_recorded": 1}, {"traces_scanned": 2}, DEC)


def _totals(path: Path, writers: int) -> None:
    ledger = BudgetLedger(path)
    assert ledger.month_to_date("xray", "local", "2026-12") == {
        "traces_recorded": writers * RUNS_PER_WRITER,
        "traces_scanned": writers * RUNS_PER_WRITER * 4,
    }
    assert len(ledger.runs()) == writers * RUNS_PER_WRITER


def test_concurrent_threads_lose_no_counts(tmp_path: Path):
    path = tmp_path / "threads.sqlite3"
    threads = [threading.Thread(target=write_runs, args=(str(path), f"t{i}")) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    _totals(path, 4)


def test_concurrent_processes_lose_no_counts(tmp_path: Path):
    path = tmp_path / "processes.sqlite3"
    context = multiprocessing.get_context("spawn")  # no fork of the test process
    processes = [context.Process(target=write_runs, args=(str(path), f"p{i}")) for i in range(2)]
    for p in processes:
        p.start()
    for p in processes:
        p.join(60)
    assert [p.exitcode for p in processes] == [0, 0]
    _totals(path, 2)
