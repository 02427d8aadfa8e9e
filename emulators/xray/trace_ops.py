"""The trace operations: PutTraceSegments, GetTraceSummaries, BatchGetTraces."""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from typing import Any

from emulators.xray.assemble import assemble
from emulators.xray.errors import invalid_request
from emulators.xray.filter_expression import FilterExpressionError, compile_filter
from emulators.xray.params import string_list, timestamp
from emulators.xray.segments import Rejection, SegmentDocument, parse_document
from emulators.xray.store import RANGE_COLUMNS, XRayStore
from emulators.xray.summary import TraceRecord, summarize

MAX_BATCH_GET_TRACE_IDS = 5
_SCAN_CHUNK = 500


@dataclass(frozen=True)
class QueryLimits:
    page_size: int  # summaries per GetTraceSummaries page
    scan_limit: int  # traces examined per page before answering with a NextToken anyway
    trace_size_limit_bytes: int  # BatchGetTraces LimitExceeded threshold


def rebuild_trace(trace_id: str, docs: list[SegmentDocument]) -> TraceRecord:
    return summarize(assemble(trace_id, docs))


def put_trace_segments(store: XRayStore, body: dict[str, Any], now: float) -> dict[str, Any]:
    raw_documents = body.get("TraceSegmentDocuments")
    if not isinstance(raw_documents, list):
        raise invalid_request("TraceSegmentDocuments is required and must be a list of strings")
    accepted: list[SegmentDocument] = []
    unprocessed: list[Rejection] = []
    for raw in raw_documents:
        result = (
            parse_document(raw)
            if isinstance(raw, str)
            else Rejection(None, "InvalidDocument", "each TraceSegmentDocuments entry must be a string")
        )
        if isinstance(result, Rejection):
            unprocessed.append(result)
        else:
            accepted.append(result)
    store.put_documents(accepted, rebuild_trace, now)
    return {"UnprocessedTraceSegments": [r.to_api() for r in unprocessed]}


def batch_get_traces(store: XRayStore, body: dict[str, Any], limits: QueryLimits) -> dict[str, Any]:
    trace_ids = string_list(body, "TraceIds", min_items=1, max_items=MAX_BATCH_GET_TRACE_IDS)
    traces = []
    unprocessed = []
    wanted = list(dict.fromkeys(trace_ids))
    documents, summaries = store.documents_of(wanted), store.summaries_of(wanted)
    for trace_id in wanted:
        docs = documents.get(trace_id)
        if not docs:
            unprocessed.append(trace_id)
            continue
        trace = assemble(trace_id, docs)
        summary = summaries.get(trace_id) or {}
        entry: dict[str, Any] = {
            "Id": trace_id,
            "LimitExceeded": trace.size_bytes > limits.trace_size_limit_bytes,
            "Segments": [{"Id": d["id"], "Document": json.dumps(d)} for d in trace.documents()],
        }
        if summary.get("Duration") is not None:
            entry["Duration"] = summary["Duration"]
        traces.append(entry)
    return {"Traces": traces, "UnprocessedTraceIds": unprocessed}


def get_trace_summaries(store: XRayStore, body: dict[str, Any], limits: QueryLimits, now: float) -> dict[str, Any]:
    start = timestamp(body, "StartTime")
    end = timestamp(body, "EndTime")
    if end < start:
        raise invalid_request("EndTime must not be earlier than StartTime")
    range_type = body.get("TimeRangeType") or "Event"
    if range_type not in RANGE_COLUMNS:
        raise invalid_request(f"TimeRangeType must be one of {', '.join(RANGE_COLUMNS)}, not {range_type!r}")
    expression = body.get("FilterExpression")
    if expression is not None and not isinstance(expression, str):
        raise invalid_request("FilterExpression must be a string")
    try:
        matches = compile_filter(expression)
    except FilterExpressionError as exc:
        raise invalid_request(f"Invalid filter expression: {exc}") from exc
    keep = _sampler(body)
    if keep.window_fraction < 1.0:
        start = end - (end - start) * keep.window_fraction
    fingerprint = _fingerprint(body)
    cursor = _decode_token(body.get("NextToken"), fingerprint)

    summaries: list[dict[str, Any]] = []
    scanned = 0
    exhausted = False
    # Read a page's worth first (all match without a filter), then more each time a filter rejects many.
    size = limits.page_size
    while len(summaries) < limits.page_size and scanned < limits.scan_limit:
        chunk = store.scan(range_type, start, end, cursor, min(size, _SCAN_CHUNK, limits.scan_limit - scanned))
        size *= 2
        if not chunk:
            exhausted = True
            break
        for row in chunk:
            scanned += 1
            cursor = (row.key, row.trace_id)
            if keep(row.trace_id) and matches(json.loads(row.facts)):
                summaries.append(json.loads(row.summary))
                if len(summaries) >= limits.page_size:
                    break
    result: dict[str, Any] = {
        "TraceSummaries": summaries,
        "ApproximateTime": now,
        "TracesProcessedCount": scanned,
    }
    if not exhausted and cursor is not None and store.scan(range_type, start, end, cursor, 1):
        result["NextToken"] = _encode_token(cursor, fingerprint)
    return result


@dataclass(frozen=True)
class _Sampler:
    """``Sampling: true``: FixedRate keeps a stable fraction of traces; PartialScan scans the newest part."""

    rate: float = 1.0
    window_fraction: float = 1.0

    def __call__(self, trace_id: str) -> bool:
        if self.rate >= 1.0:
            return True
        digest = int.from_bytes(hashlib.sha256(trace_id.encode()).digest()[:8], "big")
        return digest < self.rate * 2**64


def _sampler(body: dict[str, Any]) -> _Sampler:
    if body.get("Sampling") is not True:
        return _Sampler()
    strategy = body.get("SamplingStrategy") or {}
    name = strategy.get("Name", "FixedRate") if isinstance(strategy, dict) else None
    value = strategy.get("Value") if isinstance(strategy, dict) else None
    if name not in ("FixedRate", "PartialScan"):
        raise invalid_request("SamplingStrategy.Name must be PartialScan or FixedRate")
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
        # The service's default sampling rate is not documented; asking beats guessing.
        raise invalid_request("with Sampling true this emulator needs SamplingStrategy.Value between 0 and 1")
    return _Sampler(rate=float(value)) if name == "FixedRate" else _Sampler(window_fraction=float(value))


def _fingerprint(body: dict[str, Any]) -> str:
    query = [
        body.get(k)
        for k in ("StartTime", "EndTime", "TimeRangeType", "FilterExpression", "Sampling", "SamplingStrategy")
    ]
    return hashlib.sha256(json.dumps(query, sort_keys=True, default=str).encode()).hexdigest()[:16]


def _encode_token(cursor: tuple[float, str], fingerprint: str) -> str:
    raw = json.dumps({"k": cursor[0], "t": cursor[1], "f": fingerprint}).encode()
    return base64.urlsafe_b64encode(raw).decode()


def _decode_token(token: Any, fingerprint: str) -> tuple[float, str] | None:
    if token is None or token == "":
        return None
    try:
        data = json.loads(base64.urlsafe_b64decode(str(token).encode()))
        if data["f"] != fingerprint:
            raise invalid_request("NextToken belongs to a different query")
        return float(data["k"]), str(data["t"])
    except (ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise invalid_request("NextToken is not valid") from exc
