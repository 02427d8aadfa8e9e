"""Fault, error and response-time root causes of a trace (TraceSummary *RootCauses).

X-Ray does not publish its algorithm; this is the documented shape filled by a plain rule:
- fault/error: every flagged entity with no flagged entity below it is a culprit; its root cause
  is the path from the top of the call tree down to it, grouped by service, with the exceptions
  of each entity on the path (``cause.exceptions`` or a ``cause`` exception id). ClientImpacting
  is true when the root segment carries the flag too.
- response time: from the root segment, repeatedly step into the child that took longest;
  ``Coverage`` is the entity's duration over the root's response time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from emulators.xray.trace_graph import Entity, TraceGraph, node_key

MAX_ROOT_CAUSES = 10


def flag_root_causes(graph: TraceGraph, flag: str) -> list[dict[str, Any]]:
    exceptions = _exception_index(graph)
    culprits: list[Entity] = []
    for top in graph.tops():
        _collect_culprits(top, flag, culprits)
    impacting = graph.root is not None and graph.root.flag(flag)
    causes = []
    for culprit in culprits[:MAX_ROOT_CAUSES]:
        services = _group_by_service(
            _path_to(culprit),
            lambda e: {
                "Name": e.name,
                "Exceptions": _exceptions_of(e, exceptions),
                "Remote": e.remote,
            },
        )
        causes.append({"Services": services, "ClientImpacting": impacting})
    return causes


def response_time_root_causes(graph: TraceGraph) -> list[dict[str, Any]]:
    root = graph.root
    if root is None or not root.duration:
        return []
    total = root.duration
    path = [root]
    current = root
    while True:
        timed = [c for c in current.children if c.duration is not None]
        if not timed:
            break
        current = max(timed, key=lambda c: c.duration or 0.0)
        path.append(current)
    services = _group_by_service(
        path,
        lambda e: {
            "Name": e.name,
            "Coverage": round((e.duration or 0.0) / total, 6),
            "Remote": e.remote,
        },
    )
    return [{"Services": services, "ClientImpacting": True}]


def _collect_culprits(entity: Entity, flag: str, out: list[Entity]) -> bool:
    """Depth first; returns whether ``flag`` is set on the entity or anywhere below it."""
    below = False
    for child in entity.children:
        below = _collect_culprits(child, flag, out) or below
    if entity.flag(flag) and not below:
        out.append(entity)
    return below or entity.flag(flag)


def _path_to(entity: Entity) -> list[Entity]:
    path = []
    current: Entity | None = entity
    while current is not None:
        path.append(current)
        current = current.parent
    return path[::-1]


def _group_by_service(path: list[Entity], describe: Callable[[Entity], dict[str, Any]]) -> list[dict[str, Any]]:
    services: list[dict[str, Any]] = []
    current_segment: dict[str, Any] | None = None
    for entity in path:
        if entity.segment is not current_segment:
            current_segment = entity.segment
            service = node_key(entity.segment).service_id()
            service["Inferred"] = entity.inferred
            service["EntityPath"] = []
            services.append(service)
        services[-1]["EntityPath"].append(describe(entity))
    return services


def _exception_index(graph: TraceGraph) -> dict[str, dict[str, Any]]:
    index: dict[str, dict[str, Any]] = {}
    for entity in graph.entities:
        cause = entity.doc.get("cause")
        if isinstance(cause, dict):
            for exc in cause.get("exceptions") or []:
                if isinstance(exc, dict) and isinstance(exc.get("id"), str):
                    index[exc["id"]] = exc
    return index


def _exceptions_of(entity: Entity, index: dict[str, dict[str, Any]]) -> list[dict[str, str]]:
    cause = entity.doc.get("cause")
    if isinstance(cause, str):
        found = [index[cause]] if cause in index else []
    elif isinstance(cause, dict):
        found = [e for e in cause.get("exceptions") or [] if isinstance(e, dict)]
    else:
        found = []
    out = []
    for exc in found:
        item = {}
        if exc.get("type") is not None:
            item["Name"] = str(exc["type"])
        if exc.get("message") is not None:
            item["Message"] = str(exc["message"])
        out.append(item)
    return out
