"""Exact accounting on crafted runs: what each backend accepted, and what reading it back cost, over every poll."""

from __future__ import annotations

from collections import Counter

import boto3
from botocore.stub import Stubber

from tests.verifiers import EXP, FAULT, HOME, NOTIFICATIONS, ledger, window
from verifiers.base import Observation, RateLimiter
from verifiers.budget.usage import LOG_EVENT_OVERHEAD_BYTES, log_event_bytes, measure
from verifiers.cloudwatch_logs import CloudWatchLogsVerifier, LogEvent, LogsObservation
from verifiers.connections import Connections
from verifiers.honeycomb import HoneycombObservation, Span
from verifiers.model import WaitOutcome
from verifiers.polling import PollResult, WaitSettings, poll_backend
from verifiers.rollbar import Occurrence, RollbarObservation
from verifiers.xray import XRayObservation, XRayTrace, XRayVerifier

CONNECTIONS = Connections(aws_region="us-east-1", aws_access_key_id="AKIDTEST", aws_secret_access_key="s3cret")


def polled(obs: Observation, **costs: int) -> PollResult:
    result = PollResult(obs.backend, observation=obs, wait=WaitOutcome("settled", 5.0, 3))
    result.cost_units.update(costs)
    result.api_calls.update(obs.api_calls)
    return result


def span(trace_id: str, span_id: str, name: str, count: int = 1, annotation: str | None = None) -> Span:
    columns = {"trace.trace_id": trace_id, "trace.span_id": span_id, "name": name}
    if annotation:
        columns["meta.annotation_type"] = annotation
    return Span(columns, count)


def test_honeycomb_counts_every_span_span_event_and_link_times_its_count():
    a, b = ledger(HOME, FAULT)
    obs = HoneycombObservation("honeycomb", window([a, b]))
    obs.spans = [
        span(a.trace_id, "s1", "GET /api/activities/home"),
        span(a.trace_id, "s2", "home-activities-mock-data"),
        span(a.trace_id, "s1", "exception", annotation="span_event"),
        span(a.trace_id, "s2", "link", count=2, annotation="link"),  # two identical links: one row, COUNT 2
        span(b.trace_id, "s3", "GET /api/fault", count=3),  # the same span arrived three times
        span("f" * 32, "s9", "someone else's span", count=4),
    ]
    obs.called("POST /1/query_results", 3)
    usage = measure(polled(obs, query_results=3), [a, b], EXP)
    assert usage.accepted == {"events": 1 + 1 + 1 + 2 + 3}
    assert usage.unattributed == {"events": 4}
    assert usage.verification == {"query_results": 3, "api_calls": 3}
    assert usage.source == "measured"


def test_honeycomb_without_the_query_api_is_estimated_and_a_cut_off_result_is_a_lower_bound():
    sent = ledger(HOME)
    obs = HoneycombObservation("honeycomb", window(sent), query_unavailable="the Query Data API needs Enterprise")
    usage = measure(polled(obs), sent, EXP)
    assert usage.accepted is None and usage.source == "estimated" and "Enterprise" in usage.note

    obs = HoneycombObservation("honeycomb", window(sent), truncated=True, spans=[span(sent[0].trace_id, "s", "x")])
    usage = measure(polled(obs), sent, EXP)
    assert usage.accepted == {"events": 1} and usage.source == "lower-bound"


def test_a_backend_still_receiving_at_the_deadline_or_never_answering_is_not_measured_as_exact():
    sent = ledger(HOME)
    obs = RollbarObservation("rollbar", window(sent))
    result = polled(obs)
    result.wait = WaitOutcome("deadline", 120.0, 40)
    assert measure(result, sent, EXP).source == "lower-bound"
    never = PollResult("rollbar", observation=None, error="ReadError: rollbar: unreachable")
    usage = measure(never, sent, EXP)
    assert usage.accepted is None and usage.source == "estimated" and "unreachable" in usage.note


def test_cloudwatch_bytes_are_utf8_message_bytes_plus_26_per_event():
    a, b = ledger(HOME, NOTIFICATIONS)
    lines = [
        f"[2026-Dec-03 16:40] 127.0.0.1 GET http /api/activities/home? 200 request_id={a.request_id}",
        f"Hello Cloudwatch! from /api/activities/home request_id={a.request_id}",
        f"héllo wörld ✓ request_id={b.request_id}",  # multi-byte characters count as their UTF-8 bytes
        "request_id=not-one-of-ours",
        "a line without any request id",
    ]
    obs = LogsObservation("cloudwatch_logs", window([a, b]))
    obs.events = [LogEvent(text, 0, "stream", str(i)) for i, text in enumerate(lines)]
    usage = measure(polled(obs, bytes_read=999), [a, b], EXP)
    ours = sum(len(t.encode("utf-8")) + 26 for t in lines[:3])
    assert LOG_EVENT_OVERHEAD_BYTES == 26
    assert log_event_bytes("✓") == 3 + 26
    assert usage.accepted == {"bytes_ingested": ours, "events_ingested": 3}
    assert usage.unattributed == {"bytes_ingested": sum(len(t.encode()) + 26 for t in lines[3:]), "events_ingested": 2}
    assert usage.verification["bytes_read"] == 999


def test_xray_counts_distinct_traces_of_sent_requests_from_summaries_and_full_traces():
    a, b, c = ledger(HOME, HOME, HOME)
    obs = XRayObservation("xray", window([a, b, c]))
    obs.summaries = {a.xray_trace_id: {}, b.xray_trace_id: {}, "1-00000000-000000000000000000000001": {}}
    obs.traces = {
        b.xray_trace_id: XRayTrace(b.xray_trace_id, [], []),
        c.xray_trace_id: XRayTrace(c.xray_trace_id, [], []),
    }
    usage = measure(polled(obs, traces_scanned=40, traces_retrieved=12), [a, b, c], EXP)
    assert usage.accepted == {"traces_recorded": 3}
    assert usage.unattributed == {"traces_recorded": 1}
    assert usage.verification == {"traces_scanned": 40, "traces_retrieved": 12, "api_calls": 0}


def test_rollbar_counts_occurrences_of_sent_requests_only():
    a, b = ledger(FAULT, FAULT)

    def occ(n: int, rid: str | None) -> Occurrence:
        return Occurrence(str(n), "1", 0.0, "error", "local", rid, "RuntimeError", None)

    obs = RollbarObservation("rollbar", window([a, b]))
    obs.occurrences = [occ(1, a.request_id), occ(2, b.request_id), occ(3, b.request_id), occ(4, None), occ(5, "x")]
    usage = measure(polled(obs), [a, b], EXP)
    assert usage.accepted == {"occurrences": 3} and usage.unattributed == {"occurrences": 2}


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += max(seconds, 0.5)


def test_xray_scans_and_retrievals_are_summed_over_every_poll_not_just_the_last():
    """Each poll scans (TracesProcessedCount, every page) and retrieves every trace again: all of it costs."""
    sent = ledger(*([HOME] * 7))
    ids = sorted(r.xray_trace_id for r in sent)
    client = boto3.client("xray", region_name="us-east-1", aws_access_key_id="AKIDTEST", aws_secret_access_key="s3cret")
    stub = Stubber(client)
    polls = 3
    for _ in range(polls):
        stub.add_response("get_trace_summaries", {"TraceSummaries": [{"Id": i} for i in ids[:4]], "NextToken": "p2",
                                                  "TracesProcessedCount": 9})  # fmt: skip
        stub.add_response("get_trace_summaries", {"TraceSummaries": [{"Id": i} for i in ids[4:]],
                                                  "TracesProcessedCount": 5})  # fmt: skip
        stub.add_response("batch_get_traces", {"Traces": [{"Id": i, "Segments": []} for i in ids[:5]]})
        stub.add_response("batch_get_traces", {"Traces": [{"Id": i, "Segments": []} for i in ids[5:]]})
    verifier = XRayVerifier(CONNECTIONS, EXP, client=client)
    clock = FakeClock()
    w = window(sent)
    with stub:
        result = poll_backend(
            "xray", lambda: verifier.poll(w), verifier.item_count, verifier.seen_request_ids,
            WaitSettings(settle_s=2.0, deadline_s=60.0), lambda b, m: None, clock=clock, sleep=clock.sleep,
        )  # fmt: skip
    stub.assert_no_pending_responses()
    assert result.wait is not None and result.wait.polls == polls
    assert result.observation.cost_units == Counter({"traces_scanned": 14, "traces_retrieved": 7})  # the last poll
    usage = measure(result, sent, EXP)
    assert usage.verification == {"traces_scanned": 14 * polls, "traces_retrieved": 7 * polls, "api_calls": 4 * polls}
    assert usage.accepted == {"traces_recorded": 7}


def test_cloudwatch_reads_count_the_message_bytes_they_returned():
    sent = ledger(HOME)
    client = boto3.client("logs", region_name="us-east-1", aws_access_key_id="AKIDTEST", aws_secret_access_key="s3cret")
    stub = Stubber(client)
    messages = [f"ünïcode request_id={sent[0].request_id}", "plain request_id=other"]
    stub.add_response("filter_log_events", {"events": [{"message": m, "timestamp": 1, "eventId": str(i)}
                                                        for i, m in enumerate(messages)]})  # fmt: skip
    clock = FakeClock()
    verifier = CloudWatchLogsVerifier(
        CONNECTIONS, EXP, limiter=RateLimiter(5, 1.0, clock=clock, sleep=clock.sleep), client=client
    )
    with stub:
        obs = verifier.poll(window(sent))
    assert obs.cost_units["bytes_read"] == sum(len(m.encode("utf-8")) for m in messages)
