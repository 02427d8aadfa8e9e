"""The CloudWatch Logs API on its real wire protocol (awsJson1.1).

``POST /`` with ``X-Amz-Target: Logs_20140328.<Operation>`` and a JSON body; errors are HTTP 400 with
``{"__type": code, "message": ...}``. A SigV4 ``Authorization`` header is required (its region picks the
data partition, as in AWS) but the signature is not checked. Operations this emulator does not implement
get ``UnknownOperationException``, the error AWS gives for an operation it does not know.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Callable, Iterable
from typing import Any

from werkzeug.wrappers import Request, Response

from emulators._wsgi import PayloadError, json_response, parse_json, read_body
from emulators.cloudwatch_logs import event_operations as events
from emulators.cloudwatch_logs import group_operations as groups
from emulators.cloudwatch_logs.errors import ServiceError, serialization, throttled, unknown_operation
from emulators.cloudwatch_logs.settings import LogsSettings, RequestContext
from emulators.cloudwatch_logs.store import LogsStore
from emulators.cloudwatch_logs.throttle import RateLimiter
from emulators.cloudwatch_logs.validation import validate_input

__all__ = ["LogsSettings", "create_app"]

log = logging.getLogger("tracedrill.emulators.cloudwatch_logs")

TARGET_PREFIX = "Logs_20140328."
CONTENT_TYPE = "application/x-amz-json-1.1"
Handler = Callable[[RequestContext, dict[str, Any]], dict[str, Any]]
OPERATIONS: dict[str, Handler] = {
    "CreateLogGroup": groups.create_log_group,
    "CreateLogStream": groups.create_log_stream,
    "DescribeLogGroups": groups.describe_log_groups,
    "DescribeLogStreams": groups.describe_log_streams,
    "DeleteLogGroup": groups.delete_log_group,
    "PutRetentionPolicy": groups.put_retention_policy,
    "PutLogEvents": events.put_log_events,
    "GetLogEvents": events.get_log_events,
    "FilterLogEvents": events.filter_log_events,
}
_AUTHORIZATION = re.compile(
    r"AWS4-HMAC-SHA256\s+Credential=[^/,\s]+/\d{8}/(?P<region>[a-z0-9-]+)/(?P<service>[a-z0-9-]+)/aws4_request\s*,"
    r"\s*SignedHeaders=[^,\s]+\s*,\s*Signature=[0-9a-fA-F]+\s*"
)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def create_app(store: LogsStore, settings: LogsSettings | None = None) -> WsgiApp:
    return LogsApp(store, settings or LogsSettings())


class LogsApp:
    def __init__(self, store: LogsStore, settings: LogsSettings) -> None:
        self.store = store
        self.settings = settings
        self.filter_limiter = RateLimiter(settings.filter_log_events_per_second)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        response = self.handle(Request(environ))
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        request_id = str(uuid.uuid4())
        try:
            body = self._dispatch(request)
            response = json_response(body, 200, content_type=CONTENT_TYPE)
        except ServiceError as exc:
            response = _error_response(exc)
        except Exception:
            log.exception("CloudWatch Logs emulator failed on %s", request.headers.get("X-Amz-Target"))
            response = _error_response(ServiceError("ServiceUnavailableException", "Internal error", 500))
        response.headers["x-amzn-RequestId"] = request_id
        return response

    def _dispatch(self, request: Request) -> dict[str, Any]:
        region = _region_from_signature(request)
        target = request.headers.get("X-Amz-Target", "")
        operation = target.removeprefix(TARGET_PREFIX) if target.startswith(TARGET_PREFIX) else ""
        handler = OPERATIONS.get(operation)
        if request.method != "POST" or handler is None:
            raise unknown_operation(target)
        if operation == "FilterLogEvents" and not self.filter_limiter.allow(region):
            raise throttled()
        params = self._params(request)
        validate_input(operation, params)
        now_ms = int(self.settings.clock() * 1000)
        return handler(RequestContext(self.store, self.settings, region, now_ms), params)

    def _params(self, request: Request) -> dict[str, Any]:
        try:
            raw = read_body(request, self.settings.max_request_bytes)
            params = parse_json(raw) if raw.strip() else {}
        except PayloadError as exc:
            if exc.status == 413:
                raise ServiceError("RequestEntityTooLargeException", str(exc), 413) from exc
            raise serialization(str(exc)) from exc
        if not isinstance(params, dict):
            raise serialization("The request body must be a JSON object.")
        return params


def _region_from_signature(request: Request) -> str:
    header = request.headers.get("Authorization")
    if not header:
        raise ServiceError("MissingAuthenticationTokenException", "Missing Authentication Token")
    match = _AUTHORIZATION.fullmatch(header.strip())
    if match is None:
        raise ServiceError(
            "IncompleteSignatureException",
            "Authorization header requires 'Credential', 'SignedHeaders' and 'Signature' "
            "parameters (AWS4-HMAC-SHA256).",
        )
    if not (request.headers.get("X-Amz-Date") or request.headers.get("Date")):
        raise ServiceError(
            "IncompleteSignatureException",
            "Authorization header requires existence of either a 'X-Amz-Date' or a 'Date' header.",
        )
    if match.group("service") != "logs":
        raise ServiceError("InvalidSignatureException", "Credential should be scoped to correct service: 'logs'.")
    return match.group("region")


def _error_response(exc: ServiceError) -> Response:
    response = json_response({"__type": exc.code, "message": exc.message}, exc.status, content_type=CONTENT_TYPE)
    response.headers["x-amzn-ErrorType"] = exc.code
    return response
