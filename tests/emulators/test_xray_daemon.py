"""The X-Ray daemon stand-in, driven by the real aws-xray-sdk, read back through boto3."""

from __future__ import annotations

import json
import math
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import boto3
import botocore.session
import pytest
from aws_xray_sdk.core import AWSXRayRecorder
from aws_xray_sdk.core.sampling.local.sampler import LocalSampler
from aws_xray_sdk.core.sampling.reservoir import ReservoirDecision
from botocore import UNSIGNED
from botocore.config import Config
from botocore.exceptions import ClientError

from emulators._server import serve
from emulators.stack import LocalStack, StackConfig
from emulators.xray.api import XRaySettings, create_app
from emulators.xray.daemon import XRayDaemon
from emulators.xray.store import XRayStore
from tracedrill import local

REPO = Path(__file__).resolve().parents[2]
JOURNAL_RULES = REPO / "target_app" / "xray-sampling-rules.json"
LOCAL_RULES = REPO / "target_app" / "xray-local-rules.json"
HEADER = b'{"format":"json","version":1}\n'
SDK_ENV = ("AWS_XRAY_DAEMON_ADDRESS", "AWS_XRAY_CONTEXT_MISSING", "AWS_XRAY_TRACING_NAME", "AWS_XRAY_SDK_ENABLED")


def wait_until(condition: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met within {timeout} s")
        time.sleep(0.02)


@pytest.fixture
def env(monkeypatch, tmp_path):
    for name in SDK_ENV:
        monkeypatch.delenv(name, raising=False)
    # The daemon signs with the environment's credentials: make them the test's, never a user's.
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "daemon-test-key")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "daemon-test-secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def api(tmp_path, env):
    served = serve(
        "xray", create_app(XRayStore(tmp_path / "xray.sqlite3"), XRaySettings(sampling_rules_file=JOURNAL_RULES))
    )
    yield served.url
    served.stop()


@pytest.fixture
def client(api):
    return boto3.client(
        "xray",
        endpoint_url=api,
        region_name="us-east-1",
        aws_access_key_id="reader",
        aws_secret_access_key="reader-secret",
    )


@pytest.fixture
def start_daemon(api):
    daemons = []

    def start(**kwargs) -> XRayDaemon:
        daemon = XRayDaemon("127.0.0.1", 0, api, "us-east-1", **{"flush_interval": 0.05, **kwargs})
        daemon.start()
        daemons.append(daemon)
        return daemon

    yield start
    for daemon in daemons:
        daemon.stop()


@pytest.fixture
def daemon(start_daemon):
    return start_daemon()


def recorder(daemon: XRayDaemon, **configure) -> AWSXRayRecorder:
    rec = AWSXRayRecorder()
    rec.configure(
        daemon_address=daemon.address,
        context_missing="LOG_ERROR",
        service="backend-flask",
        **{"sampling": True, **configure},
    )
    return rec


def fetch(client, trace_ids: list[str]) -> dict[str, list[dict]]:
    """trace id -> documents, for every trace of ``trace_ids`` that has arrived."""
    out: dict[str, list[dict]] = {}
    for i in range(0, len(trace_ids), 5):
        for trace in client.batch_get_traces(TraceIds=trace_ids[i : i + 5])["Traces"]:
            out[trace["Id"]] = [json.loads(s["Document"]) for s in trace["Segments"]]
    return out


def arrived(client, trace_id: str) -> list[dict]:
    wait_until(lambda: trace_id in fetch(client, [trace_id]))
    return fetch(client, [trace_id])[trace_id]


def send(daemon: XRayDaemon, *datagrams: bytes) -> None:
    host, port = daemon.address.rsplit(":", 1)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        for datagram in datagrams:
            sock.sendto(datagram, (host, int(port)))


def raw_segment(**fields) -> dict:
    now = time.time()
    return {
        "name": "raw",
        "id": uuid.uuid4().hex[:16],
        "trace_id": f"1-{int(now):08x}-{uuid.uuid4().hex[:24]}",
        "start_time": now,
        "end_time": now + 0.01,
        **fields,
    }


# ---------------------------------------------------------------- SDK -> daemon -> API


def test_sdk_trace_arrives_with_its_subsegment_tree(daemon, client):
    rec = recorder(daemon)
    segment = rec.begin_segment("backend-flask", sampling=1)
    segment.put_annotation("request_id", "req-1")
    segment.put_metadata("payload", {"items": [1, 2]}, "app")
    segment.put_http_meta("url", "http://localhost/api/activities/home")
    segment.put_http_meta("method", "GET")
    db = rec.begin_subsegment("db")
    db.put_annotation("table", "activities")
    query = rec.begin_subsegment("query")
    query.put_metadata("sql", "SELECT 1")
    rec.end_subsegment()
    rec.end_subsegment()
    rec.begin_subsegment("render")
    rec.end_subsegment()
    segment.put_http_meta("status", 200)
    rec.end_segment()

    (doc,) = arrived(client, segment.trace_id)
    assert doc["id"] == segment.id and doc["annotations"] == {"request_id": "req-1"}
    assert doc["metadata"]["app"] == {"payload": {"items": [1, 2]}}
    assert [s["name"] for s in doc["subsegments"]] == ["db", "render"]
    db_doc = doc["subsegments"][0]
    assert db_doc["annotations"] == {"table": "activities"}
    assert [s["name"] for s in db_doc["subsegments"]] == ["query"]
    assert db_doc["subsegments"][0]["metadata"] == {"default": {"sql": "SELECT 1"}}
    assert daemon.stats()["forwarded"] == 1


def test_streamed_subsegments_come_back_merged(daemon, client):
    rec = recorder(daemon)
    segment = rec.begin_segment("backend-flask", sampling=1)
    for i in range(40):
        rec.begin_subsegment(f"work-{i}")
        rec.begin_subsegment(f"inner-{i}")
        rec.end_subsegment()
        rec.end_subsegment()
    rec.end_segment()

    wait_until(lambda: daemon.stats()["pending"] == 0 and daemon.stats()["received"] > 1)
    assert daemon.stats()["received"] > 1  # the SDK streamed the big segment as several documents
    (doc,) = arrived(client, segment.trace_id)
    assert [s["name"] for s in doc["subsegments"]] == [f"work-{i}" for i in range(40)]
    assert all(
        len(s["subsegments"]) == 1 and s["subsegments"][0]["name"] == f"inner-{i}"
        for i, s in enumerate(doc["subsegments"])
    )


def test_filter_expressions_on_sdk_traces(daemon, client):
    rec = recorder(daemon)
    ids = {}
    for request_id, status in (("r-ok", 200), ("r-missing", 404), ("r-boom", 500)):
        segment = rec.begin_segment("backend-flask", sampling=1)
        segment.put_annotation("request_id", request_id)
        segment.put_http_meta("url", f"http://localhost/api/{request_id}")
        segment.put_http_meta("status", status)
        rec.end_segment()
        ids[segment.trace_id] = request_id
    wait_until(lambda: daemon.stats()["forwarded"] == 3)

    def found(expression: str) -> list[str]:
        pages = client.get_paginator("get_trace_summaries").paginate(
            StartTime=time.time() - 60, EndTime=time.time() + 60, FilterExpression=expression
        )
        return sorted(ids[s["Id"]] for page in pages for s in page["TraceSummaries"])

    assert found('annotation.request_id = "r-missing"') == ["r-missing"]
    assert found("fault") == ["r-boom"]
    assert found("error AND http.status = 404") == ["r-missing"]
    assert found('http.url ENDSWITH "ok" OR http.status >= 500') == ["r-boom", "r-ok"]


# ---------------------------------------------------------------- rejection, counting, flushing


def test_bad_datagrams_are_rejected_and_counted(daemon, client):
    good = raw_segment(annotations={"request_id": "good"})
    send(daemon, HEADER + json.dumps(good).encode())
    wait_until(lambda: daemon.stats()["forwarded"] == 1)

    missing_start = raw_segment()
    del missing_start["start_time"]
    send(
        daemon,
        b"\x00\xffgarbage",
        b'{"format":"xml","version":1}\n' + json.dumps(raw_segment()).encode(),
        b'{"format":"json","version":1}',
        HEADER + b'{"name": "broken',
        HEADER + b"[1, 2, 3]",
        HEADER + json.dumps(raw_segment(metadata={"default": {"ratio": math.nan}})).encode(),  # bare NaN
        HEADER + json.dumps(missing_start).encode(),  # valid JSON, refused by PutTraceSegments
    )
    wait_until(lambda: daemon.stats()["rejected"] == 7)
    stats = daemon.stats()
    assert (stats["invalid_header"], stats["invalid_json"], stats["unprocessed"]) == (3, 3, 1)
    assert (stats["received"], stats["forwarded"], stats["failed"], stats["pending"]) == (8, 1, 0, 0)
    assert fetch(client, [good["trace_id"]]) == {good["trace_id"]: [good]}


def test_oversize_segments_are_rejected(start_daemon, client):
    # A UDP datagram over IPv4 carries at most 65,507 bytes, so the default 64 KB document limit
    # cannot be crossed on loopback; a daemon with a lower limit shows the check itself.
    daemon = start_daemon(max_segment_bytes=4096)
    small = raw_segment()
    big = raw_segment(metadata={"default": {"blob": "x" * 5000}})
    send(daemon, HEADER + json.dumps(big).encode(), HEADER + json.dumps(small).encode())
    wait_until(lambda: daemon.stats()["forwarded"] == 1)
    wait_until(lambda: daemon.stats()["rejected"] == 1)
    assert daemon.stats()["oversize"] == 1
    assert list(fetch(client, [small["trace_id"], big["trace_id"]])) == [small["trace_id"]]


def test_burst_of_2000_datagrams_is_forwarded_without_loss(daemon, client):
    burst = uuid.uuid4().hex
    docs = [raw_segment(annotations={"burst": burst, "n": i}) for i in range(2000)]
    send(daemon, *(HEADER + json.dumps(d).encode() for d in docs))
    wait_until(lambda: daemon.stats()["forwarded"] == 2000, timeout=30)
    stats = daemon.stats()
    assert (stats["received"], stats["rejected"], stats["failed"], stats["pending"]) == (2000, 0, 0, 0)
    assert stats["batches"] >= 40  # never more than 50 per PutTraceSegments call
    pages = client.get_paginator("get_trace_summaries").paginate(
        StartTime=time.time() - 120, EndTime=time.time() + 60, FilterExpression=f'annotation.burst = "{burst}"'
    )
    assert {s["Id"] for page in pages for s in page["TraceSummaries"]} == {d["trace_id"] for d in docs}


def test_stop_flushes_what_the_daemon_holds(start_daemon, client):
    daemon = start_daemon(flush_interval=60)
    docs = [raw_segment() for _ in range(10)]
    send(daemon, *(HEADER + json.dumps(d).encode() for d in docs))
    wait_until(lambda: daemon.stats()["received"] == 10)
    assert daemon.stats()["forwarded"] == 0
    daemon.stop()
    assert daemon.stats()["forwarded"] == 10
    assert set(fetch(client, [d["trace_id"] for d in docs])) == {d["trace_id"] for d in docs}


def test_taken_port_is_a_clear_error(api, env):
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as blocker:
        blocker.bind(("127.0.0.1", 0))
        blocker.listen(1)
        port = blocker.getsockname()[1]
        daemon = XRayDaemon("127.0.0.1", port, api, "us-east-1")
        with pytest.raises(OSError, match=f"cannot bind TCP 127.0.0.1:{port}"):
            daemon.start()


# ---------------------------------------------------------------- sampling through the TCP side


def test_sdk_sampler_gets_the_journal_rule_and_quota_through_the_daemon(daemon, api):
    rec = recorder(daemon)
    sampler = rec.sampler
    request = {"service": "backend-flask", "host": "localhost", "method": "GET", "path": "/api/activities/home"}
    sampler.should_trace(request)  # the first decision starts the SDK's pollers
    wait_until(lambda: sampler._cache.rules)
    rules = {rule.name: rule for rule in sampler._cache.rules}
    assert list(rules) == ["Cruddur", "Default"]
    cruddur = rules["Cruddur"]
    assert (cruddur.rate, cruddur.can_borrow) == (0.1, True)
    assert sampler._cache.get_matched_rule(request, int(time.time())) is cruddur

    for _ in range(10):
        sampler.should_trace(request)
    sampler._target_poller._do_work()  # the poller's own reporting step, without its 10 s sleep
    assert cruddur.reservoir.quota == 5
    assert cruddur.reservoir.TTL > time.time()
    next_second = int(time.time()) + 2
    decisions = [cruddur.reservoir.borrow_or_take(next_second, cruddur.can_borrow) for _ in range(7)]
    assert decisions == [ReservoirDecision.TAKE] * 5 + [ReservoirDecision.NO] * 2
    assert daemon.stats()["proxied"] >= 2

    # The SDK's client is unsigned: only the daemon's signature gets it past the API.
    unsigned = botocore.session.get_session().create_client(
        "xray", endpoint_url=api, region_name="us-west-2", config=Config(signature_version=UNSIGNED)
    )
    with pytest.raises(ClientError) as err:
        unsigned.get_sampling_rules()
    assert err.value.response["Error"]["Code"] == "MissingAuthenticationTokenException"


def test_local_rules_sampling_sends_exactly_the_sampled_segments(daemon, client):
    rec = recorder(daemon, sampler=LocalSampler(), sampling_rules=str(LOCAL_RULES))
    sampled = []
    for _ in range(30):
        segment = rec.begin_segment("backend-flask")
        if segment.sampled:
            sampled.append(segment.trace_id)
        rec.end_segment()
    assert 5 <= len(sampled) < 30  # fixed_target 5 per second, then 10 %
    wait_until(lambda: daemon.stats()["forwarded"] == len(sampled))
    assert daemon.stats()["received"] == len(sampled)
    assert set(fetch(client, sampled)) == set(sampled)


def test_without_environment_credentials_the_local_ones_sign(monkeypatch, start_daemon, client):
    monkeypatch.delenv("AWS_ACCESS_KEY_ID")
    monkeypatch.delenv("AWS_SECRET_ACCESS_KEY")
    daemon = start_daemon()
    doc = raw_segment()
    send(daemon, HEADER + json.dumps(doc).encode())
    wait_until(lambda: daemon.stats()["forwarded"] == 1)
    host, port = daemon.address.rsplit(":", 1)
    sdk_style = botocore.session.get_session().create_client(
        "xray", endpoint_url=f"http://{host}:{port}", region_name="us-west-2", config=Config(signature_version=UNSIGNED)
    )
    assert "Default" in [r["SamplingRule"]["RuleName"] for r in sdk_style.get_sampling_rules()["SamplingRuleRecords"]]
    assert fetch(client, [doc["trace_id"]]) == {doc["trace_id"]: [doc]}


# ---------------------------------------------------------------- command line


def test_help():
    result = subprocess.run(
        [sys.executable, "-m", "emulators.xray.daemon", "--help"], cwd=REPO, capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0
    assert "--xray-endpoint" in result.stdout and "--port" in result.stdout


def test_command_line_daemon_relays_and_flushes_on_sigterm(api, client, tmp_path):
    log_file = tmp_path / "daemon.log"
    environment = {**os.environ, "AWS_ACCESS_KEY_ID": "cli-key", "AWS_SECRET_ACCESS_KEY": "cli-secret"}
    with log_file.open("w") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "emulators.xray.daemon",
                "--port",
                "0",
                "--xray-endpoint",
                api,
                "--flush-interval",
                "60",
            ],
            cwd=REPO,
            stderr=log,
            env=environment,
        )
    try:
        wait_until(lambda: "listening on" in log_file.read_text(), timeout=20)
        line = next(x for x in log_file.read_text().splitlines() if "listening on" in x)
        address = line.split("listening on ")[1].split()[0]
        host, port = address.rsplit(":", 1)
        doc = raw_segment()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.sendto(HEADER + json.dumps(doc).encode(), (host, int(port)))
        time.sleep(0.3)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert fetch(client, [doc["trace_id"]]) == {doc["trace_id"]: [doc]}
    assert "'forwarded': 1" in log_file.read_text()


def test_a_stack_on_ipv6_loopback_keeps_the_daemon_where_the_sdk_can_reach_it(env, tmp_path):
    # The SDK splits AWS_XRAY_DAEMON_ADDRESS on ':' and sends over IPv4: "::1:2000" would not even parse.
    config = StackConfig(data_dir=tmp_path / "stack", host="::1", ports=local.LocalPorts.ephemeral())
    with LocalStack(config) as stack:
        endpoints = stack.endpoints
        assert endpoints.xray_api.startswith("http://[::1]:")
        rec = AWSXRayRecorder()
        rec.configure(daemon_address=endpoints.xray_daemon, context_missing="LOG_ERROR", sampling=False)
        segment = rec.begin_segment("backend-flask")
        rec.end_segment()
        reader = boto3.client(
            "xray",
            endpoint_url=endpoints.xray_api,
            region_name=local.LOCAL_AWS_REGION,
            aws_access_key_id="reader",
            aws_secret_access_key="reader-secret",
        )
        assert [doc["id"] for doc in arrived(reader, segment.trace_id)] == [segment.id]
