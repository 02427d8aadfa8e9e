"""`tracedrill ui`: the local stack, the target and Locust's web UI with the Verification tab.

Two processes, as DESIGN.md asks: Locust (gevent) serves the web UI and hosts the tab through its
extension points (``loadtests/verification_tab.py``); this harness process keeps the verifiers,
boto3 and the SDKs. They talk over loopback only: the plugin asks ``POST /verify`` when a test stops
or on "Verify now", and reads ``GET /status`` (``tracedrill/ui_api.py``) to show progress and to
record finished rounds as VERIFY entries in Locust's statistics.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from emulators._server import serve
from tracedrill.console import Console
from tracedrill.drill import EXIT_FAIL, EXIT_PASS, DrillOptions, DrillSession, drill_session, verify_session
from tracedrill.loadgen import WebUi, run_locust
from tracedrill.local import LOCAL_HOST
from tracedrill.ui_api import create_app
from tracedrill.verification_board import RoundSettings, VerificationBoard
from verifiers.model import read_ledger

log = logging.getLogger("tracedrill.ui")

LOCUST_WEB_PORT = 8089  # Locust's default --web-port
SUMMARY = "summary.json"


class VerificationRounds:
    """One verification at a time, in a background thread; a request while one runs queues one more
    (so a test that stops during a round is still verified afterwards)."""

    def __init__(self, board: VerificationBoard, verify: Callable[[VerificationBoard], None]) -> None:
        self._board, self._verify = board, verify
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._queued: str | None = None

    def request(self, reason: str) -> dict[str, Any]:
        with self._lock:
            if self._thread is not None:
                self._queued = reason
                return {"round": self._board.round_number + 1, "queued": True}
            number = self._board.begin(reason)
            self._thread = threading.Thread(target=self._run, name="verification", daemon=True)
            self._thread.start()
            return {"round": number, "queued": False}

    def busy(self) -> bool:
        with self._lock:
            return self._thread is not None

    def wait(self, timeout: float) -> bool:
        """Until no round runs or is queued; False on timeout."""
        end = time.monotonic() + timeout
        while self.busy():
            if time.monotonic() >= end:
                return False
            time.sleep(0.2)
        return True

    def _run(self) -> None:
        while True:
            try:
                self._verify(self._board)
            except Exception as exc:  # the UI must show it; the harness keeps serving
                log.exception("verification round failed")
                self._board.fail(f"{type(exc).__name__}: {exc}")
            with self._lock:
                if self._queued is None:
                    self._thread = None
                    return
                self._board.begin(self._queued)
                self._queued = None


def verify_round(session: DrillSession, options: DrillOptions, console: Console, board: VerificationBoard) -> None:
    """Verify everything this session has sent so far, and put the result on the board."""
    if not read_ledger(session.run_dir):
        board.fail("the sent-ledger has no requests yet: start a test first")
        return
    started = time.time()
    session.record.load_end = started
    session.record.save(session.run_dir)
    verify_session(session, options, console, observer=board)
    summary = _summary_since(session.run_dir / SUMMARY, started)
    board.finish(summary, "" if summary else f"no {SUMMARY} was written; see the console")


def _summary_since(path: Path, since: float) -> dict[str, Any] | None:
    """This round's summary: one left by an earlier round is not an answer."""
    try:
        if path.stat().st_mtime < since:
            return None
        return dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None


def web_url(extra_args: Sequence[str], default_host: str = LOCAL_HOST) -> str:
    """Where Locust's web UI listens, from the flags passed through to it."""
    host, port = default_host, str(LOCUST_WEB_PORT)
    for i, arg in enumerate(extra_args):
        name, _, value = arg.partition("=")
        if not value and i + 1 < len(extra_args):
            value = extra_args[i + 1]
        if name == "--web-host":
            host = value
        elif name in ("--web-port", "-P"):
            port = value
    shown = "localhost" if host in ("", "*", "0.0.0.0") else host
    return f"http://{shown}:{port}/"


def run_ui(options: DrillOptions, console: Console) -> int:
    """The whole `tracedrill ui`; returns Locust's exit code, or 1 when the last verification failed."""
    with drill_session(options, console) as session, contextlib.ExitStack() as stack:
        settings = RoundSettings(options.wait.settle_s, options.wait.deadline_s, options.fail_on_unverifiable)
        board = VerificationBoard(session.record.run_id, settings)
        rounds = VerificationRounds(board, lambda b: verify_round(session, options, console, b))
        api = serve("tracedrill-ui", create_app(board, rounds), LOCAL_HOST, 0)
        stack.callback(api.stop)
        plan = options.plan
        workers = f" (a master and {plan.processes} workers)" if plan.processes > 1 else ""
        console.step(
            f"Locust web UI{workers} at {web_url(plan.extra_args)} against {session.record.target_url}: "
            "start a test there; when it stops, the Verification tab verifies what it sent"
        )
        code = run_locust(plan, session.record.target_url, session.run_dir, console, web=WebUi(api.url))
        if rounds.busy():
            console.step("Locust has quit; finishing the verification in progress")
            rounds.wait(options.wait.deadline_s + 120)
        last = board.snapshot()
        if code == EXIT_PASS and last["verdict"] == "fail":
            return EXIT_FAIL
        return code
    raise AssertionError("unreachable")  # pragma: no cover - ExitStack does not swallow exceptions
