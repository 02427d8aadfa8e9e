"""The bundled locustfile end to end against the benchmark's no-op server (bench/noop_server.py), and its
lazy cookie jar. Locust runs in its own process (importing it here would gevent-patch pytest)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from http.cookiejar import CookieJar
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.request import Request

import pytest
from geventhttpclient.header import Headers

from bench.noop_server import statuses_by_path
from loadtests.cookiejar import LazyCookieJar
from tracedrill.loadgen import RUN_DIR_ENV
from verifiers.budget.traffic import read_locustfile
from verifiers.model import SentRequest, read_ledger

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = ROOT / "loadtests" / "locustfile.py"
SATURATING = ROOT / "bench" / "locustfiles" / "ours.py"  # the same users without think time
EXPECTED = {r.name: r.status for r in read_locustfile(LOCUSTFILE).routes}
NOOP_TRACE_ID = "5f5e1000000000000000000000000001"  # the no-op server's own trace id (no traceparent sent)


@pytest.fixture(params=[False, True], ids=["healthy", "always-200"])
def noop(request: pytest.FixtureRequest) -> Iterator[tuple[str, bool]]:
    always_200 = bool(request.param)
    command = [sys.executable, "-m", "bench.noop_server"] + (["--always-200"] if always_200 else [])
    proc = subprocess.Popen(command, cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdin is not None
    try:
        yield f"http://127.0.0.1:{int(proc.stdout.readline())}", always_200
    finally:
        proc.stdin.close()
        proc.wait(10)


def _locust(host: str, run_dir: Path, **env: str) -> dict[str, tuple[int, int]]:
    """(requests, failures) per route name, and in total ("Aggregated"), of a short headless run stopped
    by its run time: Locust's final stats (its CSV files lag up to a second behind)."""
    command = [
        sys.executable, "-m", "locust", "-f", str(SATURATING), "--headless", "--users", "2", "--spawn-rate", "100",
        "--run-time", "2s", "--host", host, "--json-file", str(run_dir / "stats"), "--only-summary",
        "--exit-code-on-error", "0", "--loglevel", "WARNING",
    ]  # fmt: skip
    environ = {**os.environ, RUN_DIR_ENV: str(run_dir), **env}
    done = subprocess.run(command, cwd=ROOT, env=environ, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    entries = json.loads((run_dir / "stats.json").read_text(encoding="utf-8"))
    stats = {e["name"]: (int(e["num_requests"]), int(e["num_failures"])) for e in entries}
    stats["Aggregated"] = (sum(n for n, _ in stats.values()), sum(f for _, f in stats.values()))
    return stats


def test_every_request_is_in_the_ledger_and_only_unexpected_statuses_fail(
    noop: tuple[str, bool], tmp_path: Path
) -> None:
    host, always_200 = noop
    stats = _locust(host, tmp_path)
    ledger = read_ledger(tmp_path)
    lines = [line for f in sorted(tmp_path.glob("sent*.jsonl")) for line in f.read_text().splitlines()]
    total, failures = stats.pop("Aggregated")
    assert set(stats) == set(EXPECTED) and total > 100  # every route ran, the load was real
    assert len(ledger) == total  # nothing lost, not even the requests in flight at the stop
    assert len({s.request_id for s in ledger}) == total
    assert lines == [SentRequest.from_json(line).to_json() for line in lines]  # the ledger's one text
    by_route: dict[str, list[SentRequest]] = {}
    for sent in ledger:
        by_route.setdefault(sent.name, []).append(sent)
    for name, (count, failed) in stats.items():
        statuses = {s.status for s in by_route[name]}
        assert len(by_route[name]) == count
        if always_200:  # a route expecting 422 or 500 that gets 200 is a Locust failure, every time
            assert statuses == {200} and failed == (count if EXPECTED[name] != 200 else 0)
        else:
            assert statuses == {EXPECTED[name]} and failed == 0
    assert failures == sum(failed for _, failed in stats.values())
    first = ledger[0]
    assert first.traceparent_sent and first.app_sampled is True and first.app_process is not None
    assert first.trace_id == first.xray_trace_id[2:].replace("-", "") and len(first.parent_span_id) == 16


def test_without_traceparent_the_ledger_takes_the_apps_trace_id(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "bench.noop_server"], cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE
    )
    assert proc.stdout is not None and proc.stdin is not None
    try:
        stats = _locust(f"http://127.0.0.1:{int(proc.stdout.readline())}", tmp_path, TRACEDRILL_TRACEPARENT="none")
    finally:
        proc.stdin.close()
        proc.wait(10)
    ledger = read_ledger(tmp_path)
    assert len(ledger) == stats["Aggregated"][0] > 0
    assert all(not s.traceparent_sent and s.parent_span_id == "" and s.trace_id == NOOP_TRACE_ID for s in ledger)


def test_noop_server_answers_each_route_with_its_healthy_status() -> None:
    statuses = statuses_by_path(LOCUSTFILE)
    assert statuses == {
        b"/api/activities/@not-a-handle": b"HTTP/1.1 422 Unprocessable Entity\r\n",
        b"/api/fault": b"HTTP/1.1 500 Internal Server Error\r\n",
    }


def _response(*set_cookies: str) -> Any:
    headers = Headers([("Content-Type", "text/plain")] + [("Set-Cookie", c) for c in set_cookies])
    return SimpleNamespace(info=lambda: headers)  # what FastHttpUser's jar is handed


def _cookie_header(jar: CookieJar, url: str) -> str | None:
    request = Request(url)
    jar.add_cookie_header(request)
    return request.get_header("Cookie")


def test_lazy_cookie_jar_behaves_as_the_stock_one() -> None:
    stock, lazy = CookieJar(), LazyCookieJar()
    url = "http://127.0.0.1:8000/api/health"
    for jar in (stock, lazy):
        assert _cookie_header(jar, url) is None
        jar.extract_cookies(_response(), Request(url))
    assert not lazy.holds_cookies  # nothing was set: the lazy jar did no work
    for jar in (stock, lazy):
        jar.extract_cookies(_response("session=abc; Path=/", "theme=dark; Path=/api"), Request(url))
    assert lazy.holds_cookies
    assert _cookie_header(lazy, url) == _cookie_header(stock, url) is not None
    assert _cookie_header(lazy, "http://127.0.0.1:8000/other") == _cookie_header(stock, "http://127.0.0.1:8000/other")
    assert sorted(c.name for c in lazy) == sorted(c.name for c in stock) == ["session", "theme"]
