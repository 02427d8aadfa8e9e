"""The live state of verification in `tracedrill ui`: what the Verification tab shows.

Filled from three places: the round's start and end (``begin``/``finish``, the end read from the
run's summary.json so the tab shows exactly what the report says), the polling progress messages,
and interim reports. For those, every verifier is wrapped (:class:`LiveVerifier`): each time a poll
reads a backend, its pure ``verify`` runs on that observation, so expected / found / missing / extra
move while polling goes on. Checks stay ``pending`` until the round ends.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Generic, Literal

from verifiers.base import ObsT, RunWindow, Verifier
from verifiers.expectations import Expectations
from verifiers.model import BACKENDS, Backend, BackendReport, SentRequest

Phase = Literal["idle", "verifying", "done", "error"]
PENDING = "pending"


@dataclass
class BackendRow:
    backend: Backend
    state: str = PENDING  # pending, or the backend's rolled-up check status
    expected: int | None = None
    found: int | None = None
    missing: int | None = None
    extra: int | None = None
    progress: str = ""  # the last polling message, e.g. "83 items read"
    waited: str = ""  # how waiting ended, e.g. "settled 12s"
    note: str = ""


@dataclass
class CheckRow:
    backend: str  # a backend, or another group the summary reports checks under (e.g. "load")
    name: str
    state: str  # pending, pass, fail, unverifiable, timed-out
    detail: str


@dataclass
class RoundSettings:
    settle_s: float
    deadline_s: float
    fail_on_unverifiable: bool


@dataclass
class _Round:
    number: int = 0
    reason: str = ""
    phase: Phase = "idle"
    started_at: float | None = None
    finished_at: float | None = None
    sent: int | None = None
    verdict: str | None = None  # pass | fail, once the round ends with a summary
    error: str = ""
    backends: dict[Backend, BackendRow] = field(default_factory=dict)
    checks: list[CheckRow] = field(default_factory=list)
    sampling: Any = None  # summary.json's "sampling" and "budget", whatever their producers put there
    budget: Any = None


class VerificationBoard:
    """Thread-safe: the harness's polling threads write, the loopback API reads ``snapshot()``."""

    def __init__(self, run_id: str, settings: RoundSettings, backends: Sequence[Backend] = BACKENDS) -> None:
        self._lock = threading.Lock()
        self._run_id = run_id
        self._settings = settings
        self._backends = tuple(backends)
        self._round = _Round(backends={b: BackendRow(b) for b in self._backends})

    # ---- the round's life ----------------------------------------------------------------------

    def begin(self, reason: str) -> int:
        with self._lock:
            number = self._round.number + 1
            self._round = _Round(
                number=number,
                reason=reason,
                phase="verifying",
                started_at=time.time(),
                backends={b: BackendRow(b) for b in self._backends},
            )
            return number

    def finish(self, summary: Mapping[str, Any] | None, error: str = "") -> None:
        """End the round from the summary the reports were written from (None: no summary, ``error`` says why)."""
        with self._lock:
            r = self._round
            r.finished_at = time.time()
            if summary is None:
                r.phase, r.error = "error", error or "verification ended without a summary"
                return
            r.phase, r.error = "done", error
            r.verdict = summary.get("verdict")
            r.sent = (summary.get("sent") or {}).get("total", r.sent)
            for backend, data in (summary.get("backends") or {}).items():
                if backend in r.backends:
                    r.backends[backend] = _final_row(backend, data, r.backends[backend].progress)
            r.checks = [
                CheckRow(c["backend"], c["name"], c["status"], c.get("detail", "")) for c in summary.get("checks", [])
            ]
            r.sampling, r.budget = summary.get("sampling"), summary.get("budget")

    def fail(self, error: str) -> None:
        self.finish(None, error)

    # ---- fed while polling (the VerificationObserver protocol of tracedrill.drill) ---------------

    def watch(
        self, verifiers: list[Verifier[Any]], sent: Sequence[SentRequest], expectations: Expectations
    ) -> list[Verifier[Any]]:
        with self._lock:
            self._round.sent = len(sent)
        return [LiveVerifier(v, self, sent, expectations) for v in verifiers]

    def progress(self, backend: Backend, message: str) -> None:
        with self._lock:
            if backend in self._round.backends:
                self._round.backends[backend].progress = message

    def interim(self, report: BackendReport) -> None:
        """A report computed on the latest poll: counts are shown, checks stay pending with what they say so far."""
        with self._lock:
            row = self._round.backends.get(report.backend)
            if row is None or self._round.phase != "verifying":
                return
            row.expected, row.found, row.missing = report.expected, report.found, report.missing
            row.extra = report.extra
            others = [c for c in self._round.checks if c.backend != report.backend]
            mine = [CheckRow(c.backend, c.name, PENDING, f"so far {c.status}: {c.detail}") for c in report.checks]
            self._round.checks = others + mine

    # ---- read ----------------------------------------------------------------------------------

    @property
    def round_number(self) -> int:
        with self._lock:
            return self._round.number

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            r = self._round
            return {
                "run_id": self._run_id,
                "round": r.number,
                "reason": r.reason,
                "phase": r.phase,
                "started_at": r.started_at,
                "finished_at": r.finished_at,
                "now": time.time(),
                "sent": r.sent,
                "verdict": r.verdict,
                "error": r.error,
                "settings": asdict(self._settings),
                "backends": [asdict(r.backends[b]) for b in self._backends],
                "checks": [asdict(c) for c in r.checks],
                "sampling": r.sampling,
                "budget": r.budget,
            }


def _final_row(backend: Backend, data: Mapping[str, Any], progress: str) -> BackendRow:
    wait = data.get("wait") or {}
    waited = f"{wait['ended_by']} {wait['seconds']:.0f}s" if wait.get("ended_by") else ""
    return BackendRow(
        backend=backend,
        state=str(data.get("status", "")),
        expected=data.get("expected"),
        found=data.get("found"),
        missing=data.get("missing"),
        extra=data.get("extra"),
        progress=progress,
        waited=waited,
        note=str(data.get("note") or ""),
    )


class LiveVerifier(Generic[ObsT]):
    """A verifier that also reports an interim result to the board after every successful poll."""

    def __init__(
        self,
        inner: Verifier[ObsT],
        board: VerificationBoard,
        sent: Sequence[SentRequest],
        expectations: Expectations,
    ) -> None:
        self._inner, self._board, self._sent, self._expectations = inner, board, sent, expectations

    @property
    def backend(self) -> Backend:
        return self._inner.backend

    def poll(self, window: RunWindow) -> ObsT:
        return self._inner.poll(window)

    def seen_request_ids(self, obs: ObsT) -> set[str]:
        return self._inner.seen_request_ids(obs)

    def item_count(self, obs: ObsT) -> int:
        # Called once per successful poll: the moment to show what this observation already proves.
        count = self._inner.item_count(obs)
        try:
            self._board.interim(self._inner.verify(self._sent, obs, self._expectations))
        except Exception as exc:  # an interim view must never stop the verification itself
            self._board.progress(self.backend, f"{count} items read (interim check failed: {exc})")
        return count

    def verify(self, sent: Sequence[SentRequest], obs: ObsT, expectations: Expectations) -> BackendReport:
        return self._inner.verify(sent, obs, expectations)
