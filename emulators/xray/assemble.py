"""Turn the stored documents of one trace into the segments BatchGetTraces returns.

What the real service does, and so do we:
- an independently sent subsegment (``type: subsegment`` + ``parent_id``) is merged into its
  parent segment or subsegment, so the trace reads as one tree per segment;
- a later complete document replaces an in-progress one with the same id (the store keeps one
  row per id; here a subsegment resent with the same id replaces the embedded copy);
- a subsegment in the ``aws`` or ``remote`` namespace that no downstream segment points at gets
  an *inferred segment* (``inferred: true``) standing for the service it called.

An independent subsegment whose parent never arrived is returned as its own entry rather than
dropped: everything accepted stays retrievable.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from emulators.xray.segments import SegmentDocument, member

_EMBEDDED_DROP = ("type", "trace_id", "parent_id")
_INFERRED_COPY = ("http", "aws", "error", "fault", "throttle", "cause")


@dataclass(frozen=True)
class AssembledTrace:
    trace_id: str
    segments: list[dict[str, Any]]  # merged segments, inferred ones included, by start time
    orphans: list[dict[str, Any]]  # independent subsegments whose parent is not in the trace
    size_bytes: int
    document_count: int

    def documents(self) -> list[dict[str, Any]]:
        return self.segments + self.orphans


def assemble(trace_id: str, docs: list[SegmentDocument]) -> AssembledTrace:
    """Merge ``docs`` (freshly decoded from the store: their bodies are taken over and modified)."""
    segments = [d.body for d in docs if d.kind == "segment"]
    index: dict[str, dict[str, Any]] = {}
    for segment in segments:
        _register(index, segment)
    pending = sorted((d for d in docs if d.kind == "subsegment"), key=lambda d: (_start(d.body), d.id))
    touched: dict[int, dict[str, Any]] = {}
    while pending:
        unplaced = []
        for doc in pending:
            parent = _attach(index, doc)
            if parent is None:
                unplaced.append(doc)
            else:
                touched[id(parent)] = parent
        if len(unplaced) == len(pending):
            break
        pending = unplaced
    for parent in touched.values():  # streamed children arrive out of order: show them chronologically
        parent.get("subsegments", []).sort(key=_start)
    orphans = [d.body for d in pending]
    segments.extend(_inferred_segments(trace_id, segments))
    segments.sort(key=lambda s: (_start(s), s["id"]))
    return AssembledTrace(
        trace_id=trace_id,
        segments=segments,
        orphans=orphans,
        size_bytes=sum(d.raw_size for d in docs),
        document_count=len(docs),
    )


def _attach(index: dict[str, dict[str, Any]], doc: SegmentDocument) -> dict[str, Any] | None:
    """Merge ``doc`` under its parent; returns the parent, or None when it is not (yet) in the trace."""
    parent = index.get(doc.parent_id or "")
    if parent is None:
        return None
    node = {k: v for k, v in doc.body.items() if k not in _EMBEDDED_DROP}
    existing = index.get(node["id"])
    if existing is not None and existing is not parent:
        # Same id seen before (embedded, or an earlier fragment): the new document wins, but
        # children streamed separately and absent from it are kept.
        new_children = node.get("subsegments", [])
        new_ids = {c.get("id") for c in new_children}
        kept = [c for c in existing.get("subsegments", []) if c.get("id") not in new_ids]
        existing.clear()
        existing.update(node)
        if new_children or kept:
            existing["subsegments"] = new_children + kept
        _register(index, existing)
    else:
        parent.setdefault("subsegments", []).append(node)
        _register(index, node)
    return parent


def _register(index: dict[str, dict[str, Any]], entity: dict[str, Any]) -> None:
    index[entity["id"]] = entity
    for sub in entity.get("subsegments", []):
        _register(index, sub)


def walk(entity: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The entity and all its nested subsegments, depth first."""
    yield entity
    for sub in entity.get("subsegments", []):
        yield from walk(sub)


def _inferred_segments(trace_id: str, segments: list[dict[str, Any]]) -> list[dict[str, Any]]:
    called = {s.get("parent_id") for s in segments if s.get("parent_id")}
    inferred = []
    for segment in segments:
        for sub in walk(segment):
            if sub is segment or sub.get("namespace") not in ("aws", "remote"):
                continue
            if sub["id"] in called or sub.get("end_time") is None:
                continue
            inferred.append(_inferred_from(trace_id, sub))
    return inferred


def _inferred_from(trace_id: str, sub: dict[str, Any]) -> dict[str, Any]:
    # A stable id, so every BatchGetTraces call returns the same inferred segment.
    digest = hashlib.sha1(f"{trace_id}/{sub['id']}".encode()).hexdigest()[:16]
    segment: dict[str, Any] = {
        "id": digest,
        "name": sub["name"],
        "start_time": sub["start_time"],
        "end_time": sub["end_time"],
        "parent_id": sub["id"],
        "inferred": True,
        "trace_id": trace_id,
    }
    for key in _INFERRED_COPY:
        if key in sub and sub[key] not in (None, False):
            segment[key] = sub[key]
    if sub.get("namespace") == "aws":
        segment["origin"] = _aws_origin(sub)
    return segment


def _aws_origin(sub: dict[str, Any]) -> str:
    aws = member(sub, "aws")
    name = str(sub["name"]).replace(" ", "")
    if name == "DynamoDB" and aws.get("table_name"):
        return "AWS::DynamoDB::Table"
    return f"AWS::{name}"


def _start(entity: dict[str, Any]) -> float:
    value = entity.get("start_time")
    return float(value) if isinstance(value, int | float) else 0.0
