"""The data every verifier shares: what was sent, and what a check concluded."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from verifiers.field_types import record_from_json

Backend = Literal["honeycomb", "xray", "cloudwatch_logs", "rollbar"]
# Checks about the load itself (did the target answer?) sit beside the four backends in reports.
CheckGroup = Literal["honeycomb", "xray", "cloudwatch_logs", "rollbar", "load"]
# The sent-ledger route name of the harness's own readiness probe (recorded so its telemetry is ours).
PROBE_ROUTE_NAME = "readiness_probe"
BACKENDS: tuple[Backend, ...] = ("honeycomb", "xray", "cloudwatch_logs", "rollbar")

CheckStatus = Literal["pass", "fail", "unverifiable", "timed-out"]
# How a check with an empty subject begins its detail: it decided nothing either way (see verifiers/base.py).
NOTHING_TO_CHECK = "nothing to check"
# How a statistical check begins its detail when the run was too small to decide it (a longer one would).
TOO_FEW_TO_TELL = "too few requests to tell"


def is_vacuous(status: str, detail: str) -> bool:
    """Unverifiable for want of data, not because the backend cannot say: such a check does not fail a run."""
    return status == "unverifiable" and detail.startswith((NOTHING_TO_CHECK, TOO_FEW_TO_TELL))


@dataclass(frozen=True)
class SentRequest:
    """One line of the sent-ledger (``sent.jsonl``): a request the load generator sent."""

    request_id: str
    name: str  # route name, e.g. "home", "user_activities", "fault"
    method: str
    url: str
    path: str
    start: float  # epoch seconds
    end: float
    status: int | None  # None: no response (connection error)
    trace_id: str  # W3C, 32 lowercase hex; first 8 hex are epoch seconds
    parent_span_id: str  # the span id the generator put in traceparent (16 hex)
    xray_trace_id: str  # "1-{trace_id[:8]}-{trace_id[8:]}"
    worker: str
    # Sampling (issue 5). Without a traceparent (a root sampler under test) trace_id is the app's own,
    # read back from its W3C ``traceresponse`` header, and parent_span_id is "".
    traceparent_sent: bool = True  # the request carried the generator's traceparent (sampled flag 01)
    app_sampled: bool | None = None  # the sampled flag of the app's traceresponse; None: no such header
    app_process: str | None = None  # the app process that served it (X-Tracedrill-Process); None: not said

    @classmethod
    def from_json(cls, line: str) -> SentRequest:
        """The record of one ledger line; ValueError or TypeError when the line is no such record."""
        record = record_from_json(cls, line)
        problems = not_epoch_seconds((("start", record.start), ("end", record.end)))
        if not problems and record.end < record.start:
            problems.append(f"end {record.end} is before start {record.start}")
        if problems:
            raise ValueError("; ".join(problems))
        return record

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))


# Seconds since 1970 of 2000-01-01 and 2100-01-01: a time outside is a unit mistake (milliseconds) or garbage,
# and a window built from it would be centuries of reads.
EARLIEST_TIME_S, LATEST_TIME_S = 946_684_800, 4_102_444_800


def not_epoch_seconds(named_times: Iterable[tuple[str, float]]) -> list[str]:
    """A problem for each (name, time) that is no time in seconds between 2000 and 2100."""
    return [
        f"{name}: {value!r} is no time in seconds since 1970 between 2000 and 2100 (milliseconds?)"
        for name, value in named_times
        if not EARLIEST_TIME_S <= value <= LATEST_TIME_S  # NaN fails every comparison
    ]


class LedgerError(ValueError):
    """A sent-ledger line that is no record: the message names the file, the line and what to do."""


def read_ledger(path: Path) -> list[SentRequest]:
    """Read every ledger file: ``sent.jsonl`` or a directory of ``sent*.jsonl`` (one per worker)."""
    files = sorted(path.glob("sent*.jsonl")) if path.is_dir() else [path]
    return [_record(f, number, line) for f in files for number, line in _lines(f)]


def _record(path: Path, number: int, line: str) -> SentRequest:
    try:
        return SentRequest.from_json(line)
    except (ValueError, TypeError) as exc:  # JSONDecodeError is a ValueError; TypeError: wrong or missing keys
        cut = "" if line.endswith("\n") else " (the file's last line, cut short: its writer stopped mid-write)"
        raise LedgerError(
            f"{path}:{number}: not a sent-ledger record{cut}: {exc}. Every line must be one JSON object "
            "as loadtests.ledger.LedgerWriter writes it; remove or repair the line and verify again"
        ) from None


def _lines(path: Path) -> Iterator[tuple[int, str]]:
    with path.open(encoding="utf-8", errors="replace") as fh:
        for number, line in enumerate(fh, start=1):
            if line.strip():
                yield number, line


@dataclass(frozen=True)
class CheckResult:
    """One check's verdict; ``name`` reads as what was checked, ``detail`` as what a person can act on."""

    backend: CheckGroup
    name: str
    status: CheckStatus
    detail: str

    @property
    def vacuous(self) -> bool:
        """Unverifiable for want of data (no request of the route was sent, too few to decide)."""
        return is_vacuous(self.status, self.detail)


@dataclass
class WaitOutcome:
    """How polling a backend ended: ``settled`` (counts stopped growing) or ``deadline``."""

    ended_by: Literal["settled", "deadline", "not-polled"]
    seconds: float
    polls: int
    lag_p50_s: float | None = None  # ingest lag from request end to first seen, where measurable
    lag_p95_s: float | None = None
    complete_after_s: float | None = None  # from the first poll until the count last changed


@dataclass
class BackendReport:
    backend: Backend
    expected: int | None  # None: not decidable for this backend (e.g. X-Ray sampling is random)
    found: int
    missing: int | None
    extra: int
    checks: list[CheckResult] = field(default_factory=list)
    wait: WaitOutcome | None = None
    note: str = ""
    sampling: dict[str, Any] | None = None  # this backend's entry of summary.json "sampling" (issue 5)

    @property
    def status(self) -> CheckStatus:
        """The worst decided check; checks that had nothing to look at count only when nothing else ran."""
        decided = [c.status for c in self.checks if not c.vacuous]
        return worst(decided) if decided else worst(c.status for c in self.checks)


_SEVERITY: dict[CheckStatus, int] = {"pass": 0, "unverifiable": 1, "timed-out": 2, "fail": 3}


def worst(statuses: Iterable[CheckStatus]) -> CheckStatus:
    """The status a group of checks rolls up to: any fail fails; unverifiable never counts as pass."""
    result: CheckStatus = "pass"
    for status in statuses:
        if _SEVERITY[status] > _SEVERITY[result]:
            result = status
    return result
