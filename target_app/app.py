"""The Flask app factory gunicorn loads in each worker: ``target_app.app:create_app()``."""

from __future__ import annotations

from datetime import UTC, datetime

from flask import Flask, Response, g, request

from target_app import correlation, routes
from target_app.settings import Settings
from target_app.telemetry import TelemetryOverrides, current_telemetry, setup_telemetry
from target_app.telemetry.cloudwatch import request_line

_STATUS_KEY = "tracedrill_status_code"


def create_app(settings: Settings | None = None, *, overrides: TelemetryOverrides | None = None) -> Flask:
    """Build the app; with no arguments the configuration comes from the environment."""
    app = Flask(__name__)
    effective = settings if settings is not None else Settings.from_env()
    correlation.init_app(app)
    setup_telemetry(app, effective, overrides)
    app.after_request(_remember_status)
    app.teardown_request(_log_request)
    app.register_blueprint(routes.bp)
    return app


def _remember_status(response: Response) -> Response:
    # after_request can run twice (an after_request hook failing turns the response into a 500 that
    # is finalised again), so only remember the status here; the line is written once, at teardown.
    setattr(g, _STATUS_KEY, response.status_code)
    return response


def _log_request(exc: BaseException | None) -> None:
    """The one access line per request; teardown also runs when an exception escapes after_request."""
    status = g.get(_STATUS_KEY)
    if status is None or (exc is not None and status < 500):
        status = 500  # no response was finalised (exception propagated): the client gets a 500
    request_id = correlation.current_request_id() or correlation.new_request_id()
    line = request_line(
        when=datetime.now(UTC),
        remote_addr=request.remote_addr,
        method=request.method,
        scheme=request.scheme,
        full_path=request.full_path,
        status_code=status,
        request_id=request_id,
    )
    current_telemetry().logger.info("%s", line)
