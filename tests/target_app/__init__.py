"""Shared helpers for the target-app tests: the app wired to in-memory sinks, and a capture server."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import rollbar
from aws_xray_sdk.core import AWSXRayRecorder
from aws_xray_sdk.core.emitters.udp_emitter import UDPEmitter
from flask import Flask
from flask.testing import FlaskClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from target_app.app import create_app
from target_app.settings import Settings
from target_app.telemetry import EXTENSION_KEY, Telemetry, TelemetryOverrides

TRACE_ID = "5f0a1b2c3d4e5f60718293a4b5c6d7e8"
PARENT_SPAN_ID = "00f067aa0ba902b7"
XRAY_ROOT = f"1-{TRACE_ID[:8]}-{TRACE_ID[8:]}"


class CapturingEmitter(UDPEmitter):
    """Keeps every X-Ray document the recorder would have sent to the daemon."""

    def __init__(self) -> None:
        super().__init__()
        self.documents: list[dict[str, Any]] = []

    def send_entity(self, entity: Any) -> None:
        self.documents.append(json.loads(entity.serialize()))


class CapturingHandler(logging.Handler):
    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@dataclass
class AppUnderTest:
    app: Flask
    spans: InMemorySpanExporter
    emitter: CapturingEmitter
    logs: CapturingHandler
    rollbar_payloads: list[dict[str, Any]] = field(default_factory=list)

    @property
    def client(self) -> FlaskClient:
        return self.app.test_client()

    @property
    def telemetry(self) -> Telemetry:
        telemetry: Telemetry = self.app.extensions[EXTENSION_KEY]
        return telemetry


def write_local_rules(path: Path, *, rate: float, fixed_target: int = 0) -> Path:
    rules = {"version": 2, "rules": [], "default": {"fixed_target": fixed_target, "rate": rate}}
    path.write_text(json.dumps(rules), encoding="utf-8")
    return path


@contextmanager
def app_under_test(
    tmp_path: Path,
    env: Mapping[str, str] | None = None,
    *,
    xray_rate: float = 1.0,
) -> Iterator[AppUnderTest]:
    """The real app with every sink captured in memory; X-Ray samples with ``xray_rate`` (local rules)."""
    rules = write_local_rules(tmp_path / "xray-rules.json", rate=xray_rate)
    settings = Settings.from_env(
        {"TRACEDRILL_XRAY_SAMPLING": "local", "TRACEDRILL_XRAY_LOCAL_RULES": str(rules), **(env or {})}
    )
    spans, emitter, logs = InMemorySpanExporter(), CapturingEmitter(), CapturingHandler()
    overrides = TelemetryOverrides(
        span_exporter=spans,
        batch_spans=False,
        xray_recorder=AWSXRayRecorder(),
        xray_emitter=emitter,
        log_handler=logs,
        rollbar_handler="blocking",  # payloads are captured below, before any send
        instrument_requests=False,  # process-wide patch; would leak into other tests' requests
    )
    under_test = AppUnderTest(create_app(settings, overrides=overrides), spans, emitter, logs)

    def capture(payload: dict[str, Any], **_kw: Any) -> bool:
        under_test.rollbar_payloads.append(payload)
        return False  # captured: do not send

    if settings.enabled("rollbar"):
        rollbar.events.add_payload_handler(capture, pos=sys.maxsize)  # append: runs after ours
    try:
        yield under_test
    finally:
        rollbar.events.remove_payload_handler(capture)
        under_test.telemetry.shutdown(timeout_s=5)


@dataclass
class CapturedRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class CaptureServer:
    """A loopback HTTP server that records every request and answers 200 with a fixed body."""

    def __init__(
        self, response_body: bytes = b"{}", content_type: str = "application/json", delay_s: float = 0.0
    ) -> None:
        self.requests: list[CapturedRequest] = []
        self._lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                time.sleep(delay_s)  # a slow backend: whoever waits for the send must really wait
                with outer._lock:
                    outer.requests.append(CapturedRequest("POST", self.path, dict(self.headers.items()), body))
                self.send_response(200)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(response_body)))
                self.end_headers()
                self.wfile.write(response_body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def __enter__(self) -> CaptureServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()

    def captured(self) -> list[CapturedRequest]:
        with self._lock:
            return list(self.requests)
