"""Synthetic runs: a sent-ledger and the telemetry the target app would have emitted for it.

Shaped like the bundled target's output (the same span names and attributes, segment fields and
subsegments, log line formats, Rollbar payloads), so that the verifiers pass on it; sent to the
backends only through their public ingest APIs (OTLP/HTTP protobuf, PutTraceSegments,
PutLogEvents, POST item/).
"""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.resource.v1.resource_pb2 import Resource
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span, Status

from loadtests.ids import new_request_ids
from target_app.telemetry.cloudwatch import home_line, request_line
from tracedrill import local
from verifiers.model import SentRequest

SERVICE = local.DEFAULT_SERVICE_NAME
HOST = "http://127.0.0.1:5000"


@dataclass(frozen=True)
class Route:
    name: str
    path: str
    rule: str  # the Flask URL rule: the server span's name is "GET <rule>"
    weight: int
    status: int


# The locustfile's routes and weights.
ROUTES: tuple[Route, ...] = (
    Route("home", "/api/activities/home", "/api/activities/home", 6, 200),
    Route("user_activities", "/api/activities/@andrewbrown", "/api/activities/@<handle>", 3, 200),
    Route("user_activities_invalid", "/api/activities/@not-a-handle", "/api/activities/@<handle>", 1, 422),
    Route("notifications", "/api/activities/notifications", "/api/activities/notifications", 2, 200),
    Route("health", "/api/health", "/api/health", 1, 200),
    Route("rollbar_test", "/rollbar/test", "/rollbar/test", 1, 200),
    Route("fault", "/api/fault", "/api/fault", 1, 500),
)
_BY_NAME = {r.name: r for r in ROUTES}
_CYCLE = [r for r in ROUTES for _ in range(r.weight)]
XRAY_RESERVOIR_PER_S, XRAY_RATE = 5, 0.10  # the bundled sampling rule (target_app/xray-sampling-rules.json)


def ledger(n: int, start: float, rate: float) -> list[SentRequest]:
    """``n`` answered requests at ``rate`` per second from ``start``, routes in the locustfile's mix."""
    out = []
    for i in range(n):
        route = _CYCLE[i % len(_CYCLE)]
        t = start + i / rate
        ids = new_request_ids(now=t)
        out.append(
            SentRequest(
                request_id=ids.request_id,
                name=route.name,
                method="GET",
                url=HOST + route.path,
                path=route.path,
                start=t,
                end=t + 0.004,
                status=route.status,
                trace_id=ids.trace_id,
                parent_span_id=ids.parent_span_id,
                xray_trace_id=ids.xray_trace_id,
                worker="bench",
            )
        )
    return out


def xray_sampled(sent: Sequence[SentRequest]) -> list[SentRequest]:
    """Which requests the bundled rule would trace: the first 5 each second, then every 10th."""
    chosen: list[SentRequest] = []
    per_second: dict[int, int] = {}
    counter = 0
    for r in sent:
        second = int(r.start)
        per_second[second] = per_second.get(second, 0) + 1
        if per_second[second] <= XRAY_RESERVOIR_PER_S:
            chosen.append(r)
            continue
        counter += 1
        if counter % round(1 / XRAY_RATE) == 0:
            chosen.append(r)
    return chosen


# ---- OTLP (Honeycomb) -------------------------------------------------------------------------


def _kv(key: str, value: str | int | bool) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def spans(r: SentRequest) -> list[Span]:
    route = _BY_NAME[r.name]
    start_ns, end_ns = int(r.start * 1e9), int(r.end * 1e9)
    server_id = os.urandom(8)
    server = Span(
        trace_id=bytes.fromhex(r.trace_id),
        span_id=server_id,
        parent_span_id=bytes.fromhex(r.parent_span_id),
        name=f"GET {route.rule}",
        kind=Span.SPAN_KIND_SERVER,
        start_time_unix_nano=start_ns,
        end_time_unix_nano=end_ns,
        attributes=[
            _kv("http.method", "GET"),
            _kv("http.route", route.rule),
            _kv("http.target", r.path),
            _kv("http.status_code", int(r.status or 0)),
            _kv("app.request_id", r.request_id),
        ],
        status=Status(code=Status.STATUS_CODE_ERROR if (r.status or 0) >= 500 else Status.STATUS_CODE_UNSET),
    )
    out = [server]
    if r.name == "home":
        out.append(
            Span(
                trace_id=bytes.fromhex(r.trace_id),
                span_id=os.urandom(8),
                parent_span_id=server_id,
                name="home-activities-mock-data",
                kind=Span.SPAN_KIND_INTERNAL,
                start_time_unix_nano=start_ns + 1000,
                end_time_unix_nano=end_ns - 1000,
                attributes=[
                    _kv("app.now", datetime.fromtimestamp(r.start, UTC).isoformat()),
                    _kv("app.result_length", 1),
                    _kv("app.request_id", r.request_id),
                ],
            )
        )
    return out


def otlp_batches(sent: Sequence[SentRequest], batch: int = 512) -> Iterator[bytes]:
    """Serialized ExportTraceServiceRequests of ``batch`` spans each (the BatchSpanProcessor's size)."""
    pending: list[Span] = []
    for r in sent:
        pending.extend(spans(r))
        while len(pending) >= batch:
            yield _export(pending[:batch])
            pending = pending[batch:]
    if pending:
        yield _export(pending)


def _export(items: Sequence[Span]) -> bytes:
    request = ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource=Resource(attributes=[_kv("service.name", SERVICE)]),
                scope_spans=[ScopeSpans(spans=list(items))],
            )
        ]
    )
    return bytes(request.SerializeToString())


# ---- X-Ray --------------------------------------------------------------------------------------


def segment(r: SentRequest) -> dict[str, object]:
    status = int(r.status or 0)
    doc: dict[str, object] = {
        "name": SERVICE,
        "id": os.urandom(8).hex(),
        "trace_id": r.xray_trace_id,
        "start_time": r.start,
        "end_time": r.end,
        "http": {
            "request": {"method": "GET", "url": r.url, "client_ip": "127.0.0.1", "user_agent": "bench"},
            "response": {"status": status, "content_length": 100},
        },
        "annotations": {"request_id": r.request_id},
        "aws": {"xray": {"sdk": "X-Ray for Python", "sdk_version": "2.15.0"}},
        "service": {"runtime": "CPython", "runtime_version": "3.11"},
    }
    if status >= 500:
        doc["fault"] = True
    elif status >= 400:
        doc["error"] = True
    if r.name == "user_activities" and status == 200:
        now = datetime.fromtimestamp(r.start, UTC).isoformat()
        inner = {
            "id": os.urandom(8).hex(),
            "name": "mock-data",
            "start_time": r.start + 0.0015,
            "end_time": r.start + 0.0025,
            "metadata": {"cruddur": {"result": {"results_size": 1}}},
        }
        doc["subsegments"] = [
            {
                "id": os.urandom(8).hex(),
                "name": "user-activities",
                "start_time": r.start + 0.001,
                "end_time": r.start + 0.003,
                "annotations": {"user_handle": "andrewbrown"},
                "metadata": {"cruddur": {"query": {"now": now, "handle": "andrewbrown"}}},
                "subsegments": [inner],
            }
        ]
    return doc


def segment_documents(sent: Sequence[SentRequest]) -> list[str]:
    return [json.dumps(segment(r), separators=(",", ":")) for r in xray_sampled(sent)]


def daemon_datagram(document: str) -> bytes:
    return b'{"format":"json","version":1}\n' + document.encode("utf-8")


# ---- CloudWatch Logs ---------------------------------------------------------------------------


def log_events(sent: Sequence[SentRequest]) -> list[dict[str, object]]:
    """The lines the target writes (the hello line first on home, then the access line), in time order."""
    events: list[dict[str, object]] = []
    for r in sent:
        ms = int(r.end * 1000)
        if r.name == "home":
            events.append({"timestamp": ms, "message": home_line(r.request_id)})
        line = request_line(
            when=datetime.fromtimestamp(r.end, UTC),
            remote_addr="127.0.0.1",
            method="GET",
            scheme="http",
            full_path=r.path + "?",
            status_code=int(r.status or 0),
            request_id=r.request_id,
        )
        events.append({"timestamp": ms, "message": line})
    return events


def log_batches(events: Sequence[dict[str, object]], size: int = 10_000) -> Iterator[list[dict[str, object]]]:
    """PutLogEvents batches within AWS's limits (10,000 events, 1 MiB with 26 bytes per event)."""
    batch: list[dict[str, object]] = []
    used = 0
    for event in events:
        cost = len(str(event["message"]).encode("utf-8")) + 26
        if batch and (len(batch) >= size or used + cost > 1_048_576):
            yield batch
            batch, used = [], 0
        batch.append(event)
        used += cost
    if batch:
        yield batch


# ---- Rollbar -----------------------------------------------------------------------------------


def rollbar_payloads(sent: Sequence[SentRequest], token: str, environment: str) -> list[bytes]:
    out = []
    for r in sent:
        if r.name == "rollbar_test":
            body: dict[str, object] = {"message": {"body": "Hello World!"}}
            level = "warning"
        elif r.name == "fault":
            body = {
                "trace": {
                    "frames": [{"filename": "target_app/routes.py", "lineno": 148, "method": "fault"}],
                    "exception": {"class": "RuntimeError", "message": "deliberate fault: /api/fault always fails"},
                }
            }
            level = "error"
        else:
            continue
        data = {
            "environment": environment,
            "level": level,
            "language": "python 3.11",
            "framework": "flask",
            "notifier": {"name": "pyrollbar", "version": "1.5.0"},
            "uuid": str(uuid.uuid4()),
            "timestamp": int(r.end),
            "body": body,
            "request": {"url": r.url, "method": "GET"},
            "custom": {"request_id": r.request_id},
        }
        out.append(json.dumps({"access_token": token, "data": data}).encode("utf-8"))
    return out
