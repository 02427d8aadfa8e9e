"""The app under real gunicorn (forked workers, no preload) via target_app.server."""

from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from target_app.server import TargetStartError, start_target
from tests.target_app import PARENT_SPAN_ID, TRACE_ID, XRAY_ROOT, CaptureServer, write_local_rules

_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _get(url: str, headers: dict[str, str] | None = None) -> tuple[int, bytes]:
    with _DIRECT.open(urllib.request.Request(url, headers=headers or {}), timeout=10) as response:
        return int(response.status), bytes(response.read())


def _otlp_spans(bodies: list[bytes]) -> list[dict[str, Any]]:
    spans: list[dict[str, Any]] = []
    for body in bodies:
        request = ExportTraceServiceRequest.FromString(body)
        for resource_spans in request.resource_spans:
            for scope_spans in resource_spans.scope_spans:
                for span in scope_spans.spans:
                    attributes = {kv.key: kv.value.string_value for kv in span.attributes}
                    spans.append({"name": span.name, "trace_id": span.trace_id.hex(), "attributes": attributes})
    return spans


def _udp_documents(sock: socket.socket) -> list[dict[str, Any]]:
    documents: list[dict[str, Any]] = []
    sock.settimeout(0.5)
    while True:
        try:
            datagram = sock.recv(65535)
        except TimeoutError:
            return documents
        header, _, body = datagram.partition(b"\n")
        assert json.loads(header) == {"format": "json", "version": 1}
        documents.append(json.loads(body))


def test_gunicorn_serves_and_flushes_telemetry_on_stop(tmp_path: Path) -> None:
    with (
        CaptureServer(b"", content_type="application/x-protobuf") as otlp,
        socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp,
    ):
        udp.bind(("127.0.0.1", 0))
        env = {
            "OTEL_EXPORTER_OTLP_ENDPOINT": otlp.url,
            "OTEL_EXPORTER_OTLP_HEADERS": "x-honeycomb-team=test-key",
            "AWS_XRAY_DAEMON_ADDRESS": f"127.0.0.1:{udp.getsockname()[1]}",
            "TRACEDRILL_XRAY_SAMPLING": "local",
            "TRACEDRILL_XRAY_LOCAL_RULES": str(write_local_rules(tmp_path / "rules.json", rate=1.0)),
            "TRACEDRILL_DISABLE": "cloudwatch,rollbar",
        }
        log_path = tmp_path / "target.log"
        target = start_target(env, port=0, workers=2, log_path=log_path)
        try:
            assert target.port > 0 and target.url.startswith("http://127.0.0.1:")
            assert _get(target.url + "/api/health") == (200, b'{"status":"ok"}\n')
            headers = {
                "traceparent": f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01",
                "X-Amzn-Trace-Id": f"Root={XRAY_ROOT}",
                "X-Request-Id": "rid-gunicorn",
            }
            status, _ = _get(target.url + "/api/activities/home", headers)
            assert status == 200
        finally:
            returncode = target.stop()
        assert returncode == 0
        # BatchSpanProcessor waits up to 5 s between exports: these spans arrived because worker_exit flushed.
        otlp_requests = otlp.captured()
        documents = _udp_documents(udp)
    assert {request.path for request in otlp_requests} == {"/v1/traces"}
    assert all(request.headers["x-honeycomb-team"] == "test-key" for request in otlp_requests)
    ours = [span for span in _otlp_spans([r.body for r in otlp_requests]) if span["trace_id"] == TRACE_ID]
    assert sorted(span["name"] for span in ours) == ["GET /api/activities/home", "home-activities-mock-data"]
    assert all(span["attributes"]["app.request_id"] == "rid-gunicorn" for span in ours)
    (segment,) = [doc for doc in documents if doc.get("trace_id") == XRAY_ROOT]
    assert segment["annotations"]["request_id"] == "rid-gunicorn"
    log = log_path.read_text(encoding="utf-8")
    assert log.count("tracedrill: telemetry flushed") == 2  # one per worker
    assert "test-key" not in log


def test_start_failure_raises_with_the_log_tail(tmp_path: Path) -> None:
    with pytest.raises(TargetStartError) as info:
        start_target(
            {"TRACEDRILL_DISABLE": "bogus"}, port=0, workers=1, log_path=tmp_path / "bad.log", startup_timeout=20
        )
    message = str(info.value)
    assert "exited" in message and "TRACEDRILL_DISABLE" in message and str(tmp_path / "bad.log") in message
