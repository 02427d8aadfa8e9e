"""The shape every backend verifier has, and the helpers their checks share.

A verifier is used in two phases (``verifiers/verify.py`` drives them)::

    obs = verifier.poll(window)             # one complete read through the public API (may raise ReadError)
    verifier.item_count(obs)                # polled again until this stops growing
    verifier.seen_request_ids(obs)          # when each request id was first seen (ingest lag)
    report = verifier.verify(sent, obs, expectations)   # pure: no I/O

``poll`` raises :class:`ReadError` when it cannot finish a read (credentials refused, throttled,
unreachable): a half-read observation would turn into false "missing" findings. A read that
finishes but finds nothing (no dataset, no log group yet) is a complete, empty observation.
"""

from __future__ import annotations

import re
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar

from verifiers.expectations import MISSING, Expectations
from verifiers.model import BACKENDS, Backend, BackendReport, CheckResult, SentRequest

if TYPE_CHECKING:
    from verifiers.connections import Connections

MAX_EXAMPLES = 5  # example ids per check detail: enough to start digging, short enough to read


@dataclass(frozen=True)
class RunWindow:
    """The run being verified: when its requests were sent (epoch seconds) and the names it used."""

    run_id: str
    start: float
    end: float
    service_name: str
    log_group: str
    rollbar_environment: str

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"run window ends ({self.end}) before it starts ({self.start})")


class ReadError(Exception):
    """A read could not be completed; ``kind`` says whether retrying can help."""

    def __init__(
        self, backend: Backend, kind: Literal["denied", "throttled", "unreachable", "error"], message: str
    ) -> None:
        super().__init__(f"{backend}: {message}")
        self.backend = backend
        self.kind = kind


@dataclass
class Observation:
    """What one poll read. Subclasses add the backend's items.

    ``api_calls`` counts every API call by operation; ``cost_units`` counts what the provider meters
    (X-Ray traces scanned/retrieved, Honeycomb query results) for the budget ledger.
    """

    backend: Backend
    window: RunWindow
    started_at: float = field(default_factory=time.time)
    finished_at: float = 0.0
    api_calls: Counter[str] = field(default_factory=Counter)
    cost_units: Counter[str] = field(default_factory=Counter)
    notes: list[str] = field(default_factory=list)  # facts worth a line in the report (e.g. "no such log group")

    def called(self, operation: str, n: int = 1) -> None:
        self.api_calls[operation] += n


ObsT = TypeVar("ObsT", bound=Observation)


class Verifier(Protocol[ObsT]):
    """One backend. Constructed as ``XVerifier(connections, expectations=None)`` (None: the bundled file)."""

    @property
    def backend(self) -> Backend: ...

    def poll(self, window: RunWindow) -> ObsT: ...

    def seen_request_ids(self, obs: ObsT) -> set[str]: ...

    def item_count(self, obs: ObsT) -> int: ...

    def verify(self, sent: Sequence[SentRequest], obs: ObsT, expectations: Expectations) -> BackendReport: ...


def make_verifiers(
    connections: Connections,
    expectations: Expectations | None = None,
    backends: Iterable[Backend] = BACKENDS,
    *,
    min_intervals_s: Mapping[Backend, float] | None = None,
) -> list[Verifier[Any]]:
    """One verifier per backend, in ``BACKENDS`` order. Pass the run's expectations: the Honeycomb
    query breaks down on the attribute columns they name. ``min_intervals_s`` (WaitSettings'
    backend_intervals_s) relaxes Honeycomb's query pacing, for a local emulator started without the limit."""
    # Imported here: the backend modules import this one.
    from verifiers.cloudwatch_logs import CloudWatchLogsVerifier
    from verifiers.honeycomb import HoneycombVerifier
    from verifiers.rollbar import RollbarVerifier
    from verifiers.xray import XRayVerifier

    classes: dict[Backend, Callable[..., Verifier[Any]]] = {
        "honeycomb": HoneycombVerifier,
        "xray": XRayVerifier,
        "cloudwatch_logs": CloudWatchLogsVerifier,
        "rollbar": RollbarVerifier,
    }
    wanted = set(backends)
    verifiers = [classes[b](connections, expectations) for b in BACKENDS if b in wanted]
    honeycomb_s = (min_intervals_s or {}).get("honeycomb")
    for verifier in verifiers:
        if honeycomb_s is not None and isinstance(verifier, HoneycombVerifier):
            verifier.pace_queries(honeycomb_s)
    return verifiers


class RateLimiter:
    """At most ``calls`` per ``per_s`` seconds (sliding window); ``wait()`` sleeps until the next call may go."""

    def __init__(
        self,
        calls: int,
        per_s: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.calls, self.per_s = calls, per_s
        self._clock, self._sleep = clock, sleep
        self._recent: deque[float] = deque()

    def wait(self) -> None:
        while True:
            now = self._clock()
            while self._recent and now - self._recent[0] >= self.per_s:
                self._recent.popleft()
            if len(self._recent) < self.calls:
                self._recent.append(now)
                return
            self._sleep(self.per_s - (now - self._recent[0]))


# ---- check helpers -------------------------------------------------------------------------


@dataclass
class Findings:
    """Outcomes of one check over many items: how many were checked, and what was wrong where."""

    unit: str = "requests"
    checked: int = 0
    problems: list[tuple[str, str, str]] = field(default_factory=list)  # (item id, kind, detail)
    # Likely causes and where the failures cluster (e.g. one app process): added to a failing check's detail.
    notes: list[str] = field(default_factory=list)

    def ok(self) -> None:
        self.checked += 1

    def bad(self, item_id: str, kind: str, detail: str = "") -> None:
        self.checked += 1
        self.problems.append((item_id, kind, detail))

    def add(self, item_id: str, problems: Sequence[tuple[str, str]]) -> None:
        """Record one item: ok when ``problems`` (kind, detail) is empty, else one finding covering all."""
        if not problems:
            self.ok()
        elif len(problems) == 1:
            self.bad(item_id, *problems[0])
        else:
            self.bad(item_id, problems[0][0], "; ".join(f"{k}: {d}" if d else k for k, d in problems))

    def note(self, text: str) -> None:
        if text and text not in self.notes:
            self.notes.append(text)

    def ids(self, *kinds: str) -> set[str]:
        """The item ids with a problem of one of ``kinds`` (any kind when none is given)."""
        return {item for item, kind, _ in self.problems if not kinds or kind in kinds}


def short_id(item_id: str) -> str:
    """Ids are shown whole (people grep for them); only a runaway value is cut."""
    return item_id if len(item_id) <= 48 else item_id[:45] + "…"


def verdict(backend: Backend, name: str, findings: Findings, *, empty: str | None = None) -> CheckResult:
    """A check's result from its findings. ``empty`` is the reason to report unverifiable when nothing was
    checked (a per-request check with no request to look at decides nothing); None means an empty check
    passes (e.g. "no extra items" is decided by finding none)."""
    if findings.checked == 0 and empty is not None:
        return CheckResult(backend, name, "unverifiable", f"nothing to check: {empty}")
    if not findings.problems:
        return CheckResult(backend, name, "pass", f"all {findings.checked} {findings.unit} ok")
    kinds = Counter(kind for _, kind, _ in findings.problems)
    summary = ", ".join(f"{kind}: {n}" for kind, n in kinds.most_common())
    examples = "; ".join(
        f"{short_id(item)} {kind}{' (' + detail + ')' if detail else ''}"
        for item, kind, detail in findings.problems[:MAX_EXAMPLES]
    )
    notes = "".join(f". {note}" for note in findings.notes)
    return CheckResult(
        backend,
        name,
        "fail",
        f"{len(findings.problems)} of {findings.checked} {findings.unit} failed ({summary}); e.g. {examples}{notes}",
    )


def by_process(requests: Iterable[SentRequest], failed: set[str]) -> str:
    """Where failures cluster: ``Failed per app process: 7c1f/812 40 of 41, 7c1f/813 0 of 39``, when the
    app named the process that served each request; "" when it did not or nothing failed."""
    totals: Counter[str] = Counter()
    bad: Counter[str] = Counter()
    for r in requests:
        if r.app_process:
            totals[r.app_process] += 1
            bad[r.app_process] += r.request_id in failed
    if not +bad:
        return ""
    return "Failed per app process: " + ", ".join(f"{p} {bad[p]} of {n}" for p, n in sorted(totals.items()))


def unverifiable(backend: Backend, name: str, reason: str) -> CheckResult:
    return CheckResult(backend, name, "unverifiable", reason)


def times(n: int) -> str:
    return {0: "none", 1: "once", 2: "twice"}.get(n, f"{n} times")


C = TypeVar("C")


@dataclass(frozen=True)
class CheckSpec(Generic[C]):
    """A named check over a backend's context ``C``. Names depend only on the expectations, so a run
    whose data cannot be read still lists every check (as unverifiable, with the reason)."""

    name: str
    run: Callable[[C], Findings | CheckResult]
    empty: str | None = None  # reason an empty check is unverifiable; None: nothing found is a pass


def run_spec(backend: Backend, spec: CheckSpec[C], context: C) -> Findings | CheckResult:
    """``spec.run(context)``; a pattern of the expectations that no longer compiles once a request's values
    are filled in (loading tries typical values, not every one) makes the check unverifiable, not the run crash."""
    try:
        return spec.run(context)
    except re.error as exc:
        return unverifiable(
            backend,
            spec.name,
            f"a regex of the expectations file does not compile with a request's values filled in ({exc}): fix it",
        )


def run_checks(backend: Backend, specs: Sequence[CheckSpec[C]], context: C) -> list[CheckResult]:
    results = []
    for spec in specs:
        outcome = run_spec(backend, spec, context)
        results.append(
            outcome if isinstance(outcome, CheckResult) else verdict(backend, spec.name, outcome, empty=spec.empty)
        )
    return results


def all_unverifiable(backend: Backend, specs: Sequence[CheckSpec[Any]], reason: str) -> list[CheckResult]:
    return [unverifiable(backend, spec.name, reason) for spec in specs]


def lookup_path(data: Any, path: str) -> Any:
    """``data["a"]["b"]...`` for the dotted ``path``; keys that themselves contain dots are tried first.

    Returns ``MISSING`` when any step is absent.
    """
    if path == "":
        return data
    if not isinstance(data, dict):
        return MISSING
    if path in data:
        return data[path]
    parts = path.split(".")
    for i in range(len(parts) - 1, 0, -1):
        head = ".".join(parts[:i])
        if head in data:
            found = lookup_path(data[head], ".".join(parts[i:]))
            if found is not MISSING:
                return found
    return MISSING
