"""Helpers the emulator WSGI apps share: JSON responses and body decoding."""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Any

from werkzeug.exceptions import HTTPException
from werkzeug.wrappers import Request, Response

from emulators._json import strict_loads


class PayloadError(Exception):
    """The request body cannot be decoded; ``status`` is what the real service answers."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status


def json_response(
    body: Any, status: int = 200, headers: dict[str, str] | None = None, content_type: str = "application/json"
) -> Response:
    return Response(json.dumps(body), status=status, headers=headers, content_type=content_type)


def read_body(request: Request, max_bytes: int) -> bytes:
    """The request body, decompressed per Content-Encoding; raises PayloadError past ``max_bytes``."""
    length = request.content_length
    if length is not None and length > max_bytes:
        raise PayloadError(f"request body of {length} bytes exceeds the {max_bytes}-byte limit", 413)
    try:
        raw = request.get_data(cache=False)
    except OSError as exc:  # werkzeug's reader of a chunked body: "Invalid chunk header" and the like
        raise PayloadError(f"the request body cannot be read: {exc}", 400) from exc
    if len(raw) > max_bytes:
        raise PayloadError(f"request body exceeds the {max_bytes}-byte limit", 413)
    encoding = (request.headers.get("Content-Encoding") or "").lower().strip()
    try:
        if encoding == "gzip":
            raw = gzip.decompress(raw)
        elif encoding == "deflate":
            raw = zlib.decompress(raw)
        elif encoding not in ("", "identity"):
            raise PayloadError(f"unsupported Content-Encoding {encoding!r}", 415)
    except (OSError, zlib.error, EOFError) as exc:
        raise PayloadError(f"body is not valid {encoding}: {exc}", 400) from exc
    if len(raw) > max_bytes:
        raise PayloadError(f"decompressed body exceeds the {max_bytes}-byte limit", 413)
    return raw


def parse_json(raw: bytes) -> Any:
    try:
        return strict_loads(raw)
    except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
        raise PayloadError(f"body is not valid JSON: {exc}", 400) from exc


def http_exception_as_json(exc: HTTPException) -> Response:
    return json_response({"error": exc.description}, status=exc.code or 500)
