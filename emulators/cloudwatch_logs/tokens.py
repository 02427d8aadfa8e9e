"""Pagination tokens. Positions are boundaries in a stream's (timestamp, event id) order.

- GetLogEvents: ``f/<56 digits>`` / ``b/<56 digits>`` like the real service; at the end of the stream the
  token passed in comes back unchanged (that is how callers know to stop).
- FilterLogEvents: an opaque token that holds the direction, the boundary and when it was issued (tokens
  expire after 24 hours).
- Describe*: an opaque offset into the sorted listing, tied to the request's filters.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass
from typing import Any

from emulators.cloudwatch_logs.errors import ServiceError, invalid_parameter

_STREAM_TOKEN = re.compile(r"([fb])/(\d{20})(\d{36})")
MAX_TIMESTAMP = 2**63 - 1  # SQLite INTEGER
MAX_KEY = (MAX_TIMESTAMP, 0)


@dataclass(frozen=True)
class Boundary:
    """Between the events ordered before ``key`` and those at or after it; ``forward`` reads onwards."""

    forward: bool
    key: tuple[int, int]


def invalid_token() -> ServiceError:
    return invalid_parameter("The specified nextToken is invalid.")


def stream_token(forward: bool, key: tuple[int, int]) -> str:
    return f"{'f' if forward else 'b'}/{key[0]:020d}{key[1]:036d}"


def parse_stream_token(token: str) -> Boundary:
    match = _STREAM_TOKEN.fullmatch(token)
    if match is None:
        raise invalid_token()
    key = (int(match.group(2)), int(match.group(3)))
    if key[0] > MAX_TIMESTAMP or key[1] > MAX_TIMESTAMP:
        raise invalid_token()
    return Boundary(match.group(1) == "f", key)


def filter_token(boundary: Boundary, issued_ms: int) -> str:
    payload = {"d": "f" if boundary.forward else "b", "ts": boundary.key[0], "id": boundary.key[1], "t": issued_ms}
    return _encode(payload)


def parse_filter_token(token: str, now_ms: int, ttl_ms: int) -> Boundary:
    payload = _decode(token)
    try:
        direction, ts, event_id, issued = payload["d"], int(payload["ts"]), int(payload["id"]), int(payload["t"])
    except (KeyError, TypeError, ValueError) as exc:
        raise invalid_token() from exc
    if direction not in ("f", "b") or not (0 <= ts <= MAX_TIMESTAMP and 0 <= event_id <= MAX_TIMESTAMP):
        raise invalid_token()
    if now_ms - issued > ttl_ms:
        raise invalid_parameter("The specified nextToken has expired.")
    return Boundary(direction == "f", (ts, event_id))


def page_token(offset: int, fingerprint: str) -> str:
    return _encode({"o": offset, "q": fingerprint})


def parse_page_token(token: str, fingerprint: str) -> int:
    payload = _decode(token)
    offset = payload.get("o")
    if payload.get("q") != fingerprint or not isinstance(offset, int) or offset < 0:
        raise invalid_token()
    return offset


def _encode(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode()


def _decode(token: str) -> dict[str, Any]:
    try:
        payload = json.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError, UnicodeError) as exc:
        raise invalid_token() from exc
    if not isinstance(payload, dict):
        raise invalid_token()
    return payload
