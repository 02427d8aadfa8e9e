"""OpenTelemetry: tracer provider, OTLP/HTTP exporter, Flask and requests instrumentation.

The exporter is configured by the standard ``OTEL_EXPORTER_OTLP_*`` variables only: an ``endpoint=``
argument would be used verbatim (no ``/v1/traces`` appended), the trap the design notes warn about.
"""

from __future__ import annotations

import os
import re
from collections.abc import MutableMapping, Sequence

from flask import Flask
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.instrumentation.propagators import TraceResponsePropagator, set_global_response_propagator
from opentelemetry.instrumentation.requests import RequestsInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter

from target_app.correlation import current_request_id
from target_app.settings import DEFAULT_OTLP_ENDPOINT, Settings

REQUEST_ID_ATTRIBUTE = "app.request_id"
TRACER_NAME = "cruddur"
BSP_QUEUE_FAULT = 1  # the bsp-queue-overflow profile's max_queue_size


class RequestIdSpanProcessor(SpanProcessor):
    """Stamps ``app.request_id`` on every span started inside a request, children included."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        request_id = current_request_id()
        if request_id is not None:
            span.set_attribute(REQUEST_ID_ATTRIBUTE, request_id)


def apply_exporter_env_defaults(settings: Settings, environ: MutableMapping[str, str] | None = None) -> None:
    """Fill the OTLP variables the user left unset with the local stack's values (never overwrite)."""
    target = os.environ if environ is None else environ
    for name, value in settings.otlp_env_defaults.items():
        target.setdefault(name, value)


def build_span_exporter(settings: Settings) -> SpanExporter:
    apply_exporter_env_defaults(settings)
    if settings.fault == "otlp-endpoint-no-path":
        # FAULT otlp-endpoint-no-path: the base URL passed in code is used verbatim, no /v1/traces appended.
        return OTLPSpanExporter(endpoint=os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT", DEFAULT_OTLP_ENDPOINT))
    return OTLPSpanExporter()


def build_tracer_provider(
    settings: Settings, exporter: SpanExporter | None = None, *, batch: bool = True
) -> TracerProvider:
    """A provider of our own (the global one can be set only once per process; tests build many).

    The sampler comes from ``OTEL_TRACES_SAMPLER``/``_ARG`` (default: parent-based, always on).
    """
    provider = TracerProvider(resource=Resource.create({SERVICE_NAME: settings.service_name}))
    provider.add_span_processor(RequestIdSpanProcessor())
    span_exporter = exporter if exporter is not None else build_span_exporter(settings)
    # Batching keeps exports off the request path; tests may ask for synchronous export.
    if not batch:
        provider.add_span_processor(SimpleSpanProcessor(span_exporter))
    elif settings.fault == "bsp-queue-overflow":
        # FAULT bsp-queue-overflow: the queue shrunk "to save memory"; a burst beyond it is dropped.
        small = BSP_QUEUE_FAULT
        processor = BatchSpanProcessor(span_exporter, max_queue_size=small, max_export_batch_size=small)
        provider.add_span_processor(processor)
    else:
        provider.add_span_processor(BatchSpanProcessor(span_exporter))
    return provider


_master_provider: TracerProvider | None = None


def create_provider_before_fork(settings: Settings) -> None:
    """FAULT fork-unsafe-otel: called from gunicorn's on_starting, in the master, before any worker exists."""
    global _master_provider
    _master_provider = build_tracer_provider(settings)


def provider_from_master() -> TracerProvider | None:
    """The provider the gunicorn master created (fork-unsafe-otel), inherited by this worker through fork."""
    return _master_provider


def instrument_flask(app: Flask, provider: TracerProvider) -> None:
    """Server spans whose parent is the incoming W3C ``traceparent`` (global default propagators).

    Every response carries the W3C ``traceresponse`` header (Trace Context Level 2): the server span's
    trace id and sampled flag. When no traceparent is sent (a root sampler under test) that is how the
    load generator learns the trace id the app chose.
    """
    set_global_response_propagator(TraceResponsePropagator())
    FlaskInstrumentor.instrument_app(app, tracer_provider=provider)


def instrument_requests(provider: TracerProvider, excluded_urls: Sequence[str] = ()) -> None:
    """Client spans for outgoing ``requests`` calls, except to the given URLs.

    The Rollbar endpoint is excluded: pyrollbar posts through ``requests`` from its own thread, which
    would otherwise add one extra root trace (without a request id) to Honeycomb per reported error.
    """
    instrumentor = RequestsInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()  # re-point the process-wide patch at this provider
    patterns = [p for p in os.environ.get("OTEL_PYTHON_REQUESTS_EXCLUDED_URLS", "").split(",") if p.strip()]
    patterns += [re.escape(url) for url in excluded_urls]
    instrumentor.instrument(tracer_provider=provider, excluded_urls=",".join(patterns) or None)


def uninstrument_requests() -> None:
    instrumentor = RequestsInstrumentor()
    if instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.uninstrument()
