"""The floor: the same Cruddur routes instrumented the way each SDK's own documentation shows, nothing more.

Same work and the same telemetry items per request as the target app (server span + one custom span
on home, a segment + two subsegments on user activities, an access line per request and a hello line
on home, a Rollbar message or exception), but none of the target's glue (request ids on every item,
the request-id span processor, annotations, validated settings). The difference between the two is
what our target adds on top of the stock SDKs.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping
from datetime import UTC, datetime

import boto3
import rollbar
import rollbar.contrib.flask
import watchtower
from aws_xray_sdk.core import xray_recorder
from aws_xray_sdk.ext.flask.middleware import XRayMiddleware
from flask import Flask, Response, got_request_exception, jsonify, request
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.flask import FlaskInstrumentor
from opentelemetry.sdk.resources import SERVICE_NAME, Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor

from target_app import mock_data

Flush = Callable[[], None]


def create_stock_app(enabled: Collection[str], env: Mapping[str, str]) -> tuple[Flask, Flush]:
    """The app and a function that waits until everything it queued has been sent."""
    app = Flask("stock")
    flushes: list[Flush] = []
    tracer: trace.Tracer = trace.NoOpTracer()
    logger = logging.getLogger("stock")
    logger.setLevel(logging.INFO)
    logger.propagate = False
    if "otel" in enabled:
        provider = TracerProvider(resource=Resource.create({SERVICE_NAME: env["OTEL_SERVICE_NAME"]}))
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))  # endpoint from OTEL_EXPORTER_OTLP_*
        FlaskInstrumentor.instrument_app(app, tracer_provider=provider)
        tracer = provider.get_tracer("stock")
        flushes.append(lambda: None if provider.force_flush() else None)
    if "xray" in enabled:
        xray_recorder.configure(
            service=env["AWS_XRAY_TRACING_NAME"], daemon_address=env["AWS_XRAY_DAEMON_ADDRESS"], plugins=()
        )
        XRayMiddleware(app, xray_recorder)
    if "cloudwatch" in enabled:
        client = boto3.client("logs", endpoint_url=env["AWS_ENDPOINT_URL_CLOUDWATCH_LOGS"])
        stream = f"stock-{id(app)}"
        _create(client, env["CLOUDWATCH_LOG_GROUP"], stream)
        handler = watchtower.CloudWatchLogHandler(
            log_group_name=env["CLOUDWATCH_LOG_GROUP"],
            log_stream_name=stream,
            boto3_client=client,
            send_interval=1,
            create_log_group=False,
        )
        logger.addHandler(handler)
        flushes.append(handler.flush)
    if "rollbar" in enabled:
        rollbar.init(
            env["ROLLBAR_ACCESS_TOKEN"],
            env["ROLLBAR_ENVIRONMENT"],
            endpoint=env["ROLLBAR_ENDPOINT"],
            handler="thread",
            allow_logging_basic_config=False,
        )
        got_request_exception.connect(rollbar.contrib.flask.report_exception, app)
        flushes.append(rollbar.wait)

    @app.after_request
    def access_line(response: Response) -> Response:
        stamp = datetime.now(UTC).strftime("[%Y-%b-%d %H:%M]")
        logger.info("%s %s %s %s %s %s", stamp, request.remote_addr, request.method, request.scheme,
                    request.full_path, response.status)  # fmt: skip
        return response

    @app.get("/api/activities/home")
    def home() -> Response:
        with tracer.start_as_current_span("home-activities-mock-data") as span:
            now = datetime.now(UTC)
            results = mock_data.home_activities(now)
            span.set_attribute("app.now", now.isoformat())
            span.set_attribute("app.result_length", len(results))
            logger.info("Hello Cloudwatch! from /api/activities/home")
        return jsonify(results)

    @app.get("/api/activities/@<handle>")
    def user_activities(handle: str) -> Response:
        now = datetime.now(UTC)
        if "xray" not in enabled:
            return jsonify(mock_data.user_activities(handle, now))
        with xray_recorder.in_subsegment("user-activities") as outer:
            outer.put_annotation("user_handle", handle)
            outer.put_metadata("query", {"now": now.isoformat(), "handle": handle}, "cruddur")
            with xray_recorder.in_subsegment("mock-data") as inner:
                results = mock_data.user_activities(handle, now)
                inner.put_metadata("result", {"results_size": len(results)}, "cruddur")
        return jsonify(results)

    @app.get("/rollbar/test")
    def rollbar_test() -> Response:
        if "rollbar" in enabled:
            rollbar.report_message("Hello World!", "warning")
        return jsonify(message="Hello World!")

    @app.get("/api/fault")
    def fault() -> Response:
        raise RuntimeError("deliberate fault: /api/fault always fails")

    def flush_all() -> None:
        for flush in flushes:
            flush()

    return app, flush_all


def _create(client: object, group: str, stream: str) -> None:
    # watchtower drops records emitted while it creates a stream lazily; creating it first is the documented fix.
    for call, kwargs in (
        ("create_log_group", {"logGroupName": group}),
        ("create_log_stream", {"logGroupName": group, "logStreamName": stream}),
    ):
        try:
            getattr(client, call)(**kwargs)
        except Exception as exc:  # ResourceAlreadyExistsException: fine
            if "AlreadyExists" not in type(exc).__name__:
                raise
