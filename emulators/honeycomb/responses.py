"""Honeycomb's error bodies.

V1 endpoints answer RFC 7807 problem details (``status, type, title, error, detail``); 401 uses
the legacy ``{"error": ...}`` form (docs.honeycomb.io/api/errors). The OTLP endpoint answers a
google.rpc.Status in the request's encoding, or text/plain for an unsupported content type
(honeycombio/husky otlp/common.go WriteOtlpHttpResponse).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from google.rpc.status_pb2 import Status
from werkzeug.wrappers import Response

from emulators._wsgi import json_response
from emulators.honeycomb.otlp import JSON_TYPE, SUPPORTED_CONTENT_TYPES, encode_response

UNKNOWN_KEY = "unknown API key - check your credentials"
PROBLEM_JSON = "application/problem+json"

_PROBLEMS = {
    400: ("bad-request", "The request was invalid."),
    403: ("forbidden", "You do not have access to this resource."),
    404: ("not-found", "The requested resource cannot be found."),
    405: ("method-not-allowed", "The method is not allowed for this resource."),
    413: ("request-too-large", "The request body is too large."),
    415: ("unsupported-media-type", "The request content type is not supported."),
    422: ("validation-failed", "The provided input is invalid."),
    429: ("rate-limited", "You have exceeded your rate limit."),
    501: ("not-implemented", "This query cannot be run by the local emulator."),
}


def problem(
    status: int, detail: str, headers: dict[str, str] | None = None, invalid_fields: Sequence[str] = ()
) -> Response:
    """An RFC 7807 body; ``invalid_fields`` become the ``type_detail`` of a 422 ValidationError."""
    slug, title = _PROBLEMS.get(status, ("error", "The request failed."))
    body: dict[str, Any] = {
        "status": status,
        "type": f"https://api.honeycomb.io/problems/{slug}",
        "title": title,
        "error": detail,
        "detail": detail,
    }
    if invalid_fields:
        body["type_detail"] = [{"field": f, "code": "invalid", "description": detail} for f in invalid_fields]
    return json_response(body, status=status, headers=headers, content_type=PROBLEM_JSON)


def unauthorized() -> Response:
    return json_response({"error": UNKNOWN_KEY}, status=401)


def otlp_status(status: int, message: str, content_type: str) -> Response:
    if content_type not in SUPPORTED_CONTENT_TYPES:
        return Response(message, status=status, content_type="text/plain")
    body = encode_response(Status(message=message), content_type)
    return Response(body, status=status, content_type=JSON_TYPE if content_type == JSON_TYPE else content_type)
