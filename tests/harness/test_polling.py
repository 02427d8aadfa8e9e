"""The waiting loop: settles when counts stop growing, gives up at the deadline, survives poll errors."""

from __future__ import annotations

from collections.abc import Sequence

from verifiers.model import Backend
from verifiers.polling import WaitSettings, ingest_lag, poll_backend


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.5)


def _poll(counts: Sequence[int | Exception], clock: FakeClock, settings: WaitSettings, backend: Backend = "xray"):
    it = iter(counts)
    last: list[int] = [0]

    def poll() -> list[str]:
        try:
            value = next(it)
        except StopIteration:
            value = last[0]
        if isinstance(value, Exception):
            raise value
        last[0] = value
        return [f"r{i}" for i in range(value)]

    return poll_backend(backend, poll, len, set, settings, lambda b, m: None, clock=clock, sleep=clock.sleep)


def test_settles_once_counts_stop_growing() -> None:
    clock = FakeClock()
    result = _poll([1, 5, 9, 9, 9, 9, 9, 9, 9, 9, 9, 9], clock, WaitSettings(settle_s=3, deadline_s=60, interval_s=1))
    assert result.wait is not None
    assert result.wait.ended_by == "settled"
    assert len(result.observation) == 9
    assert result.wait.complete_after_s == 2.0  # the count last changed at the third poll


def test_deadline_when_counts_keep_growing() -> None:
    clock = FakeClock()
    growing = list(range(1, 100))
    result = _poll(growing, clock, WaitSettings(settle_s=3, deadline_s=10, interval_s=1))
    assert result.wait is not None
    assert result.wait.ended_by == "deadline"
    assert 10 <= result.wait.seconds < 12


def test_poll_errors_are_kept_and_polling_goes_on() -> None:
    clock = FakeClock()
    result = _poll([ConnectionError("refused"), 2, 2, 2, 2, 2, 2], clock, WaitSettings(settle_s=2, interval_s=1))
    assert result.wait is not None and result.wait.ended_by == "settled"
    assert result.error is None and len(result.observation) == 2


def test_a_backend_that_never_answers_ends_at_the_deadline_with_its_error() -> None:
    clock = FakeClock()
    result = _poll([ConnectionError("refused")] * 100, clock, WaitSettings(settle_s=2, deadline_s=5, interval_s=1))
    assert result.observation is None
    assert result.error == "ConnectionError: refused"
    assert result.wait is not None and result.wait.ended_by == "deadline"


def test_honeycomb_is_polled_no_faster_than_its_query_rate_limit() -> None:
    clock = FakeClock()
    result = _poll([3] * 20, clock, WaitSettings(settle_s=10, deadline_s=60, interval_s=0), backend="honeycomb")
    assert result.wait is not None
    # 10 query results a minute: polls at least 6 s apart, so 10 s of stability takes three polls.
    assert result.wait.polls == 3
    assert result.wait.seconds >= 13


def test_first_seen_times_give_ingest_lag() -> None:
    p50, p95 = ingest_lag({"a": 10.0, "b": 12.0, "c": 20.0}, {"a": 9.0, "b": 9.0, "c": 9.0, "d": 1.0})
    assert p50 == 3.0
    assert p95 is not None and 3.0 < p95 <= 11.0
    assert ingest_lag({}, {"a": 1.0}) == (None, None)
