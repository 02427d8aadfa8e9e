"""Load-plan validation, the ids the generator picks, and the sent-ledger."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from loadtests.ids import new_request_ids, xray_trace_id
from loadtests.ledger import LedgerWriter, ledger_path
from tracedrill.loadgen import LoadPlan, parse_timespan
from verifiers.model import SentRequest, read_ledger


@pytest.mark.parametrize(("text", "seconds"), [("20s", 20), ("45", 45), ("1m30s", 90), ("2h", 7200), ("1h1m1s", 3661)])
def test_timespans(text: str, seconds: int) -> None:
    assert parse_timespan(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "10x", "0s", "-5s"])
def test_bad_timespans_name_the_value(text: str) -> None:
    with pytest.raises(ValueError, match="run time"):
        parse_timespan(text)


def test_plan_validation_names_the_flag(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--users"):
        LoadPlan(users=0).validate()
    with pytest.raises(ValueError, match="--spawn-rate"):
        LoadPlan(spawn_rate=0).validate()
    with pytest.raises(ValueError, match="--locustfile"):
        LoadPlan(locustfile=tmp_path / "missing.py").validate()


def test_ids_are_w3c_and_xray_compatible() -> None:
    ids = new_request_ids(now=0x5F5E1000)
    assert re.fullmatch(r"[0-9a-f]{32}", ids.trace_id) and ids.trace_id.startswith("5f5e1000")
    assert re.fullmatch(r"[0-9a-f]{16}", ids.parent_span_id) and ids.parent_span_id != "0" * 16
    headers = ids.headers()
    assert headers["traceparent"] == f"00-{ids.trace_id}-{ids.parent_span_id}-01"
    assert headers["X-Amzn-Trace-Id"] == f"Root=1-5f5e1000-{ids.trace_id[8:]}"
    assert "Sampled" not in headers["X-Amzn-Trace-Id"]  # the app's sampler decides (DESIGN.md decision 2)
    assert xray_trace_id(ids.trace_id) == ids.xray_trace_id
    assert len({new_request_ids().request_id for _ in range(1000)}) == 1000


def test_ledger_lines_are_on_disk_before_close_and_read_back_across_workers(tmp_path: Path) -> None:
    def sent(rid: str, worker: str) -> SentRequest:
        return SentRequest(rid, "home", "GET", "u", "/p", 1.0, 2.0, 200, "a" * 32, "b" * 16, "1-x-y", worker)

    first = LedgerWriter(ledger_path(tmp_path, "host/1:a"))
    first.record(sent("r1", "w1"))
    assert first.path.read_text().count("\n") == 1  # written while the test runs, not held back
    with LedgerWriter(ledger_path(tmp_path, "w2")) as second:
        second.record(sent("r2", "w2"))
    first.close()
    assert first.path.name == "sent-host_1_a.jsonl"
    assert sorted(s.request_id for s in read_ledger(tmp_path)) == ["r1", "r2"]
