"""Trace summaries (GetTraceSummaries) and the indexed facts filter expressions run against.

Both are computed once per trace whenever one of its documents arrives, and stored with it.

Trace-level meanings, from the API reference and the filter-expression guide:
- ``HasFault``/``HasError`` (``fault``/``error``): the root segment's own flags; a downstream
  error the application handled does not count (``service() { error }`` finds those).
- ``HasThrottle`` (``throttle``): any segment document with ``throttle: true``.
- ``ok``: the root segment has none of the three flags.
- ``IsPartial`` (``partial``): some segment or subsegment is still in progress.
- ``ResponseTime``: root segment end - start. ``Duration``: last end - earliest start.
- ``Http``/``http.*``: the root segment's request and response. ``user``: any segment's user.
- Annotations: from every segment and subsegment; X-Ray indexes the first 50 keys of a trace.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from emulators.xray.assemble import AssembledTrace
from emulators.xray.root_causes import flag_root_causes, response_time_root_causes
from emulators.xray.segments import member, trace_id_epoch
from emulators.xray.trace_graph import Entity, Node, TraceGraph, build_graph, node_key

MAX_INDEXED_ANNOTATIONS = 50


@dataclass(frozen=True)
class TraceRecord:
    """What the store keeps per trace besides its documents."""

    trace_id: str
    id_time: float  # epoch seconds from the trace id (TimeRangeType TraceId)
    start_time: float | None  # earliest start (TimeRangeType Event)
    end_time: float | None  # latest segment end (TimeRangeType Service)
    summary: dict[str, Any]
    facts: dict[str, Any]


def summarize(trace: AssembledTrace) -> TraceRecord:
    graph = build_graph(trace)
    real = [e for e in graph.entities if not e.inferred]
    starts = [e.start for e in real if e.start is not None]
    ends = [e.end for e in real if e.end is not None]
    start = min(starts) if starts else None
    duration = max(ends) - start if ends and start is not None else None
    root = graph.root
    root_facts = _entity_facts(root, graph.node_of(root)) if root else {}
    segment_ends = [e.end for e in real if e.is_segment and e.end is not None]
    annotations = _annotations(real)
    root_causes = {
        "fault": flag_root_causes(graph, "fault"),
        "error": flag_root_causes(graph, "error"),
        "responsetime": response_time_root_causes(graph),
    }
    trace_facts: dict[str, Any] = {
        "ok": bool(root_facts.get("ok")),
        "error": bool(root_facts.get("error")),
        "fault": bool(root_facts.get("fault")),
        "throttle": any(e.flag("throttle") for e in real if e.is_segment),
        "partial": any(e.in_progress for e in graph.entities),
        "inferred": any(n.inferred for n in graph.nodes),
        "responsetime": root.duration if root else None,
        "duration": duration,
        "user": _distinct(e.doc.get("user") for e in real if e.is_segment),
        "availabilityzone": _distinct(_ec2(e, "availability_zone") for e in real if e.is_segment),
        "instance.id": _distinct(_ec2(e, "instance_id") for e in real if e.is_segment),
        "resource.arn": _distinct(e.doc.get("resource_arn") for e in real if e.is_segment),
    }
    for key in ("http.status", "http.url", "http.method", "http.useragent", "http.clientip"):
        trace_facts[key] = root_facts.get(key)
    facts = {
        "trace": trace_facts,
        "annotations": {key: [v for v, _ in values] for key, values in annotations.items()},
        "nodes": [_node_facts(graph, n) for n in graph.nodes],
        "edges": [
            {
                "source": _identity(e.source),
                "destination": _identity(e.destination),
                "entities": [_entity_facts(call, e.destination) for call in e.calls],
            }
            for e in graph.edges
        ],
        "rootcause": root_causes,
    }
    summary = _summary(trace, graph, trace_facts, annotations, root_causes, start)
    return TraceRecord(
        trace_id=trace.trace_id,
        id_time=trace_id_epoch(trace.trace_id),
        start_time=start,
        end_time=max(segment_ends) if segment_ends else None,
        summary=summary,
        facts=facts,
    )


def _summary(
    trace: AssembledTrace,
    graph: TraceGraph,
    facts: dict[str, Any],
    annotations: dict[str, list[tuple[Any, list[dict[str, Any]]]]],
    root_causes: dict[str, list[dict[str, Any]]],
    start: float | None,
) -> dict[str, Any]:
    http = {
        "HttpURL": facts["http.url"],
        "HttpStatus": facts["http.status"],
        "HttpMethod": facts["http.method"],
        "UserAgent": facts["http.useragent"],
        "ClientIp": facts["http.clientip"],
    }
    users: dict[str, list[dict[str, Any]]] = {}
    for entity in graph.entities:
        user = entity.doc.get("user")
        if entity.is_segment and not entity.inferred and isinstance(user, str):
            _add_service(users.setdefault(user, []), node_key(entity.segment).service_id())
    summary: dict[str, Any] = {
        "Id": trace.trace_id,
        "StartTime": start,
        "Duration": facts["duration"],
        "ResponseTime": facts["responsetime"],
        "HasFault": facts["fault"],
        "HasError": facts["error"],
        "HasThrottle": facts["throttle"],
        "IsPartial": facts["partial"],
        "Http": {k: v for k, v in http.items() if v is not None},
        "Annotations": {
            key: [{"AnnotationValue": _annotation_value(value), "ServiceIds": services} for value, services in values]
            for key, values in annotations.items()
        },
        "Users": [{"UserName": u, "ServiceIds": s} for u, s in users.items()],
        "ServiceIds": [n.key.service_id() for n in graph.nodes],
        "ResourceARNs": [{"ARN": a} for a in facts["resource.arn"]],
        "InstanceIds": [{"Id": i} for i in facts["instance.id"]],
        "AvailabilityZones": [{"Name": z} for z in facts["availabilityzone"]],
        "FaultRootCauses": root_causes["fault"],
        "ErrorRootCauses": root_causes["error"],
        "ResponseTimeRootCauses": root_causes["responsetime"],
        "Revision": trace.document_count,
    }
    if graph.root is not None:
        summary["EntryPoint"] = graph.node_of(graph.root).key.service_id()
    return {k: v for k, v in summary.items() if v is not None}


def _node_facts(graph: TraceGraph, node: Node) -> dict[str, Any]:
    out = _identity(node)
    out["entities"] = [_entity_facts(s, node) for s in node.segments]
    return out


def _identity(node: Node) -> dict[str, Any]:
    return {"name": node.key.name, "type": node.key.type, "account": node.key.account}


def _entity_facts(entity: Entity, node: Node) -> dict[str, Any]:
    http = member(entity.doc, "http")
    request = member(http, "request")
    response = member(http, "response")
    status = response.get("status")
    error, fault, throttle = entity.flag("error"), entity.flag("fault"), entity.flag("throttle")
    user = entity.doc.get("user")
    return {
        "ok": not (error or fault or throttle),
        "error": error,
        "fault": fault,
        "throttle": throttle,
        "partial": any(_in_progress(e) for e in _subtree(entity)),
        "responsetime": entity.duration,
        "duration": entity.duration,
        "http.status": status if isinstance(status, int | float) and not isinstance(status, bool) else None,
        "http.url": _str(request.get("url")),
        "http.method": _str(request.get("method")),
        "http.useragent": _str(request.get("user_agent")),
        "http.clientip": _str(request.get("client_ip")),
        "user": _str(user),
        "name": node.key.name,
        "type": node.key.type,
        "root": node.root,
        "inferred": node.inferred,
    }


def _subtree(entity: Entity) -> list[Entity]:
    out = [entity]
    for child in entity.children:
        if child.segment is entity.segment:
            out.extend(_subtree(child))
    return out


def _in_progress(entity: Entity) -> bool:
    return entity.in_progress


def _annotations(entities: list[Entity]) -> dict[str, list[tuple[Any, list[dict[str, Any]]]]]:
    """key -> [(value, service ids)], first 50 keys in document order, values distinct by type."""
    out: dict[str, list[tuple[Any, list[dict[str, Any]]]]] = {}
    for entity in entities:
        annotations = entity.doc.get("annotations")
        if not isinstance(annotations, dict):
            continue
        service = node_key(entity.segment).service_id()
        for key, value in annotations.items():
            if key not in out and len(out) >= MAX_INDEXED_ANNOTATIONS:
                continue
            values = out.setdefault(key, [])
            match = next((v for v in values if type(v[0]) is type(value) and v[0] == value), None)
            if match is None:
                values.append((value, [service]))
            else:
                _add_service(match[1], service)
    return out


def _annotation_value(value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"BooleanValue": value}
    if isinstance(value, int | float):
        return {"NumberValue": float(value)}
    return {"StringValue": str(value)}


def _add_service(services: list[dict[str, Any]], service: dict[str, Any]) -> None:
    if service not in services:
        services.append(service)


def _ec2(entity: Entity, field: str) -> Any:
    return member(member(entity.doc, "aws"), "ec2").get(field)


def _distinct(values: Any) -> list[str]:
    out: list[str] = []
    for value in values:
        if isinstance(value, str) and value and value not in out:
            out.append(value)
    return out


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) else None
