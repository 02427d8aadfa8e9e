"""`tracedrill overhead`: flag checks (no process started) and the figures it reports from phases."""

from __future__ import annotations

import socket
import time
from typing import Any

import pytest

from emulators._server import serve
from tracedrill import overhead
from tracedrill.cli import main


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--on", "http://127.0.0.1:5001"], "--on and --off go together"),
        (["--on", "http://127.0.0.1:5001", "--off", "http://127.0.0.1:5002"], "name at least one --path"),
        (["--on", "http://10.1.2.3:80", "--off", "http://127.0.0.1:5002", "--path", "/"], "loopback addresses only"),
        (["--path", "/api/health"], "are for --on/--off"),
        (["--routes", "home,nope"], "unknown route(s) nope"),
        (["--rounds", "0"], "--rounds >= 1"),
    ],
)
def test_usage_errors_exit_2_and_name_the_flag(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["overhead", *argv]) == 2
    assert message in capsys.readouterr().out


def _phase(label: str, requests: int, cpu_s: float | None) -> overhead.Phase:
    return overhead.Phase("home", label, requests, 0, 2.0, cpu_s, 0.1, {"200": requests})


def test_figures_pair_rounds_and_subtract_the_uninstrumented_cost() -> None:
    figures = overhead.RouteFigures(
        "home",
        on=[_phase("on", 1000, 1.0), _phase("on", 800, 1.2)],
        off=[_phase("off", 2000, 0.8), _phase("off", 2000, 1.0)],
    )
    assert figures.rps_ratios() == [0.5, 0.4]
    assert figures.cpu("on") == [1000.0, 1500.0]  # µs per request
    assert figures.cpu("off") == [400.0, 500.0]
    assert figures.added_cpu_us() == [600.0, 1000.0]
    rows = overhead.table([figures])
    assert rows[1] == ["home", "1000", "450", "0.450", "450", "1250", "800"]
    text = overhead.render(rows)
    assert text.splitlines()[0].startswith("route") and "0.450" in text


def test_without_a_pid_cpu_is_not_reported() -> None:
    figures = overhead.RouteFigures("x", on=[_phase("on", 10, None)], off=[_phase("off", 10, None)])
    assert figures.cpu("on") == [] and overhead.table([figures])[1][4:] == ["-", "-", "-"]


def test_target_env_switches_every_instrumentation() -> None:
    base = {"TRACEDRILL_DISABLE": "otel", "KEEP": "1"}
    assert overhead.target_env(base, True) == {"KEEP": "1"}
    assert overhead.target_env(base, False)["TRACEDRILL_DISABLE"] == "otel,xray,cloudwatch,rollbar"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_apps_that_are_not_up_are_a_usage_error_before_any_load(capsys: pytest.CaptureFixture[str]) -> None:
    on, off = (f"http://127.0.0.1:{_free_port()}" for _ in range(2))
    started = time.monotonic()
    assert main(["overhead", "--on", on, "--off", off, "--path", "/x", "--seconds", "0.2", "--rounds", "1"]) == 2
    assert f"--on {on}: nothing answers /x" in capsys.readouterr().out
    assert time.monotonic() - started < 10  # refused at once, not a measured phase of connection errors


def answering(status: str) -> Any:
    def app(environ: dict[str, Any], start_response: Any) -> list[bytes]:
        start_response(status, [("Content-Type", "text/plain"), ("Content-Length", "2")])
        return [b"ok"]

    return app


def overhead_between(on_status: str, off_status: str, path: str) -> tuple[str, str]:
    """Run a short `tracedrill overhead` against two served apps answering these statuses; their URLs."""
    on, off = serve("on", answering(on_status)), serve("off", answering(off_status))
    try:
        argv = ["overhead", "--on", on.url, "--off", off.url, "--path", path, "--seconds", "0.3", "--rounds", "1"]
        assert main(argv) == 0
    finally:
        on.stop()
        off.stop()
    return on.url, off.url


def test_a_path_answering_404_is_measured_but_said(capsys: pytest.CaptureFixture[str]) -> None:
    on, off = overhead_between("404 Not Found", "404 Not Found", "/nope")
    out = capsys.readouterr().out
    assert f"note: {on}/nope answers HTTP 404" in out and f"note: {off}/nope answers HTTP 404" in out
    assert "do not run the same code" not in out


def test_on_and_off_answering_differently_is_said(capsys: pytest.CaptureFixture[str]) -> None:
    on, _ = overhead_between("500 Internal Server Error", "200 OK", "/x")
    out = capsys.readouterr().out
    assert f"note: {on}/x answers HTTP 500" in out
    assert "note: /x answers HTTP 500 on and 200 off: the two instances do not run the same code" in out
