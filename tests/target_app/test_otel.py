from __future__ import annotations

from datetime import datetime
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from target_app.settings import Settings
from target_app.telemetry import otel
from tests.target_app import PARENT_SPAN_ID, TRACE_ID, app_under_test

TRACEPARENT = f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"


def _get(tmp_path: Path, path: str, request_id: str) -> tuple[int, list[ReadableSpan]]:
    with app_under_test(tmp_path) as under_test:
        response = under_test.client.get(path, headers={"traceparent": TRACEPARENT, "X-Request-Id": request_id})
        return response.status_code, list(under_test.spans.get_finished_spans())


def _server_span(spans: list[ReadableSpan]) -> ReadableSpan:
    (server,) = [span for span in spans if span.kind is SpanKind.SERVER]
    return server


def test_home_server_span_continues_the_incoming_trace(tmp_path: Path) -> None:
    status, spans = _get(tmp_path, "/api/activities/home", "rid-otel-home")
    assert status == 200
    server = _server_span(spans)
    assert server.name == "GET /api/activities/home"
    assert format(server.context.trace_id, "032x") == TRACE_ID
    assert server.parent is not None and server.parent.is_remote
    assert format(server.parent.span_id, "016x") == PARENT_SPAN_ID
    assert server.attributes is not None and server.attributes["app.request_id"] == "rid-otel-home"
    assert server.resource.attributes["service.name"] == "backend-flask"


def test_custom_span_is_a_child_with_attributes_set_while_open(tmp_path: Path) -> None:
    _, spans = _get(tmp_path, "/api/activities/home", "rid-otel-child")
    server = _server_span(spans)
    (child,) = [span for span in spans if span.name == "home-activities-mock-data"]
    assert child.parent is not None and child.parent.span_id == server.context.span_id
    assert child.context.trace_id == server.context.trace_id
    attributes = dict(child.attributes or {})
    assert attributes["app.request_id"] == "rid-otel-child"
    assert isinstance(attributes["app.result_length"], int) and attributes["app.result_length"] > 0
    # The SDK drops attributes set after end(); app.now also falls inside the span's own lifetime.
    now_ns = int(datetime.fromisoformat(str(attributes["app.now"])).timestamp() * 1e9)
    assert child.start_time is not None and child.end_time is not None
    assert child.start_time - 1_000 <= now_ns <= child.end_time + 1_000


def test_fault_marks_the_server_span_as_error(tmp_path: Path) -> None:
    status, spans = _get(tmp_path, "/api/fault", "rid-otel-fault")
    assert status == 500
    server = _server_span(spans)
    assert server.status.status_code is StatusCode.ERROR
    assert server.attributes is not None and server.attributes["http.status_code"] == 500
    assert server.attributes["app.request_id"] == "rid-otel-fault"
    assert any(event.name == "exception" for event in server.events)


def test_every_span_of_every_route_carries_the_request_id(tmp_path: Path) -> None:
    paths = ["/api/activities/home", "/api/activities/@andrew", "/api/activities/notifications", "/api/health"]
    with app_under_test(tmp_path) as under_test:
        for index, path in enumerate(paths):
            under_test.client.get(path, headers={"X-Request-Id": f"rid-{index}"})
        spans = under_test.spans.get_finished_spans()
    assert len(spans) == len(paths) + 1  # one server span each, plus the home child span
    assert sorted({str((span.attributes or {})["app.request_id"]) for span in spans}) == [f"rid-{i}" for i in range(4)]


def test_disabled_otel_emits_no_spans_but_serves(tmp_path: Path) -> None:
    with app_under_test(tmp_path, {"TRACEDRILL_DISABLE": "otel"}) as under_test:
        assert under_test.client.get("/api/activities/home").status_code == 200
        assert under_test.spans.get_finished_spans() == ()
        assert under_test.telemetry.tracer_provider is None


def test_exporter_defaults_fill_only_unset_variables() -> None:
    environ = {"OTEL_EXPORTER_OTLP_HEADERS": "x-honeycomb-team=mine"}
    otel.apply_exporter_env_defaults(Settings.from_env(environ), environ)
    assert environ == {
        "OTEL_EXPORTER_OTLP_HEADERS": "x-honeycomb-team=mine",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
    }


def test_exporter_appends_the_traces_path_to_the_env_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9999")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", "x-honeycomb-team=abc")
    exporter = otel.build_span_exporter(Settings.from_env())
    try:
        assert exporter._endpoint == "http://127.0.0.1:9999/v1/traces"  # type: ignore[attr-defined]
    finally:
        exporter.shutdown()
