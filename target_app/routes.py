"""Cruddur's routes. Each one emits exactly the telemetry the verifiers look for."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime

from aws_xray_sdk.core import AWSXRayRecorder
from flask import Blueprint, Response, jsonify
from opentelemetry import trace
from opentelemetry.trace import Span, Tracer

from target_app import mock_data
from target_app.correlation import current_request_id
from target_app.mock_data import Activity
from target_app.telemetry import current_telemetry, rollbar_setup, xray
from target_app.telemetry.cloudwatch import home_line

HANDLE_PATTERN = r"^[A-Za-z0-9_]{1,30}$"
_HANDLE_RE = re.compile(HANDLE_PATTERN)
XRAY_METADATA_NAMESPACE = "cruddur"
HOME_SPAN = "home-activities-mock-data"

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
    fault = telemetry.settings.fault
    results = _HOME_VARIANTS.get(fault, _home_activities)(telemetry.tracer)
    # FAULT logger-none: the journal's HomeActivities.run(logger=None): without a logger the service logs nothing.
    _log_home(None if fault == "logger-none" else telemetry.logger)
    return jsonify(results)


def _home_activities(tracer: Tracer) -> list[Activity]:
    with tracer.start_as_current_span(HOME_SPAN) as span:
        now = datetime.now(UTC)
        results = mock_data.home_activities(now)
        _describe_home(span, now, results)  # while the span is open: the SDK drops attributes set after end()
    return results


# FAULT attr-after-end: the attributes are set after the `with` block has ended the span.
def _home_activities_attr_after_end(tracer: Tracer) -> list[Activity]:
    with tracer.start_as_current_span(HOME_SPAN) as span:
        now = datetime.now(UTC)
        results = mock_data.home_activities(now)
    _describe_home(span, now, results)
    return results


# FAULT attr-wrong-span: get_current_span() runs before the child span starts, so it returns the server span.
def _home_activities_attr_wrong_span(tracer: Tracer) -> list[Activity]:
    span = trace.get_current_span()
    with tracer.start_as_current_span(HOME_SPAN):
        now = datetime.now(UTC)
        results = mock_data.home_activities(now)
        _describe_home(span, now, results)
    return results


_HOME_VARIANTS: dict[str, Callable[[Tracer], list[Activity]]] = {
    "attr-after-end": _home_activities_attr_after_end,
    "attr-wrong-span": _home_activities_attr_wrong_span,
}


def _describe_home(span: Span, now: datetime, results: list[Activity]) -> None:
    span.set_attribute("app.now", now.isoformat())
    span.set_attribute("app.result_length", len(results))


def _log_home(logger: logging.Logger | None) -> None:
    if logger is not None:  # optional, like the journal's run(logger=None)
        logger.info("%s", home_line(_request_id()))


@bp.get("/api/activities/notifications")
def notifications() -> Response:
    return jsonify(mock_data.notifications(datetime.now(UTC)))


@bp.get("/api/activities/@<handle>")
def user_activities(handle: str) -> Response | tuple[Response, int]:
    if not _HANDLE_RE.fullmatch(handle):
        return jsonify(error="invalid handle", detail=f"a handle must match {HANDLE_PATTERN}"), 422
    telemetry = current_telemetry()
    recorder = telemetry.xray_recorder
    double_end = telemetry.settings.fault == "subsegment-double-end"
    query = _user_activities_double_end if double_end and recorder is not None else _user_activities
    now = datetime.now(UTC)
    with xray.subsegment(recorder, "user-activities"):  # the journal's @xray_recorder.capture(...)
        results = query(recorder, handle, now)
        # Through the recorder, like xray_recorder.put_annotation(): on whatever entity is open at this point.
        entity = xray.current_entity(recorder)
        entity.put_annotation("user_handle", handle)
        entity.put_metadata("query", {"now": now.isoformat(), "handle": handle}, XRAY_METADATA_NAMESPACE)
    return jsonify(results)


def _user_activities(recorder: AWSXRayRecorder | None, handle: str, now: datetime) -> list[Activity]:
    with xray.subsegment(recorder, "mock-data") as subsegment:
        results = mock_data.user_activities(handle, now)
        subsegment.put_metadata("result", {"results_size": len(results)}, XRAY_METADATA_NAMESPACE)
    return results


# FAULT subsegment-double-end: the journal's UserActivities.run ends its subsegment in the body and again in
# `finally`; the second call ends the enclosing 'user-activities' before its annotation and metadata are written.
def _user_activities_double_end(recorder: AWSXRayRecorder, handle: str, now: datetime) -> list[Activity]:
    try:
        subsegment = recorder.begin_subsegment("mock-data")
        results = mock_data.user_activities(handle, now)
        if subsegment is not None:
            subsegment.put_metadata("result", {"results_size": len(results)}, XRAY_METADATA_NAMESPACE)
        recorder.end_subsegment()
    finally:
        recorder.end_subsegment()
    return results


@bp.get("/rollbar/test")
def rollbar_test() -> Response:
    reported = current_telemetry().rollbar_enabled
    if reported:
        rollbar_setup.report_test_message()
    return jsonify(message="Hello World!", reported=reported)


@bp.get("/api/fault")
def fault() -> Response:
    raise RuntimeError("deliberate fault: /api/fault always fails")
