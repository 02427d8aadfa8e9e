"""The readiness probe: every probe that may have reached the app is in the sent-ledger."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from loadtests.ledger import LedgerWriter
from tracedrill.probe import PROBE_ROUTE_NAME, recorded_probe
from verifiers.model import read_ledger


class _Slow(BaseHTTPRequestHandler):
    delay_s = 0.0

    def do_GET(self) -> None:
        time.sleep(self.delay_s)
        self.send_response(200)
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        return


@pytest.fixture
def server() -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def _url(httpd: ThreadingHTTPServer) -> str:
    return f"http://127.0.0.1:{httpd.server_address[1]}/api/health"


def test_an_answered_probe_is_recorded_with_its_status(server: ThreadingHTTPServer, tmp_path: Path) -> None:
    _Slow.delay_s = 0.0
    with LedgerWriter(tmp_path / "sent-probe.jsonl") as ledger:
        assert recorded_probe(ledger)(_url(server)) is True
    [sent] = read_ledger(tmp_path)
    assert sent.name == PROBE_ROUTE_NAME and sent.status == 200 and sent.path == "/api/health"


def test_a_timed_out_probe_is_recorded_without_a_status(server: ThreadingHTTPServer, tmp_path: Path) -> None:
    _Slow.delay_s = 0.5
    with LedgerWriter(tmp_path / "sent-probe.jsonl") as ledger:
        assert recorded_probe(ledger, timeout_s=0.1)(_url(server)) is False
    [sent] = read_ledger(tmp_path)
    assert sent.status is None  # the app may still serve it: its telemetry is ours, nothing is expected


def test_a_refused_probe_is_not_recorded(tmp_path: Path) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with LedgerWriter(tmp_path / "sent-probe.jsonl") as ledger:
        assert recorded_probe(ledger)(f"http://127.0.0.1:{port}/api/health") is False
    assert read_ledger(tmp_path) == []
