"""What the app tells the load generator for the sampling checks: traceresponse and the serving process."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from tests.target_app import PARENT_SPAN_ID, TRACE_ID, app_under_test

TRACEPARENT = f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"


def test_traceresponse_carries_the_continued_trace_and_the_process_is_named(tmp_path: Path) -> None:
    with app_under_test(tmp_path) as under_test:
        response = under_test.client.get("/api/health", headers={"traceparent": TRACEPARENT})
        version, trace_id, span_id, flags = response.headers["traceresponse"].split("-")
        (server,) = under_test.spans.get_finished_spans()
    assert (version, trace_id, flags) == ("00", TRACE_ID, "01")
    assert server.context is not None and span_id == format(server.context.span_id, "016x")
    assert response.headers["X-Tracedrill-Process"] == f"{socket.gethostname()}:{os.getpid()}"


def test_without_traceparent_the_app_starts_its_own_trace_and_says_which(tmp_path: Path) -> None:
    with app_under_test(tmp_path) as under_test:
        response = under_test.client.get("/api/health")
        (server,) = under_test.spans.get_finished_spans()
    assert server.context is not None and server.parent is None
    assert response.headers["traceresponse"].split("-")[1] == format(server.context.trace_id, "032x")


def test_the_sdk_reads_the_sampler_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """OTEL_TRACES_SAMPLER=traceidratio with 0: the generator's sampled flag is ignored, nothing is kept."""
    monkeypatch.setenv("OTEL_TRACES_SAMPLER", "traceidratio")
    monkeypatch.setenv("OTEL_TRACES_SAMPLER_ARG", "0")
    with app_under_test(tmp_path) as under_test:
        response = under_test.client.get("/api/health", headers={"traceparent": TRACEPARENT})
        assert response.status_code == 200
        assert not under_test.spans.get_finished_spans()
    assert response.headers["traceresponse"].endswith("-00")  # the app's decision: not sampled
