"""The Honeycomb emulator against the real OpenTelemetry exporter and its public HTTP APIs."""

from __future__ import annotations

import base64
import gzip
import json
import math
import statistics
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import requests
from google.protobuf import json_format
from google.rpc.status_pb2 import Status
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, SpanContext, SpanKind, StatusCode, TraceFlags
from opentelemetry.trace import Status as SpanStatus

from emulators._server import ServedApp, serve
from emulators.honeycomb.api import HoneycombSettings, create_app
from emulators.honeycomb.ingest import MAX_OTLP_BODY_BYTES
from emulators.honeycomb.settings import ApiKeyAccess
from emulators.honeycomb.store import HoneycombStore
from tracedrill import local

KEY = local.LOCAL_HONEYCOMB_KEY
DATA_DIR = Path(__file__).resolve().parent.parent / "conformance" / "data"
MINUTE = 1_700_000_040  # a minute boundary: epoch seconds divisible by 60


class Clock:
    """A settable "now" for the emulator (the real service's clock is the wall clock)."""

    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


# --- OTLP/JSON building blocks (shared with the conformance test) ------------------------------


def any_value(value: Any) -> dict[str, Any]:
    """OTLP/JSON AnyValue: int64 as a decimal string, None as an empty value."""
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"doubleValue": value}
    if isinstance(value, list):
        return {"arrayValue": {"values": [any_value(v) for v in value]}}
    return {"stringValue": str(value)}


def attributes(values: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"key": key, "value": any_value(value)} for key, value in values.items()]


def nanos(seconds: float) -> int:
    return int(round(seconds * 1e9))


def json_span(
    trace_id: str,
    span_id: str,
    name: str,
    start: float,
    duration_ms: float = 1.0,
    attrs: dict[str, Any] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """An OTLP/JSON span; times in integer nanoseconds so ``duration_ms`` arrives exact."""
    start_ns = nanos(start)
    span = {
        "traceId": trace_id,
        "spanId": span_id,
        "name": name,
        "kind": 2,
        "startTimeUnixNano": str(start_ns),
        "endTimeUnixNano": str(start_ns + int(round(duration_ms * 1e6))),
        "attributes": attributes(attrs or {}),
    }
    span.update(extra)
    return span


def json_request(service: str, spans: list[dict[str, Any]]) -> bytes:
    resource = {"attributes": attributes({"service.name": service})}
    body = {"resourceSpans": [{"resource": resource, "scopeSpans": [{"scope": {"name": "tests"}, "spans": spans}]}]}
    return json.dumps(body).encode()


def protobuf_of(body: bytes) -> bytes:
    """An OTLP/JSON request as protobuf, built with the official OTLP message classes."""
    document = json.loads(body)
    for resource_spans in document["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for span in scope_spans["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in span:  # protobuf's JSON mapping wants bytes as base64, OTLP/JSON sends hex
                        span[key] = base64.b64encode(bytes.fromhex(span[key])).decode()
    return bytes(json_format.ParseDict(document, ExportTraceServiceRequest()).SerializeToString())


def run_query(url: str, dataset: str, spec: dict[str, Any], key: str = KEY, **options: Any) -> dict[str, Any]:
    """Create a query, create a result for it and poll until complete: the Query Data API's three steps."""
    headers = {"X-Honeycomb-Team": key}
    created = requests.post(f"{url}/1/queries/{dataset}", json=spec, headers=headers, timeout=10)
    assert created.status_code == 200, created.text
    body = {"query_id": created.json()["id"], "disable_series": True, **options}
    started = requests.post(f"{url}/1/query_results/{dataset}", json=body, headers=headers, timeout=30)
    assert started.status_code == 201, started.text
    for _ in range(50):
        result = requests.get(started.headers["Location"], headers=headers, timeout=10)
        assert result.status_code == 200, result.text
        body = strict_json(result.text)
        if body["complete"]:
            return dict(body)
        time.sleep(0.1)
    raise AssertionError("query result never completed")


def strict_json(text: str) -> Any:
    """JSON as a Go or JavaScript client reads it: the bare words NaN and Infinity are errors."""

    def reject(word: str) -> None:
        raise AssertionError(f"{word} in a JSON answer: no JSON client can parse it")

    return json.loads(text, parse_constant=reject)


def rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    return [row["data"] for row in result["data"]["results"]]


# --- the emulator under test -------------------------------------------------------------------


@dataclass
class Honeycomb:
    url: str
    served: ServedApp
    clock: Clock

    def get(self, path: str, key: str | None = KEY, **params: Any) -> requests.Response:
        headers = {"X-Honeycomb-Team": key} if key else {}
        return requests.get(f"{self.url}{path}", params=params, headers=headers, timeout=10)

    def post(self, path: str, body: Any, key: str | None = KEY) -> requests.Response:
        headers = {"X-Honeycomb-Team": key} if key else {}
        return requests.post(f"{self.url}{path}", json=body, headers=headers, timeout=10)

    def send(
        self, body: bytes, content_type: str = "application/json", key: str | None = KEY, encoding: str | None = None
    ) -> requests.Response:
        headers = {"Content-Type": content_type}
        if key:
            headers["x-honeycomb-team"] = key
        if encoding:
            headers["Content-Encoding"] = encoding
        return requests.post(f"{self.url}/v1/traces", data=body, headers=headers, timeout=30)

    def query(self, dataset: str, spec: dict[str, Any], **options: Any) -> list[dict[str, Any]]:
        return rows(run_query(self.url, dataset, spec, **options))

    def count(self, dataset: str, spec: dict[str, Any] | None = None) -> int:
        """COUNT of matching events; no matching event means no result row at all."""
        found = self.query(dataset, {"calculations": [{"op": "COUNT"}], **(spec or {})})
        assert len(found) <= 1
        return int(found[0]["COUNT"]) if found else 0


@dataclass
class Launcher:
    tmp_path: Path
    running: list[ServedApp] = field(default_factory=list)

    def __call__(self, clock: Clock | None = None, path: Path | None = None, **settings: Any) -> Honeycomb:
        clock = clock or Clock(time.time())
        settings["clock"] = clock
        settings.setdefault("query_results_per_minute", 0)  # tests run many queries; one test checks the limit
        store = HoneycombStore(path or self.tmp_path / "honeycomb.sqlite3")
        served = serve("honeycomb", create_app(store, HoneycombSettings.local(**settings)))
        self.running.append(served)
        return Honeycomb(served.url, served, clock)


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launcher]:
    launcher = Launcher(tmp_path)
    yield launcher
    for served in launcher.running:
        served.stop()


@pytest.fixture
def honeycomb(launch: Launcher) -> Honeycomb:
    return launch(clock=Clock(MINUTE + 30))


def window(clock: Clock, back: int = 600) -> dict[str, int]:
    """An absolute window around "now" whose end lies past the truncated current minute."""
    return {"start_time": int(clock.now) - back, "end_time": int(clock.now) + 120}


# --- the real OpenTelemetry SDK end to end -----------------------------------------------------


def test_opentelemetry_sdk_spans_are_found_through_the_query_api(
    launch: Launcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    hc = launch()
    # The exporter configured purely from the standard environment variables, as a user's app would be.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", hc.url)
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"x-honeycomb-team={KEY}")
    provider = TracerProvider(resource=Resource.create({"service.name": "Checkout API"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    tracer = provider.get_tracer("shop.checkout", "1.2.3")
    linked = SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(1))
    attrs: dict[str, Any] = {
        "app.request_id": "req-42",
        "http.response.status_code": 200,
        "cart.ratio": 0.25,
        "cart.vip": True,
    }
    with tracer.start_as_current_span("POST /checkout", kind=SpanKind.SERVER, attributes=attrs) as parent:
        with tracer.start_as_current_span("charge card", kind=SpanKind.CLIENT, links=[Link(linked)]) as child:
            child.add_event("card.declined", {"attempt": 2})
            child.set_status(SpanStatus(StatusCode.ERROR, "card declined"))
    assert provider.force_flush(10_000)
    provider.shutdown()
    trace_id = format(parent.get_span_context().trace_id, "032x")
    parent_id = format(parent.get_span_context().span_id, "016x")
    child_id = format(child.get_span_context().span_id, "016x")

    datasets = hc.get("/1/datasets").json()
    assert [(d["name"], d["slug"]) for d in datasets] == [("Checkout API", "checkout-api")]
    now = time.time()
    span = {"start_time": int(now) - 300, "end_time": int(now) + 120}
    keys = ["name", "meta.annotation_type", "span.kind", "trace.parent_id", "error", "status_code"]
    spec = {
        **span,
        "filters": [{"column": "trace.trace_id", "op": "=", "value": trace_id}],
        "breakdowns": keys,
        "calculations": [{"op": "COUNT"}],
        "orders": [{"column": "name", "order": "ascending"}],
    }
    found = hc.query("checkout-api", spec)
    expected = [
        ("POST /checkout", None, "server", None, None, 0),
        ("card.declined", "span_event", None, child_id, True, None),
        ("charge card", None, "client", parent_id, True, 2),
        (None, "link", None, child_id, True, None),  # a link event has no name
    ]
    assert [tuple(row[k] for k in keys) for row in found] == expected
    assert all(row["COUNT"] == 1 for row in found)

    [error] = hc.query(
        "checkout-api",
        {
            **span,
            "filters": [{"column": "status_message", "op": "exists"}],
            "breakdowns": ["status_message", "trace.span_id"],
        },
    )
    assert (error["status_message"], error["trace.span_id"]) == ("card declined", child_id)
    [link] = hc.query(
        "checkout-api",
        {
            **span,
            "filters": [{"column": "meta.annotation_type", "op": "=", "value": "link"}],
            "breakdowns": ["trace.link.trace_id", "trace.link.span_id", "parent_name"],
        },
    )
    assert (link["trace.link.trace_id"], link["trace.link.span_id"]) == ("0000000000000abc", "0000000000000def")
    assert link["parent_name"] == "charge card"

    columns = {c["key_name"]: c for c in hc.get("/1/columns/checkout-api").json()}
    types = {"app.request_id": "string", "http.response.status_code": "integer", "cart.ratio": "float"}
    assert {k: columns[k]["type"] for k in attrs} == {**types, "cart.vip": "boolean"}
    assert columns["duration_ms"]["type"] == "float"
    assert columns["library.name"]["type"] == "string" and "Timestamp" not in columns
    one = hc.get("/1/columns/checkout-api", key_name="app.request_id").json()
    assert one["key_name"] == "app.request_id" and one["last_written"] and one["created_at"]


# --- ingest: encodings ------------------------------------------------------------------------


def test_otlp_json_example_from_the_spec_is_stored_with_honeycomb_columns(launch: Launcher) -> None:
    example = (DATA_DIR / "otlp_trace_example.json").read_bytes()
    hc = launch(clock=Clock(1544712660 + 600))  # the example's spans start at 1544712660
    response = hc.send(example)
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"] == "application/json" and response.json() == {}

    assert hc.get("/1/datasets/my-service").json()["name"] == "my.service"
    spec = {"start_time": 1544712600, "end_time": 1544712720,
            "breakdowns": ["trace.trace_id", "trace.span_id", "trace.parent_id", "span.kind", "library.name",
                           "library.version", "my.scope.attribute", "my.span.attr", "duration_ms"]}  # fmt: skip
    [row] = hc.query("my-service", spec)
    assert row == {
        "trace.trace_id": "5b8efff798038103d269b633813fc60c",  # OTLP/JSON ids are hex
        "trace.span_id": "eee19b7ec3c1b174",
        "trace.parent_id": "eee19b7ec3c1b173",
        "span.kind": "server",
        "library.name": "my.library",
        "library.version": "1.0.0",
        "my.scope.attribute": "some scope attribute",
        "my.span.attr": "some value",
        "duration_ms": 1000.0,
        "COUNT": 1,
    }


def test_compressed_protobuf_and_json_bodies(honeycomb: Honeycomb) -> None:
    start = MINUTE - 200
    body = protobuf_of(
        json_request("svc", [json_span(f"{i:032x}", f"{i:016x}", f"op-{i}", start) for i in range(1, 4)])
    )
    response = honeycomb.send(gzip.compress(body), "application/x-protobuf", encoding="gzip")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/x-protobuf"
    assert ExportTraceServiceResponse.FromString(response.content) == ExportTraceServiceResponse()
    deflated = zlib.compress(json_request("svc", [json_span("ab" * 16, "cd" * 8, "json-span", start)]))
    assert honeycomb.send(deflated, "application/json; charset=utf-8", encoding="deflate").status_code == 200
    names = {row["name"] for row in honeycomb.query("svc", {**window(honeycomb.clock), "breakdowns": ["name"]})}
    assert names == {"op-1", "op-2", "op-3", "json-span"}


def test_missing_service_name_lands_in_unknown_service(honeycomb: Honeycomb) -> None:
    body = {"resourceSpans": [{"scopeSpans": [{"spans": [json_span("01" * 16, "02" * 8, "orphan", MINUTE - 60)]}]}]}
    assert honeycomb.send(json.dumps(body).encode()).status_code == 200
    assert [d["name"] for d in honeycomb.get("/1/datasets").json()] == ["unknown_service"]


def test_sample_rate_attribute_weights_counts_and_is_not_a_column(honeycomb: Honeycomb) -> None:
    spans = [json_span("01" * 16, "02" * 8, "sampled", MINUTE - 60, attrs={"sampleRate": 4})]
    assert honeycomb.send(json_request("svc", spans)).status_code == 200
    assert honeycomb.count("svc", window(honeycomb.clock)) == 4
    assert honeycomb.count("svc", {**window(honeycomb.clock), "usage_mode": True}) == 1
    assert "sampleRate" not in {c["key_name"] for c in honeycomb.get("/1/columns/svc").json()}


def test_nan_and_infinity_never_reach_a_query_result(honeycomb: Honeycomb) -> None:
    # Bare NaN is not JSON: the whole request is refused, as Go's decoder refuses it.
    bare = json_request("svc", [json_span("05" * 16, "06" * 8, "bare", MINUTE - 60, attrs={"x": math.nan})])
    assert b"NaN" in bare and honeycomb.send(bare).status_code == 400
    # OTLP/JSON (proto3's JSON mapping) writes them as strings; protobuf carries them as doubles.
    ratios = {"finite": 0.5, "nan": "NaN", "inf": "Infinity", "-inf": "-Infinity"}
    spans = []
    for index, (name, ratio) in enumerate(ratios.items()):
        span = json_span("07" * 16, f"{index + 1:016x}", name, MINUTE - 60)
        span["attributes"] = [{"key": "ratio", "value": {"doubleValue": ratio}}]
        spans.append(span)
    assert honeycomb.send(json_request("svc", spans)).status_code == 200
    assert honeycomb.send(protobuf_of(json_request("pb", spans)), "application/x-protobuf").status_code == 200
    for dataset in ("svc", "pb"):
        calcs = [{"op": op, "column": "ratio"} for op in ("AVG", "SUM", "MAX", "MIN", "P50")]
        [row] = honeycomb.query(dataset, {**window(honeycomb.clock), "calculations": [{"op": "COUNT"}, *calcs]})
        assert row == {"COUNT": 4, **{f"{c['op']}(ratio)": 0.5 for c in calcs}}  # every span kept, no bad value


# --- ingest: rejected requests store nothing ---------------------------------------------------


def test_bad_requests_get_honeycombs_statuses_and_store_nothing(honeycomb: Honeycomb) -> None:
    good = json_request("svc", [json_span("01" * 16, "02" * 8, "kept", MINUTE - 60)])
    assert honeycomb.send(good).status_code == 200
    columns_before = honeycomb.get("/1/columns/svc").json()
    other = json_request("other-svc", [json_span("03" * 16, "04" * 8, "dropped", MINUTE - 60)])

    garbage = honeycomb.send(b"\xff\xff\xff\xff\xff", "application/x-protobuf")
    assert garbage.status_code == 400
    assert Status.FromString(garbage.content).message == "failed to parse OTLP request body"
    assert honeycomb.send(b'{"resourceSpans": [', "application/json").status_code == 400
    bad_id = json_request("other-svc", [json_span("not-hex!", "04" * 8, "dropped", MINUTE - 60)])
    assert honeycomb.send(bad_id).status_code == 400
    wrong_type = honeycomb.send(other, "text/plain")
    assert (wrong_type.status_code, wrong_type.headers["Content-Type"]) == (415, "text/plain")
    assert "application/x-protobuf" in wrong_type.text
    assert honeycomb.send(b"\x00" * (MAX_OTLP_BODY_BYTES + 1), "application/x-protobuf").status_code == 413
    bomb = gzip.compress(other + b" " * MAX_OTLP_BODY_BYTES)
    assert honeycomb.send(bomb, encoding="gzip").status_code == 413
    assert honeycomb.send(b"not gzip", encoding="gzip").status_code == 400
    missing_key = honeycomb.send(other, key=None)
    assert (missing_key.status_code, missing_key.json()) == (401, {"message": "missing 'x-honeycomb-team' header"})
    bad_key = honeycomb.send(other, key="not-a-key")
    assert bad_key.status_code == 401 and "unknown API key" in bad_key.json()["message"]

    assert [d["slug"] for d in honeycomb.get("/1/datasets").json()] == ["svc"]
    assert honeycomb.get("/1/columns/svc").json() == columns_before
    assert honeycomb.count("svc", window(honeycomb.clock)) == 1


def test_key_without_create_datasets_cannot_create_a_dataset(launch: Launcher) -> None:
    clock = Clock(MINUTE)
    hc = launch(clock=clock)
    settings = HoneycombSettings(api_keys={"ingest-only": ApiKeyAccess(events=True)}, clock=clock)
    served = serve("honeycomb-limited", create_app(HoneycombStore(launch.tmp_path / "honeycomb.sqlite3"), settings))
    launch.running.append(served)
    body = json_request("svc", [json_span("01" * 16, "02" * 8, "x", MINUTE - 60)])
    denied = requests.post(
        f"{served.url}/v1/traces",
        data=body,
        timeout=10,
        headers={"Content-Type": "application/json", "x-honeycomb-team": "ingest-only"},
    )
    assert denied.status_code == 403
    assert hc.send(body).status_code == 200  # a key that may create datasets creates it
    again = requests.post(
        f"{served.url}/v1/traces",
        data=body,
        timeout=10,
        headers={"Content-Type": "application/json", "x-honeycomb-team": "ingest-only"},
    )
    assert again.status_code == 200
    assert hc.count("svc", window(clock)) == 2
    assert (
        requests.get(f"{served.url}/1/datasets", headers={"X-Honeycomb-Team": "ingest-only"}, timeout=10).status_code
        == 403
    )


# --- durability -----------------------------------------------------------------------------------


def test_accepted_events_and_query_results_survive_a_restart(launch: Launcher, tmp_path: Path) -> None:
    clock = Clock(MINUTE)
    first = launch(clock=clock, path=tmp_path / "durable.sqlite3")
    spans = [json_span("0a" * 16, f"{i:016x}", "durable", MINUTE - 100 + i) for i in range(1, 6)]
    assert first.send(json_request("svc", spans)).status_code == 200
    result = run_query(first.url, "svc", {**window(clock), "calculations": [{"op": "COUNT"}]})
    first.served.stop()
    launch.running.remove(first.served)

    second = launch(clock=clock, path=tmp_path / "durable.sqlite3")
    assert second.count("svc", window(clock)) == 5
    again = second.get(f"/1/query_results/svc/{result['id']}")
    assert again.status_code == 200 and rows(again.json()) == [{"COUNT": 5}]
    assert second.get("/1/datasets/svc").json()["last_written_at"] is not None


# --- read APIs --------------------------------------------------------------------------------


def test_auth_reports_permissions_environment_and_team(honeycomb: Honeycomb) -> None:
    body = honeycomb.get("/1/auth").json()
    assert body["api_key_access"] == {
        "events": True, "markers": True, "queries": True, "columns": True, "boards": True,
        "createDatasets": True, "recipients": True, "slos": True, "triggers": True,
    }  # fmt: skip
    assert body["environment"] == {"name": "local", "slug": "local"}
    assert body["team"] == {"name": "tracedrill", "slug": "tracedrill"}
    assert KEY not in json.dumps(body)  # the key itself is never echoed


@pytest.mark.parametrize("path", ["/1/auth", "/1/datasets", "/1/columns/svc", "/1/query_results/svc/x"])
def test_read_api_rejects_missing_and_unknown_keys(honeycomb: Honeycomb, path: str) -> None:
    for key in (None, "wrong"):
        response = honeycomb.get(path, key=key)
        assert response.status_code == 401
        assert response.json() == {"error": "unknown API key - check your credentials"}


def test_unknown_dataset_is_404(honeycomb: Honeycomb) -> None:
    for path in ("/1/datasets/nope", "/1/columns/nope", "/1/columns/nope?key_name=x"):
        response = honeycomb.get(path)
        assert response.status_code == 404 and response.json()["status"] == 404
    assert honeycomb.post("/1/queries/nope", {"calculations": [{"op": "COUNT"}]}).status_code == 404


def test_settings_validate_the_plan() -> None:
    with pytest.raises(ValueError, match="enterprise, free"):
        HoneycombSettings.local(plan="pro")


# --- Query Data API: semantics --------------------------------------------------------------


def ingest_events(hc: Honeycomb, service: str, events: list[dict[str, Any]], start: float) -> None:
    spans = [json_span(f"{i + 1:032x}", f"{i + 1:016x}", "op", start + i, attrs=e) for i, e in enumerate(events)]
    assert hc.send(json_request(service, spans)).status_code == 200


def test_filters_skip_events_without_the_column(honeycomb: Honeycomb) -> None:
    events: list[dict[str, Any]] = [{"http.status": 500, "method": "GET"}, {"http.status": 200, "method": "POST"},
              {"method": "DELETE"}, {"http.status": None, "method": "PUT"}]  # fmt: skip
    ingest_events(honeycomb, "svc", events, MINUTE - 100)
    cases = [
        ({"column": "http.status", "op": "!=", "value": 200}, 1),
        ({"column": "http.status", "op": "does-not-exist"}, 2),  # missing and explicit null
        ({"column": "http.status", "op": "exists"}, 2),
        ({"column": "http.status", "op": "=", "value": "500"}, 1),  # coerced to the column's type
        ({"column": "http.status", "op": ">=", "value": 200}, 2),
        ({"column": "method", "op": "in", "value": ["GET", "POST"]}, 2),
        ({"column": "method", "op": "not-in", "value": ["GET", "POST"]}, 2),
        ({"column": "method", "op": "contains", "value": "E"}, 2),
        ({"column": "method", "op": "starts-with", "value": "P"}, 2),
        ({"column": "method", "op": "does-not-start-with", "value": "P"}, 2),
        ({"column": "method", "op": "ends-with", "value": "T"}, 3),
    ]
    for query_filter, expected in cases:
        assert honeycomb.count("svc", {**window(honeycomb.clock), "filters": [query_filter]}) == expected, query_filter
    either = {
        "filters": [{"column": "method", "op": "=", "value": "GET"}, {"column": "method", "op": "=", "value": "PUT"}]
    }
    assert honeycomb.count("svc", {**window(honeycomb.clock), **either, "filter_combination": "OR"}) == 2
    assert honeycomb.count("svc", {**window(honeycomb.clock), **either}) == 0


def test_calculations_match_independent_arithmetic(honeycomb: Honeycomb) -> None:
    latencies = [3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5, 8, 9, 7, 9]
    ingest_events(honeycomb, "svc", [{"latency": v, "user": f"u{v % 4}"} for v in latencies], MINUTE - 100)
    ops = ["SUM", "AVG", "MIN", "MAX", "P50", "P90", "P99", "COUNT_DISTINCT"]
    calcs = [{"op": op, "column": "user" if op == "COUNT_DISTINCT" else "latency"} for op in ops]
    [row] = honeycomb.query("svc", {**window(honeycomb.clock), "calculations": calcs})
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")  # linear interpolation
    assert row["SUM(latency)"] == sum(latencies)
    assert row["AVG(latency)"] == pytest.approx(statistics.mean(latencies))
    assert (row["MIN(latency)"], row["MAX(latency)"]) == (1, 9)
    assert row["P50(latency)"] == pytest.approx(cuts[49])
    assert row["P90(latency)"] == pytest.approx(cuts[89])
    assert row["P99(latency)"] == pytest.approx(cuts[98])
    assert row["COUNT_DISTINCT(user)"] == len({f"u{v % 4}" for v in latencies})


def test_breakdowns_orders_havings_limit_series_and_totals(honeycomb: Honeycomb) -> None:
    events = [
        {"route": r, "ms": ms} for r, ms in [("/a", 10), ("/a", 30), ("/b", 5), ("/c", 50), ("/c", 70), ("/c", 90)]
    ]
    ingest_events(honeycomb, "svc", events, MINUTE - 100)
    spec = {
        **window(honeycomb.clock),
        "breakdowns": ["route"],
        "calculations": [{"op": "COUNT"}, {"op": "AVG", "column": "ms"}],
        "orders": [{"op": "AVG", "column": "ms", "order": "descending"}],
        "havings": [{"calculate_op": "COUNT", "op": ">", "value": 1}],
        "limit": 1,
    }
    result = run_query(
        honeycomb.url,
        "svc",
        spec,
        disable_series=False,
        disable_total_by_aggregate=False,
        disable_other_by_aggregate=False,
    )
    assert rows(result) == [{"route": "/c", "COUNT": 3, "AVG(ms)": 70.0}]
    series = result["data"]["series"]
    assert sum(entry["data"]["COUNT"] for entry in series) == 3
    assert all(entry["data"]["route"] == "/c" and entry["time"].endswith("Z") for entry in series)
    assert result["data"]["total_by_aggregate"]["data"] == {"COUNT": 6, "AVG(ms)": pytest.approx(42.5)}
    assert result["data"]["other_by_aggregate"]["data"] == {"COUNT": 3, "AVG(ms)": pytest.approx(15.0)}
    assert result["links"]["query_url"].endswith(f"/datasets/svc/result/{result['id']}")


def test_all_queries_every_dataset(honeycomb: Honeycomb) -> None:
    ingest_events(honeycomb, "svc-a", [{"x": 1}], MINUTE - 100)
    ingest_events(honeycomb, "svc-b", [{"x": 2}, {"x": 3}], MINUTE - 100)
    found = honeycomb.query("__all__", {**window(honeycomb.clock), "breakdowns": ["service.name"]})
    assert {row["service.name"]: row["COUNT"] for row in found} == {"svc-a": 1, "svc-b": 2}


def test_result_bounds_are_truncated_to_the_minute(honeycomb: Honeycomb) -> None:
    # now = MINUTE + 30: a 1 h time_range ends at MINUTE, so the event 10 s ago is not counted yet.
    ingest_events(honeycomb, "svc", [{"when": "before"}], MINUTE - 10)
    ingest_events(honeycomb, "svc", [{"when": "after"}], MINUTE + 20)
    assert honeycomb.query("svc", {"time_range": 3600, "breakdowns": ["when"]}) == [{"when": "before", "COUNT": 1}]
    honeycomb.clock.now = MINUTE + 60
    assert honeycomb.count("svc", {"time_range": 3600}) == 2


def test_query_results_are_limited_to_the_last_seven_days(honeycomb: Honeycomb) -> None:
    ingest_events(honeycomb, "svc", [{"x": 1}], MINUTE - 100)
    for spec in ({"time_range": 8 * 86400}, {"start_time": MINUTE - 8 * 86400, "end_time": MINUTE - 7 * 86400}):
        query = honeycomb.post("/1/queries/svc", spec).json()
        result = honeycomb.post("/1/query_results/svc", {"query_id": query["id"]})
        assert result.status_code == 400, spec
        assert "7 days" in result.json()["error"]


INVALID_SPECS = [
    ({"calculations": [{"op": "MEDIAN", "column": "x"}]}, "calculations[0].op"),
    ({"calculations": [{"op": "AVG"}]}, "calculations[0].op"),
    ({"calculations": [{"op": "COUNT", "column": "x"}]}, "calculations[0].op"),
    ({"filters": [{"column": "x", "op": "like", "value": 1}]}, "filters[0].op"),
    ({"filters": [{"column": "x", "op": "in", "value": 1}]}, "filters[0].value"),
    ({"filters": [{"column": "x", "op": "exists", "value": 1}]}, "filters[0].value"),
    ({"filter_combination": "XOR"}, "filter_combination"),
    ({"breakdowns": [f"c{i}" for i in range(101)]}, "breakdowns"),
    ({"limit": 10_001}, "limit"),
    ({"limit": 0}, "limit"),
    ({"start_time": MINUTE, "end_time": MINUTE - 60}, "start_time"),
    ({"start_time": MINUTE - 60, "end_time": MINUTE, "time_range": 60}, "time_range"),
    ({"time_range": -5}, "time_range"),
    ({"granularity": 7200, "time_range": 3600}, "granularity"),
    ({"orders": [{"column": "x"}]}, "orders[0]"),
    ({"orders": [{"op": "AVG", "column": "x"}]}, "orders[0]"),
    ({"havings": [{"calculate_op": "P95", "column": "x", "op": ">", "value": 1}]}, "havings[0]"),
    ({"havings": [{"calculate_op": "COUNT", "op": "~", "value": 1}]}, "havings[0].op"),
]


@pytest.mark.parametrize(("spec", "field_name"), INVALID_SPECS)
def test_invalid_query_specs_are_400_naming_the_field(
    honeycomb: Honeycomb, spec: dict[str, Any], field_name: str
) -> None:
    ingest_events(honeycomb, "svc", [{"x": 1}], MINUTE - 100)
    response = honeycomb.post("/1/queries/svc", spec)
    assert response.status_code == 400, spec
    assert field_name in response.json()["error"]


def test_columns_the_dataset_never_had_are_422(honeycomb: Honeycomb) -> None:
    ingest_events(honeycomb, "svc", [{"x": 1}], MINUTE - 100)
    spec = {"breakdowns": ["x", "rule_name"], "calculations": [{"op": "AVG", "column": "sample_rate"}]}
    response = honeycomb.post("/1/queries/svc", spec)
    assert response.status_code == 422 and response.json()["type"].endswith("/validation-failed")
    assert [d["field"] for d in response.json()["type_detail"]] == ["rule_name", "sample_rate"]
    filtered = {"filters": [{"column": "rule_name", "op": "exists"}]}
    assert honeycomb.post("/1/queries/svc", filtered).status_code == 422


def test_query_the_emulator_cannot_answer_is_501_not_a_guess(honeycomb: Honeycomb) -> None:
    ingest_events(honeycomb, "svc", [{"x": 1}], MINUTE - 100)
    query = honeycomb.post("/1/queries/svc", {"calculations": [{"op": "HEATMAP", "column": "x"}]})
    assert query.status_code == 200  # a valid spec for Honeycomb
    result = honeycomb.post("/1/query_results/svc", {"query_id": query.json()["id"]})
    assert result.status_code == 501 and "HEATMAP" in result.json()["error"]
    strings = honeycomb.post("/1/queries/svc", {"calculations": [{"op": "AVG", "column": "name"}]}).json()
    assert honeycomb.post("/1/query_results/svc", {"query_id": strings["id"]}).status_code == 400


# --- plans and limits -------------------------------------------------------------------------


def test_free_plan_has_no_query_data_api_but_keeps_the_rest(launch: Launcher) -> None:
    clock = Clock(MINUTE)
    hc = launch(clock=clock, plan="free")
    ingest_events(hc, "svc", [{"x": 1}], MINUTE - 100)
    assert hc.get("/1/auth").status_code == 200
    assert hc.get("/1/datasets/svc").json()["last_written_at"] is not None
    assert hc.get("/1/columns/svc", key_name="x").json()["type"] == "integer"
    query = hc.post("/1/queries/svc", {"calculations": [{"op": "COUNT"}]})
    assert query.status_code == 200
    for response in (
        hc.post("/1/query_results/svc", {"query_id": query.json()["id"]}),
        hc.get("/1/query_results/svc/anything"),
    ):
        assert response.status_code == 403
        assert response.headers["Content-Type"] == "application/problem+json"
        assert "Enterprise plan" in response.json()["error"]


def test_query_results_are_rate_limited_per_key_without_retry_after(launch: Launcher) -> None:
    clock = Clock(MINUTE)
    hc = launch(clock=clock, query_results_per_minute=2)
    ingest_events(hc, "svc", [{"x": 1}], MINUTE - 100)
    query_id = hc.post("/1/queries/svc", {"calculations": [{"op": "COUNT"}]}).json()["id"]
    first, second, third = (hc.post("/1/query_results/svc", {"query_id": query_id}) for _ in range(3))
    assert (first.status_code, second.status_code) == (201, 201)
    assert first.headers["RateLimit"] == "limit=2, remaining=1, reset=60"
    assert third.status_code == 429
    assert third.headers["Content-Type"] == "application/problem+json"
    assert third.json()["status"] == 429 and third.json()["type"].endswith("/rate-limited")
    assert third.headers["RateLimit"].startswith("limit=2, remaining=0")
    assert third.headers["RateLimit-Policy"] == "2;w=60"
    assert "Retry-After" not in third.headers
    clock.now += 61
    assert hc.post("/1/query_results/svc", {"query_id": query_id}).status_code == 201


def test_default_settings_use_the_documented_limit() -> None:
    assert HoneycombSettings.local().query_results_per_minute == 10


# --- scale --------------------------------------------------------------------------------------


def test_a_selective_query_over_many_events_stays_fast(honeycomb: Honeycomb) -> None:
    events = 20_000
    per_request = 5_000
    for offset in range(0, events, per_request):
        spans = [
            json_span(
                f"{i + 1:032x}", f"{i + 1:016x}", "bulk", MINUTE - 500 + i / 100, attrs={"app.request_id": f"r{i}"}
            )
            for i in range(offset, offset + per_request)
        ]
        assert honeycomb.send(json_request("svc", spans)).status_code == 200
    started = time.perf_counter()
    found = honeycomb.query(
        "svc",
        {
            **window(honeycomb.clock),
            "breakdowns": ["app.request_id"],
            "filters": [{"column": "app.request_id", "op": "in", "value": ["r7", "r19999"]}],
        },
    )
    elapsed = time.perf_counter() - started
    assert sorted(row["app.request_id"] for row in found) == ["r19999", "r7"]
    assert honeycomb.count("svc", window(honeycomb.clock)) == events
    assert elapsed < 5, f"selective query over {events} events took {elapsed:.2f} s"
