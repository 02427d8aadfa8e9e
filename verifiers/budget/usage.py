"""What a run cost each backend, counted from what the verifiers read through the public APIs.

Counting rules (a run's usage is what the backend *accepted* for requests in the sent-ledger):

- Honeycomb ``events``: every query-result row of a sent trace, times its COUNT: spans, span events and
  span links alike (each is one Honeycomb event; events and links are rows with ``meta.annotation_type``).
  COUNT is weighted by an event's sample rate, so with head sampling in the app this errs high.
- X-Ray ``traces_recorded``: distinct trace ids found (summaries or full traces) that a sent request carried.
- CloudWatch Logs ``bytes_ingested``: for every line carrying a sent request id, its UTF-8 message bytes
  plus 26 (PutLogEvents' per-event overhead, as AWS meters ingestion); ``events_ingested`` counts them.
- Rollbar ``occurrences``: occurrences whose request id is in the sent-ledger.

Items found in the run's window that belong to no sent request are *unattributed*: reported, never
counted (in the cloud they may be another run's, which that run counts).

The verifier's own cost, summed over every poll: X-Ray ``traces_scanned`` (GetTraceSummaries'
TracesProcessedCount) and ``traces_retrieved`` (traces returned by BatchGetTraces, on every poll);
Honeycomb ``query_results`` (Create Query Result calls, limited to 10 a minute); CloudWatch
``bytes_read`` (message bytes FilterLogEvents returned: a lower bound of what it scanned); ``api_calls``.

When a backend could not be counted (Honeycomb without the Query Data API, or a backend that never
answered) its traffic usage is *estimated* from the per-request emission (``forecast.Emission``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from verifiers.expectations import Expectations
from verifiers.matching import SentIndex
from verifiers.model import Backend, SentRequest
from verifiers.polling import PollResult

Source = Literal["measured", "lower-bound", "estimated"]

LOG_EVENT_OVERHEAD_BYTES = 26  # PutLogEvents: a batch's size is the sum of UTF-8 messages + 26 bytes per event

# Metrics the backend accepted (re-verifying a run replaces them) and the verifier's own costs (they add up).
ACCEPTED_METRICS: dict[Backend, tuple[str, ...]] = {
    "honeycomb": ("events",),
    "xray": ("traces_recorded",),
    "cloudwatch_logs": ("bytes_ingested", "events_ingested"),
    "rollbar": ("occurrences",),
}
VERIFICATION_METRICS: dict[Backend, tuple[str, ...]] = {
    "honeycomb": ("query_results", "api_calls"),
    "xray": ("traces_scanned", "traces_retrieved", "api_calls"),
    "cloudwatch_logs": ("bytes_read", "api_calls"),
    "rollbar": ("api_calls",),
}
# PollResult.cost_units key -> ledger metric
_COST_UNITS: dict[Backend, dict[str, str]] = {
    "honeycomb": {"query_results": "query_results"},
    "xray": {"traces_scanned": "traces_scanned", "traces_retrieved": "traces_retrieved"},
    "cloudwatch_logs": {"bytes_read": "bytes_read"},
    "rollbar": {},
}


@dataclass
class BackendUsage:
    backend: Backend
    accepted: dict[str, float] | None  # None: could not be counted (then estimated by the caller)
    verification: dict[str, float]
    unattributed: dict[str, float] = field(default_factory=dict)
    source: Source = "measured"
    note: str = ""

    def metrics(self) -> dict[str, float]:
        return {**(self.accepted or {}), **self.verification}


def log_event_bytes(message: str) -> int:
    """What one log line costs against the ingestion allowance."""
    return len(message.encode("utf-8")) + LOG_EVENT_OVERHEAD_BYTES


def measure(polled: PollResult, sent: Sequence[SentRequest], expectations: Expectations) -> BackendUsage:
    """Usage of one backend from its polling result (the last observation and the costs of every poll)."""
    backend = polled.backend
    verification = _verification(backend, polled)
    obs = polled.observation
    if obs is None:
        return BackendUsage(
            backend, None, verification, source="estimated", note=f"the backend never answered ({polled.error})"
        )
    idx = SentIndex(sent)
    counted = _COUNTERS[backend](obs, idx, expectations)
    if isinstance(counted, str):
        return BackendUsage(backend, None, verification, source="estimated", note=counted)
    ours, other, partial = counted
    source: Source = "measured"
    notes = []
    if partial:
        source, notes = "lower-bound", [partial]
    if polled.wait is not None and polled.wait.ended_by == "deadline":
        source = "lower-bound"
        notes.append("items were still arriving at the deadline")
    if polled.failed_polls:
        notes.append(f"{polled.failed_polls} failed polls: their calls are not counted")
    return BackendUsage(backend, ours, verification, other, source, "; ".join(notes))


def _verification(backend: Backend, polled: PollResult) -> dict[str, float]:
    costs = {metric: float(polled.cost_units.get(unit, 0)) for unit, metric in _COST_UNITS[backend].items()}
    costs["api_calls"] = float(sum(polled.api_calls.values()))
    return costs


Counted = tuple[dict[str, float], dict[str, float], str] | str  # (ours, unattributed, partial-why) or why not


def _honeycomb(obs: Any, idx: SentIndex, exp: Expectations) -> Counted:
    if obs.query_unavailable is not None:
        return f"events cannot be counted: {obs.query_unavailable}"
    ours = sum(s.count for s in obs.spans if s.trace_id in idx.by_trace_id)
    other = sum(s.count for s in obs.spans if s.trace_id not in idx.by_trace_id)
    partial = "the query result hit its row limit: events were cut off" if obs.truncated else ""
    return {"events": float(ours)}, {"events": float(other)}, partial


def _xray(obs: Any, idx: SentIndex, exp: Expectations) -> Counted:
    found = set(obs.summaries) | set(obs.traces)
    ours = sum(1 for trace_id in found if trace_id in idx.by_xray_id)
    return {"traces_recorded": float(ours)}, {"traces_recorded": float(len(found) - ours)}, ""


def _cloudwatch_logs(obs: Any, idx: SentIndex, exp: Expectations) -> Counted:
    ours_bytes = ours_events = other_bytes = other_events = 0
    for event in obs.events:
        size = log_event_bytes(event.message)
        match = exp.logs.request_id_regex.search(event.message)
        if match is not None and match["request_id"] in idx.by_request_id:
            ours_bytes, ours_events = ours_bytes + size, ours_events + 1
        else:
            other_bytes, other_events = other_bytes + size, other_events + 1
    return (
        {"bytes_ingested": float(ours_bytes), "events_ingested": float(ours_events)},
        {"bytes_ingested": float(other_bytes), "events_ingested": float(other_events)},
        "",
    )


def _rollbar(obs: Any, idx: SentIndex, exp: Expectations) -> Counted:
    ours = sum(1 for o in obs.occurrences if o.request_id in idx.by_request_id)
    return {"occurrences": float(ours)}, {"occurrences": float(len(obs.occurrences) - ours)}, ""


# Observations are typed per backend module; duck typing keeps this module free of their imports.
_COUNTERS: Mapping[Backend, Callable[[Any, SentIndex, Expectations], Counted]] = {
    "honeycomb": _honeycomb,
    "xray": _xray,
    "cloudwatch_logs": _cloudwatch_logs,
    "rollbar": _rollbar,
}
