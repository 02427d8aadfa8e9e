"""Cruddur's routes. Each one emits exactly the telemetry the verifiers look for."""

from __future__ import annotations

import re
from datetime import UTC, datetime

from flask import Blueprint, Response, jsonify

from target_app import mock_data
from target_app.correlation import current_request_id
from target_app.telemetry import current_telemetry, rollbar_setup, xray
from target_app.telemetry.cloudwatch import home_line

HANDLE_PATTERN = r"^[A-Za-z0-9_]{1,30}$"
_HANDLE_RE = re.compile(HANDLE_PATTERN)
XRAY_METADATA_NAMESPACE = "cruddur"

bp = Blueprint("cruddur", __name__)


def _request_id() -> str:
    request_id = current_request_id()
    if request_id is None:  # routes always run inside a request
        raise RuntimeError("no request context")
    return request_id


@bp.get("/api/health")
def health() -> Response:
    return jsonify(status="ok")


@bp.get("/api/activities/home")
def home_activities() -> Response:
    telemetry = current_telemetry()
    with telemetry.tracer.start_as_current_span("home-activities-mock-data") as span:
        now = datetime.now(UTC)
        results = mock_data.home_activities(now)
        # Set while the span is open: attributes set after end() are dropped by the SDK.
        span.set_attribute("app.now", now.isoformat())
        span.set_attribute("app.result_length", len(results))
        telemetry.logger.info("%s", home_line(_request_id()))
    return jsonify(results)


@bp.get("/api/activities/notifications")
def notifications() -> Response:
    return jsonify(mock_data.notifications(datetime.now(UTC)))


@bp.get("/api/activities/@<handle>")
def user_activities(handle: str) -> Response | tuple[Response, int]:
    if not _HANDLE_RE.fullmatch(handle):
        return jsonify(error="invalid handle", detail=f"a handle must match {HANDLE_PATTERN}"), 422
    recorder = current_telemetry().xray_recorder
    now = datetime.now(UTC)
    with xray.subsegment(recorder, "user-activities") as outer:
        outer.put_annotation("user_handle", handle)
        outer.put_metadata("query", {"now": now.isoformat(), "handle": handle}, XRAY_METADATA_NAMESPACE)
        with xray.subsegment(recorder, "mock-data") as inner:
            results = mock_data.user_activities(handle, now)
            inner.put_metadata("result", {"results_size": len(results)}, XRAY_METADATA_NAMESPACE)
    return jsonify(results)


@bp.get("/rollbar/test")
def rollbar_test() -> Response:
    reported = current_telemetry().rollbar_enabled
    if reported:
        rollbar_setup.report_test_message()
    return jsonify(message="Hello World!", reported=reported)


@bp.get("/api/fault")
def fault() -> Response:
    raise RuntimeError("deliberate fault: /api/fault always fails")
