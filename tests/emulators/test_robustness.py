"""Hostile or absurd requests get a clear client error from the emulators, never a 500; and what the real
service stores as sent (invalid OTLP ids) the Honeycomb emulator stores as sent too."""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
from botocore.exceptions import ClientError

from emulators._server import serve
from emulators.honeycomb.api import HoneycombSettings
from emulators.honeycomb.api import create_app as honeycomb_app
from emulators.honeycomb.store import HoneycombStore
from emulators.rollbar.api import RollbarSettings
from emulators.rollbar.api import create_app as rollbar_app
from emulators.rollbar.store import RollbarStore
from emulators.xray.api import XRaySettings
from emulators.xray.api import create_app as xray_app
from emulators.xray.filter_expression import MAX_NESTING
from emulators.xray.store import XRayStore
from tracedrill import local

# ---- X-Ray: filter expressions nested past any sane depth ----


@pytest.fixture
def xray(tmp_path: Path) -> Iterator[Any]:
    running = serve("xray", xray_app(XRayStore(tmp_path / "xray.sqlite3"), XRaySettings()))
    try:
        yield boto3.client(
            "xray",
            endpoint_url=running.url,
            region_name="us-east-1",
            aws_access_key_id="test-key",
            aws_secret_access_key="test-secret",
        )
    finally:
        running.stop()


@pytest.mark.parametrize(
    "expression",
    ["!" * 1000 + "ok", "(" * 3000 + "ok" + ")" * 3000, 'service("a") {' + "(" * 500 + "ok" + ")" * 500 + "}"],
    ids=["negations", "parentheses", "inside-braces"],
)
def test_deeply_nested_filter_expressions_are_invalid_requests(xray, expression):
    now = time.time()
    with pytest.raises(ClientError) as err:
        xray.get_trace_summaries(StartTime=now - 60, EndTime=now, FilterExpression=expression)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert err.value.response["Error"]["Code"] == "InvalidRequestException"
    assert f"deeper than {MAX_NESTING}" in err.value.response["Error"]["Message"]


def test_nesting_within_the_bound_still_works(xray):
    now = time.time()
    trace_id = f"1-{int(now):08x}-{uuid.uuid4().hex[:24]}"
    doc = {"trace_id": trace_id, "id": uuid.uuid4().hex[:16], "name": "svc", "start_time": now, "end_time": now + 1}
    xray.put_trace_segments(TraceSegmentDocuments=[json.dumps(doc)])
    depth = MAX_NESTING - 1
    found = xray.get_trace_summaries(
        StartTime=now - 60, EndTime=now + 60, FilterExpression="(" * depth + "ok" + ")" * depth
    )["TraceSummaries"]
    assert [s["Id"] for s in found] == [trace_id]
    negated = xray.get_trace_summaries(StartTime=now - 60, EndTime=now + 60, FilterExpression="!!ok")
    assert [s["Id"] for s in negated["TraceSummaries"]] == [trace_id]


# ---- Rollbar: numbers beyond what the store's 64-bit integers hold ----


@pytest.fixture
def rollbar(tmp_path: Path) -> Iterator[str]:
    running = serve("rollbar", rollbar_app(RollbarStore(tmp_path / "rollbar.sqlite3"), RollbarSettings.local()))
    try:
        yield f"{running.url}/api/1/"
    finally:
        running.stop()


class _Raw(str):
    """A number written into the JSON body exactly as given."""


def _post(api: str, **data: Any) -> requests.Response:
    payload = {
        "access_token": local.LOCAL_ROLLBAR_POST_TOKEN,
        "data": {"environment": "local", "level": "error", "body": {"message": {"body": "hi"}}, **data},
    }
    body = json.dumps(payload)
    for value in data.values():
        if isinstance(value, _Raw):
            body = body.replace(json.dumps(value), value)
    return requests.post(api + "item/", data=body, timeout=5, headers={"Content-Type": "application/json"})


def _get(api: str, path: str, **params: Any) -> requests.Response:
    headers = {"X-Rollbar-Access-Token": local.LOCAL_ROLLBAR_READ_TOKEN}
    return requests.get(api + path, params=params, headers=headers, timeout=5)


# As written in the JSON body: 1e400 overflows to infinity in Python's parser (bare NaN/Infinity are no JSON).
@pytest.mark.parametrize("timestamp", ["1e20", "-1e20", str(10**30), "1e400", "-1e400"])
def test_an_impossible_timestamp_is_an_invalid_item(rollbar, timestamp):
    answer = _post(rollbar, timestamp=_Raw(timestamp))
    assert answer.status_code == 422, answer.text
    assert answer.json() == {"err": 1, "message": "Invalid format. data.timestamp must be a unix timestamp."}
    assert _get(rollbar, "items/").json()["result"]["items"] == []  # nothing stored


def test_a_plausible_timestamp_is_still_stored(rollbar):
    assert _post(rollbar, timestamp=int(time.time())).status_code == 200


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("items/", {"page": "99999999999999999999"}),
        ("items/", {"page": str(2**62)}),
        ("items/", {"ids": "99999999999999999999"}),
        ("instances/", {"page": "99999999999999999999"}),
        ("instances/", {"last_id": "99999999999999999999"}),
    ],
)
def test_out_of_range_numbers_in_the_query_are_422(rollbar, path, params):
    answer = _get(rollbar, path, **params)
    assert answer.status_code == 422, answer.text
    assert answer.json()["err"] == 1 and "Invalid format." in answer.json()["message"]


@pytest.mark.parametrize(
    "path", ["item/99999999999999999999", "instance/99999999999999999999/", "item_by_counter/1" + "0" * 25]
)
def test_out_of_range_ids_in_the_path_are_not_found(rollbar, path):
    answer = _get(rollbar, path)
    assert answer.status_code == 404, answer.text
    assert answer.json() == {"err": 1, "message": "not found"}


def test_the_last_page_that_fits_is_an_empty_page(rollbar):
    answer = _get(rollbar, "items/", page=str((2**63 - 1) // 100))
    assert answer.status_code == 200 and answer.json()["result"]["items"] == []


# ---- Honeycomb: ids OTLP calls invalid are stored as sent (husky does not validate them) ----


def test_invalid_otlp_ids_are_stored_as_the_real_service_stores_them(tmp_path: Path):
    running = serve("honeycomb", honeycomb_app(HoneycombStore(tmp_path / "hc.sqlite3"), HoneycombSettings.local()))
    try:
        now = time.time()
        spans = [
            {"traceId": "0" * 32, "spanId": "1" * 16, "name": "zero trace", "startTimeUnixNano": str(int(now * 1e9))},
            {"traceId": "ab" * 16, "spanId": "", "name": "no span id", "startTimeUnixNano": str(int(now * 1e9))},
        ]
        body = {
            "resourceSpans": [
                {
                    "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "ids"}}]},
                    "scopeSpans": [{"spans": spans}],
                }
            ]
        }
        headers = {"Content-Type": "application/json", "x-honeycomb-team": local.LOCAL_HONEYCOMB_KEY}
        answer = requests.post(f"{running.url}/v1/traces", data=json.dumps(body), headers=headers, timeout=5)
        assert answer.status_code == 200, answer.text
        api = {"X-Honeycomb-Team": local.LOCAL_HONEYCOMB_KEY}
        spec = {
            "breakdowns": ["name", "trace.trace_id", "trace.span_id"],
            "calculations": [{"op": "COUNT"}],
            "start_time": int(now) - 120,
            "end_time": int(now) + 120,
        }
        query = requests.post(f"{running.url}/1/queries/ids", json=spec, headers=api, timeout=5).json()
        created = requests.post(
            f"{running.url}/1/query_results/ids", json={"query_id": query["id"]}, headers=api, timeout=5
        ).json()
        result = requests.get(f"{running.url}/1/query_results/ids/{created['id']}", headers=api, timeout=5).json()
        found = {
            r["data"]["name"]: (r["data"]["trace.trace_id"], r["data"]["trace.span_id"])
            for r in result["data"]["results"]
        }
        # husky's BytesToTraceID trims 8 leading zero bytes; an empty span id is the empty string
        assert found == {"zero trace": ("0" * 16, "1" * 16), "no span id": ("ab" * 16, "")}
    finally:
        running.stop()


def test_a_malformed_chunked_body_is_a_client_error_not_a_500(rollbar, caplog):
    host, port = rollbar.split("//")[1].split("/")[0].split(":")
    with socket.create_connection((host, int(port)), timeout=5) as sock:
        sock.sendall(
            b"POST /api/1/item/ HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400"), answer[:200]
    assert not [r for r in caplog.records if r.levelname == "ERROR"]  # no traceback logged
