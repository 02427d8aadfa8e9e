"""Validate X-Ray segment documents the way PutTraceSegments does.

Rules come from the segment-document schema in the X-Ray developer guide: required fields,
16-hex ids, ``1-{8 hex}-{24 hex}`` trace ids, segment names of at most 200 characters from the
documented character set, ``end_time`` or ``in_progress``, annotations with ``[A-Za-z0-9_]``
keys and string/number/boolean values, 64 KB per document. A rejected document is reported
back in ``UnprocessedTraceSegments`` with an ``ErrorCode`` and a message in the service's
"Invalid segment. ErrorCode: ..." form (plus the detail, which the real service omits).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from emulators._json import strict_loads

MAX_DOCUMENT_BYTES = 64 * 1024
MAX_SEGMENT_NAME = 200

_HEX16 = re.compile(r"[0-9a-fA-F]{16}")
TRACE_ID = re.compile(r"1-([0-9a-fA-F]{8})-[0-9a-fA-F]{24}")
_ANNOTATION_KEY = re.compile(r"[A-Za-z0-9_]+")
# Documented: Unicode letters, numbers, whitespace and _ . : / % & # = + \ - @
_SEGMENT_NAME = re.compile(r"[\w\s.:/%&#=+\\\-@]+")
_FLAGS = ("error", "fault", "throttle")


@dataclass(frozen=True)
class SegmentDocument:
    """An accepted document: a segment or an independently sent subsegment."""

    trace_id: str
    id: str
    kind: str  # "segment" | "subsegment"
    parent_id: str | None
    in_progress: bool
    body: dict[str, Any]
    raw_size: int


@dataclass(frozen=True)
class Rejection:
    """Why a document was refused; ``id`` is the document's id when it could be read."""

    id: str | None
    error_code: str
    detail: str

    @property
    def message(self) -> str:
        return f"Invalid segment. ErrorCode: {self.error_code}. {self.detail}"

    def to_api(self) -> dict[str, str]:
        out = {"ErrorCode": self.error_code, "Message": self.message}
        if self.id:
            out["Id"] = self.id
        return out


class _Invalid(Exception):
    def __init__(self, code: str, detail: str) -> None:
        super().__init__(detail)
        self.code = code
        self.detail = detail


def parse_document(raw: str) -> SegmentDocument | Rejection:
    """Decode and validate one ``TraceSegmentDocuments`` entry."""
    size = len(raw.encode("utf-8"))
    if size > MAX_DOCUMENT_BYTES:
        return Rejection(
            _peek_id(raw), "DocumentTooLarge", f"document is {size} bytes; the limit is {MAX_DOCUMENT_BYTES}"
        )
    try:
        body = strict_loads(raw)
    except (ValueError, RecursionError) as exc:
        return Rejection(_peek_id(raw), "MalformedJson", f"document is not valid JSON: {exc}")
    if not isinstance(body, dict):
        return Rejection(None, "InvalidDocument", "a segment document must be a JSON object")
    doc_id = body.get("id") if isinstance(body.get("id"), str) else None
    try:
        return _validate_top(body, size)
    except _Invalid as exc:
        return Rejection(doc_id, exc.code, exc.detail)


def _validate_top(body: dict[str, Any], size: int) -> SegmentDocument:
    doc_type = body.get("type")
    if doc_type is not None and doc_type != "subsegment":
        raise _Invalid("InvalidType", f"type must be 'subsegment' when present, not {doc_type!r}")
    is_sub = doc_type == "subsegment"
    _check_id(body, "id", "Id")
    trace_id = body.get("trace_id")
    if trace_id is None:
        raise _Invalid("MissingTraceId", "trace_id is required")
    if not isinstance(trace_id, str) or not TRACE_ID.fullmatch(trace_id):
        raise _Invalid("InvalidTraceId", f"trace_id {trace_id!r} is not in the format 1-{{8 hex}}-{{24 hex}}")
    parent_id = body.get("parent_id")
    if parent_id is None and is_sub:
        raise _Invalid("MissingParentId", "an independent subsegment needs parent_id")
    if parent_id is not None:
        _check_id(body, "parent_id", "ParentId")
    _validate_entity(body, is_segment=not is_sub, path="")
    return SegmentDocument(
        trace_id=trace_id,
        id=body["id"],
        kind="subsegment" if is_sub else "segment",
        parent_id=parent_id,
        in_progress=body.get("end_time") is None,
        body=body,
        raw_size=size,
    )


def _validate_entity(entity: dict[str, Any], is_segment: bool, path: str) -> None:
    where = f" (in {path})" if path else ""
    _check_id(entity, "id", "Id", where)
    name = entity.get("name")
    if name is None:
        raise _Invalid("MissingName", f"name is required{where}")
    if not isinstance(name, str) or not name:
        raise _Invalid("InvalidName", f"name must be a non-empty string{where}")
    if is_segment:
        if len(name) > MAX_SEGMENT_NAME:
            raise _Invalid("InvalidName", f"segment name has {len(name)} characters; the limit is {MAX_SEGMENT_NAME}")
        if not _SEGMENT_NAME.fullmatch(name):
            raise _Invalid("InvalidName", f"segment name {name!r} has characters outside the documented set")
    start = entity.get("start_time")
    if start is None:
        raise _Invalid("MissingStartTime", f"start_time is required{where}")
    if not _is_number(start):
        raise _Invalid("InvalidStartTime", f"start_time must be a number of epoch seconds{where}")
    end = entity.get("end_time")
    in_progress = entity.get("in_progress")
    if in_progress is not None and not isinstance(in_progress, bool):
        raise _Invalid("InvalidInProgress", f"in_progress must be a boolean{where}")
    if end is None and in_progress is not True:
        raise _Invalid("MissingEndTime", f"end_time or in_progress: true is required{where}")
    if end is not None and not _is_number(end):
        raise _Invalid("InvalidEndTime", f"end_time must be a number of epoch seconds{where}")
    for flag in _FLAGS:
        if flag in entity and not isinstance(entity[flag], bool):
            raise _Invalid("InvalidFlag", f"{flag} must be a boolean{where}")
    _validate_annotations(entity.get("annotations"), where)
    subsegments = entity.get("subsegments")
    if subsegments is None:
        return
    if not isinstance(subsegments, list):
        raise _Invalid("InvalidSubsegments", f"subsegments must be an array{where}")
    for index, sub in enumerate(subsegments):
        sub_path = f"{path + '.' if path else ''}subsegments[{index}]"
        if not isinstance(sub, dict):
            raise _Invalid("InvalidSubsegments", f"{sub_path} must be an object")
        _validate_entity(sub, is_segment=False, path=sub_path)


def _validate_annotations(annotations: Any, where: str) -> None:
    if annotations is None:
        return
    if not isinstance(annotations, dict):
        raise _Invalid("InvalidAnnotations", f"annotations must be an object{where}")
    for key, value in annotations.items():
        if not _ANNOTATION_KEY.fullmatch(key):
            raise _Invalid("InvalidAnnotations", f"annotation key {key!r} may only hold A-Z, a-z, 0-9 and _{where}")
        if not (isinstance(value, str | bool) or _is_number(value)):
            raise _Invalid(
                "InvalidAnnotations",
                f"annotation {key!r} must be a string, number or boolean, not {type(value).__name__}{where}",
            )


def _check_id(entity: dict[str, Any], field: str, code: str, where: str = "") -> None:
    value = entity.get(field)
    if value is None:
        raise _Invalid(f"Missing{code}", f"{field} is required{where}")
    if not isinstance(value, str) or not _HEX16.fullmatch(value):
        raise _Invalid(f"Invalid{code}", f"{field} {value!r} must be 16 hexadecimal digits{where}")


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _peek_id(raw: str) -> str | None:
    """The id of a document we cannot parse, when it is plainly visible (for the error entry)."""
    match = re.search(r'"id"\s*:\s*"([0-9a-fA-F]{16})"', raw[:4096])
    return match.group(1) if match else None


def member(entity: Any, key: str) -> dict[str, Any]:
    """``entity[key]`` when it is an object, else an empty one (documents are free-form beyond the schema)."""
    value = entity.get(key) if isinstance(entity, dict) else None
    return value if isinstance(value, dict) else {}


def trace_id_epoch(trace_id: str) -> float:
    """The request time encoded in an X-Ray trace id (not validated by the service, only parsed)."""
    match = TRACE_ID.fullmatch(trace_id)
    return float(int(match.group(1), 16)) if match else 0.0
