"""The fault profiles reproduce each mistake with the SDK calls a person writes (in-process, no backends)."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Sequence
from pathlib import Path

import pytest
from aws_xray_sdk.core import AWSXRayRecorder
from flask import got_request_exception
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

from target_app import gunicorn_conf
from target_app.faults import PROFILES, FaultError, daemon_address_without_tcp, parse_fault
from target_app.routes import HOME_SPAN
from target_app.settings import Settings, SettingsError
from target_app.telemetry import otel, xray
from tests.target_app import XRAY_ROOT, app_under_test

HOME = "/api/activities/home"
HEADERS = {"X-Request-Id": "rid-fault", "X-Amzn-Trace-Id": f"Root={XRAY_ROOT}"}


def test_the_profile_name_is_checked_and_the_error_lists_the_valid_ones() -> None:
    assert parse_fault(None) == parse_fault("") == "correct"
    assert parse_fault(" Attr-After-End ") == "attr-after-end"
    with pytest.raises(FaultError) as excinfo:
        parse_fault("attr-after-ned")
    assert "TRACEDRILL_FAULT='attr-after-ned'" in str(excinfo.value)
    assert all(name in str(excinfo.value) for name in PROFILES)
    with pytest.raises(SettingsError, match="valid profiles are correct, attr-after-end"):
        Settings.from_env({"TRACEDRILL_FAULT": "nope"})
    assert Settings.from_env({"TRACEDRILL_FAULT": "logger-none"}).fault == "logger-none"


def _home(tmp_path: Path, fault: str) -> tuple[ReadableSpan, ReadableSpan, list[str]]:
    with app_under_test(tmp_path, {"TRACEDRILL_FAULT": fault}) as under_test:
        assert under_test.client.get(HOME, headers=HEADERS).status_code == 200
        spans = list(under_test.spans.get_finished_spans())
        lines = list(under_test.logs.lines)
    (server,) = [s for s in spans if s.kind is SpanKind.SERVER]
    (child,) = [s for s in spans if s.name == HOME_SPAN]
    return server, child, lines


def test_correct_sets_the_attributes_on_the_open_child_span(tmp_path: Path) -> None:
    server, child, lines = _home(tmp_path, "correct")
    assert child.attributes is not None and {"app.now", "app.result_length"} <= set(child.attributes)
    assert server.attributes is not None and "app.now" not in server.attributes
    assert any(line.startswith("Hello Cloudwatch!") for line in lines)


def test_attr_after_end_loses_the_attributes(tmp_path: Path) -> None:
    server, child, _ = _home(tmp_path, "attr-after-end")
    for span in (server, child):
        assert span.attributes is not None and "app.now" not in span.attributes
        assert "app.result_length" not in span.attributes


def test_attr_wrong_span_puts_them_on_the_server_span(tmp_path: Path) -> None:
    server, child, _ = _home(tmp_path, "attr-wrong-span")
    assert server.attributes is not None and server.attributes["app.result_length"] == 3
    assert child.attributes is not None and "app.now" not in child.attributes
    assert child.parent is not None and child.parent.span_id == server.context.span_id  # the span itself is fine


def test_logger_none_writes_the_access_line_but_not_the_hello_line(tmp_path: Path) -> None:
    _, _, lines = _home(tmp_path, "logger-none")
    assert not any(line.startswith("Hello Cloudwatch!") for line in lines)
    assert any("request_id=rid-fault" in line and " GET " in line for line in lines)


def test_subsegment_double_end_writes_the_annotation_to_the_segment(tmp_path: Path) -> None:
    with app_under_test(tmp_path, {"TRACEDRILL_FAULT": "subsegment-double-end"}) as under_test:
        assert under_test.client.get("/api/activities/@andrew_b", headers=HEADERS).status_code == 200
        (segment,) = under_test.emitter.documents
    (outer,) = segment["subsegments"]
    (inner,) = outer["subsegments"]
    assert (outer["name"], inner["name"]) == ("user-activities", "mock-data")
    assert "annotations" not in outer and "query" not in outer.get("metadata", {}).get("cruddur", {})
    assert segment["annotations"]["user_handle"] == "andrew_b"  # the recorder wrote to what was still open
    assert segment["metadata"]["cruddur"]["query"]["handle"] == "andrew_b"
    assert outer["end_time"] <= inner["end_time"] + 0.001  # ended by the second end_subsegment(), early


def test_rollbar_never_init_connects_no_exception_reporter(tmp_path: Path) -> None:
    with app_under_test(tmp_path, {"TRACEDRILL_FAULT": "rollbar-never-init"}) as under_test:
        assert not got_request_exception.has_receivers_for(under_test.app)
        assert under_test.client.get("/api/fault").status_code == 500
    with app_under_test(tmp_path) as under_test:
        assert got_request_exception.has_receivers_for(under_test.app)


def test_no_cloudwatch_handler_leaves_the_logger_without_it(tmp_path: Path) -> None:
    with app_under_test(tmp_path, {"TRACEDRILL_FAULT": "no-cloudwatch-handler"}) as under_test:
        assert under_test.client.get(HOME, headers=HEADERS).status_code == 200
        assert under_test.logs not in under_test.telemetry.logger.handlers
        assert under_test.logs.lines == []


def test_otlp_endpoint_no_path_passes_the_base_url_in_code(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
    wrong = otel.build_span_exporter(Settings.from_env({"TRACEDRILL_FAULT": "otlp-endpoint-no-path"}))
    right = otel.build_span_exporter(Settings.from_env({}))
    assert getattr(wrong, "_endpoint") == "http://127.0.0.1:4318"  # noqa: B009 - the exporter keeps it private
    assert getattr(right, "_endpoint") == "http://127.0.0.1:4318/v1/traces"  # noqa: B009


class _StuckExporter(SpanExporter):
    """Holds its first export until released, like a slow backend; records what it was given."""

    def __init__(self) -> None:
        self.release = threading.Event()
        self.exported: list[str] = []

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        self.release.wait(5)
        self.exported += [s.name for s in spans]
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        self.release.set()


def test_bsp_queue_overflow_drops_spans_a_burst_brings(tmp_path: Path) -> None:
    exporter = _StuckExporter()
    provider = otel.build_tracer_provider(Settings.from_env({"TRACEDRILL_FAULT": "bsp-queue-overflow"}), exporter)
    tracer = provider.get_tracer("test")
    for n in range(6):
        tracer.start_span(f"span-{n}").end()
    exporter.release.set()
    provider.shutdown()
    # At most one span being exported and one in the queue survive the burst.
    assert 1 <= len(exporter.exported) <= 2 < 6


def _refused(address: str) -> bool:
    host, port = address.rsplit(":", 1)
    try:
        with socket.create_connection((host, int(port)), timeout=2):
            return False
    except ConnectionRefusedError:
        return True


def test_xray_no_sampling_proxy_points_the_sdk_at_a_closed_tcp_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(xray.DAEMON_ADDRESS_ENV, "127.0.0.1:2000")  # restored after the test
    settings = Settings.from_env({"TRACEDRILL_FAULT": "xray-no-sampling-proxy"})
    xray.configure_recorder(settings, AWSXRayRecorder())
    tcp, udp = os.environ[xray.DAEMON_ADDRESS_ENV].split()  # the variable the SDK itself reads
    assert udp == "udp:127.0.0.1:2000"
    assert _refused(tcp.removeprefix("tcp:"))


def test_the_daemon_address_keeps_its_udp_side_in_both_forms() -> None:
    for address in ("127.0.0.1:2000", "tcp:127.0.0.1:2001 udp:127.0.0.1:2000", "192.0.2.10:2000"):
        tcp, udp = daemon_address_without_tcp(address).split()
        assert udp == f"udp:{address.split()[-1].removeprefix('udp:')}"
        assert _refused(tcp.removeprefix("tcp:"))


def test_fork_unsafe_otel_workers_use_the_provider_the_master_made(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(otel, "_master_provider", None)
    for name in ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_HEADERS"):  # the app fills them in: restore
        monkeypatch.setenv(name, os.environ.get(name, ""))
    monkeypatch.setenv("TRACEDRILL_FAULT", "fork-unsafe-otel")
    gunicorn_conf.on_starting(None)  # what the gunicorn master runs before it forks
    master = otel.provider_from_master()
    assert master is not None
    try:
        with app_under_test(tmp_path, {"TRACEDRILL_FAULT": "fork-unsafe-otel"}) as under_test:
            assert under_test.telemetry.tracer_provider is master
    finally:
        master.shutdown()
    monkeypatch.setenv("TRACEDRILL_FAULT", "correct")
    monkeypatch.setattr(otel, "_master_provider", None)
    gunicorn_conf.on_starting(None)
    assert otel.provider_from_master() is None  # a correct app creates nothing in the master
