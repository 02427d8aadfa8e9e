"""OTel head sampling: the verifier's decisions are the SDK's, and mismatches are counted exactly."""

from __future__ import annotations

import secrets

import pytest
from opentelemetry.context import Context
from opentelemetry.sdk.trace.sampling import (
    Decision,
    ParentBasedTraceIdRatio,
    TraceIdRatioBased,
)
from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags, set_span_in_context

from loadtests.ids import ledger_ids, new_request_ids, traceparent_mode
from verifiers.model import SentRequest
from verifiers.sampling.otel import OtelSampler, check_otel_sampling, expected_keep, ratio_bound, ratio_keeps


@pytest.mark.parametrize("rate", [0.0, 1e-9, 0.1, 0.25, 0.5, 0.999, 1.0])
def test_bound_is_the_sdks(rate: float) -> None:
    assert ratio_bound(rate) == TraceIdRatioBased(rate).bound


def _parent(sampled: bool) -> Context:
    flags = TraceFlags(TraceFlags.SAMPLED if sampled else TraceFlags.DEFAULT)
    ctx = SpanContext(int(secrets.token_hex(16), 16), int(secrets.token_hex(8), 16), is_remote=True, trace_flags=flags)
    return set_span_in_context(NonRecordingSpan(ctx))


@pytest.mark.parametrize("rate", [0.1, 0.25, 0.5])
def test_decisions_agree_with_the_sdk_samplers_on_random_ids(rate: float) -> None:
    plain, parent_based = OtelSampler("traceidratio", rate), OtelSampler("parentbased_traceidratio", rate)
    for _ in range(2000):
        trace_id = secrets.token_hex(16)
        tid = int(trace_id, 16)
        sdk = TraceIdRatioBased(rate).should_sample(_parent(True), tid, "s").decision == Decision.RECORD_AND_SAMPLE
        assert plain.keeps(trace_id, parent_sampled=True) == sdk == ratio_keeps(trace_id, rate)
        root = ParentBasedTraceIdRatio(rate).should_sample(None, tid, "s").decision == Decision.RECORD_AND_SAMPLE
        assert parent_based.keeps(trace_id, parent_sampled=None) == root
    # A parent-based sampler follows a remote parent: the generator's sampled flag would decide for it.
    assert parent_based.keeps("0" * 32, parent_sampled=True) and not parent_based.keeps("0" * 32, False)


def test_samplers_need_a_valid_ratio() -> None:
    with pytest.raises(ValueError, match="sampler argument"):
        OtelSampler("traceidratio", None)
    with pytest.raises(ValueError, match="unknown"):
        OtelSampler("ratio", 0.5)
    assert OtelSampler("parentbased_always_off").root_rate == 0.0
    assert OtelSampler("parentbased_traceidratio", 0.5).traceparent_mode == "none"
    assert OtelSampler("traceidratio", 0.5).traceparent_mode == "sampled"


def _sent(i: int, trace_id: str, *, traceparent: bool = True, app_sampled: bool | None = None) -> SentRequest:
    return SentRequest(
        f"r{i}", "home", "GET", "http://a/", "/", 1.0, 2.0, 200, trace_id, "b" * 16 if traceparent else "",
        "1-x-y", "w", traceparent_sent=traceparent, app_sampled=app_sampled,
    )  # fmt: skip


def test_mismatches_are_counted_both_ways() -> None:
    sampler = OtelSampler("traceidratio", 0.25)
    ids = [secrets.token_hex(16) for _ in range(400)]
    sent = [_sent(i, t) for i, t in enumerate(ids)]
    keep = {t for t in ids if ratio_keeps(t, 0.25)}
    assert 40 < len(keep) < 160
    exact = check_otel_sampling(sent, keep, sampler)
    assert exact.check is not None and exact.check.status == "pass"
    assert (exact.decided, exact.should_keep, exact.kept) == (400, len(keep), len(keep))

    dropped_one = sorted(keep)[0]
    kept_extra = sorted(set(ids) - keep)[:3]
    wrong = check_otel_sampling(sent, (keep - {dropped_one}) | set(kept_extra), sampler)
    assert wrong.check is not None and wrong.check.status == "fail"
    section = wrong.section()
    assert section["kept_but_should_have_dropped"] == 3 and section["dropped_but_should_have_kept"] == 1
    assert "kept but should have dropped: 3" in wrong.check.detail


def test_root_mode_needs_the_apps_trace_id() -> None:
    sampler = OtelSampler("parentbased_traceidratio", 0.5)
    known = _sent(1, "f" * 32, traceparent=False, app_sampled=False)
    unknown = _sent(2, "0" * 32, traceparent=False, app_sampled=None)
    assert expected_keep(known, sampler) is False and expected_keep(unknown, sampler) is None
    result = check_otel_sampling([unknown], set(), sampler)
    assert result.check is not None and result.check.status == "unverifiable"
    assert "traceresponse" in result.check.detail


def test_the_ledger_reads_traceresponse_and_the_serving_process() -> None:
    ids = new_request_ids()
    app_trace = "ab" * 16
    headers = {"traceresponse": f"00-{app_trace}-{'c' * 16}-01", "X-Tracedrill-Process": "host:42"}
    root = ledger_ids(ids, traceparent=False, response_headers=headers)
    assert root["trace_id"] == app_trace and root["parent_span_id"] == "" and root["app_sampled"] is True
    assert root["xray_trace_id"] == ids.xray_trace_id and root["app_process"] == "host:42"
    continued = ledger_ids(
        ids, traceparent=True, response_headers={"traceresponse": f"00-{ids.trace_id}-{'c' * 16}-00"}
    )
    assert continued["trace_id"] == ids.trace_id and continued["app_sampled"] is False
    assert ledger_ids(ids, traceparent=False, response_headers=None)["app_sampled"] is None
    assert "traceparent" not in ids.headers(traceparent=False)
    assert traceparent_mode({"TRACEDRILL_TRACEPARENT": "none"}) is False and traceparent_mode({}) is True
    with pytest.raises(ValueError, match="TRACEDRILL_TRACEPARENT"):
        traceparent_mode({"TRACEDRILL_TRACEPARENT": "maybe"})
