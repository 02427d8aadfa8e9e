"""The request id that ties one request's span, segment, log lines and Rollbar items together.

The load generator picks it and sends ``X-Request-Id``; a missing or unusable header gets a fresh
uuid4 hex. It is resolved lazily on first use in a request, so hooks and span processors can ask for
it in any order, and echoed back in the response header.
"""

from __future__ import annotations

import uuid

from flask import Flask, Response, g, has_request_context, request

REQUEST_ID_HEADER = "X-Request-Id"
MAX_REQUEST_ID_LENGTH = 128
_G_KEY = "tracedrill_request_id"


def is_valid_request_id(value: str) -> bool:
    """Printable ASCII without whitespace, 1-128 characters.

    Whitespace is refused too: the id is written as ``request_id=<id>`` into log lines, where a space
    would cut it short for anyone parsing them.
    """
    return 0 < len(value) <= MAX_REQUEST_ID_LENGTH and all(0x21 <= ord(ch) <= 0x7E for ch in value)


def new_request_id() -> str:
    return uuid.uuid4().hex


def resolve_request_id(header_value: str | None) -> str:
    if header_value is not None and is_valid_request_id(header_value):
        return header_value
    return new_request_id()


def current_request_id() -> str | None:
    """The current request's id, or None outside a request (e.g. in a background sender thread)."""
    if not has_request_context():
        return None
    request_id: str | None = g.get(_G_KEY)
    if request_id is None:
        request_id = resolve_request_id(request.headers.get(REQUEST_ID_HEADER))
        setattr(g, _G_KEY, request_id)
    return request_id


def echo_request_id(response: Response) -> Response:
    request_id = current_request_id()
    if request_id is not None:
        response.headers[REQUEST_ID_HEADER] = request_id
    return response


def init_app(app: Flask) -> None:
    app.after_request(echo_request_id)
