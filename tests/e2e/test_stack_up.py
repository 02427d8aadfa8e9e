"""`tracedrill stack up` + the target app under a simple request loop: every request's span,
segment, log line and Rollbar item is retrievable through the public read APIs."""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from emulators.stack import ENDPOINTS_FILE, LocalStack, StackConfig, read_endpoints
from loadtests.ids import new_request_ids
from loadtests.ledger import LedgerWriter
from target_app.server import start_target
from tracedrill import local
from tracedrill.cli import build_parser
from tracedrill.cli import main as cli_main
from tracedrill.probe import recorded_probe
from verifiers.base import RunWindow, make_verifiers
from verifiers.connections import Connections
from verifiers.expectations import load_expectations
from verifiers.model import Backend, SentRequest, read_ledger
from verifiers.polling import WaitSettings
from verifiers.verify import verify_run

from .conftest import PORT_FLAGS, clean_env, run_tracedrill, stack_up

pytestmark = pytest.mark.e2e

ROUTES = [
    ("home", "/api/activities/home"),
    ("user_activities", "/api/activities/@andrewbrown"),
    ("notifications", "/api/activities/notifications"),
    ("rollbar_test", "/rollbar/test"),
    ("fault", "/api/fault"),
]


@pytest.fixture
def stack_env(tmp_path: Path) -> Iterator[tuple[dict[str, str], dict[str, str]]]:
    with stack_up(tmp_path / "data") as stack:
        yield stack.app_env, stack.verifier_env


def test_stack_up_receives_every_kind_of_telemetry_from_the_target(
    stack_env: tuple[dict[str, str], dict[str, str]], tmp_path: Path
) -> None:
    app_env, verifier_env = stack_env
    for value in app_env.values():
        assert "0.0.0.0" not in value  # loopback only
    # The readiness probe reaches the app too: record it like the harness does, or it would be an extra.
    with LedgerWriter(tmp_path / "sent-probe.jsonl") as ledger:
        target = start_target(
            app_env, port=0, workers=1, log_path=tmp_path / "target.log", probe=recorded_probe(ledger)
        )
    sent: list[SentRequest] = read_ledger(tmp_path / "sent-probe.jsonl")
    try:
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        for name, path in ROUTES * 3:
            ids = new_request_ids()
            start = time.time()
            try:
                with opener.open(urllib.request.Request(target.url + path, headers=ids.headers())) as response:
                    status = response.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            sent.append(
                SentRequest(
                    ids.request_id,
                    name,
                    "GET",
                    target.url + path,
                    path,
                    start,
                    time.time(),
                    status,
                    ids.trace_id,
                    ids.parent_span_id,
                    ids.xray_trace_id,
                    "test",
                )
            )
            time.sleep(0.05)
    finally:
        target.stop()
    window = RunWindow("stack-up", sent[0].start - 1, sent[-1].end + 60, "backend-flask", "cruddur", "local")
    expectations = load_expectations()
    connections = Connections.from_env(verifier_env)
    reports = verify_run(
        sent,
        window,
        make_verifiers(connections, expectations),
        expectations,
        WaitSettings(settle_s=3, deadline_s=60),
        lambda backend, message: None,
    )
    by_backend = {r.backend: r for r in reports}
    assert set(by_backend) == {"honeycomb", "xray", "cloudwatch_logs", "rollbar"}
    names: tuple[Backend, ...] = ("honeycomb", "cloudwatch_logs", "rollbar")
    for name in names:
        report = by_backend[name]
        assert report.missing == 0 and report.found == report.expected, (name, report.checks)
    # Which requests X-Ray samples is random (borrow 1/s, then 10 %, until the first quota arrives).
    assert 1 <= by_backend["xray"].found <= len(sent) and by_backend["xray"].extra == 0
    failing = [c for r in reports for c in r.checks if c.status not in ("pass",)]
    assert not [c for c in failing if c.status == "fail"], failing


def test_a_reader_that_leaves_stops_neither_the_stack_nor_its_cleanup(tmp_path: Path) -> None:
    # `tracedrill stack up | head -1`: every line after the reader left fails with a broken pipe.
    data_dir = tmp_path / "data"
    command = [sys.executable, "-m", "tracedrill.cli", "stack", "up", "--data-dir", str(data_dir)]
    command += [part for flag in PORT_FLAGS for part in (flag, "0")]
    read_end, write_end = os.pipe()
    errors = tmp_path / "stderr.txt"
    with errors.open("w") as stderr:
        proc = subprocess.Popen(command, env=clean_env(), stdout=write_end, stderr=stderr)
    os.close(write_end)
    os.close(read_end)  # the reader is gone before the stack prints its first line
    endpoints = data_dir / ENDPOINTS_FILE
    try:
        deadline = time.monotonic() + 30
        while not endpoints.exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(0.5)  # past the lines it prints once up
        assert proc.poll() is None, f"stack up died: {errors.read_text()}"
        assert read_endpoints(data_dir).honeycomb.startswith("http://127.0.0.1:")
    finally:
        proc.terminate()
        code = proc.wait(timeout=15)
    assert code == 0 and errors.read_text() == ""
    assert not endpoints.exists()  # a stopped stack leaves no endpoints for `run --backends stack` to trust


@pytest.mark.parametrize(("given", "bound"), [("[::1]", "::1"), ("::1", "::1"), ("127.0.0.1", "127.0.0.1")])
def test_host_takes_ip_literals_with_or_without_url_brackets(given: str, bound: str) -> None:
    assert build_parser().parse_args(["stack", "up", "--host", given]).host == bound


def test_a_host_name_is_a_usage_error_naming_the_flag(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["stack", "up", "--host", "example.com"])
    assert exit_info.value.code == 2
    assert "--host: 'example.com' is not an IP address" in capsys.readouterr().err


def test_a_closed_terminal_stops_the_stack_and_takes_its_endpoints_along(tmp_path: Path) -> None:
    data_dir = tmp_path / "data"
    command = [sys.executable, "-m", "tracedrill.cli", "stack", "up", "--data-dir", str(data_dir)]
    command += [part for flag in PORT_FLAGS for part in (flag, "0")]
    proc = subprocess.Popen(command, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    assert proc.stdout is not None
    for line in proc.stdout:
        if line.startswith("Ctrl-C stops the stack"):
            break
    assert (data_dir / ENDPOINTS_FILE).exists()
    proc.send_signal(signal.SIGHUP)
    assert proc.wait(timeout=15) == 0 and "local stack stopped" in proc.stdout.read()
    assert not (data_dir / ENDPOINTS_FILE).exists()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_endpoints_left_by_a_killed_stack_are_a_usage_error_not_a_crash(tmp_path: Path) -> None:
    # SIGKILL leaves endpoints.json with nobody listening: say so before starting anything.
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    dead = {name: f"http://127.0.0.1:{free_port()}" for name in ("honeycomb", "xray_api", "cloudwatch_logs", "rollbar")}
    (data_dir / ENDPOINTS_FILE).write_text(json.dumps({**dead, "xray_daemon": f"127.0.0.1:{free_port()}"}))
    done = run_tracedrill(
        "run", "--backends", "stack", "--stack-dir", str(data_dir), "--run-time", "2s", "--no-budget", cwd=tmp_path
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"nothing answers at {dead['honeycomb']}" in done.stdout and "its stack has stopped" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr and not (tmp_path / "reports").exists()


def test_verify_of_a_run_that_never_sent_load_says_so(tmp_path: Path) -> None:
    (tmp_path / "reports" / "aborted").mkdir(parents=True)
    done = run_tracedrill("verify", "reports/aborted", cwd=tmp_path)
    assert (
        done.returncode == 2 and "reports/aborted has no run.json: its run stopped before sending load" in done.stdout
    )
    missing = run_tracedrill("verify", "reports/nowhere", cwd=tmp_path)
    assert missing.returncode == 2 and "reports/nowhere is not a run directory" in missing.stdout


def test_a_taken_port_names_the_server_and_leaves_no_data_directory(tmp_path: Path) -> None:
    with LocalStack(StackConfig(data_dir=tmp_path / "first", ports=local.LocalPorts.ephemeral())) as first:
        taken = int(first.endpoints.rollbar.rsplit(":", 1)[1])
        ports = dataclasses.replace(local.LocalPorts.ephemeral(), rollbar=taken)
        with pytest.raises(OSError) as info:
            LocalStack(StackConfig(data_dir=tmp_path / "second" / "nested" / "data", ports=ports)).start()
    assert info.value.errno == errno.EADDRINUSE
    assert f"(the rollbar emulator on 127.0.0.1:{taken})" in str(info.value)
    assert not (tmp_path / "second").exists()  # every directory the failed start made, not only the last


def test_a_data_dir_that_cannot_be_one_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ports = [part for flag in PORT_FLAGS for part in (flag, "0")]
    a_file = tmp_path / "a-file"
    a_file.write_text("")
    assert cli_main(["stack", "up", "--data-dir", str(a_file), *ports]) == 2
    assert "(check --data-dir: it must be a directory" in capsys.readouterr().out
    (tmp_path / "data" / ENDPOINTS_FILE).mkdir(parents=True)  # where the endpoints file goes
    assert cli_main(["stack", "up", "--data-dir", str(tmp_path / "data"), *ports]) == 2
    assert "cannot write the stack's endpoints" in capsys.readouterr().out


@pytest.mark.parametrize("damage", ["cut", "empty object", "directory"])
def test_a_damaged_endpoints_file_is_a_usage_error(tmp_path: Path, damage: str) -> None:
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    endpoints = data_dir / ENDPOINTS_FILE
    if damage == "directory":
        endpoints.mkdir()
    else:
        endpoints.write_text('{"honeycomb": "http://127.0.0.1:1", ' if damage == "cut" else "{}")
    done = run_tracedrill(
        "run", "--backends", "stack", "--stack-dir", str(data_dir), "--run-time", "2s", "--no-budget", cwd=tmp_path
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert f"{endpoints} is not what `tracedrill stack up` writes" in done.stdout
    assert "Traceback" not in done.stdout + done.stderr
