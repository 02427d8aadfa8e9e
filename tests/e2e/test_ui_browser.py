"""A person's view of `tracedrill ui`: headless Chromium (the system package, driven by Playwright)
starts a short test in Locust's web UI and watches the Verification tab until all four backends have
a verdict, presses "Verify now", then quits Locust and reads its reports. The screenshot lands in
test-artifacts/ui-verification.png."""

from __future__ import annotations

import csv
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
BACKENDS = ("honeycomb", "xray", "cloudwatch_logs", "rollbar")
# Flags that keep a headless Chromium quiet and self-contained on a machine without a display or network.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TAB = "#tracedrill-verification"
# VERIFY failures: a check that could not be decided counts too, unless the run passed --allow-unverifiable.
FAILING = ("fail", "timed-out", "unverifiable")


def _chromium() -> str:
    path = os.environ.get("TRACEDRILL_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        pytest.fail("the browser test needs Chromium: `make test` installs Debian's chromium when run as root")
    return path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_for_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout: float = 60.0) -> None:
    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        assert proc.poll() is None, f"tracedrill ui exited early:\n{log.read_text()[-3000:]}"
        try:
            with direct.open(url, timeout=2):
                return
        except OSError:
            time.sleep(0.3)
    pytest.fail(f"Locust's web UI did not answer at {url}:\n{log.read_text()[-3000:]}")


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=_chromium(), args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def ui(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes], Path]]:
    """`tracedrill ui` on a free port; yields (web UI url, process, reports dir)."""
    port = _free_port()
    reports = tmp_path / "reports"
    log = tmp_path / "ui.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AWS_", "ROLLBAR_", "HONEYCOMB_"))}
    command = [
        sys.executable, "-m", "tracedrill.cli", "ui",
        "--users", "5", "--spawn-rate", "5", "--run-time", "5s",
        "--settle", "3", "--deadline", "60", "--reports-dir", str(reports),
        "--", "--web-port", str(port),
    ]  # fmt: skip
    with log.open("wb") as out:
        # Its own process group: Ctrl-C (SIGINT to the group) reaches the harness and Locust, as in a terminal.
        proc = subprocess.Popen(
            command, cwd=tmp_path, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        _wait_for_http(url, proc, log)
        yield url, proc, reports
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()


def _wait_for_round(page: Page, number: int, timeout_s: float = 90.0) -> None:
    page.wait_for_selector(f'{TAB}[data-round="{number}"][data-phase="done"]', timeout=timeout_s * 1000)


def test_verification_tab_shows_a_verdict_for_every_backend(
    browser: Browser, ui: tuple[str, subprocess.Popen[bytes], Path]
) -> None:
    url, proc, reports = ui
    page = browser.new_page(viewport={"width": 1400, "height": 1100})
    page.goto(url)
    page.get_by_role("button", name="Start").click()  # the form is prefilled: 5 users, 5 s
    page.get_by_role("tab", name="Verification").click()
    page.wait_for_selector(f"{TAB}:not([hidden])", timeout=15_000)

    # The test stops after 5 s; verification starts on its own and the tab follows it while polling.
    page.wait_for_selector(f'{TAB}[data-phase="verifying"]', timeout=30_000)
    _wait_for_round(page, 1)
    run_dir = (reports / "latest").resolve()
    summary = json.loads((run_dir / "summary.json").read_text())

    # A verdict for every backend, the same as the run's summary.json, and no check left pending.
    rows = page.locator("#td-backends tbody tr")
    assert rows.count() == 4
    states = {rows.nth(i).get_attribute("data-backend"): rows.nth(i).get_attribute("data-state") for i in range(4)}
    assert states == {b: summary["backends"][b]["status"] for b in BACKENDS}
    assert set(states.values()) <= {"pass", "fail", "unverifiable", "timed-out"}
    assert page.get_attribute("#td-headline [data-verdict]", "data-verdict") == summary["verdict"]
    checks = page.locator("#td-checks tbody tr")
    assert checks.count() == len(summary["checks"]) > 10
    assert page.locator('#td-checks tbody tr[data-state="pending"]').count() == 0
    # The local stack loses nothing: every span the 5 s test caused is found, none extra.
    honeycomb = page.locator('#td-backends tr[data-backend="honeycomb"] td')
    expected, found, missing, extra = (honeycomb.nth(i).inner_text() for i in range(2, 6))
    assert int(expected) == summary["backends"]["honeycomb"]["expected"] > 20
    assert found == expected and (missing, extra) == ("0", "0")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "ui-verification.png"))

    # Results are Locust statistics too: one VERIFY entry per backend, failed exactly when the backend failed.
    verify = _verify_stats(page, url)
    for backend in BACKENDS:
        assert verify[backend] == (1, int(states[backend] in FAILING)), backend

    # "Verify now" runs another round over the same requests.
    page.click("#td-verify-now")
    _wait_for_round(page, 2)
    assert "Verify now" in page.inner_text("#td-headline")
    verify = _verify_stats(page, url, rounds=2)
    assert all(verify[b][0] == 2 for b in BACKENDS)
    any_failure = any(s["num_failures"] for s in page.request.get(url + "stats/requests").json()["stats"])

    # Ctrl-C: Locust writes its CSV and HTML reports with the VERIFY entries; its exit code counts their failures.
    os.killpg(proc.pid, signal.SIGINT)
    assert proc.wait(60) == (1 if any_failure else 0)
    with (run_dir / "locust_stats.csv").open() as fh:
        csv_rows = {r["Name"]: r for r in csv.DictReader(fh) if r["Type"] == "VERIFY"}
    for backend in BACKENDS:
        assert (int(csv_rows[backend]["Request Count"]), int(csv_rows[backend]["Failure Count"])) == verify[backend]
    assert "VERIFY" in (run_dir / "locust.html").read_text()
    assert (run_dir / "junit.xml").is_file()


def _verify_stats(page: Page, url: str, rounds: int = 1, timeout_s: float = 20.0) -> dict[str, tuple[int, int]]:
    """Locust's own statistics of the VERIFY entries: name -> (count, failures).

    The plugin records a finished round from a greenlet, a moment after the tab shows it: wait for the
    backend entries of ``rounds`` rounds (bounded) instead of reading once.
    """
    deadline = time.monotonic() + timeout_s
    while True:
        stats = page.request.get(url + "stats/requests").json()["stats"]
        verify = {s["name"]: (s["num_requests"], s["num_failures"]) for s in stats if s["method"] == "VERIFY"}
        if all(verify.get(b, (0, 0))[0] >= rounds for b in BACKENDS) or time.monotonic() > deadline:
            return verify
        time.sleep(0.5)
