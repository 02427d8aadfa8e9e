"""Set arithmetic every verifier shares: what was expected, found, missing, extra or duplicated, by id.

Items are keyed by ids the load generator chose (request id, trace id), so loss and duplication
are counted, not guessed. ``BackendReport``'s numbers all come from :func:`tally`:

- ``expected``: how many items the sent requests should have produced (None when not decidable,
  e.g. X-Ray sampling picks requests at random);
- ``found``: expected items that were found, each counted once however often it arrived
  (without an expectation: distinct items that belong to a sent request);
- ``missing``: expected items not found (None when ``expected`` is None);
- ``extra``: items that belong to no request we sent;
- ``duplicates``: items that arrived more often than expected.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Generic, TypeVar

from verifiers.model import Backend, BackendReport, CheckResult, SentRequest

K = TypeVar("K", bound=Hashable)


class SentIndex:
    """The sent-ledger indexed by every id a backend may report back."""

    def __init__(self, sent: Sequence[SentRequest]) -> None:
        self.all = list(sent)
        self.by_request_id = {s.request_id: s for s in sent}
        self.by_trace_id = {s.trace_id: s for s in sent}
        self.by_xray_id = {s.xray_trace_id: s for s in sent}
        # A request with no response may or may not have produced telemetry: never expected, never extra.
        self.answered = [s for s in sent if s.status is not None]
        self.unanswered = len(sent) - len(self.answered)


@dataclass(frozen=True)
class Tally(Generic[K]):
    expected: Counter[K] | None  # key -> how many times it should appear
    found: Counter[K]  # keys that belong to a sent request -> how many times they appeared
    extra: Counter[K]  # keys that belong to no sent request

    @property
    def missing(self) -> Counter[K] | None:
        if self.expected is None:
            return None
        return self.expected - self.found  # Counter subtraction keeps only positive shortfalls

    @property
    def duplicates(self) -> Counter[K]:
        """Surplus arrivals: beyond the expected count, or beyond one for keys with no expectation."""
        surplus: Counter[K] = Counter()
        for key, n in self.found.items():
            allowed = self.expected[key] if self.expected is not None and self.expected[key] > 0 else 1
            if n > allowed:
                surplus[key] = n - allowed
        return surplus

    @property
    def expected_total(self) -> int | None:
        return None if self.expected is None else sum(self.expected.values())

    @property
    def found_total(self) -> int:
        if self.expected is None:
            return len(self.found)
        return sum(min(n, self.found[key]) for key, n in self.expected.items())

    @property
    def missing_total(self) -> int | None:
        missing = self.missing
        return None if missing is None else sum(missing.values())

    @property
    def extra_total(self) -> int:
        return sum(self.extra.values())

    def report(self, backend: Backend, checks: list[CheckResult], note: str = "") -> BackendReport:
        return BackendReport(
            backend, self.expected_total, self.found_total, self.missing_total, self.extra_total, checks, note=note
        )


def tally(found: Iterable[K], *, ours: Callable[[K], bool], expected: Mapping[K, int] | Iterable[K] | None) -> Tally[K]:
    """Split ``found`` into ours (a sent request's) and extra, and compare ours with ``expected``.

    ``expected`` may list keys (each once) or map key -> count; None when it cannot be decided.
    """
    mine: Counter[K] = Counter()
    extra: Counter[K] = Counter()
    for key in found:
        (mine if ours(key) else extra)[key] += 1
    if expected is None:
        want = None
    elif isinstance(expected, Mapping):
        want = Counter({k: n for k, n in expected.items() if n > 0})
    else:
        want = Counter(expected)
    return Tally(want, mine, extra)
