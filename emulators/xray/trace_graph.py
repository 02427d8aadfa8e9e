"""The service graph of one assembled trace: entities, service nodes and edges.

- An *entity* is a segment or a subsegment. Children of an entity are its subsegments plus the
  segments whose ``parent_id`` points at it (a downstream service called from it).
- A *node* is a service: segments grouped by (name, origin, account id). The inferred segments
  made by :mod:`emulators.xray.assemble` are nodes too, flagged ``inferred``.
- An *edge* joins the node of a calling entity to the node of the segment it called.
- The *root* is the earliest segment whose parent is not in the trace.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from emulators.xray.assemble import AssembledTrace
from emulators.xray.segments import member


@dataclass(eq=False)
class Entity:
    doc: dict[str, Any]
    segment: dict[str, Any]  # the segment document this entity belongs to (itself for a segment)
    is_segment: bool
    parent: Entity | None = None
    children: list[Entity] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.doc.get("name", ""))

    @property
    def start(self) -> float | None:
        return _num(self.doc.get("start_time"))

    @property
    def end(self) -> float | None:
        return None if self.in_progress else _num(self.doc.get("end_time"))

    @property
    def in_progress(self) -> bool:
        return self.doc.get("end_time") is None

    @property
    def duration(self) -> float | None:
        start, end = self.start, self.end
        return None if start is None or end is None else max(0.0, end - start)

    @property
    def inferred(self) -> bool:
        return self.segment.get("inferred") is True

    def flag(self, name: str) -> bool:
        return self.doc.get(name) is True

    @property
    def remote(self) -> bool:
        return self.inferred or self.doc.get("namespace") in ("aws", "remote")


@dataclass(frozen=True)
class NodeKey:
    name: str
    type: str | None
    account: str | None

    def service_id(self) -> dict[str, Any]:
        out: dict[str, Any] = {"Name": self.name, "Names": [self.name]}
        if self.account:
            out["AccountId"] = self.account
        if self.type:
            out["Type"] = self.type
        return out


@dataclass
class Node:
    key: NodeKey
    inferred: bool
    root: bool = False
    segments: list[Entity] = field(default_factory=list)


@dataclass
class Edge:
    source: Node
    destination: Node
    calls: list[Entity] = field(default_factory=list)  # the downstream segments on this edge


@dataclass
class TraceGraph:
    entities: list[Entity]  # every entity, segments first in start order
    root: Entity | None
    nodes: list[Node]
    edges: list[Edge]
    orphans: list[Entity]  # independent subsegments without their parent

    def node_of(self, entity: Entity) -> Node:
        key = node_key(entity.segment)
        return next(n for n in self.nodes if n.key == key)

    def tops(self) -> list[Entity]:
        """Entities with no parent in the trace: where the call tree starts."""
        return [e for e in self.entities if e.parent is None]


def node_key(segment: dict[str, Any]) -> NodeKey:
    aws = member(segment, "aws")
    origin = segment.get("origin")
    account = aws.get("account_id")
    return NodeKey(
        name=str(segment.get("name", "")),
        type=origin if isinstance(origin, str) and origin else None,
        account=str(account) if account not in (None, "") else None,
    )


def build_graph(trace: AssembledTrace) -> TraceGraph:
    entities: list[Entity] = []
    by_id: dict[str, Entity] = {}
    segment_entities: list[Entity] = []
    for segment in trace.segments:
        top = _add_tree(segment, segment, True, None, entities, by_id)
        segment_entities.append(top)
    orphans = [_add_tree(o, o, False, None, entities, by_id) for o in trace.orphans]
    for seg in segment_entities:
        parent = by_id.get(str(seg.doc.get("parent_id") or ""))
        if parent is not None and parent is not seg and not _is_ancestor(seg, parent):
            seg.parent = parent
            parent.children.append(seg)
    candidates = [s for s in segment_entities if s.parent is None and not s.inferred]
    root = min(candidates, key=lambda s: (s.start or 0.0, s.doc["id"])) if candidates else None

    nodes: dict[NodeKey, Node] = {}
    ordered = ([root] if root else []) + [s for s in segment_entities if s is not root]
    for seg in ordered:
        key = node_key(seg.doc)
        node = nodes.get(key)
        if node is None:
            node = nodes[key] = Node(key=key, inferred=seg.inferred)
        node.segments.append(seg)
        if seg is root:
            node.root = True
    edges: dict[tuple[NodeKey, NodeKey], Edge] = {}
    for seg in segment_entities:
        if seg.parent is None:
            continue
        src, dst = nodes[node_key(seg.parent.segment)], nodes[node_key(seg.doc)]
        edge = edges.get((src.key, dst.key))
        if edge is None:
            edge = edges[(src.key, dst.key)] = Edge(source=src, destination=dst)
        edge.calls.append(seg)
    return TraceGraph(
        entities=entities, root=root, nodes=list(nodes.values()), edges=list(edges.values()), orphans=orphans
    )


def _add_tree(
    doc: dict[str, Any],
    segment: dict[str, Any],
    is_segment: bool,
    parent: Entity | None,
    entities: list[Entity],
    by_id: dict[str, Entity],
) -> Entity:
    entity = Entity(doc=doc, segment=segment, is_segment=is_segment, parent=parent)
    entities.append(entity)
    by_id.setdefault(str(doc.get("id")), entity)
    for sub in doc.get("subsegments", []):
        entity.children.append(_add_tree(sub, segment, False, entity, entities, by_id))
    return entity


def _is_ancestor(candidate: Entity, entity: Entity) -> bool:
    """True when ``candidate`` is already above ``entity`` (guards against parent_id cycles)."""
    current: Entity | None = entity
    while current is not None:
        if current is candidate:
            return True
        current = current.parent
    return False


def _num(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None
