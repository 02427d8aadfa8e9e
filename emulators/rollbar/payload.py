"""Validate a POST /api/1/item/ payload and turn it into an occurrence ready to store.

The rules follow Rollbar's item POST format (rollbar/docs api/items_post.md): ``data`` is
required, ``data.environment`` is a required string of up to 255 characters, ``data.body``
holds exactly one of trace, trace_chain, message, crash_report, ``uuid`` is up to 36
characters, ``level`` defaults to "error" for exceptions and "info" for messages. A payload
that breaks them is answered 422 "Invalid format. ..." as Rollbar does.
"""

from __future__ import annotations

import time
import uuid as uuidlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from emulators.rollbar import grouping

LEVELS = ("debug", "info", "warning", "error", "critical")
BODY_KINDS = ("trace", "trace_chain", "message", "crash_report")
CLIENT_PLATFORMS = frozenset({"browser", "android", "ios", "flash", "client"})
MAX_ENVIRONMENT_CHARS = 255
MAX_UUID_CHARS = 36


class InvalidPayload(Exception):
    """The JSON parsed but breaks the item format (HTTP 422)."""


@dataclass(frozen=True)
class NewOccurrence:
    """One accepted occurrence: ``data`` is what the client posted (plus the uuid if it had none)."""

    data: dict[str, Any]
    uuid: str
    environment: str
    level: str
    timestamp: int
    fingerprint: str
    title: str
    framework: str | None
    platform: str | None
    language: str | None


def _invalid(what: str) -> InvalidPayload:
    return InvalidPayload(f"Invalid format. {what}")


def _require_mapping(value: Any, path: str) -> Mapping[str, Any]:
    if value is None:
        raise _invalid(f"{path} is missing and it is required.")
    if not isinstance(value, Mapping):
        raise _invalid(f"{path} must be an object.")
    return value


def _check_trace(trace: Any, path: str) -> None:
    trace = _require_mapping(trace, path)
    frames = trace.get("frames")
    if not isinstance(frames, list):
        raise _invalid(f"{path}.frames is missing or not a list.")
    for index, frame in enumerate(frames):
        frame = _require_mapping(frame, f"{path}.frames.{index}")
        if not isinstance(frame.get("filename"), str):
            raise _invalid(f"{path}.frames.{index}.filename is missing or not a string.")
    exception = _require_mapping(trace.get("exception"), f"{path}.exception")
    if not isinstance(exception.get("class"), str) or not exception["class"]:
        raise _invalid(f"{path}.exception.class is missing or not a string.")


def _check_body(body: Mapping[str, Any]) -> str:
    kinds = [kind for kind in BODY_KINDS if kind in body]
    if len(kinds) != 1:
        raise _invalid("data.body must contain exactly one of trace, trace_chain, message, crash_report.")
    kind = kinds[0]
    if kind == "trace":
        _check_trace(body["trace"], "data.body.trace")
    elif kind == "trace_chain":
        chain = body["trace_chain"]
        if not isinstance(chain, list) or not chain:
            raise _invalid("data.body.trace_chain must be a non-empty list.")
        for index, trace in enumerate(chain):
            _check_trace(trace, f"data.body.trace_chain.{index}")
    elif kind == "message":
        message = _require_mapping(body["message"], "data.body.message")
        if not isinstance(message.get("body"), str):
            raise _invalid("data.body.message.body is missing or not a string.")
    else:
        report = _require_mapping(body["crash_report"], "data.body.crash_report")
        if not isinstance(report.get("raw"), str):
            raise _invalid("data.body.crash_report.raw is missing or not a string.")
    return kind


def _optional_str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise _invalid(f"data.{key} must be a string.")
    return value


def _level(data: Mapping[str, Any], kind: str) -> str:
    level = data.get("level")
    if level is None:
        return "info" if kind == "message" else "error"
    if not isinstance(level, str) or level.lower() not in LEVELS:
        raise _invalid(f"data.level must be one of {', '.join(LEVELS)}.")
    return level.lower()


MAX_TIMESTAMP = 253_402_300_799  # 9999-12-31T23:59:59Z


def _timestamp(data: Mapping[str, Any], received_at: float) -> int:
    value = data.get("timestamp")
    if value is None:
        return int(received_at)
    # Beyond year 9999 (or NaN, inf) is no time at all, and would overflow the store's 64-bit integers.
    if isinstance(value, bool) or not isinstance(value, int | float) or not -MAX_TIMESTAMP <= value <= MAX_TIMESTAMP:
        raise _invalid("data.timestamp must be a unix timestamp.")
    return int(value)


def platform_of(payload: Any) -> str | None:
    """``data.platform`` of a not-yet-validated payload (decides which post scope is needed)."""
    data = payload.get("data") if isinstance(payload, Mapping) else None
    platform = data.get("platform") if isinstance(data, Mapping) else None
    return platform if isinstance(platform, str) else None


def parse_item(payload: Any, received_at: float | None = None) -> NewOccurrence:
    """Validate ``payload`` (the decoded JSON body); raises InvalidPayload."""
    received_at = time.time() if received_at is None else received_at
    if not isinstance(payload, Mapping):
        raise _invalid("the payload must be a JSON object.")
    data = dict(_require_mapping(payload.get("data"), "data"))
    environment = data.get("environment")
    if not isinstance(environment, str) or not environment:
        raise _invalid("data.environment is missing and it is required.")
    if len(environment) > MAX_ENVIRONMENT_CHARS:
        raise _invalid(f"data.environment is longer than {MAX_ENVIRONMENT_CHARS} characters.")
    kind = _check_body(_require_mapping(data.get("body"), "data.body"))
    occurrence_uuid = _optional_str(data, "uuid")
    if occurrence_uuid is not None and not 0 < len(occurrence_uuid) <= MAX_UUID_CHARS:
        raise _invalid(f"data.uuid must be 1 to {MAX_UUID_CHARS} characters.")
    if occurrence_uuid is None:
        # Rollbar generates one and returns it; keep it in the stored data so lookups match.
        occurrence_uuid = str(uuidlib.uuid4())
        data["uuid"] = occurrence_uuid
    _optional_str(data, "fingerprint")
    _optional_str(data, "title")
    return NewOccurrence(
        data=data,
        uuid=occurrence_uuid,
        environment=environment,
        level=_level(data, kind),
        timestamp=_timestamp(data, received_at),
        fingerprint=grouping.fingerprint(data),
        title=grouping.title(data),
        framework=_optional_str(data, "framework"),
        platform=_optional_str(data, "platform"),
        language=_optional_str(data, "language"),
    )
