"""AWS X-Ray: read the run's traces (GetTraceSummaries + BatchGetTraces) and check them against the ledger.

X-Ray samples at random (a per-second reservoir plus a fixed rate), so which requests appear is
not decided per request: ``expected`` and ``missing`` are None. What is decided: every trace found
belongs to a request we sent, at least one was found, and each found trace is complete and right
(segment fields, fault/error flags, annotations, the subsegment tree). When the verifier is given the
sampling configuration (``sampling``), the statistical checks of :mod:`verifiers.sampling.xray_check`
test that the number sampled matches the rule.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from botocore.exceptions import BotoCoreError, ClientError

from verifiers.base import (
    CheckSpec,
    Findings,
    Observation,
    ReadError,
    RunWindow,
    lookup_path,
    run_checks,
    verdict,
)
from verifiers.connections import Connections, aws_read_error
from verifiers.expectations import MISSING, Condition, Expectations, SubsegmentExpectation, load_expectations
from verifiers.matching import SentIndex, tally
from verifiers.model import Backend, BackendReport, CheckResult, SentRequest
from verifiers.sampling.config import SamplingConfig
from verifiers.sampling.xray_check import read_served_rules, sampling_checks
from verifiers.sampling.xray_rules import RulesError, XRayRuleSet, parse_rules

if TYPE_CHECKING:
    from mypy_boto3_xray import XRayClient

BACKEND: Backend = "xray"
BATCH_SIZE = 5  # BatchGetTraces takes 1-5 trace ids
WINDOW_PAD_S = 60
TIME_SLACK_S = 0.005  # clock rounding between a subsegment and its parent
SAMPLING_NOTE = (
    "X-Ray samples at random (reservoir + fixed rate), so which requests appear is not decided "
    "per request; the sampling checks test the count against the rule"
)


@dataclass
class Node:
    """A segment or subsegment in a trace's tree."""

    doc: dict[str, Any]
    parent: Node | None = None
    children: list[Node] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.doc.get("name", "(unnamed)"))

    @property
    def id(self) -> str:
        return str(self.doc.get("id", ""))

    @property
    def is_segment(self) -> bool:
        return self.parent is None and self.doc.get("type") != "subsegment"

    def walk(self) -> Iterator[Node]:
        yield self
        for child in self.children:
            yield from child.walk()

    def annotation(self, key: str) -> Any:
        return (self.doc.get("annotations") or {}).get(key, MISSING)

    def metadata(self, path: str) -> Any:
        return lookup_path(self.doc.get("metadata") or {}, path)


@dataclass
class XRayTrace:
    id: str
    segment_ids: list[str]  # as BatchGetTraces listed them (a repeat is a duplicate)
    documents: list[dict[str, Any]]

    def tree(self) -> tuple[list[Node], list[Node]]:
        """(roots, orphans): segments with their embedded subsegments, independent subsegments attached by
        parent_id; an independent subsegment whose parent is not in the trace is an orphan."""
        roots: list[Node] = []
        loose: list[Node] = []
        for doc in self.documents:
            node = _embed(Node(doc))
            (loose if doc.get("type") == "subsegment" else roots).append(node)
        orphans = []
        for node in loose:
            parent = next((n for root in roots for n in root.walk() if n.id == node.doc.get("parent_id")), None)
            if parent is None:
                orphans.append(node)
            else:
                node.parent = parent
                parent.children.append(node)
        return roots, orphans


def _fingerprint(summary: dict[str, Any]) -> dict[str, Any]:
    # MatchedEventTime says when this query matched, not what the trace holds. Compared as a dict (a deep
    # comparison), not serialised: every summary of every poll is fingerprinted.
    return {k: v for k, v in summary.items() if k != "MatchedEventTime"}


def _complete(trace: XRayTrace) -> bool:
    roots, orphans = trace.tree()
    return bool(roots) and not orphans and all(_closed(n) for root in roots for n in root.walk())


def _embed(node: Node) -> Node:
    for sub in node.doc.get("subsegments") or []:
        if isinstance(sub, dict):
            node.children.append(_embed(Node(sub, parent=node)))
    return node


@dataclass
class XRayObservation(Observation):
    summaries: dict[str, dict[str, Any]] = field(default_factory=dict)  # trace id -> summary
    traces: dict[str, XRayTrace] = field(default_factory=dict)
    served_rules: XRayRuleSet | None = None  # GetSamplingRules, read when sampling is checked
    served_rules_error: str = ""
    traces_reused: int = 0  # traces taken from an earlier poll (unchanged summary, complete): not retrieved again


class XRayVerifier:
    backend: Backend = BACKEND
    sampling: SamplingConfig | None = None  # set by sampling.config.attach: then sampling is checked too

    def __init__(
        self, connections: Connections, expectations: Expectations | None = None, *, client: XRayClient | None = None
    ) -> None:
        self.expectations = expectations or load_expectations()
        self._connections = connections
        self._client = client  # built from the connections on the first poll unless given (tests: a Stubber)
        # trace id -> (its summary when fetched, the trace): BatchGetTraces is metered per trace on every poll
        self._fetched: dict[str, tuple[dict[str, Any], XRayTrace]] = {}

    def __repr__(self) -> str:
        return f"XRayVerifier(endpoint={self._connections.xray_endpoint_url or 'AWS'!r})"

    # ---- reading ----

    def poll(self, window: RunWindow) -> XRayObservation:
        obs = XRayObservation(BACKEND, window)
        try:
            if self._client is None:
                self._client = self._connections.xray_client()
            self._read(self._client, obs)
            if self.sampling is not None:
                self._read_sampling_rules(self._client, obs)
        except (ClientError, BotoCoreError) as exc:
            raise aws_read_error(BACKEND, exc, "AWS_ENDPOINT_URL_XRAY") from exc
        obs.finished_at = time.time()
        return obs

    def _read(self, client: XRayClient, obs: XRayObservation) -> None:
        window = obs.window
        request: dict[str, Any] = {
            "StartTime": datetime.fromtimestamp(window.start - WINDOW_PAD_S, UTC),
            "EndTime": datetime.fromtimestamp(window.end + WINDOW_PAD_S, UTC),
            "TimeRangeType": "TraceId",  # the generator put the send time into every trace id
            "Sampling": False,
            "FilterExpression": f'service("{window.service_name}")',
        }
        seen_tokens: set[str] = set()
        while True:
            obs.called("GetTraceSummaries")
            page = client.get_trace_summaries(**request)
            obs.cost_units["traces_scanned"] += int(page.get("TracesProcessedCount") or 0)
            for summary in page.get("TraceSummaries", []):
                if summary.get("Id"):
                    obs.summaries[summary["Id"]] = dict(summary)
            token = page.get("NextToken")
            if not token or token in seen_tokens:
                break
            seen_tokens.add(token)
            request["NextToken"] = token
        ids = sorted(obs.summaries)
        for trace_id in ids:
            if (known := self._reusable(trace_id, obs.summaries[trace_id])) is not None:
                obs.traces[trace_id] = known
        obs.traces_reused = len(obs.traces)
        stale = [trace_id for trace_id in ids if trace_id not in obs.traces]
        unprocessed = self._fetch(client, obs, stale)
        if unprocessed:  # once more: BatchGetTraces may skip ids under load
            unprocessed = self._fetch(client, obs, unprocessed)
        if unprocessed:
            raise ReadError(
                BACKEND,
                "error",
                f"BatchGetTraces left {len(unprocessed)} traces unprocessed twice, e.g. {unprocessed[0]}",
            )
        for trace_id in stale:
            if trace_id in obs.traces:
                self._fetched[trace_id] = (_fingerprint(obs.summaries[trace_id]), obs.traces[trace_id])

    def _reusable(self, trace_id: str, summary: dict[str, Any]) -> XRayTrace | None:
        """The trace as an earlier poll fetched it, when nothing can have changed since: the same summary
        (Revision, Duration, IsPartial, ...), and every segment and subsegment closed with its parent present.
        A trace still in progress, or with a subsegment whose parent has not arrived, is always fetched again."""
        cached = self._fetched.get(trace_id)
        if cached is None or cached[0] != _fingerprint(summary) or summary.get("IsPartial"):
            return None
        return cached[1] if _complete(cached[1]) else None

    def _read_sampling_rules(self, client: XRayClient, obs: XRayObservation) -> None:
        """What the service serves: the expectation when none was configured, else shown beside it."""
        try:
            obs.called("GetSamplingRules")
            obs.served_rules = parse_rules(read_served_rules(client), "GetSamplingRules")
        except (ClientError, BotoCoreError, RulesError) as exc:
            obs.served_rules_error = str(exc)

    def _fetch(self, client: XRayClient, obs: XRayObservation, ids: Sequence[str]) -> list[str]:
        unprocessed: list[str] = []
        for start in range(0, len(ids), BATCH_SIZE):
            batch = list(ids[start : start + BATCH_SIZE])
            token: str | None = None
            while True:
                obs.called("BatchGetTraces")
                page = client.batch_get_traces(TraceIds=batch, **({"NextToken": token} if token else {}))
                for trace in page.get("Traces", []):
                    self._add_trace(obs, trace)
                unprocessed += page.get("UnprocessedTraceIds", [])
                token = page.get("NextToken")
                if not token:
                    break
        return unprocessed

    @staticmethod
    def _add_trace(obs: XRayObservation, trace: Any) -> None:
        trace_id = str(trace.get("Id", ""))
        known = obs.traces.get(trace_id)
        if known is None:
            obs.cost_units["traces_retrieved"] += 1
            known = obs.traces[trace_id] = XRayTrace(trace_id, [], [])
        for segment in trace.get("Segments", []):
            known.segment_ids.append(str(segment.get("Id", "")))
            try:
                doc = json.loads(segment.get("Document") or "{}")
            except json.JSONDecodeError:
                doc = {"id": segment.get("Id"), "name": "(unparseable document)"}
            known.documents.append(doc if isinstance(doc, dict) else {})

    def seen_request_ids(self, obs: XRayObservation) -> set[str]:
        key = self.expectations.xray.request_id_annotation
        seen = set()
        for trace in obs.traces.values():
            for doc in trace.documents:
                value = (doc.get("annotations") or {}).get(key)
                if isinstance(value, str):
                    seen.add(value)
        return seen

    def item_count(self, obs: XRayObservation) -> int:
        return len(obs.summaries) + sum(len(t.documents) for t in obs.traces.values())

    # ---- checking ----

    def verify(self, sent: Sequence[SentRequest], obs: XRayObservation, expectations: Expectations) -> BackendReport:
        ctx = _Context(SentIndex(sent), expectations, obs)
        checks = run_checks(BACKEND, check_specs(expectations, obs.window.service_name), ctx)
        found_ids = set(obs.summaries) | set(obs.traces)
        result = tally(found_ids, ours=lambda tid: tid in ctx.idx.by_xray_id, expected=None)
        report = result.report(BACKEND, checks, note=SAMPLING_NOTE)
        report.extra += len(_unexpected(ctx))  # in our traces, but not our segment or a subsegment the route lists
        if self.sampling is not None:
            sampling, report.sampling = sampling_checks(
                sent,
                found_ids,
                expected=self.sampling.xray_ruleset(),
                served=obs.served_rules,
                served_error=obs.served_rules_error,
                service=obs.window.service_name,
                processes=self.sampling.app_processes,
                alpha=self.sampling.alpha,
                decided_at=_segment_starts(obs),
            )
            report.checks += sampling
        return report


def _segment_starts(obs: XRayObservation) -> dict[str, float]:
    """Trace id -> start_time of the service's segment: when the SDK made its sampling decision."""
    starts = {}
    for trace_id, trace in obs.traces.items():
        times = [
            d["start_time"]
            for d in trace.documents
            if d.get("type") != "subsegment"
            and d.get("name") == obs.window.service_name
            and isinstance(d.get("start_time"), int | float)
        ]
        if times:
            starts[trace_id] = float(min(times))
    return starts


# ---- the checks ----------------------------------------------------------------------------


@dataclass
class _Sampled:
    """A found trace of a request we sent and got an answer to."""

    request: SentRequest
    trace: XRayTrace
    roots: list[Node]
    orphans: list[Node]


@dataclass
class _Context:
    idx: SentIndex
    exp: Expectations
    obs: XRayObservation
    sampled: list[_Sampled] = field(init=False)
    unexpected_found: list[tuple[SentRequest, Node]] | None = field(init=False, default=None)  # _unexpected()

    def __post_init__(self) -> None:
        self.sampled = []
        for trace_id, trace in sorted(self.obs.traces.items()):
            r = self.idx.by_xray_id.get(trace_id)
            if r is not None and r.status is not None:
                roots, orphans = trace.tree()
                self.sampled.append(_Sampled(r, trace, roots, orphans))

    def segments(self, s: _Sampled) -> list[Node]:
        return [n for n in s.roots if n.name == self.obs.window.service_name]

    def segment(self, s: _Sampled) -> Node | None:
        segments = self.segments(s)
        return segments[0] if len(segments) == 1 else None


NO_SAMPLED = "no trace of an answered request was found"


def _describe(annotations: Sequence[Condition], metadata: Sequence[Condition]) -> str:
    parts = [f"annotation {c.describe()}" for c in annotations] + [f"metadata {c.describe()}" for c in metadata]
    return ", ".join(parts)


def check_specs(exp: Expectations, service: str | None = None) -> list[CheckSpec[_Context]]:
    """The checks, named for ``service`` (default: the expectations' service name)."""
    xr = exp.xray
    service = service or exp.service.name
    specs: list[CheckSpec[_Context]] = [
        CheckSpec("X-Ray holds at least one trace when requests were sent", _some_found),
        CheckSpec("every trace found belongs to a request we sent", _found_subset),
        CheckSpec("no duplicate segments in a trace", _duplicate_segments),
        CheckSpec(
            f"each sampled trace has one '{service}' segment with the request's method, URL and status",
            _segment_http,
            NO_SAMPLED,
        ),
        CheckSpec(
            f"segments have fault=true exactly on {xr.fault_statuses.describe()} and error=true exactly on "
            f"{xr.error_statuses.describe()}",
            _flags,
            NO_SAMPLED,
        ),
    ]
    if xr.segment_annotations or xr.segment_metadata:
        specs.append(
            CheckSpec(
                f"every segment has {_describe(xr.segment_annotations, xr.segment_metadata)}",
                _segment_fields,
                NO_SAMPLED,
            )
        )
    for route in exp.routes:
        for sub in route.subsegments:
            parent = "the segment" if sub.parent == "segment" else f"subsegment '{sub.parent}'"
            when = "" if not sub.statuses.patterns else f" ({sub.statuses.describe()})"
            empty = f"no sampled trace of route '{route.name}' with {sub.statuses.describe()}"
            prefix = f"route '{route.name}':"
            specs.append(
                CheckSpec(
                    f"{prefix} exactly one subsegment '{sub.name}' per sampled request{when}, under {parent}",
                    _sub_placement(route.name, sub),
                    empty,
                )
            )
            if sub.annotations or sub.metadata:
                fields = _describe(sub.annotations, sub.metadata)
                specs.append(
                    CheckSpec(
                        f"{prefix} {fields} are on subsegment '{sub.name}'",
                        _sub_fields(route.name, sub),
                        f"no sampled trace of route '{route.name}' had exactly one '{sub.name}' subsegment",
                    )
                )
    specs.append(
        CheckSpec(
            "every segment is closed, every subsegment closed once inside its parent's time span",
            _closed_once,
            NO_SAMPLED,
        )
    )
    specs.append(
        CheckSpec(
            f"no unexpected segments or subsegments: every segment of a sampled trace is the '{service}' "
            "segment and every subsegment one its route lists",
            _unexpected_nodes,
        )
    )
    return specs


def _some_found(c: _Context) -> CheckResult:
    name = "X-Ray holds at least one trace when requests were sent"
    answered = len(c.idx.answered)
    ours = sum(1 for tid in set(c.obs.summaries) | set(c.obs.traces) if tid in c.idx.by_xray_id)
    if answered == 0:
        return CheckResult(BACKEND, name, "unverifiable", "nothing to check: no answered request in the sent-ledger")
    if ours == 0:
        return CheckResult(
            BACKEND,
            name,
            "fail",
            f"0 traces for {answered} answered requests: a sampling rule with "
            "a reservoir samples at least one request a second, so tracing is "
            "not reaching X-Ray",
        )
    return CheckResult(
        BACKEND, name, "pass", f"{ours} traces found for {answered} answered requests ({ours / answered:.0%} sampled)"
    )


def _found_subset(c: _Context) -> CheckResult:
    found = set(c.obs.summaries) | set(c.obs.traces)
    f = Findings(unit="traces", checked=len(found))
    for trace_id in sorted(found - set(c.idx.by_xray_id)):
        segment = next((d.get("name") for d in c.obs.traces.get(trace_id, XRayTrace("", [], [])).documents), None)
        f.problems.append((trace_id, "not sent", f"segment '{segment}'" if segment else ""))
    result = verdict(BACKEND, "every trace found belongs to a request we sent", f)
    return replace(result, detail=f"{result.detail}; {len(found)} found ≤ {len(c.idx.all)} sent. {SAMPLING_NOTE}")


def _duplicate_segments(c: _Context) -> Findings:
    f = Findings(unit="traces")
    for trace_id, trace in sorted(c.obs.traces.items()):
        r = c.idx.by_xray_id.get(trace_id)
        label = r.request_id if r else trace_id
        ids = Counter(trace.segment_ids)
        doc_ids = Counter(str(d.get("id")) for d in trace.documents if d.get("type") != "subsegment")
        repeats = {i: n for i, n in (ids | doc_ids).items() if n > 1}
        problems = [("duplicate segment", f"{i} × {n}") for i, n in repeats.items()]
        service = [
            d
            for d in trace.documents
            if d.get("name") == c.obs.window.service_name
            and d.get("type") != "subsegment"
            and str(d.get("id")) not in repeats
        ]
        if len(service) > 1:
            problems.append(("duplicate segment", f"{len(service)} '{c.obs.window.service_name}' segments"))
        f.add(label, problems)
    return f


def _each_segment(c: _Context, judge: Callable[[SentRequest, Node], list[tuple[str, str]]]) -> Findings:
    f = Findings(unit="sampled requests")
    for s in c.sampled:
        segment = c.segment(s)
        if segment is not None:
            f.add(s.request.request_id, judge(s.request, segment))
    return f


def _segment_http(c: _Context) -> Findings:
    f = Findings(unit="sampled requests")
    for s in c.sampled:
        segments = c.segments(s)
        if len(segments) != 1:
            f.bad(s.request.request_id, "missing" if not segments else "duplicated", f"{len(segments)} segments")
            continue
        http = segments[0].doc.get("http") or {}
        req, resp = http.get("request") or {}, http.get("response") or {}
        r = s.request
        problems = []
        if str(req.get("method", "")).upper() != r.method.upper():
            problems.append(("wrong method", f"{req.get('method')!r}, sent {r.method}"))
        if urlsplit(str(req.get("url", ""))).path != r.path.split("?", 1)[0]:
            problems.append(("wrong url", f"{req.get('url')!r}, sent {r.path}"))
        if resp.get("status") != r.status:
            problems.append(("wrong status", f"{resp.get('status')!r}, ledger {r.status}"))
        f.add(r.request_id, problems)
    return f


def _flags(c: _Context) -> Findings:
    xr = c.exp.xray

    def judge(r: SentRequest, seg: Node) -> list[tuple[str, str]]:
        problems = []
        for flag, statuses in (("fault", xr.fault_statuses), ("error", xr.error_statuses)):
            want, have = r.status in statuses, bool(seg.doc.get(flag))
            if want != have:
                problems.append((f"{flag} {'not set' if want else 'set'}", f"HTTP {r.status}, {flag}={have}"))
        return problems

    return _each_segment(c, judge)


def _field_problems(
    node: Node, annotations: Sequence[Condition], metadata: Sequence[Condition], r: SentRequest, others: Sequence[Node]
) -> list[tuple[str, str]]:
    problems = []
    for conditions, read in ((annotations, Node.annotation), (metadata, Node.metadata)):
        kind = "annotation" if conditions is annotations else "metadata"
        for cond in conditions:
            value = read(node, cond.key)
            wrong = cond.check(value, r)
            if wrong is None:
                continue
            holder = next((o for o in others if o is not node and read(o, cond.key) is not MISSING), None)
            if value is MISSING and holder is not None:
                problems.append(("misplaced", f"{kind} {cond.key} is on '{holder.name}' instead"))
            else:
                problems.append((f"wrong {kind}", wrong))
    return problems


def _on_an_ancestor(node: Node, annotations: Sequence[Condition], metadata: Sequence[Condition]) -> bool:
    """Whether a field missing from ``node`` was written to an entity enclosing it instead."""
    parent = node.parent
    while parent is not None:
        if any(node.annotation(c.key) is MISSING and parent.annotation(c.key) is not MISSING for c in annotations):
            return True
        if any(node.metadata(c.key) is MISSING and parent.metadata(c.key) is not MISSING for c in metadata):
            return True
        parent = parent.parent
    return False


EARLY_END_HINT = (
    "Written to an enclosing entity: the recorder writes to whatever is open, so '{name}' had already ended. "
    "An extra end_subsegment() (e.g. one in the body and one in `finally`) ends the enclosing subsegment early"
)


def _segment_fields(c: _Context) -> Findings:
    xr = c.exp.xray
    return _each_segment(c, lambda r, seg: _field_problems(seg, xr.segment_annotations, xr.segment_metadata, r, []))


def _route_sampled(c: _Context, route: str, sub: SubsegmentExpectation) -> list[_Sampled]:
    return [s for s in c.sampled if (e := c.exp.expected(s.request)).route_name == route and sub in e.subsegments]


def _named(s: _Sampled, name: str) -> list[Node]:
    return [n for root in s.roots for n in root.walk() if not n.is_segment and n.name == name] + [
        n for o in s.orphans for n in o.walk() if n.name == name
    ]


def _sub_placement(route: str, sub: SubsegmentExpectation) -> Callable[[_Context], Findings]:
    def run(c: _Context) -> Findings:
        f = Findings(unit="sampled requests")
        for s in _route_sampled(c, route, sub):
            nodes = _named(s, sub.name)
            if len(nodes) != 1:
                f.bad(
                    s.request.request_id,
                    "missing" if not nodes else "duplicated",
                    "" if not nodes else f"{len(nodes)} subsegments",
                )
                continue
            node = nodes[0]
            if sub.parent == "segment":
                want, want_name = c.segment(s), "the segment"
            else:
                parents = _named(s, sub.parent)
                want, want_name = (parents[0] if len(parents) == 1 else None), f"subsegment '{sub.parent}'"
            if want is None:
                f.bad(s.request.request_id, "parent not unique", f"{want_name} is missing or duplicated")
            elif node.parent is not want:
                actual = f"'{node.parent.name}'" if node.parent else "no parent in the trace"
                f.bad(s.request.request_id, "misnested", f"under {actual} instead of {want_name}")
            else:
                f.ok()
        return f

    return run


def _sub_fields(route: str, sub: SubsegmentExpectation) -> Callable[[_Context], Findings]:
    def run(c: _Context) -> Findings:
        f = Findings(unit="sampled requests")
        for s in _route_sampled(c, route, sub):
            nodes = _named(s, sub.name)
            if len(nodes) == 1:
                everything = [n for root in s.roots for n in root.walk()]
                problems = _field_problems(nodes[0], sub.annotations, sub.metadata, s.request, everything)
                f.add(s.request.request_id, problems)
                if problems and _on_an_ancestor(nodes[0], sub.annotations, sub.metadata):
                    f.note(EARLY_END_HINT.format(name=sub.name))
        return f

    return run


def _closed_once(c: _Context) -> Findings:
    f = Findings(unit="segments and subsegments")
    for s in c.sampled:
        rid = s.request.request_id
        nodes = [n for root in s.roots for n in root.walk()]
        ids = Counter(n.id for n in nodes)
        for orphan in s.orphans:
            f.bad(rid, "orphan", f"'{orphan.name}' has parent {orphan.doc.get('parent_id')}, not in the trace")
        for node in nodes:
            if node.parent is None:  # a segment: it must be closed; it has no parent to sit inside
                if not _closed(node):
                    f.add(rid, [("not closed", f"segment '{node.name}' has no end_time")])
                else:
                    f.add(rid, [("ends before it starts", f"segment '{node.name}'")] if _backwards(node) else [])
                continue
            problems = []
            if ids[node.id] > 1:
                problems.append(("sent twice", f"'{node.name}' id {node.id} × {ids[node.id]}"))
            if not _closed(node):
                problems.append(("not closed", f"'{node.name}' has no end_time"))
            elif _backwards(node):
                problems.append(("ends before it starts", f"'{node.name}'"))
            elif not _inside(node, node.parent):
                problems.append(
                    ("outside its parent", f"'{node.name}' ends after '{node.parent.name}' or starts before it")
                )
            f.add(rid, problems)
    return f


def _unexpected(c: _Context) -> list[tuple[SentRequest, Node]]:
    """In sampled traces: segments other than the service's (a second service, or a second root under
    another name), and subsegments of the service's segments whose name the route does not list for the
    request's status; either admitted by name with ``allow_unlisted``. A foreign segment counts once, not
    with its subsegments. Misplaced or repeated listed subsegments are the placement check's. Worked out
    once per context (a check and the report's extra count both need it)."""
    if c.unexpected_found is not None:
        return c.unexpected_found
    found = []
    service = c.obs.window.service_name
    for s in c.sampled:
        listed = {e.name for e in c.exp.expected(s.request).subsegments}
        ours = _service_subsegment_ids(s, service)
        for root in s.roots:
            if root.name != service and not _mirrors(root, ours):
                found += [] if c.exp.allows_unlisted("xray", s.request, root.name) else [(s.request, root)]
                continue
            # the service's segment, or X-Ray's inferred mirror of one of its subsegments (a downstream AWS
            # call, checked as that subsegment): what hangs below either must be listed
            found += [
                (s.request, n)
                for n in root.walk()
                if n is not root and n.name not in listed and not c.exp.allows_unlisted("xray", s.request, n.name)
            ]
    c.unexpected_found = found
    return found


def _service_subsegment_ids(s: _Sampled, service: str) -> set[str]:
    return {n.id for root in s.roots if root.name == service for n in root.walk() if n is not root}


def _mirrors(root: Node, service_subsegments: set[str]) -> bool:
    """X-Ray's inferred segment for a subsegment of the service's segment (not one a client sent as such)."""
    return root.doc.get("inferred") is True and root.doc.get("parent_id") in service_subsegments


def _unexpected_nodes(c: _Context) -> Findings:
    f = Findings(unit="segments and subsegments")
    service = c.obs.window.service_name
    # the service's segment itself is the subject of the other checks; a foreign segment counts as one
    for s in c.sampled:
        ours = _service_subsegment_ids(s, service)
        for root in s.roots:
            f.checked += len(list(root.walk())) - 1 if root.name == service or _mirrors(root, ours) else 1
    for r, n in _unexpected(c):
        what = "segment" if n.parent is None else "subsegment"
        route = c.exp.route_name(r)
        f.problems.append(
            (r.request_id, "unexpected", f"{what} '{n.name}' in a trace of route '{route}' (HTTP {r.status})")
        )
    return f


def _closed(node: Node) -> bool:
    return not node.doc.get("in_progress") and node.doc.get("end_time") is not None


def _backwards(node: Node) -> bool:
    try:
        return float(node.doc["end_time"]) < float(node.doc["start_time"])
    except (KeyError, TypeError, ValueError):
        return False  # no numbers to compare: the segment's own validity is the service's to refuse


def _inside(node: Node, parent: Node) -> bool:
    try:
        start, end = float(node.doc["start_time"]), float(node.doc["end_time"])
        p_start = float(parent.doc["start_time"])
        p_end = float(parent.doc["end_time"]) if parent.doc.get("end_time") is not None else float("inf")
    except (KeyError, TypeError, ValueError):
        return False
    return start >= p_start - TIME_SLACK_S and end <= p_end + TIME_SLACK_S
