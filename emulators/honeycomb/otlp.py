"""OTLP/HTTP trace requests -> Honeycomb events, the way Honeycomb's own translator does it.

The mapping follows honeycombio/husky (otlp/traces_direct.go), the library Honeycomb's ingest
uses: one event per span, one per span event and one per link; resource and scope attributes
copied onto each; kvlists flattened with dots (depth 5); arrays and bytes stored as JSON text.
Keys are added in husky's order and the FIRST occurrence of a key wins, so a span attribute
named ``status_code`` beats the computed one, exactly as in Honeycomb.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, InstrumentationScope, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from emulators._json import strict_loads

PROTOBUF_TYPES = ("application/x-protobuf", "application/protobuf")
JSON_TYPE = "application/json"
SUPPORTED_CONTENT_TYPES = (*PROTOBUF_TYPES, JSON_TYPE)

UNKNOWN_SERVICE = "unknown_service"
_MAX_KVLIST_DEPTH = 5
_FIELD_SIZE_MAX = 65535  # husky truncates JSON-encoded array/bytes values to this many bytes
_MAX_SAMPLE_RATE = 2**31 - 1
_SAMPLE_RATE_KEYS = ("sampleRate", "SampleRate")
_STATUS_ERROR = 2
_SPAN_KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
_EXCEPTION_TEXT_KEYS = ("exception.message", "exception.type", "exception.stacktrace")
# Scope names husky marks with telemetry.instrumentation_library=true.
_INSTRUMENTATION_PREFIXES = (
    "io.opentelemetry",
    "opentelemetry.instrumentation",
    "OpenTelemetry.Instrumentation",
    "OpenTelemetry::Instrumentation",
    "go.opentelemetry.io/contrib/instrumentation",
    "@opentelemetry/instrumentation",
)
_HEX = re.compile(r"(?:[0-9a-fA-F]{2})*")
_ID_FIELDS = ("traceId", "spanId", "parentSpanId")


class OtlpDecodeError(ValueError):
    """The body is not a valid ExportTraceServiceRequest in the declared encoding."""


@dataclass
class Event:
    """One Honeycomb event: its time (epoch seconds), sample rate and columns."""

    timestamp: float
    sample_rate: int
    fields: dict[str, Any]


@dataclass
class DatasetBatch:
    """The events of one resource, bound for the dataset named after its service.name."""

    dataset_name: str
    events: list[Event] = field(default_factory=list)


def decode_request(body: bytes, content_type: str) -> ExportTraceServiceRequest:
    """Parse an OTLP/HTTP body (protobuf or OTLP/JSON); raises OtlpDecodeError."""
    request = ExportTraceServiceRequest()
    if content_type in PROTOBUF_TYPES:
        try:
            request.ParseFromString(body)
        except (DecodeError, RuntimeError, ValueError) as exc:
            raise OtlpDecodeError(f"invalid protobuf: {exc}") from exc
        return request
    try:
        document = strict_loads(body)
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise OtlpDecodeError(f"invalid JSON: {exc}") from exc
    if not isinstance(document, dict):
        raise OtlpDecodeError("OTLP/JSON body must be an object")
    try:
        _hex_ids_to_base64(document)
        json_format.ParseDict(document, request, ignore_unknown_fields=True)
    except (json_format.ParseError, TypeError, ValueError, AttributeError) as exc:
        raise OtlpDecodeError(f"invalid OTLP/JSON: {exc}") from exc
    return request


def _hex_ids_to_base64(document: dict[str, Any]) -> None:
    """OTLP/JSON carries ids as hex; the protobuf JSON mapping expects base64 for bytes."""
    for resource_spans in _objects(document.get("resourceSpans")):
        for scope_spans in _objects(resource_spans.get("scopeSpans")):
            for span in _objects(scope_spans.get("spans")):
                _convert_ids(span)
                for link in _objects(span.get("links")):
                    _convert_ids(link)


def _objects(value: Any) -> Iterable[dict[str, Any]]:
    return [item for item in value if isinstance(item, dict)] if isinstance(value, list) else []


def _convert_ids(obj: dict[str, Any]) -> None:
    for key in _ID_FIELDS:
        value = obj.get(key)
        if isinstance(value, str):
            if not _HEX.fullmatch(value):
                raise ValueError(f"{key} {value!r} is not a hex string")
            obj[key] = base64.b64encode(binascii.unhexlify(value)).decode("ascii")


def encode_response(message: Any, content_type: str) -> bytes:
    """An OTLP response message in the request's encoding (protobuf or JSON)."""
    if content_type == JSON_TYPE:
        return json_format.MessageToJson(message, indent=None).encode()
    return bytes(message.SerializeToString())


# --- translation ------------------------------------------------------------------------------


class _Fields:
    """An insertion-ordered column map where the first value written for a key wins (husky)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}
        self.sample_rate = 0

    def put(self, key: str, value: Any) -> None:
        if key and key not in self.values:
            self.values[key] = value

    def merge(self, other: _Fields) -> None:
        for key, value in other.values.items():
            self.put(key, value)
        if self.sample_rate == 0:
            self.sample_rate = other.sample_rate

    def add_attributes(self, attributes: Iterable[KeyValue], prefix: str = "", depth: int = 0) -> None:
        for kv in attributes:
            if kv.key and kv.HasField("value"):
                self._add_value(prefix + kv.key, kv.value, depth)

    def _add_value(self, key: str, value: AnyValue, depth: int) -> None:
        kind = value.WhichOneof("value")
        if kind is None:  # an empty AnyValue (JSON null) adds no column
            return
        if kind == "double_value" and not math.isfinite(value.double_value):
            # NaN and ±Infinity have no JSON form, and query results are JSON: the value adds no column
            # (else AVG and SUM over it would come back as bare NaN, which no JSON client parses).
            return
        if key in _SAMPLE_RATE_KEYS:
            self._take_sample_rate(key, _plain(value))
            return
        if kind == "kvlist_value":
            if depth < _MAX_KVLIST_DEPTH:
                self.add_attributes(value.kvlist_value.values, prefix=key + ".", depth=depth + 1)
            else:
                self.put(key, _as_json_text(_plain(value)))
        elif kind in ("array_value", "bytes_value"):
            self.put(key, _as_json_text(_plain(value)))
        else:
            self.put(key, _plain(value))

    def _take_sample_rate(self, key: str, raw: Any) -> None:
        # husky consumes these attributes as the event's sample rate; "sampleRate" wins.
        if self.sample_rate and key != "sampleRate":
            return
        try:
            rate = float(raw) if not isinstance(raw, bool) else math.nan
        except (TypeError, ValueError):
            return
        if math.isfinite(rate):
            self.sample_rate = max(1, min(_MAX_SAMPLE_RATE, int(round(rate))))


def _plain(value: AnyValue) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        items = (_plain(v) for v in value.array_value.values)
        return [item for item in items if item is not None]
    if kind == "kvlist_value":
        return {kv.key: _plain(kv.value) for kv in value.kvlist_value.values if kv.key}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode("ascii")
    if kind is None:
        return None
    return getattr(value, kind)


def _as_json_text(value: Any) -> str:
    # Go's json.Encoder: compact, no HTML escaping, trailing newline.
    text = json.dumps(value, separators=(",", ":"), ensure_ascii=False) + "\n"
    return text.encode()[:_FIELD_SIZE_MAX].decode(errors="ignore")


def _is_exception_field(key: str, value: Any) -> bool:
    if key == "exception.escaped":
        return isinstance(value, bool)
    return key in _EXCEPTION_TEXT_KEYS and isinstance(value, str)


def trace_id_hex(raw: bytes) -> str:
    """Hex trace id; a 16-byte id whose first 8 bytes are zero is shortened to 16 hex (husky)."""
    if len(raw) == 16 and not any(raw[:8]):
        raw = raw[8:]
    return raw.hex()


def dataset_name(resource_fields: dict[str, Any]) -> str:
    service = resource_fields.get("service.name")
    name = service.strip() if isinstance(service, str) else ""
    if not name or name.startswith(UNKNOWN_SERVICE):
        return UNKNOWN_SERVICE
    return name


def translate(request: ExportTraceServiceRequest, now: Callable[[], float]) -> list[DatasetBatch]:
    """Every span, span event and link in the request as Honeycomb events, per dataset."""
    batches: list[DatasetBatch] = []
    for resource_spans in request.resource_spans:
        resource = _Fields()
        resource.add_attributes(resource_spans.resource.attributes)
        batch = DatasetBatch(dataset_name(resource.values))
        for scope_spans in resource_spans.scope_spans:
            scope = _scope_fields(scope_spans.scope)
            for span in scope_spans.spans:
                batch.events.extend(_span_events(span, scope, resource, now))
        batches.append(batch)
    return batches


def _scope_fields(scope: InstrumentationScope) -> _Fields:
    fields = _Fields()
    if scope.name:
        fields.put("library.name", scope.name)
        if scope.name.startswith(_INSTRUMENTATION_PREFIXES):
            fields.put("telemetry.instrumentation_library", True)
    if scope.version:
        fields.put("library.version", scope.version)
    fields.add_attributes(scope.attributes)
    return fields


def _timestamp(unix_nano: int, now: Callable[[], float]) -> float:
    return unix_nano / 1e9 if unix_nano > 0 else now()


def _span_events(span: Span, scope: _Fields, resource: _Fields, now: Callable[[], float]) -> list[Event]:
    fields = _Fields()
    if span.trace_state:
        fields.put("trace.trace_state", span.trace_state)
    if span.parent_span_id:
        fields.put("trace.parent_id", span.parent_span_id.hex())
    fields.add_attributes(span.attributes)
    if span.status.message:
        fields.put("status_message", span.status.message)
    is_error = span.status.code == _STATUS_ERROR
    if is_error:
        fields.put("error", True)
    trace_id = trace_id_hex(span.trace_id)
    kind = _SPAN_KINDS.get(span.kind, "unspecified")
    for key, value in (
        ("trace.trace_id", trace_id),
        ("trace.span_id", span.span_id.hex()),
        ("name", span.name),
        ("meta.signal_type", "trace"),
        ("status_code", int(span.status.code)),
        ("span.num_events", len(span.events)),
        ("span.num_links", len(span.links)),
        ("span.kind", kind),
        ("type", kind),
    ):
        fields.put(key, value)
    start, end = span.start_time_unix_nano, span.end_time_unix_nano
    duration = 0.0
    if start > 0 and end > 0:
        if end >= start:
            duration = (end - start) / 1e6
        else:
            fields.put("meta.invalid_duration", True)
    fields.put("duration_ms", duration)
    fields.merge(scope)
    fields.merge(resource)
    sample_rate = fields.sample_rate or 1
    span_time = _timestamp(start, now)

    def annotation(annotation_type: str) -> _Fields:
        extra = _Fields()
        if span.trace_id:
            extra.put("trace.trace_id", trace_id)
        if span.span_id:
            extra.put("trace.parent_id", span.span_id.hex())
        extra.put("meta.annotation_type", annotation_type)
        extra.put("meta.signal_type", "trace")
        if span.name:
            extra.put("parent_name", span.name)
        return extra

    events: list[Event] = []
    exception: dict[str, Any] | None = None
    for span_event in span.events:
        extra = annotation("span_event")
        extra.add_attributes(span_event.attributes)
        extra.put("name", span_event.name)
        if span_event.time_unix_nano > 0 and start > 0:
            since = max(0, span_event.time_unix_nano - start) / 1e6
            extra.put("meta.time_since_span_start_ms", since)
            if span_event.time_unix_nano < start:
                extra.put("meta.invalid_time_since_span_start", True)
        if is_error:
            extra.put("error", True)
        extra.merge(scope)
        extra.merge(resource)
        events.append(Event(_timestamp(span_event.time_unix_nano, now), sample_rate, extra.values))
        if exception is None and span_event.name == "exception":
            exception = {k: v for k, v in extra.values.items() if _is_exception_field(k, v)}
    if exception:
        # husky copies the first exception event's exception.* attributes onto the span.
        for key, value in exception.items():
            fields.put(key, value)
    for link in span.links:
        extra = annotation("link")
        extra.add_attributes(link.attributes)
        if link.trace_id:
            extra.put("trace.link.trace_id", trace_id_hex(link.trace_id))
        if link.span_id:
            extra.put("trace.link.span_id", link.span_id.hex())
        if is_error:
            extra.put("error", True)
        extra.merge(scope)
        extra.merge(resource)
        events.append(Event(span_time, sample_rate, extra.values))
    events.append(Event(span_time, sample_rate, fields.values))
    return events
