"""All four SDKs for one app: set up from Settings, reachable from routes, flushed on worker exit.

``setup_telemetry`` is called by the app factory, i.e. in each gunicorn worker after fork, so the
OTel batch thread, watchtower's sender threads and X-Ray's pollers live in the worker that uses them.
``shutdown_all`` is what gunicorn's ``worker_exit`` hook calls.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aws_xray_sdk.core import AWSXRayRecorder
from aws_xray_sdk.core.emitters.udp_emitter import UDPEmitter
from flask import Flask, current_app
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SpanExporter

from target_app.settings import Settings
from target_app.telemetry import cloudwatch, otel, rollbar_setup, xray

EXTENSION_KEY = "tracedrill.telemetry"
_log = logging.getLogger(__name__)


@dataclass
class TelemetryOverrides:
    """Test seams: replace a sink of an *enabled* instrumentation (disabled ones stay off)."""

    span_exporter: SpanExporter | None = None
    batch_spans: bool = True
    xray_recorder: AWSXRayRecorder | None = None
    xray_emitter: UDPEmitter | None = None
    log_handler: logging.Handler | None = None
    rollbar_handler: rollbar_setup.RollbarHandler = "thread_pool"
    instrument_requests: bool = True


@dataclass
class Telemetry:
    settings: Settings
    tracer: trace.Tracer
    logger: logging.Logger
    tracer_provider: TracerProvider | None = None
    xray_recorder: AWSXRayRecorder | None = None
    log_handler: logging.Handler | None = None
    rollbar_enabled: bool = False
    instrumented_requests: bool = False
    _closed: bool = field(default=False, repr=False)

    def shutdown(self, timeout_s: float = 10.0) -> None:
        """Flush and stop every sink within ``timeout_s`` overall (idempotent).

        Each step runs even if an earlier one fails or overran, with what is left of the budget.
        """
        if self._closed:
            return
        self._closed = True
        _unregister(self)
        deadline = time.monotonic() + timeout_s
        steps: tuple[tuple[str, Callable[[float], None]], ...] = (
            ("rollbar", self._wait_rollbar),
            ("otel", self._stop_otel),
            ("cloudwatch", self._stop_logs),
        )
        for name, step in steps:
            try:
                step(max(0.5, deadline - time.monotonic()))
            except Exception:
                _log.exception("flushing %s telemetry failed", name)

    def _wait_rollbar(self, timeout_s: float) -> None:
        if self.rollbar_enabled and not rollbar_setup.wait_for_pending(timeout_s):
            _log.warning("rollbar: items still sending after %.1f s", timeout_s)

    def _stop_otel(self, timeout_s: float) -> None:
        if self.instrumented_requests:
            otel.uninstrument_requests()
        if self.tracer_provider is not None:
            if not self.tracer_provider.force_flush(int(timeout_s * 1000)):
                _log.warning("otel: force_flush did not finish within %.1f s", timeout_s)
            self.tracer_provider.shutdown()

    def _stop_logs(self, timeout_s: float) -> None:
        if self.log_handler is not None:
            self.logger.removeHandler(self.log_handler)
            cloudwatch.flush_and_close(self.log_handler, timeout_s)


_active: list[Telemetry] = []
_active_lock = threading.Lock()


def _unregister(telemetry: Telemetry) -> None:
    with _active_lock:
        if telemetry in _active:
            _active.remove(telemetry)


def setup_telemetry(app: Flask, settings: Settings, overrides: TelemetryOverrides | None = None) -> Telemetry:
    over = overrides or TelemetryOverrides()
    telemetry = Telemetry(settings=settings, tracer=trace.NoOpTracer(), logger=cloudwatch.get_logger())
    if settings.enabled("xray"):
        # First, so its before_request (which opens the segment) precedes everything else we add.
        telemetry.xray_recorder = xray.configure_recorder(settings, over.xray_recorder, over.xray_emitter)
        xray.instrument_flask(app, telemetry.xray_recorder)
    if settings.enabled("otel"):
        # FAULT fork-unsafe-otel: the workers use the provider the gunicorn master made before forking them.
        inherited = otel.provider_from_master() if settings.fault == "fork-unsafe-otel" else None
        provider = inherited or otel.build_tracer_provider(settings, over.span_exporter, batch=over.batch_spans)
        telemetry.tracer_provider = provider
        telemetry.tracer = provider.get_tracer(otel.TRACER_NAME)
        otel.instrument_flask(app, provider)
        if over.instrument_requests:
            excluded = [settings.rollbar_endpoint] if settings.enabled("rollbar") else []
            otel.instrument_requests(provider, excluded)
            telemetry.instrumented_requests = True
    if settings.enabled("cloudwatch"):
        handler = over.log_handler if over.log_handler is not None else cloudwatch.build_cloudwatch_handler(settings)
        if settings.fault != "no-cloudwatch-handler":  # FAULT no-cloudwatch-handler: built, never added to the logger
            _replace_log_handler(telemetry.logger, handler)
            telemetry.log_handler = handler
        if settings.fault == "duplicate-log-handler":
            # FAULT duplicate-log-handler: a copy-pasted second setup adds its own handler to the same logger.
            telemetry.logger.addHandler(cloudwatch.build_cloudwatch_handler(settings))
    if settings.enabled("rollbar"):
        if settings.fault == "rollbar-never-init":
            # FAULT rollbar-never-init: this was decorated with @app.before_first_request, which Flask 2.3 removed;
            # with the decorator deleted, nothing calls it.
            def init_rollbar() -> None:
                rollbar_setup.init_rollbar(settings, over.rollbar_handler)
                rollbar_setup.connect_flask(app)

        else:
            rollbar_setup.init_rollbar(settings, over.rollbar_handler)
            rollbar_setup.connect_flask(app)
        telemetry.rollbar_enabled = True
    app.extensions[EXTENSION_KEY] = telemetry
    with _active_lock:
        _active.append(telemetry)
    return telemetry


def _replace_log_handler(logger: logging.Logger, handler: logging.Handler) -> None:
    """The "cruddur" logger is process-wide: the newest app's sink replaces older ones (no duplicates)."""
    with _active_lock:
        for other in _active:
            if other.log_handler is not None:
                logger.removeHandler(other.log_handler)
    logger.addHandler(handler)


def current_telemetry() -> Telemetry:
    telemetry: Telemetry = current_app.extensions[EXTENSION_KEY]
    return telemetry


def shutdown_all(timeout_s: float = 10.0) -> int:
    """Flush every live Telemetry of this process; returns how many were shut down."""
    with _active_lock:
        pending = list(_active)
    for telemetry in pending:
        telemetry.shutdown(timeout_s)
    return len(pending)
