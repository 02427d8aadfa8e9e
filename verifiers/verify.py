"""Verify one run: poll every backend until it settles, then run its checks on what was found."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial

from verifiers.base import RunWindow, Verifier
from verifiers.expectations import Expectations
from verifiers.model import BackendReport, CheckResult, SentRequest
from verifiers.polling import PollResult, Progress, WaitSettings, ingest_lag, poll_all, poll_backend


def verify_run(
    sent: Sequence[SentRequest],
    window: RunWindow,
    verifiers: Sequence[Verifier],
    expectations: Expectations,
    settings: WaitSettings,
    progress: Progress,
    on_polled: Callable[[PollResult], None] | None = None,
) -> list[BackendReport]:
    """``on_polled`` sees every backend's polling result (last observation, costs of all polls): the budget."""
    for v in verifiers:
        if hasattr(v, "progress"):  # it can say why a poll takes long (Honeycomb splitting a big read)
            v.progress = partial(progress, v.backend)
    jobs = [
        partial(
            poll_backend,
            v.backend,
            partial(v.poll, window),
            v.item_count,
            v.seen_request_ids,
            settings,
            progress,
        )
        for v in verifiers
    ]
    request_end = {s.request_id: s.end for s in sent}
    reports = []
    for verifier, polled in zip(verifiers, poll_all(jobs), strict=True):
        if on_polled is not None:
            on_polled(polled)
        report = _report(verifier, polled, sent, expectations)
        if report.wait is not None:
            report.wait.lag_p50_s, report.wait.lag_p95_s = ingest_lag(polled.first_seen, request_end)
        reports.append(report)
    return reports


def _report(
    verifier: Verifier, polled: PollResult, sent: Sequence[SentRequest], expectations: Expectations
) -> BackendReport:
    if polled.observation is None:
        # Never one successful read: nothing can be checked, and that is a failure, not a pass.
        check = CheckResult(
            verifier.backend,
            "the backend answered the verifier's read API",
            "fail",
            f"no successful read before the deadline; last error: {polled.error}",
        )
        return BackendReport(verifier.backend, None, 0, None, 0, [check], polled.wait)
    report = verifier.verify(sent, polled.observation, expectations)
    report.wait = polled.wait
    if polled.wait is not None and polled.wait.ended_by == "deadline":
        # Items were still arriving: a failing check may only be late data, so it is timed-out, not fail.
        report.checks = [
            replace(c, status="timed-out", detail=f"still receiving at the deadline; {c.detail}")
            if c.status == "fail"
            else c
            for c in report.checks
        ]
        report.note = "counts were still changing when the deadline passed: raise --deadline if items arrive late"
    return report
