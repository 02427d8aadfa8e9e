"""The X-Ray API emulator through boto3 (and raw HTTP where the wire format itself is the point)."""

from __future__ import annotations

import json
import math
import os
import time
import uuid
from pathlib import Path

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from emulators._server import serve
from emulators.xray.api import XRaySettings, create_app
from emulators.xray.store import XRayStore

REPO = Path(__file__).resolve().parents[2]
JOURNAL_RULES = REPO / "target_app" / "xray-sampling-rules.json"


def _client(url: str):
    return boto3.client(
        "xray",
        endpoint_url=url,
        region_name="us-east-1",
        aws_access_key_id="test-key",
        aws_secret_access_key="test-secret",
    )


@pytest.fixture
def start_api(tmp_path):
    served = []

    def start(rules: Path | None = JOURNAL_RULES, db: Path | None = None, **settings):
        store = XRayStore(db or tmp_path / "xray.sqlite3")
        app = serve("xray", create_app(store, XRaySettings(sampling_rules_file=rules, **settings)))
        served.append(app)
        return app.url, _client(app.url)

    yield start
    for app in served:
        app.stop()


@pytest.fixture
def api(start_api):
    return start_api()


def trace_id(offset: float = 0.0) -> str:
    return f"1-{int(time.time() + offset):08x}-{uuid.uuid4().hex[:24]}"


def span_id() -> str:
    return uuid.uuid4().hex[:16]


def segment(tid: str, name: str = "backend-flask", start: float | None = None, duration: float = 0.2, **fields):
    start = time.time() if start is None else start
    doc = {"name": name, "id": span_id(), "trace_id": tid, "start_time": start, "end_time": start + duration}
    doc.update(fields)
    return doc


def put(client, *docs) -> list[dict]:
    answer = client.put_trace_segments(TraceSegmentDocuments=[d if isinstance(d, str) else json.dumps(d) for d in docs])
    return answer["UnprocessedTraceSegments"]


def documents(client, tid: str) -> list[dict]:
    traces = client.batch_get_traces(TraceIds=[tid])["Traces"]
    assert len(traces) == 1
    return [json.loads(s["Document"]) for s in traces[0]["Segments"]]


def summaries(client, expression: str | None = None, **kwargs) -> list[dict]:
    params = {"StartTime": time.time() - 600, "EndTime": time.time() + 600, **kwargs}
    if expression is not None:
        params["FilterExpression"] = expression
    pages = client.get_paginator("get_trace_summaries").paginate(**params)
    return [s for page in pages for s in page["TraceSummaries"]]


# ---------------------------------------------------------------- PutTraceSegments / BatchGetTraces


def test_independent_subsegments_merge_into_their_parents(api):
    _, client = api
    tid = trace_id()
    now = time.time()
    root = segment(
        tid,
        start=now,
        duration=1.0,
        subsegments=[{"id": span_id(), "name": "embedded", "start_time": now + 0.1, "end_time": now + 0.5}],
    )
    embedded_id = root["subsegments"][0]["id"]
    outer = {
        "type": "subsegment",
        "trace_id": tid,
        "parent_id": embedded_id,
        "id": span_id(),
        "name": "outer",
        "start_time": now + 0.2,
        "end_time": now + 0.4,
        "metadata": {"default": {"k": [1, 2]}},
    }
    inner = {
        "type": "subsegment",
        "trace_id": tid,
        "parent_id": outer["id"],
        "id": span_id(),
        "name": "inner",
        "start_time": now + 0.25,
        "end_time": now + 0.3,
        "annotations": {"depth": 3},
    }
    orphan = {
        "type": "subsegment",
        "trace_id": tid,
        "parent_id": span_id(),
        "id": span_id(),
        "name": "orphan",
        "start_time": now,
        "end_time": now + 0.1,
    }
    # The child arrives before its parent subsegment, which arrives before the segment.
    assert put(client, inner) == []
    assert put(client, outer, orphan) == []
    assert put(client, root) == []

    docs = {d["id"]: d for d in documents(client, tid)}
    assert set(docs) == {root["id"], orphan["id"]}
    assert docs[orphan["id"]] == orphan  # kept as sent: its parent never arrived
    merged_outer = docs[root["id"]]["subsegments"][0]["subsegments"][0]
    assert merged_outer["name"] == "outer" and merged_outer["metadata"] == {"default": {"k": [1, 2]}}
    assert "type" not in merged_outer and "parent_id" not in merged_outer and "trace_id" not in merged_outer
    assert merged_outer["subsegments"][0]["name"] == "inner"
    assert merged_outer["subsegments"][0]["annotations"] == {"depth": 3}


def test_complete_segment_replaces_in_progress_but_not_the_reverse(api):
    _, client = api
    tid = trace_id()
    complete = segment(tid, http={"response": {"status": 200}})
    in_progress = {k: v for k, v in complete.items() if k != "end_time"} | {"in_progress": True}
    assert put(client, in_progress) == []
    assert [s["IsPartial"] for s in summaries(client, "partial")] == [True]
    assert put(client, complete) == []
    assert documents(client, tid) == [complete]
    assert put(client, in_progress) == []  # a late fragment must not hide the finished segment
    assert documents(client, tid) == [complete]
    (summary,) = summaries(client)
    assert summary["IsPartial"] is False and summary["Id"] == tid


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (lambda d: d.pop("id"), "MissingId"),
        (lambda d: d.update(id="xyz"), "InvalidId"),
        (lambda d: d.pop("trace_id"), "MissingTraceId"),
        (lambda d: d.update(trace_id="1-5f00000-000000000000000000000000"), "InvalidTraceId"),
        (lambda d: d.update(trace_id="1-5880168b-fd515828bs07678a3bb5a78c"), "InvalidTraceId"),
        (lambda d: d.pop("name"), "MissingName"),
        (lambda d: d.update(name="n" * 201), "InvalidName"),
        (lambda d: d.update(name="bad<name>"), "InvalidName"),
        (lambda d: d.pop("start_time"), "MissingStartTime"),
        (lambda d: d.update(start_time="yesterday"), "InvalidStartTime"),
        (lambda d: d.pop("end_time"), "MissingEndTime"),
        (lambda d: d.update(annotations={"bad-key": 1}), "InvalidAnnotations"),
        (lambda d: d.update(annotations={"obj": {"a": 1}}), "InvalidAnnotations"),
        (lambda d: d.update(annotations={"n": None}), "InvalidAnnotations"),
        (lambda d: d.update(type="subsegment"), "MissingParentId"),
        (lambda d: d.update(subsegments=[{"id": "0" * 16, "name": "x", "start_time": 1.0}]), "MissingEndTime"),
        (lambda d: d.update(metadata={"big": "x" * (64 * 1024)}), "DocumentTooLarge"),
    ],
)
def test_invalid_documents_are_unprocessed_and_valid_ones_stored(api, change, code):
    _, client = api
    good = segment(trace_id())
    bad = segment(trace_id())
    change(bad)
    unprocessed = put(client, bad, good)
    assert [u["ErrorCode"] for u in unprocessed] == [code]
    assert unprocessed[0]["Message"].startswith(f"Invalid segment. ErrorCode: {code}")
    assert documents(client, good["trace_id"]) == [good]


def test_malformed_json_is_unprocessed(api):
    _, client = api
    (item,) = put(client, '{"id": "0123456789abcdef", "name": ')
    assert item["ErrorCode"] == "MalformedJson" and item["Id"] == "0123456789abcdef"


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_nan_and_infinity_are_malformed_json(api, number):
    # Python writes them as bare NaN/Infinity; they are not JSON, and a stored one would come back in
    # BatchGetTraces as a document no JSON client can read.
    _, client = api
    bad = segment(trace_id(), metadata={"default": {"ratio": number}})
    (item,) = put(client, bad)
    assert item["ErrorCode"] == "MalformedJson" and item["Id"] == bad["id"]
    assert client.batch_get_traces(TraceIds=[bad["trace_id"]])["UnprocessedTraceIds"] == [bad["trace_id"]]


def test_batch_get_traces_limits_and_unknown_ids(api):
    _, client = api
    with pytest.raises(ClientError) as err:
        client.batch_get_traces(TraceIds=[trace_id() for _ in range(6)])
    assert err.value.response["Error"]["Code"] == "InvalidRequestException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    known = segment(trace_id())
    put(client, known)
    unknown = trace_id()
    answer = client.batch_get_traces(TraceIds=[known["trace_id"], unknown])
    assert [t["Id"] for t in answer["Traces"]] == [known["trace_id"]]
    assert answer["UnprocessedTraceIds"] == [unknown]
    assert answer["Traces"][0]["LimitExceeded"] is False
    assert answer["Traces"][0]["Duration"] == pytest.approx(0.2)


def test_aws_and_remote_subsegments_get_inferred_segments(api):
    _, client = api
    tid = trace_id()
    now = time.time()
    dynamo = {
        "id": span_id(),
        "name": "DynamoDB",
        "namespace": "aws",
        "start_time": now + 0.1,
        "end_time": now + 0.2,
        "aws": {"table_name": "users", "operation": "GetItem"},
    }
    remote = {
        "id": span_id(),
        "name": "api.example.com",
        "namespace": "remote",
        "start_time": now + 0.3,
        "end_time": now + 0.4,
        "error": True,
        "http": {"response": {"status": 404}},
    }
    root = segment(tid, start=now, duration=0.5, subsegments=[dynamo, remote])
    put(client, root)
    inferred = {d["parent_id"]: d for d in documents(client, tid) if d.get("inferred")}
    assert set(inferred) == {dynamo["id"], remote["id"]}
    assert inferred[dynamo["id"]]["origin"] == "AWS::DynamoDB::Table"
    assert inferred[remote["id"]]["error"] is True
    assert documents(client, tid) == documents(client, tid)  # stable ids for inferred segments
    # The handled downstream 404 is not a trace-level error, but service() finds it.
    assert summaries(client, "error") == []
    assert [s["Id"] for s in summaries(client, 'service("api.example.com") { error }')] == [tid]
    assert [s["Id"] for s in summaries(client, 'edge("backend-flask", "api.example.com") { error }')] == [tid]


# ---------------------------------------------------------------- GetTraceSummaries


def test_summary_fields_come_from_the_segments(api):
    _, client = api
    tid = trace_id()
    now = time.time()
    downstream_call = {
        "id": span_id(),
        "name": "payments",
        "namespace": "remote",
        "start_time": now + 0.1,
        "end_time": now + 0.6,
        "fault": True,
        "http": {"request": {"traced": True}},
    }
    root = segment(
        tid,
        start=now,
        duration=1.0,
        user="alice",
        origin="AWS::EC2::Instance",
        http={
            "request": {
                "url": "http://shop.example.com/cart",
                "method": "POST",
                "user_agent": "locust",
                "client_ip": "10.0.0.7",
            },
            "response": {"status": 404},
        },
        error=True,
        annotations={"request_id": "r-1", "items": 3, "vip": False},
        subsegments=[downstream_call],
    )
    payments = segment(
        tid,
        name="payments",
        start=now + 0.15,
        duration=0.4,
        parent_id=downstream_call["id"],
        fault=True,
        http={"response": {"status": 500}},
        cause={"exceptions": [{"id": span_id(), "type": "DbDown", "message": "db is down"}]},
    )
    async_work = {
        "type": "subsegment",
        "trace_id": tid,
        "parent_id": root["id"],
        "id": span_id(),
        "name": "async",
        "start_time": now + 0.5,
        "end_time": now + 1.5,
    }
    assert put(client, root, payments, async_work) == []
    (summary,) = summaries(client)
    assert summary["Id"] == tid
    assert summary["ResponseTime"] == pytest.approx(1.0)
    assert summary["Duration"] == pytest.approx(1.5)
    assert (summary["HasError"], summary["HasFault"], summary["HasThrottle"], summary["IsPartial"]) == (
        True,
        False,
        False,
        False,
    )
    assert summary["Http"] == {
        "HttpURL": "http://shop.example.com/cart",
        "HttpStatus": 404,
        "HttpMethod": "POST",
        "UserAgent": "locust",
        "ClientIp": "10.0.0.7",
    }
    values = {k: [v["AnnotationValue"] for v in vs] for k, vs in summary["Annotations"].items()}
    assert values == {
        "request_id": [{"StringValue": "r-1"}],
        "items": [{"NumberValue": 3.0}],
        "vip": [{"BooleanValue": False}],
    }
    assert summary["Users"][0]["UserName"] == "alice"
    assert summary["EntryPoint"] == {"Name": "backend-flask", "Names": ["backend-flask"], "Type": "AWS::EC2::Instance"}
    assert {s["Name"] for s in summary["ServiceIds"]} == {"backend-flask", "payments"}
    (fault,) = summary["FaultRootCauses"]
    assert [s["Name"] for s in fault["Services"]] == ["backend-flask", "payments"]
    assert fault["Services"][-1]["EntityPath"][-1]["Exceptions"] == [{"Name": "DbDown", "Message": "db is down"}]
    assert fault["ClientImpacting"] is False
    assert [s["Id"] for s in summaries(client, 'rootcause.fault.service { last and name = "payments" }')] == [tid]
    assert [s["Id"] for s in summaries(client, 'rootcause.fault.exception { message CONTAINS "down" }')] == [tid]


def test_filter_expressions_select_traces(api):
    _, client = api
    now = time.time()
    slow = segment(
        trace_id(),
        start=now - 5,
        duration=3.0,
        annotations={"request_id": "slow"},
        http={"request": {"url": "http://a/api/slow", "method": "GET"}, "response": {"status": 200}},
    )
    broken = segment(
        trace_id(),
        start=now - 4,
        duration=0.1,
        fault=True,
        annotations={"request_id": "broken"},
        http={"request": {"url": "http://a/api/boom", "method": "POST"}, "response": {"status": 503}},
    )
    plain = segment(trace_id(), start=now - 3, duration=0.1)
    put(client, slow, broken, plain)
    ids = {d["trace_id"]: name for d, name in ((slow, "slow"), (broken, "broken"), (plain, "plain"))}

    def names(expression: str) -> list[str]:
        return sorted(ids[s["Id"]] for s in summaries(client, expression))

    assert names('annotation.request_id = "slow"') == ["slow"]
    assert names("annotation[request_id]") == ["broken", "slow"]
    assert names("!annotation.request_id") == ["plain"]
    assert names("responsetime > 2 OR fault") == ["broken", "slow"]
    assert names('http.url BEGINSWITH "http://a/api/" and http.method != "GET"') == ["broken"]
    assert names("ok !fault duration < 1") == ["plain"]
    assert names("(fault OR http.status = 200) AND annotation.request_id") == ["broken", "slow"]
    assert names('service("backend-flask") { fault = true }') == ["broken"]
    assert names('service(id(name: "backend-flask")) { responsetime >= 3 }') == ["slow"]
    assert names("rootcause.responsetime.entity { coverage = 1 }") == ["broken", "plain", "slow"]


@pytest.mark.parametrize(
    ("expression", "problem"),
    [
        ("http.url CONTAINS /api/", "double quotes"),
        ('responsetime > "fast"', "number"),
        ('http.method > "GET"', "not valid"),
        ('service("a") { annotation.x = 1 }', "annotation"),
        ("bogus_keyword", "unknown keyword"),
        ("(fault", "expected ')'"),
        ('group.name = "slow"', "group"),
        ("rootcause.json = #[{}]", "not supported"),
    ],
)
def test_invalid_filter_expressions_are_rejected_with_the_reason(api, expression, problem):
    _, client = api
    with pytest.raises(ClientError) as err:
        client.get_trace_summaries(StartTime=time.time() - 60, EndTime=time.time(), FilterExpression=expression)
    assert err.value.response["Error"]["Code"] == "InvalidRequestException"
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert problem in err.value.response["Error"]["Message"]


def test_pagination_is_newest_first_and_complete(start_api):
    _, client = start_api(page_size=20)
    now = time.time()
    docs = [segment(trace_id(), start=now - 100 + i, duration=0.1) for i in range(55)]
    for chunk in range(0, len(docs), 50):
        assert put(client, *docs[chunk : chunk + 50]) == []
    pages = list(client.get_paginator("get_trace_summaries").paginate(StartTime=now - 200, EndTime=now + 10))
    assert [len(p["TraceSummaries"]) for p in pages] == [20, 20, 15]
    got = [s["Id"] for p in pages for s in p["TraceSummaries"]]
    assert got == [d["trace_id"] for d in reversed(docs)]
    token = pages[0]["NextToken"]
    with pytest.raises(ClientError) as err:  # a token only continues the query it came from
        client.get_trace_summaries(StartTime=now - 200, EndTime=now + 10, FilterExpression="ok", NextToken=token)
    assert err.value.response["Error"]["Code"] == "InvalidRequestException"


def test_time_range_types(api):
    _, client = api
    now = time.time()
    old_id = f"1-{int(now - 7200):08x}-{uuid.uuid4().hex[:24]}"  # request started 2 h ago ...
    doc = segment(old_id, start=now - 30)  # ... but the segment was recorded just now
    put(client, doc)
    window = {"StartTime": now - 60, "EndTime": now + 60}
    assert [s["Id"] for s in client.get_trace_summaries(**window)["TraceSummaries"]] == [old_id]
    assert client.get_trace_summaries(TimeRangeType="TraceId", **window)["TraceSummaries"] == []
    assert [
        s["Id"]
        for s in client.get_trace_summaries(TimeRangeType="TraceId", StartTime=now - 7300, EndTime=now - 7100)[
            "TraceSummaries"
        ]
    ] == [old_id]
    assert [s["Id"] for s in client.get_trace_summaries(TimeRangeType="Service", **window)["TraceSummaries"]] == [
        old_id
    ]
    with pytest.raises(ClientError):
        client.get_trace_summaries(StartTime=now, EndTime=now - 60)


def test_data_survives_reopening_the_store(start_api, tmp_path):
    db = tmp_path / "durable.sqlite3"
    url, client = start_api(db=db)
    doc = segment(trace_id(), annotations={"request_id": "kept"})
    put(client, doc)
    _, reopened = start_api(db=db)  # a second server on the same file, like a restart
    assert documents(reopened, doc["trace_id"]) == [doc]
    assert [s["Id"] for s in summaries(reopened, 'annotation.request_id = "kept"')] == [doc["trace_id"]]


# ---------------------------------------------------------------- wire format and auth


def test_calls_without_sigv4_are_refused(api):
    url, _ = api
    answer = requests.post(f"{url}/TraceSummaries", json={"StartTime": 0, "EndTime": 1}, timeout=5)
    assert answer.status_code == 403
    assert answer.headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
    assert answer.json() == {"message": "Missing Authentication Token"}


def test_unknown_paths_and_unimplemented_operations(api):
    url, client = api
    answer = requests.post(f"{url}/NoSuchOperation", json={}, timeout=5)
    assert answer.status_code == 404
    assert answer.headers["x-amzn-ErrorType"] == "UnknownOperationException"
    with pytest.raises(ClientError) as err:
        client.get_service_graph(StartTime=time.time() - 60, EndTime=time.time())
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501
    assert err.value.response["Error"]["Code"] == "NotImplementedException"
    assert "GetServiceGraph" in err.value.response["Error"]["Message"]


def test_bad_json_body_is_a_serialization_error(api):
    url, _ = api
    headers = {
        "Authorization": "AWS4-HMAC-SHA256 Credential=k/20260101/us-east-1/xray/aws4_request, "
        "SignedHeaders=host, Signature=00"
    }
    answer = requests.post(f"{url}/TraceSegments", data=b"{not json", headers=headers, timeout=5)
    assert answer.status_code == 400
    assert answer.headers["x-amzn-ErrorType"] == "SerializationException"


# ---------------------------------------------------------------- sampling


def test_sampling_rules_include_the_journal_rule_and_default(api):
    _, client = api
    records = client.get_sampling_rules()["SamplingRuleRecords"]
    rules = {r["SamplingRule"]["RuleName"]: r["SamplingRule"] for r in records}
    assert list(rules) == ["Cruddur", "Default"]  # priority order
    assert (rules["Cruddur"]["ReservoirSize"], rules["Cruddur"]["FixedRate"], rules["Cruddur"]["Priority"]) == (
        5,
        0.1,
        9000,
    )
    assert (rules["Default"]["ReservoirSize"], rules["Default"]["FixedRate"], rules["Default"]["Priority"]) == (
        1,
        0.05,
        10000,
    )
    assert rules["Cruddur"]["RuleARN"].endswith(":sampling-rule/Cruddur")


def test_console_export_shape_and_default_override(start_api, tmp_path):
    rules_file = tmp_path / "rules.json"
    base = json.loads(JOURNAL_RULES.read_text())["SamplingRule"]
    rules_file.write_text(
        json.dumps(
            {
                "SamplingRules": [
                    base,
                    {**base, "RuleName": "Slow", "Priority": 10},
                    {"RuleName": "Default", "FixedRate": 0.2, "ReservoirSize": 2},
                ]
            }
        )
    )
    _, client = start_api(rules=rules_file)
    rules = [r["SamplingRule"] for r in client.get_sampling_rules()["SamplingRuleRecords"]]
    assert [r["RuleName"] for r in rules] == ["Slow", "Cruddur", "Default"]
    assert (rules[-1]["FixedRate"], rules[-1]["ReservoirSize"], rules[-1]["Priority"]) == (0.2, 2, 10000)


def test_invalid_rules_file_fails_at_start(start_api, tmp_path):
    rules_file = tmp_path / "rules.json"
    rules_file.write_text(json.dumps({"SamplingRule": {"RuleName": "NoRate", "Priority": 1}}))
    with pytest.raises(ValueError, match="NoRate.*missing FixedRate"):
        start_api(rules=rules_file)


def _stats(rule: str, client_id: str, requests_seen: int = 10) -> dict:
    return {
        "RuleName": rule,
        "ClientID": client_id,
        "Timestamp": time.time(),
        "RequestCount": requests_seen,
        "SampledCount": 2,
        "BorrowCount": 1,
    }


def test_reservoir_quota_is_shared_between_active_clients(api):
    _, client = api
    clients = [f"{i:024x}" for i in (3, 1, 2)]
    first = client.get_sampling_targets(SamplingStatisticsDocuments=[_stats("Cruddur", clients[0])])
    (alone,) = first["SamplingTargetDocuments"]
    assert (alone["ReservoirQuota"], alone["FixedRate"], alone["Interval"]) == (5, 0.1, 10)
    assert alone["ReservoirQuotaTTL"].timestamp() > time.time()
    quotas = {}
    for _round in range(2):  # after the first round all three clients are active
        for cid in clients:
            (target,) = client.get_sampling_targets(SamplingStatisticsDocuments=[_stats("Cruddur", cid)])[
                "SamplingTargetDocuments"
            ]
            quotas[cid] = target["ReservoirQuota"]
    assert sum(quotas.values()) == 5
    assert quotas == {f"{1:024x}": 2, f"{2:024x}": 2, f"{3:024x}": 1}


def test_statistics_for_unknown_rules_are_unprocessed(api):
    _, client = api
    answer = client.get_sampling_targets(
        SamplingStatisticsDocuments=[_stats("Nope", "a" * 24), _stats("Default", "a" * 24)]
    )
    assert [t["RuleName"] for t in answer["SamplingTargetDocuments"]] == ["Default"]
    (unprocessed,) = answer["UnprocessedStatistics"]
    assert unprocessed["RuleName"] == "Nope" and "does not exist" in unprocessed["Message"]


def test_editing_the_rules_file_moves_last_rule_modification(start_api, tmp_path):
    rules_file = tmp_path / "rules.json"
    rules_file.write_text(JOURNAL_RULES.read_text())
    os.utime(rules_file, (time.time() - 100, time.time() - 100))
    _, client = start_api(rules=rules_file)
    before = client.get_sampling_targets(SamplingStatisticsDocuments=[_stats("Cruddur", "b" * 24)])
    rule = json.loads(rules_file.read_text())
    rule["SamplingRule"]["FixedRate"] = 0.5
    rules_file.write_text(json.dumps(rule))
    after = client.get_sampling_targets(SamplingStatisticsDocuments=[_stats("Cruddur", "b" * 24)])
    assert after["LastRuleModification"] > before["LastRuleModification"]
    assert after["SamplingTargetDocuments"][0]["FixedRate"] == 0.5
