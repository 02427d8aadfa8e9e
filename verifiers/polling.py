"""Wait for eventually-consistent backends: poll until counts stop growing, or a deadline passes.

Every backend is polled from its own thread, at no more than its API's rate limit allows, so a
slow backend never holds up a fast one and the verifier never exceeds a quota it would pay for.
"""

from __future__ import annotations

import math
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from verifiers.model import Backend, WaitOutcome

# Seconds between polls that each API's published limits allow for one full read.
# Honeycomb: "Create Query Result" is limited to 10 a minute; one poll runs one query.
MIN_POLL_INTERVAL_S: dict[Backend, float] = {
    "honeycomb": 6.5,
    "xray": 1.0,
    "cloudwatch_logs": 1.0,
    "rollbar": 1.0,
}


@dataclass(frozen=True)
class WaitSettings:
    settle_s: float = 8.0  # counts unchanged this long (and at least two polls): the backend is complete
    deadline_s: float = 120.0  # give up waiting after this long; checks then run on what was found
    interval_s: float = 1.0  # poll at least this far apart (backends may need longer, see above)
    # Replaces MIN_POLL_INTERVAL_S for a backend whose limit does not apply: only a local emulator started
    # without it (e.g. tracedrill mutants' stack). The real services' limits always keep the defaults.
    backend_intervals_s: Mapping[Backend, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name in ("settle_s", "deadline_s", "interval_s"):
            value = getattr(self, name)
            if not math.isfinite(value) or value < 0:  # nan would never settle, inf never end
                raise ValueError(f"{name} must be a finite number >= 0, got {value}")
        for backend, seconds in self.backend_intervals_s.items():
            if seconds < 0:
                raise ValueError(f"the poll interval of {backend} must be >= 0, got {seconds}")

    def min_interval(self, backend: Backend) -> float:
        """Seconds between two polls of ``backend``: what its API allows, unless overridden."""
        floor = self.backend_intervals_s.get(backend, MIN_POLL_INTERVAL_S.get(backend, 0.0))
        return max(self.interval_s, floor)


@dataclass
class PollResult:
    """The last observation of one backend, how waiting ended, and when each request id was first seen."""

    backend: Backend
    observation: Any = None
    wait: WaitOutcome | None = None
    first_seen: dict[str, float] = field(default_factory=dict)
    error: str | None = None  # the last poll error; with observation None, the backend never answered
    # Summed over EVERY successful poll (each observation counts only its own), for the budget ledger.
    api_calls: Counter[str] = field(default_factory=Counter)
    cost_units: Counter[str] = field(default_factory=Counter)
    failed_polls: int = 0  # their calls are not in the counters: a failed read returns no observation

    def add_costs(self, observation: Any) -> None:
        self.api_calls.update(getattr(observation, "api_calls", None) or {})
        self.cost_units.update(getattr(observation, "cost_units", None) or {})


Progress = Callable[[Backend, str], None]
PROGRESS_EVERY_S = 5.0  # while counts are unchanged, say so this often (a change is reported at once)


def poll_backend(
    backend: Backend,
    poll: Callable[[], Any],
    item_count: Callable[[Any], int],
    seen_ids: Callable[[Any], set[str]],
    settings: WaitSettings,
    progress: Progress,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> PollResult:
    result = PollResult(backend)
    interval = settings.min_interval(backend)
    started = clock()
    last_count: int | None = None
    last_change = started
    polls = 0
    last_report = started
    while True:
        polled_at = clock()
        try:
            observation = poll()
        except Exception as exc:  # a backend down or misconfigured: keep trying until the deadline
            result.error = f"{type(exc).__name__}: {exc}"
            result.failed_polls += 1
            progress(backend, f"poll failed: {result.error}")
        else:
            polls += 1
            result.observation = observation
            result.add_costs(observation)
            result.error = None
            for request_id in seen_ids(observation) - result.first_seen.keys():
                result.first_seen[request_id] = polled_at
            count = item_count(observation)
            message = None
            if count != last_count:
                last_count, last_change = count, polled_at
                message = f"{count} items read"  # everything the reads returned; the table counts the run's own
            elif polled_at - last_report >= PROGRESS_EVERY_S:
                message = f"{count} items, unchanged for {polled_at - last_change:.0f}s"
            if message:
                progress(backend, message)
                last_report = polled_at
            stable_for = polled_at - last_change
            if polls >= 2 and stable_for >= settings.settle_s:
                result.wait = WaitOutcome(
                    "settled", clock() - started, polls, complete_after_s=round(last_change - started, 3)
                )
                return result
        if clock() - started >= settings.deadline_s:
            result.wait = WaitOutcome(
                "deadline", clock() - started, polls, complete_after_s=round(last_change - started, 3)
            )
            return result
        sleep(max(0.0, interval - (clock() - polled_at)))


def poll_all(jobs: Sequence[Callable[[], PollResult]]) -> list[PollResult]:
    """Run each backend's polling loop in its own thread; results in the order given."""
    results: list[PollResult | None] = [None] * len(jobs)

    def run(index: int) -> None:
        results[index] = jobs[index]()

    threads = [threading.Thread(target=run, args=(i,), name=f"poll-{i}", daemon=True) for i in range(len(jobs))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return [r for r in results if r is not None]


def ingest_lag(first_seen: dict[str, float], request_end: dict[str, float]) -> tuple[float | None, float | None]:
    """p50 and p95 of (first seen - request end). An upper bound: polling starts once the load stops."""
    lags = sorted(max(0.0, seen - request_end[rid]) for rid, seen in first_seen.items() if rid in request_end)
    if not lags:
        return None, None
    if len(lags) == 1:
        return lags[0], lags[0]
    cuts = statistics.quantiles(lags, n=20, method="inclusive")
    return statistics.median(lags), cuts[18]
