"""Load-plan validation, the ids the generator picks, and the sent-ledger."""

from __future__ import annotations

import dataclasses
import json
import os
import random
import re
import time
from pathlib import Path
from typing import Any

import pytest

from loadtests.ids import new_request_ids, xray_trace_id
from loadtests.ledger import TEMPLATE_CURRENT, LedgerWriter, ledger_line, ledger_path
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
        return SentRequest(rid, "home", "GET", "u", "/p", 1.76e9, 1.76e9 + 1, 200, "a" * 32, "b" * 16, "1-x-y", worker)

    first = LedgerWriter(ledger_path(tmp_path, "host/1:a"))
    first.record(sent("r1", "w1"))
    assert first.path.read_text().count("\n") == 1  # written while the test runs, not held back
    with LedgerWriter(ledger_path(tmp_path, "w2")) as second:
        second.record(sent("r2", "w2"))
    first.close()
    assert first.path.name == "sent-host_1_a.jsonl"
    assert sorted(s.request_id for s in read_ledger(tmp_path)) == ["r1", "r2"]


def test_ids_never_repeat_after_a_global_seed_or_a_fork() -> None:
    random.seed(42)
    first = new_request_ids()
    random.seed(42)  # a locustfile seeding the random module must not make ids repeat
    assert new_request_ids().request_id != first.request_id
    # A forked Locust worker (--processes) starts from its parent's generator state: without a reseed
    # its next ids would be the parent's next ids.
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: report its next ids and leave at once
        ids = new_request_ids()
        os.write(write_end, f"{ids.request_id} {ids.trace_id} {ids.parent_span_id}".encode())
        os._exit(0)
    os.close(write_end)
    parent = new_request_ids()
    with os.fdopen(read_end, "rb") as fh:
        child = fh.read().decode().split()
    os.waitpid(pid, 0)
    assert len(child) == 3
    assert child[0] != parent.request_id and child[1][8:] != parent.trace_id[8:] and child[2] != parent.parent_span_id


def _sent(**changes: Any) -> SentRequest:
    base = SentRequest(
        "r1", "home", "GET", "http://h/p", "/p", 1.76e9 + 1.5, 1.76e9 + 2.25, 200, "a" * 32, "b" * 16, "1-x-y", "w"
    )
    return dataclasses.replace(base, **changes)


@pytest.mark.parametrize(
    "sent",
    [
        _sent(start=time.time(), end=time.time(), app_sampled=True, app_process="host:12"),
        _sent(request_id='r"2\\', name="h\u00f6\u2028me", url='http://h/p?q="x"', path="/p\n", status=None),
        _sent(start=1, end=2, traceparent_sent=False, parent_span_id="", app_sampled=False),  # ints: json's path
        _sent(start=float("nan"), end=float("inf"), status=True),  # json's NaN/Infinity, a bool status
        _sent(start=1e300, end=-0.0, status=0, app_process=""),
    ],
)
def test_ledger_line_is_exactly_to_json(sent: SentRequest) -> None:
    assert TEMPLATE_CURRENT  # the fast template knows every SentRequest field: update it when one is added
    assert ledger_line(dict(vars(sent))) == sent.to_json()


def test_ledger_line_never_drops_a_field_it_does_not_know() -> None:
    fields = {**vars(_sent()), "something_new": 1}
    fields.pop("app_process")
    assert json.loads(ledger_line(fields)) == fields


def test_ledger_line_keeps_sentrequests_key_order_on_the_slow_path() -> None:
    fields = dict(reversed(vars(_sent(start=1, end=2)).items()))  # ints: json's path, keys in another order
    assert ledger_line(fields) == _sent(start=1, end=2).to_json()


def test_a_short_write_still_leaves_whole_lines(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real_write = os.write

    def at_most_ten_bytes(fd: int, data: bytes) -> int:  # as a nearly full disk or a signal may answer
        return real_write(fd, data[:10])

    with LedgerWriter(tmp_path / "sent-w.jsonl") as ledger:
        monkeypatch.setattr(os, "write", at_most_ten_bytes)
        ledger.record(_sent(request_id="r1"))
        ledger.record(_sent(request_id="r2"))
        monkeypatch.undo()
    assert [s.request_id for s in read_ledger(tmp_path)] == ["r1", "r2"]


def test_ledger_writer_appends_whole_lines_and_refuses_after_close(tmp_path: Path) -> None:
    path = tmp_path / "sent-shared.jsonl"
    first, second = LedgerWriter(path), LedgerWriter(path)  # O_APPEND: neither overwrites the other
    for n in range(50):
        (first if n % 2 else second).record_fields(dict(vars(_sent(request_id=f"r{n}"))))
    first.close()
    second.close()
    assert [s.request_id for s in read_ledger(path)] == [f"r{n}" for n in range(50)]
    assert first.count == second.count == 25
    with pytest.raises(ValueError, match="closed"):
        first.record(_sent())
    first.close()  # closing twice is harmless
