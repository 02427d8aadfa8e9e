"""X-Ray polls re-fetch (BatchGetTraces, metered per trace) only traces that are new, changed or still in
progress; a late subsegment or a segment closed later is never missed. Against the X-Ray emulator."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from emulators._server import serve
from emulators.xray.api import XRaySettings, create_app
from emulators.xray.store import XRayStore
from tests.verifiers import EXP, HEALTH, HOME, check, ledger, window
from tests.verifiers.test_xray import seg_id, segment
from verifiers.connections import Connections
from verifiers.model import SentRequest
from verifiers.xray import XRayVerifier


@pytest.fixture
def xray(tmp_path: Path) -> Iterator[XRayVerifier]:
    running = serve("xray", create_app(XRayStore(tmp_path / "xray.sqlite3"), XRaySettings()))
    try:
        connections = Connections(
            aws_region="us-east-1",
            aws_access_key_id="AKIDTEST",
            aws_secret_access_key="s3cret",
            xray_endpoint_url=running.url,
        )
        yield XRayVerifier(connections, EXP)
    finally:
        running.stop()


def put(verifier: XRayVerifier, *docs: dict[str, Any]) -> None:
    client = verifier._connections.xray_client()
    answer = client.put_trace_segments(TraceSegmentDocuments=[json.dumps(d) for d in docs])
    assert answer.get("UnprocessedTraceSegments", []) == []


def late_subsegment(r: SentRequest) -> dict[str, Any]:
    return {
        "type": "subsegment",
        "trace_id": r.xray_trace_id,
        "parent_id": seg_id(r, 1),
        "id": seg_id(r, 5),
        "name": "mock-data",
        "start_time": r.start + 0.01,
        "end_time": r.start + 0.02,
    }


def test_unchanged_traces_are_not_retrieved_again_and_late_data_is_never_missed(xray):
    sent = ledger(HOME, HOME, HEALTH, HEALTH, t0=time.time() - 30)
    done, late, open_ = sent[:3], sent[0], sent[3]
    in_progress = {k: v for k, v in segment(open_).items() if k != "end_time"} | {"in_progress": True}
    put(xray, *(segment(r) for r in done), in_progress)
    w = window(sent)

    first = xray.poll(w)
    assert first.cost_units["traces_retrieved"] == 4 and first.traces_reused == 0
    assert first.api_calls["BatchGetTraces"] == 1

    second = xray.poll(w)  # nothing changed: only the trace still in progress is retrieved again
    assert second.cost_units["traces_retrieved"] == 1 and second.traces_reused == 3
    assert set(second.traces) == {r.xray_trace_id for r in sent}
    assert check(xray.verify(sent, second, EXP), "every segment is closed").status == "fail"

    put(xray, segment(open_), late_subsegment(late))  # the segment closes; a subsegment arrives late
    third = xray.poll(w)
    assert third.cost_units["traces_retrieved"] == 2 and third.traces_reused == 2
    report = xray.verify(sent, third, EXP)
    assert check(report, "every segment is closed").status == "pass"
    unexpected = check(report, "no unexpected segments or subsegments")  # the late subsegment is seen (home lists none)
    assert unexpected.status == "fail" and late.request_id in unexpected.detail

    fourth = xray.poll(w)  # settled: nothing is retrieved, the counters say so
    assert fourth.cost_units["traces_retrieved"] == 0 and fourth.traces_reused == 4
    assert "BatchGetTraces" not in fourth.api_calls
    assert xray.item_count(fourth) == xray.item_count(third)
    assert check(xray.verify(sent, fourth, EXP), "no unexpected segments or subsegments").status == "fail"
