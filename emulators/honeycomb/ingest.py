"""``POST /v1/traces``: Honeycomb's OTLP/HTTP trace receiver.

Checks run in husky's order (content type, then the x-honeycomb-team header), then the body is
read, decoded and stored all-or-nothing: a rejected request stores nothing.
"""

from __future__ import annotations

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from werkzeug.wrappers import Request, Response

from emulators._wsgi import PayloadError, read_body
from emulators.honeycomb.otlp import (
    SUPPORTED_CONTENT_TYPES,
    OtlpDecodeError,
    decode_request,
    encode_response,
    translate,
)
from emulators.honeycomb.responses import UNKNOWN_KEY, otlp_status
from emulators.honeycomb.settings import HoneycombSettings
from emulators.honeycomb.store import DatasetCreationDenied, HoneycombStore

# Honeycomb documents no OTLP request size limit. This is the batch cap its own SDK observes for
# the events API (libhoney-go apiMaxBatchSize = 5 MB), applied to the body as sent and decoded.
MAX_OTLP_BODY_BYTES = 5_000_000
_BAD_CONTENT_TYPE = "unsupported content-type, valid types are: " + ", ".join(sorted(SUPPORTED_CONTENT_TYPES))


def handle_traces(request: Request, store: HoneycombStore, settings: HoneycombSettings) -> Response:
    content_type = request.mimetype  # lower-cased, parameters such as charset dropped
    if content_type not in SUPPORTED_CONTENT_TYPES:
        return otlp_status(415, _BAD_CONTENT_TYPE, content_type)
    key = request.headers.get("x-honeycomb-team")
    if not key:
        return otlp_status(401, "missing 'x-honeycomb-team' header", content_type)
    access = settings.access(key)
    if access is None:
        return otlp_status(401, UNKNOWN_KEY, content_type)
    if not access.events:
        return otlp_status(403, "this API key does not have the Send Events permission", content_type)
    try:
        export = decode_request(read_body(request, MAX_OTLP_BODY_BYTES), content_type)
    except PayloadError as exc:
        return otlp_status(exc.status, str(exc), content_type)
    except OtlpDecodeError:
        return otlp_status(400, "failed to parse OTLP request body", content_type)
    batches = translate(export, settings.clock)
    try:
        store.write_batches(batches, settings.clock(), may_create_datasets=access.create_datasets)
    except DatasetCreationDenied as exc:
        return otlp_status(403, str(exc), content_type)
    return Response(encode_response(ExportTraceServiceResponse(), content_type), status=200, content_type=content_type)
