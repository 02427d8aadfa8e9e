"""The AWS X-Ray API emulator: a WSGI app speaking restJson1 exactly as botocore's xray model defines it.

Implemented: PutTraceSegments (POST /TraceSegments), GetTraceSummaries (POST /TraceSummaries),
BatchGetTraces (POST /Traces), GetSamplingRules (POST /GetSamplingRules) and GetSamplingTargets
(POST /SamplingTargets). Every other operation of the service model answers
``501 NotImplementedException`` naming it; a path the service does not have answers
``404 UnknownOperationException``.

Like AWS, an API call without a SigV4 ``Authorization`` header gets
``403 MissingAuthenticationTokenException``. The signature itself is not checked: the emulator
knows no secret keys.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import botocore.session
from werkzeug.wrappers import Request, Response

from emulators._wsgi import PayloadError, parse_json, read_body
from emulators.xray.errors import ApiError
from emulators.xray.sampling import QuotaAllocator, SamplingRuleSet
from emulators.xray.sampling_ops import get_sampling_rules, get_sampling_targets
from emulators.xray.store import XRayStore
from emulators.xray.trace_ops import QueryLimits, batch_get_traces, get_trace_summaries, put_trace_segments
from tracedrill import local

log = logging.getLogger("tracedrill.emulators.xray")

IMPLEMENTED = {
    "/TraceSegments": "PutTraceSegments",
    "/TraceSummaries": "GetTraceSummaries",
    "/Traces": "BatchGetTraces",
    "/GetSamplingRules": "GetSamplingRules",
    "/SamplingTargets": "GetSamplingTargets",
}


@dataclass(frozen=True)
class XRaySettings:
    sampling_rules_file: Path | None = None
    region: str = local.LOCAL_AWS_REGION
    account_id: str = "000000000000"  # used in RuleARNs
    page_size: int = 100  # GetTraceSummaries summaries per page
    scan_limit: int = 10_000  # traces examined per page before a NextToken is returned anyway
    trace_size_limit_bytes: int = 500 * 1024  # BatchGetTraces LimitExceeded above this
    max_request_bytes: int = 16 * 1024 * 1024
    clock: Callable[[], float] = field(default=time.time, compare=False)


def create_app(store: XRayStore, settings: XRaySettings | None = None) -> Callable[..., Iterable[bytes]]:
    return XRayApi(store, settings or XRaySettings())


class XRayApi:
    def __init__(self, store: XRayStore, settings: XRaySettings) -> None:
        self.store = store
        self.settings = settings
        self.rules = SamplingRuleSet(settings.sampling_rules_file, settings.region, settings.account_id, settings.clock)
        self.quotas = QuotaAllocator()
        self.limits = QueryLimits(settings.page_size, settings.scan_limit, settings.trace_size_limit_bytes)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = _json(200, self.dispatch(request))
        except ApiError as exc:
            response = _json(exc.status, {"message": exc.message}, exc.code)
        except PayloadError as exc:
            code = "RequestEntityTooLargeException" if exc.status == 413 else "SerializationException"
            response = _json(exc.status, {"message": str(exc)}, code)
        except Exception:
            log.exception("X-Ray emulator failed on %s %s", request.method, request.path)
            response = _json(500, {"message": "internal error in the X-Ray emulator"}, "InternalFailure")
        return response(environ, start_response)

    def dispatch(self, request: Request) -> dict[str, Any]:
        path = request.path.rstrip("/") or "/"
        operation = IMPLEMENTED.get(path) if request.method == "POST" else None
        if operation is None:
            known = _model_operations().get((request.method, path))
            if known is None:
                raise ApiError(
                    404, "UnknownOperationException", f"No X-Ray operation is served at {request.method} {request.path}"
                )
            _require_auth(request)
            raise ApiError(
                501,
                "NotImplementedException",
                f"{known} is not implemented by the tracedrill X-Ray emulator; it serves "
                f"{', '.join(sorted(IMPLEMENTED.values()))}",
            )
        _require_auth(request)
        body = self._body(request)
        now = self.settings.clock()
        if operation == "PutTraceSegments":
            return put_trace_segments(self.store, body, now)
        if operation == "GetTraceSummaries":
            return get_trace_summaries(self.store, body, self.limits, now)
        if operation == "BatchGetTraces":
            return batch_get_traces(self.store, body, self.limits)
        if operation == "GetSamplingRules":
            return get_sampling_rules(self.rules)
        return get_sampling_targets(self.rules, self.quotas, self.store, body, now)

    def _body(self, request: Request) -> dict[str, Any]:
        raw = read_body(request, self.settings.max_request_bytes)
        if not raw.strip():
            return {}
        body = parse_json(raw)
        if not isinstance(body, dict):
            raise ApiError(400, "SerializationException", "the request body must be a JSON object")
        return body


def _require_auth(request: Request) -> None:
    header = request.headers.get("Authorization")
    if header is None:
        if "X-Amz-Signature" in request.args:  # a presigned URL carries its signature in the query
            return
        raise ApiError(403, "MissingAuthenticationTokenException", "Missing Authentication Token")
    if not header.startswith("AWS4-HMAC-SHA256 ") or not all(
        part in header for part in ("Credential=", "SignedHeaders=", "Signature=")
    ):
        raise ApiError(
            403,
            "IncompleteSignatureException",
            "Authorization header must be AWS4-HMAC-SHA256 with Credential, SignedHeaders and Signature",
        )


@lru_cache(maxsize=1)
def _model_operations() -> dict[tuple[str, str], str]:
    """(method, path) -> operation name for every operation in botocore's xray model."""
    model = botocore.session.get_session().get_service_model("xray")
    operations = {}
    for name in model.operation_names:
        http = model.operation_model(name).http
        operations[(http["method"], http["requestUri"].split("?")[0].rstrip("/"))] = name
    return operations


def _json(status: int, body: dict[str, Any], error_type: str | None = None) -> Response:
    headers = {"x-amzn-RequestId": str(uuid.uuid4())}
    if error_type:
        headers["x-amzn-ErrorType"] = error_type
    return Response(json.dumps(body), status=status, headers=headers, content_type="application/json")
