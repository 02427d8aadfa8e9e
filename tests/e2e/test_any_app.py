"""Any app, not just ours: a second Flask service verified with nothing but its expectations file.

The "orders" app (tests/fixtures/other_app.py) shares no code with target_app/. A user runs
`tracedrill stack up`, starts the app with the environment it prints, and points
`tracedrill run --target URL --backends stack` at it with the app's own expectations file and locustfile.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from .conftest import clean_env, run_tracedrill, stack_up

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "fixtures"
NAMES = {
    "OTEL_SERVICE_NAME": "orders-api",
    "AWS_XRAY_TRACING_NAME": "orders-api",
    "CLOUDWATCH_LOG_GROUP": "orders",
    "ROLLBAR_ENVIRONMENT": "orders-test",
}
# Its own sampling rule: every request (the app traces all, sampling=False), so each X-Ray check has traces.
ORDERS_RULE = FIXTURES / "other_app_xray_rule.json"


_tracedrill = run_tracedrill


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[tuple[Path, dict[str, str]]]:
    """`tracedrill stack up` serving the orders rule: its data directory and the app environment it printed."""
    with stack_up(tmp_path / "stack", "--xray-rule", str(ORDERS_RULE)) as running:
        assert (running.data_dir / "endpoints.json").is_file()
        yield running.data_dir, running.app_env
    assert not (running.data_dir / "endpoints.json").exists()  # a stopped stack is not offered to `run`


@pytest.fixture
def orders_app(stack: tuple[Path, dict[str, str]], tmp_path: Path) -> Iterator[str]:
    """The orders app under gunicorn on loopback, configured only through the usual variables."""
    _, stack_env = stack
    env = {**clean_env(), **stack_env, **NAMES, "OTEL_BSP_SCHEDULE_DELAY": "500", "PYTHONPATH": str(ROOT)}
    log_path = tmp_path / "orders.log"
    command = [
        sys.executable, "-m", "gunicorn", "--bind", "127.0.0.1:0", "--workers", "1", "--worker-class", "gthread",
        "--threads", "4", "--graceful-timeout", "10", "--no-control-socket", "tests.fixtures.other_app:create_app()",
    ]  # fmt: skip
    with log_path.open("wb") as log:
        proc = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        yield f"http://127.0.0.1:{_wait_until_booted(proc, log_path)}"
    finally:
        proc.terminate()
        proc.wait(timeout=20)


def _wait_until_booted(proc: subprocess.Popen[bytes], log_path: Path) -> int:
    """The port once gunicorn listens and its worker has loaded the app; no HTTP request (it would be traced)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, log_path.read_text(errors="replace")
        text = log_path.read_text(errors="replace")
        match = re.search(r"Listening at: http://127\.0\.0\.1:(\d+)", text)
        if match and "Booting worker" in text:
            with socket.create_connection(("127.0.0.1", int(match[1])), timeout=2):
                return int(match[1])
        time.sleep(0.1)
    raise AssertionError(f"the orders app did not start:\n{log_path.read_text(errors='replace')}")


def _summary(reports: Path) -> dict[str, Any]:
    return dict(json.loads((reports / "latest" / "summary.json").read_text()))


def test_another_flask_app_is_verified_with_only_its_expectations_file(
    stack: tuple[Path, dict[str, str]], orders_app: str, tmp_path: Path
) -> None:
    data_dir, _ = stack
    reports = tmp_path / "reports"
    proc = _tracedrill(
        "run", "--target", orders_app, "--backends", "stack", "--stack-dir", str(data_dir),
        "--expect", str(FIXTURES / "other_app.toml"), "--locustfile", str(FIXTURES / "other_locustfile.py"),
        "--users", "4", "--spawn-rate", "4", "--run-time", "4s", "--settle", "4", "--deadline", "60",
        "--reports-dir", str(reports), "--no-budget",
        cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout[-5000:] + proc.stderr[-2000:]
    summary = _summary(reports)
    assert summary["verdict"] == "pass"
    sent = summary["sent"]
    routes = sent["by_route"]
    answered = sent["total"] - sent["no_response"]
    assert answered > 10 and set(routes) == {"list", "get", "get_missing", "create", "boom"}
    backends = summary["backends"]
    # One server span per request plus "orders.load" per listing; one access line per request plus the
    # listing line; an info message per order created and an error per boom; every request sampled by its rule.
    assert backends["honeycomb"]["expected"] == backends["honeycomb"]["found"] == answered + routes["list"]
    assert backends["cloudwatch_logs"]["expected"] == backends["cloudwatch_logs"]["found"] == answered + routes["list"]
    assert backends["rollbar"]["expected"] == backends["rollbar"]["found"] == routes["create"] + routes["boom"]
    assert backends["xray"]["found"] == answered and backends["xray"]["extra"] == 0
    names = " | ".join(c["name"] for c in summary["checks"])
    for own in ("'orders.load'", "'load-orders'", "'find-order'", "'listing line'", "ValueError", "shop.rid"):
        assert own in names, own  # the checks come from its expectations file, not from Cruddur's
    assert all(c["status"] in ("pass", "unverifiable") for c in summary["checks"])
    assert summary["backends_mode"] == "stack"

    # Verified again later against the same stack's data, sending nothing.
    again = _tracedrill("verify", str(reports / "latest"), "--settle", "2", "--no-budget", cwd=tmp_path)
    assert again.returncode == 0, again.stdout[-4000:]


def test_a_running_app_cannot_be_paired_with_backends_the_run_would_start(tmp_path: Path) -> None:
    proc = _tracedrill("run", "--target", "http://127.0.0.1:9", "--reports-dir", str(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2
    assert "--backends stack" in proc.stdout
    missing = _tracedrill(
        "run", "--target", "http://127.0.0.1:9", "--backends", "stack", "--stack-dir", str(tmp_path / "none"),
        cwd=tmp_path,
    )  # fmt: skip
    assert missing.returncode == 2 and "tracedrill stack up --data-dir" in missing.stdout
