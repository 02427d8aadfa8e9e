"""X-Ray: checks on crafted traces, and poll() request shapes and pagination through a botocore Stubber."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from tests.verifiers import EVERY_ROUTE, EXP, FAULT, HOME, USER, USER_INVALID, check, ledger, request, window
from verifiers.base import ReadError
from verifiers.connections import Connections
from verifiers.model import SentRequest
from verifiers.xray import SAMPLING_NOTE, XRayObservation, XRayTrace, XRayVerifier

CONNECTIONS = Connections(aws_region="us-east-1", aws_access_key_id="AKIDTEST", aws_secret_access_key="s3cret")
VERIFIER = XRayVerifier(CONNECTIONS, EXP)


def seg_id(r: SentRequest, n: int) -> str:
    return f"{int(r.parent_span_id, 16) * 16 + n:016x}"


def segment(r: SentRequest) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "trace_id": r.xray_trace_id,
        "id": seg_id(r, 1),
        "name": "backend-flask",
        "start_time": r.start,
        "end_time": r.end,
        "http": {"request": {"method": r.method, "url": r.url}, "response": {"status": r.status}},
        "annotations": {"request_id": r.request_id},
    }
    if r.status is not None and r.status >= 500:
        doc["fault"] = True
    if r.status is not None and 400 <= r.status < 500:
        doc["error"] = True
    if r.name == "user_activities" and r.status == 200:
        doc["subsegments"] = [
            {
                "id": seg_id(r, 2),
                "name": "user-activities",
                "start_time": r.start + 0.01,
                "end_time": r.end - 0.01,
                "annotations": {"user_handle": "andrewbrown"},
                "metadata": {"cruddur": {"query": {"handle": "andrewbrown"}}},
                "subsegments": [
                    {
                        "id": seg_id(r, 3),
                        "name": "mock-data",
                        "start_time": r.start + 0.02,
                        "end_time": r.end - 0.02,
                        "metadata": {"cruddur": {"result": {"results_size": 3}}},
                    }
                ],
            }
        ]
    return doc


def trace(r: SentRequest, docs: list[dict[str, Any]] | None = None) -> XRayTrace:
    docs = docs if docs is not None else [segment(r)]
    return XRayTrace(r.xray_trace_id, [d["id"] for d in docs], docs)


def observe(sent: list[SentRequest], traces: list[XRayTrace]) -> XRayObservation:
    obs = XRayObservation("xray", window(sent))
    for t in traces:
        obs.summaries[t.id] = {"Id": t.id}
        obs.traces[t.id] = t
    return obs


def verify(sent: list[SentRequest], traces: list[XRayTrace]):
    return VERIFIER.verify(sent, observe(sent, traces), EXP)


@pytest.fixture
def sent() -> list[SentRequest]:
    return ledger(*EVERY_ROUTE, USER)


def user_trace(sent: list[SentRequest]) -> tuple[SentRequest, dict[str, Any]]:
    r = next(s for s in sent if s.name == "user_activities")
    return r, segment(r)


def test_correct_traces_pass_and_counts_are_not_per_request(sent):
    report = verify(sent, [trace(r) for r in sent])
    assert [c.name for c in report.checks if c.status != "pass"] == []
    assert (report.expected, report.found, report.missing, report.extra) == (None, 8, None, 0)
    assert SAMPLING_NOTE in check(report, "belongs to a request we sent").detail


def test_a_sampled_subset_passes(sent):
    report = verify(sent, [trace(sent[0]), trace(sent[1])])
    assert [c.name for c in report.checks if c.status == "fail"] == []
    assert "2 traces found for 8 answered requests (25% sampled)" in check(report, "at least one trace").detail


def test_no_trace_at_all_fails(sent):
    report = verify(sent, [])
    result = check(report, "at least one trace")
    assert result.status == "fail" and "0 traces for 8 answered requests" in result.detail
    assert check(report, "method, URL and status").status == "unverifiable"  # nothing to look at, not a pass


def test_trace_of_a_request_we_did_not_send_is_extra(sent):
    stranger = request(*HOME)
    report = verify(sent, [trace(r) for r in sent] + [trace(stranger)])
    result = check(report, "belongs to a request we sent")
    assert result.status == "fail" and "1 of 9 traces failed (not sent: 1)" in result.detail
    assert stranger.xray_trace_id in result.detail
    assert report.extra == 1 and report.found == 8


def test_duplicate_segment_fails(sent):
    doc = segment(sent[0])
    report = verify(sent, [trace(sent[0], [doc, copy.deepcopy(doc)])] + [trace(r) for r in sent[1:]])
    result = check(report, "no duplicate segments")
    assert result.status == "fail" and f"{seg_id(sent[0], 1)} × 2" in result.detail
    assert check(report, "method, URL and status").status == "fail"


def test_wrong_status_method_and_url_fail(sent):
    doc = segment(sent[0])
    doc["http"] = {"request": {"method": "POST", "url": "http://x/api/other"}, "response": {"status": 201}}
    result = check(verify(sent, [trace(sent[0], [doc])]), "method, URL and status")
    assert result.status == "fail"
    assert "wrong method" in result.detail and "wrong url" in result.detail and "wrong status" in result.detail


def test_fault_and_error_flags_follow_the_status():
    sent = ledger(FAULT, USER_INVALID, HOME)
    docs = [segment(r) for r in sent]
    del docs[0]["fault"]
    del docs[1]["error"]
    docs[2]["fault"] = True
    result = check(verify(sent, [trace(r, [d]) for r, d in zip(sent, docs, strict=True)]), "fault=true")
    assert result.status == "fail"
    assert "3 of 3 sampled requests failed" in result.detail
    assert "fault not set" in result.detail and "error not set" in result.detail and "fault set" in result.detail


def test_request_id_annotation_must_match_the_ledger(sent):
    doc = segment(sent[0])
    doc["annotations"]["request_id"] = "someone-else"
    result = check(verify(sent, [trace(sent[0], [doc])]), "every segment has annotation request_id")
    assert result.status == "fail" and "request_id is 'someone-else'" in result.detail


def test_missing_subsegment_fails(sent):
    r, doc = user_trace(sent)
    del doc["subsegments"][0]["subsegments"]
    report = verify(sent, [trace(r, [doc])])
    result = check(report, "exactly one subsegment 'mock-data'")
    assert result.status == "fail" and "missing: 1" in result.detail
    # the only user request has no mock-data: its metadata check cannot pass
    assert check(report, "are on subsegment 'mock-data'").status == "unverifiable"


def test_subsegment_under_the_wrong_parent_fails(sent):
    r, doc = user_trace(sent)
    outer = doc["subsegments"][0]
    doc["subsegments"].append(outer.pop("subsegments")[0])
    result = check(verify(sent, [trace(r, [doc])]), "exactly one subsegment 'mock-data'")
    assert result.status == "fail"
    assert "misnested (under 'backend-flask' instead of subsegment 'user-activities')" in result.detail


def test_duplicated_subsegment_fails(sent):
    r, doc = user_trace(sent)
    inner = doc["subsegments"][0]["subsegments"]
    inner.append({**copy.deepcopy(inner[0]), "id": "ffffffffffffffff"})
    result = check(verify(sent, [trace(r, [doc])]), "exactly one subsegment 'mock-data'")
    assert result.status == "fail" and "duplicated: 1" in result.detail and "2 subsegments" in result.detail


def test_metadata_on_the_parent_instead_of_the_child_fails_placement(sent):
    r, doc = user_trace(sent)
    outer = doc["subsegments"][0]
    outer["metadata"]["cruddur"]["result"] = outer["subsegments"][0].pop("metadata")["cruddur"]["result"]
    result = check(verify(sent, [trace(r, [doc])]), "are on subsegment 'mock-data'")
    assert result.status == "fail"
    assert "metadata cruddur.result.results_size is on 'user-activities' instead" in result.detail


def test_annotation_on_the_segment_instead_of_the_subsegment_fails(sent):
    r, doc = user_trace(sent)
    doc["annotations"]["user_handle"] = doc["subsegments"][0].pop("annotations")["user_handle"]
    result = check(verify(sent, [trace(r, [doc])]), "are on subsegment 'user-activities'")
    assert result.status == "fail" and "annotation user_handle is on 'backend-flask' instead" in result.detail


def test_subsegment_sent_twice_or_left_open_fails_the_closure_check(sent):
    r, doc = user_trace(sent)
    inner = doc["subsegments"][0]["subsegments"]
    inner.append(copy.deepcopy(inner[0]))  # the same subsegment (same id) twice
    report = verify(sent, [trace(r, [doc])])
    assert "sent twice" in check(report, "closed once").detail

    r, doc = user_trace(sent)
    doc["subsegments"][0]["subsegments"][0]["end_time"] = r.end + 1  # ends after its parent
    assert "outside its parent" in check(verify(sent, [trace(r, [doc])]), "closed once").detail

    r, doc = user_trace(sent)
    sub = doc["subsegments"][0]["subsegments"][0]
    del sub["end_time"]
    sub["in_progress"] = True
    assert "not closed" in check(verify(sent, [trace(r, [doc])]), "closed once").detail

    r, doc = user_trace(sent)
    del doc["end_time"]
    assert "segment 'backend-flask' has no end_time" in check(verify(sent, [trace(r, [doc])]), "closed once").detail

    # time running backwards: a segment without subsegments (nothing to sit outside of) and a subsegment
    health = next(s for s in sent if s.name == "health")
    backwards = segment(health) | {"end_time": health.start - 0.5}
    result = check(verify(sent, [trace(health, [backwards])]), "closed once")
    assert result.status == "fail" and "ends before it starts" in result.detail
    r, doc = user_trace(sent)
    inner = doc["subsegments"][0]["subsegments"][0]
    inner["end_time"] = inner["start_time"] - 0.001
    assert "ends before it starts ('mock-data')" in check(verify(sent, [trace(r, [doc])]), "closed once").detail


def test_independent_subsegments_join_their_parent(sent):
    r, doc = user_trace(sent)
    outer = doc.pop("subsegments")[0]
    inner = outer.pop("subsegments")[0]
    outer.update(type="subsegment", trace_id=r.xray_trace_id, parent_id=doc["id"])
    inner.update(type="subsegment", trace_id=r.xray_trace_id, parent_id=outer["id"])
    report = verify(sent, [trace(r, [doc, outer, inner])])
    assert [c.name for c in report.checks if c.status == "fail"] == []

    inner["parent_id"] = "0000000000000bad"
    report = verify(sent, [trace(r, [doc, outer, inner])])
    assert "orphan" in check(report, "closed once").detail
    assert "misnested (under no parent in the trace" in check(report, "exactly one subsegment 'mock-data'").detail


def test_invalid_handle_expects_no_subsegments():
    sent = ledger(USER_INVALID)
    report = verify(sent, [trace(sent[0])])
    assert check(report, "exactly one subsegment 'user-activities'").status == "unverifiable"
    assert [c.name for c in report.checks if c.status == "fail"] == []


def test_seen_request_ids_and_item_count(sent):
    obs = observe(sent, [trace(r) for r in sent[:3]])
    assert VERIFIER.seen_request_ids(obs) == {r.request_id for r in sent[:3]}
    assert VERIFIER.item_count(obs) == 6


# ---- poll() through a Stubber ----


def stubbed() -> tuple[XRayVerifier, Stubber]:
    client = boto3.client("xray", region_name="us-east-1", aws_access_key_id="AKIDTEST", aws_secret_access_key="s3cret")
    return XRayVerifier(CONNECTIONS, EXP, client=client), Stubber(client)


def test_poll_paginates_summaries_and_batches_trace_ids_by_five():
    sent = ledger(*([HOME] * 7))
    w = window(sent)
    v, stub = stubbed()
    base = {
        "StartTime": datetime.fromtimestamp(w.start - 60, UTC),
        "EndTime": datetime.fromtimestamp(w.end + 60, UTC),
        "TimeRangeType": "TraceId",
        "Sampling": False,
        "FilterExpression": 'service("backend-flask")',
    }
    ids = [r.xray_trace_id for r in sent]
    stub.add_response(
        "get_trace_summaries",
        {"TraceSummaries": [{"Id": i} for i in ids[:4]], "NextToken": "p2", "TracesProcessedCount": 4},
        base,
    )
    stub.add_response(
        "get_trace_summaries",
        {"TraceSummaries": [{"Id": i} for i in ids[4:]], "TracesProcessedCount": 3},
        {**base, "NextToken": "p2"},
    )
    ordered = sorted(ids)

    def traces(batch: list[str]) -> list[dict[str, Any]]:
        by_id = {r.xray_trace_id: r for r in sent}
        return [
            {"Id": i, "Segments": [{"Id": seg_id(by_id[i], 1), "Document": json.dumps(segment(by_id[i]))}]}
            for i in batch
        ]

    stub.add_response(
        "batch_get_traces", {"Traces": traces(ordered[:3]), "NextToken": "more"}, {"TraceIds": ordered[:5]}
    )
    stub.add_response(
        "batch_get_traces", {"Traces": traces(ordered[3:5])}, {"TraceIds": ordered[:5], "NextToken": "more"}
    )
    stub.add_response(
        "batch_get_traces", {"Traces": traces(ordered[5:]), "UnprocessedTraceIds": []}, {"TraceIds": ordered[5:]}
    )
    with stub:
        obs = v.poll(w)
    stub.assert_no_pending_responses()
    assert sorted(obs.traces) == ordered
    assert obs.api_calls == {"GetTraceSummaries": 2, "BatchGetTraces": 3}
    assert obs.cost_units == {"traces_scanned": 7, "traces_retrieved": 7}
    assert [c.name for c in v.verify(sent, obs, EXP).checks if c.status == "fail"] == []


def test_unprocessed_ids_are_retried_once():
    sent = ledger(HOME)
    v, stub = stubbed()
    tid = sent[0].xray_trace_id
    stub.add_response("get_trace_summaries", {"TraceSummaries": [{"Id": tid}]})
    stub.add_response("batch_get_traces", {"Traces": [], "UnprocessedTraceIds": [tid]}, {"TraceIds": [tid]})
    stub.add_response(
        "batch_get_traces",
        {"Traces": [{"Id": tid, "Segments": [{"Id": "a" * 16, "Document": json.dumps(segment(sent[0]))}]}]},
        {"TraceIds": [tid]},
    )
    with stub:
        obs = v.poll(window(sent))
    assert list(obs.traces) == [tid]


def test_access_denied_is_a_read_error_without_secrets():
    v, stub = stubbed()
    stub.add_client_error("get_trace_summaries", "AccessDeniedException", "not authorized", 403)
    with stub, pytest.raises(ReadError) as err:
        v.poll(window(ledger(HOME)))
    assert err.value.kind == "denied" and "AccessDeniedException" in str(err.value)
    assert "s3cret" not in str(err.value)


def test_throttling_is_a_read_error():
    v, stub = stubbed()
    stub.add_client_error("get_trace_summaries", "ThrottledException", "slow down", 429)
    with stub, pytest.raises(ReadError) as err:
        v.poll(window(ledger(HOME)))
    assert err.value.kind == "throttled"
