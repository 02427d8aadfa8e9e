"""X-Ray conformance vectors (data/xray_*.json, copied from the shared conformance set), driven only
through boto3 so the same test could run against the real service.

Filter expressions: each case's synthetic traces become segment documents (one segment per
service, downstream services called from a remote subsegment of their caller, ``duration`` past
``responsetime`` as an asynchronous subsegment, ``partial`` as an in-progress subsegment), are put
with PutTraceSegments, and GetTraceSummaries with the case's expression must return exactly the
``matches``; ``valid: false`` expressions must be refused.

Segment examples: every document from the developer guide is accepted (or refused where the case
says it is invalid) and comes back from BatchGetTraces. Trace ids are replaced by fresh ones so
the cases cannot collide (several reuse the guide's ids); everything else is sent unchanged.
"""

from __future__ import annotations

import copy
import json
import time
import uuid
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError

from emulators._server import serve
from emulators.xray.api import XRaySettings, create_app
from emulators.xray.store import XRayStore

DATA = Path(__file__).resolve().parent / "data"
FILTER_CASES = json.loads((DATA / "xray_filter_expressions.json").read_text())
SEGMENT_CASES = json.loads((DATA / "xray_segment_examples.json").read_text())
NOW = time.time()
WINDOW = {"StartTime": NOW - 3600, "EndTime": NOW + 3600}


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    store = XRayStore(tmp_path_factory.mktemp("xray-conformance") / "xray.sqlite3")
    served = serve("xray-conformance", create_app(store, XRaySettings()))
    yield boto3.client(
        "xray",
        endpoint_url=served.url,
        region_name="us-east-1",
        aws_access_key_id="conformance",
        aws_secret_access_key="conformance-secret",
    )
    served.stop()


def fresh_trace_id() -> str:
    return f"1-{int(NOW):08x}-{uuid.uuid4().hex[:24]}"


def span_id() -> str:
    return uuid.uuid4().hex[:16]


def put(client, docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return client.put_trace_segments(TraceSegmentDocuments=[json.dumps(d) for d in docs])["UnprocessedTraceSegments"]


def get_traces(client, trace_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
    out = {}
    for i in range(0, len(trace_ids), 5):
        for trace in client.batch_get_traces(TraceIds=trace_ids[i : i + 5])["Traces"]:
            out[trace["Id"]] = [json.loads(s["Document"]) for s in trace["Segments"]]
    return out


# ---------------------------------------------------------------- filter expressions


def trace_documents(trace: dict[str, Any], trace_id: str, t0: float) -> list[dict[str, Any]]:
    """Segment documents from which X-Ray derives the synthetic trace summary of a case."""
    services = trace["services"]
    root_index = next(i for i, s in enumerate(services) if s["root"])
    docs: dict[int, dict[str, Any]] = {}
    root = _service_segment(services[root_index], trace_id, t0, trace["responsetime"])
    http = trace["http"]
    request = {k: http[k] for k in ("url", "method") if http.get(k) is not None}
    root["http"] = (
        {"request": request, "response": {"status": http["status"]}}
        if request
        else {"response": {"status": http["status"]}}
    )
    if trace["user"]:
        root["user"] = trace["user"]
    if trace["annotations"]:
        root["annotations"] = trace["annotations"]
    docs[root_index] = root
    for index, service in enumerate(services):
        if index == root_index:
            continue
        edge = next(e for e in trace["edges"] if e["destination"] == service["name"])
        caller_index = next(i for i, s in enumerate(services) if s["name"] == edge["source"] and i != index)
        caller = docs.get(caller_index, root)
        start = caller["start_time"] + 0.01
        call = {
            "id": span_id(),
            "name": service["name"],
            "namespace": "remote",
            "start_time": start,
            "end_time": start + service["responsetime"],
            **{flag: True for flag in ("error", "fault", "throttle") if edge[flag]},
        }
        caller.setdefault("subsegments", []).append(call)
        downstream = _service_segment(service, trace_id, start, service["responsetime"])
        downstream["parent_id"] = call["id"]
        docs[index] = downstream
    if trace["duration"] > trace["responsetime"]:
        root.setdefault("subsegments", []).append(
            {"id": span_id(), "name": "async-work", "start_time": t0, "end_time": t0 + trace["duration"]}
        )
    if trace["partial"]:
        root.setdefault("subsegments", []).append(
            {"id": span_id(), "name": "still-running", "start_time": t0 + 0.001, "in_progress": True}
        )
    return list(docs.values())


def _service_segment(service: dict[str, Any], trace_id: str, start: float, seconds: float) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": service["name"],
        "id": span_id(),
        "trace_id": trace_id,
        "start_time": start,
        "end_time": start + seconds,
    }
    doc.update({flag: True for flag in ("error", "fault", "throttle") if service[flag]})
    if service["type"]:
        doc["origin"] = service["type"]
    if service["account_id"]:
        doc["aws"] = {"account_id": service["account_id"]}
    return doc


@pytest.fixture(scope="module")
def trace_sets(client):
    """Put each distinct trace set of the cases once; returns set key -> {trace id: index}."""
    sets: dict[str, dict[str, int]] = {}
    for case in FILTER_CASES:
        key = json.dumps(case["traces"], sort_keys=True)
        if key in sets or not case["traces"]:
            continue
        ids: dict[str, int] = {}
        docs = []
        for index, trace in enumerate(case["traces"]):
            trace_id = fresh_trace_id()
            ids[trace_id] = index
            docs += trace_documents(trace, trace_id, NOW - 600 + 10 * index)
        assert put(client, docs) == []
        sets[key] = ids
    return sets


@pytest.mark.parametrize("case", FILTER_CASES, ids=[c["id"] for c in FILTER_CASES])
def test_filter_expression(client, trace_sets, case):
    if not case["valid"]:
        with pytest.raises(ClientError) as err:
            client.get_trace_summaries(FilterExpression=case["expression"], **WINDOW)
        assert err.value.response["Error"]["Code"] == "InvalidRequestException"
        return
    pages = client.get_paginator("get_trace_summaries").paginate(FilterExpression=case["expression"], **WINDOW)
    found = [s["Id"] for page in pages for s in page["TraceSummaries"]]  # a valid expression is accepted
    if not case["traces"]:
        return  # syntax-acceptance case: the guide gives no data to evaluate it on
    ids = trace_sets[json.dumps(case["traces"], sort_keys=True)]
    assert sorted(ids[t] for t in found if t in ids) == sorted(case["matches"])


# ---------------------------------------------------------------- segment documents from the guide


def _kind(case: dict[str, Any]) -> str:
    if case.get("kind") == "api_response":
        return "summary"
    if case.get("processed_by_service"):
        return "processed"
    if case.get("format_warnings"):
        return "invalid"
    return "document" if "trace_id" in case["document"] else "fragment"


DOCUMENTS = [c for c in SEGMENT_CASES if _kind(c) == "document"]
INVALID = [c for c in SEGMENT_CASES if _kind(c) == "invalid"]
FRAGMENTS = [c for c in SEGMENT_CASES if _kind(c) == "fragment"]
PROCESSED = [c for c in SEGMENT_CASES if _kind(c) == "processed"]
(SUMMARY_CASE,) = [c for c in SEGMENT_CASES if _kind(c) == "summary"]


def test_every_example_is_classified():
    assert len(DOCUMENTS) + len(INVALID) + len(FRAGMENTS) + len(PROCESSED) + 1 == len(SEGMENT_CASES)
    assert DOCUMENTS and INVALID and FRAGMENTS and len(PROCESSED) == 5


@pytest.mark.parametrize("case", DOCUMENTS, ids=[c["name"] for c in DOCUMENTS])
def test_segment_document_is_accepted_and_retrievable(client, case):
    doc = copy.deepcopy(case["document"]) | {"trace_id": fresh_trace_id()}
    assert put(client, [doc]) == []
    returned = get_traces(client, [doc["trace_id"]])[doc["trace_id"]]
    assert doc in returned  # a segment, or an independent subsegment whose parent is not in the trace


@pytest.mark.parametrize("case", INVALID, ids=[c["name"] for c in INVALID])
def test_invalid_segment_document_is_refused(client, case):
    (refused,) = put(client, [case["document"]])
    assert refused["Id"] == case["document"]["id"]
    assert refused["ErrorCode"] == "InvalidTraceId"
    answer = client.batch_get_traces(TraceIds=[case["document"]["trace_id"]])
    assert answer["Traces"] == []


@pytest.mark.parametrize("case", FRAGMENTS, ids=[c["name"] for c in FRAGMENTS])
def test_fragment_is_refused_alone_and_kept_inside_a_segment(client, case):
    fragment = case["document"]
    (refused,) = put(client, [fragment])  # no trace_id: not a document on its own
    assert refused["ErrorCode"] in ("MissingId", "MissingTraceId")
    now = time.time()
    parent = {
        "name": "conformance",
        "id": span_id(),
        "trace_id": fresh_trace_id(),
        "start_time": now,
        "end_time": now + 1,
    }
    if "id" in fragment:  # a subsegment example: embed it
        parent["subsegments"] = [fragment]
    else:  # a block of segment fields (the "aws" example)
        parent.update(fragment)
    assert put(client, [parent]) == []
    (stored,) = [d for d in get_traces(client, [parent["trace_id"]])[parent["trace_id"]] if d["id"] == parent["id"]]
    assert stored == parent


def test_processed_trace_and_its_summary(client):
    trace_id = fresh_trace_id()
    docs = [copy.deepcopy(c["document"]) | {"trace_id": trace_id} for c in PROCESSED]
    assert put(client, docs) == []
    returned = get_traces(client, [trace_id])[trace_id]
    assert sorted(returned, key=lambda d: d["id"]) == sorted(docs, key=lambda d: d["id"])

    expected = next(
        s for s in SUMMARY_CASE["document"]["TraceSummaries"] if s["Id"] == PROCESSED[0]["document"]["trace_id"]
    )
    summaries = client.get_trace_summaries(TimeRangeType="TraceId", **WINDOW)["TraceSummaries"]
    (summary,) = [s for s in summaries if s["Id"] == trace_id]
    for field in ("ResponseTime", "Duration"):
        assert summary[field] == pytest.approx(expected[field], abs=1e-6)
    for field in ("HasError", "HasFault", "HasThrottle"):
        assert summary[field] == expected[field]
    assert [u["UserName"] for u in summary["Users"]] == [u["UserName"] for u in expected["Users"]]
    assert {k: [v["AnnotationValue"] for v in vs] for k, vs in summary["Annotations"].items()} == {
        k: [v["AnnotationValue"] for v in vs] for k, vs in expected["Annotations"].items()
    }
    for field in ("HttpURL", "HttpStatus", "HttpMethod", "UserAgent"):
        assert summary["Http"][field] == expected["Http"][field]
    # The guide's output shows ClientIp 205.255.255.183 while its segment says 205.251.233.183;
    # the summary must follow the segment.
    root = next(d for d in docs if "parent_id" not in d)
    assert summary["Http"]["ClientIp"] == root["http"]["request"]["client_ip"]
