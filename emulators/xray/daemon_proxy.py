"""The X-Ray daemon's TCP side: a SigV4-signing proxy in front of the X-Ray API.

The SDK's sampling poller calls the daemon unsigned (``POST /GetSamplingRules``,
``POST /SamplingTargets``); like the real daemon we forward any path to the X-Ray endpoint,
signed with the daemon's own credentials, and answer with the upstream response as is.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials
from botocore.exceptions import BotoCoreError
from botocore.httpsession import URLLib3Session
from werkzeug.wrappers import Request, Response

log = logging.getLogger("tracedrill.emulators.xray.daemon")

MAX_PROXY_BODY_BYTES = 1024 * 1024
_FORWARDED_RESPONSE_HEADERS = ("Content-Type", "x-amzn-RequestId", "x-amzn-ErrorType")


class SigningProxy:
    """WSGI app forwarding every request to ``upstream`` with a SigV4 signature for ``xray``."""

    def __init__(
        self, upstream: str, region: str, credentials: Callable[[], Credentials | None], timeout: int = 10
    ) -> None:
        self._upstream = upstream.rstrip("/")
        self._region = region
        self._credentials = credentials
        self._session = URLLib3Session(timeout=timeout)
        self._lock = threading.Lock()
        self.proxied = 0
        self.errors = 0

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        response = self._forward(request)
        return response(environ, start_response)

    def _forward(self, request: Request) -> Response:
        if (request.content_length or 0) > MAX_PROXY_BODY_BYTES:
            return self._fail(413, "RequestEntityTooLargeException", "request body too large for the daemon proxy")
        credentials = self._credentials()
        if credentials is None:
            return self._fail(
                500,
                "MissingAuthenticationTokenException",
                "the X-Ray daemon has no AWS credentials to sign the request with",
            )
        url = self._upstream + request.full_path.rstrip("?")
        headers = {"Content-Type": request.headers.get("Content-Type", "application/json")}
        upstream = AWSRequest(method=request.method, url=url, data=request.get_data(), headers=headers)
        SigV4Auth(credentials.get_frozen_credentials(), "xray", self._region).add_auth(upstream)
        try:
            answer = self._session.send(upstream.prepare())
        except BotoCoreError as exc:
            log.warning("X-Ray daemon proxy could not reach %s: %s", self._upstream, exc)
            return self._fail(502, "BadGateway", f"the X-Ray daemon could not reach {self._upstream}")
        with self._lock:
            self.proxied += 1
        headers = {k: answer.headers[k] for k in _FORWARDED_RESPONSE_HEADERS if k in answer.headers}
        return Response(answer.content, status=answer.status_code, headers=headers)

    def _fail(self, status: int, code: str, message: str) -> Response:
        with self._lock:
            self.errors += 1
        return Response(
            json.dumps({"message": message}),
            status=status,
            content_type="application/json",
            headers={"x-amzn-ErrorType": code},
        )

    def close(self) -> None:
        self._session.close()
