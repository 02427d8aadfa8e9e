"""PutLogEvents, GetLogEvents and FilterLogEvents."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from emulators.cloudwatch_logs.errors import group_not_found, invalid_parameter, stream_not_found
from emulators.cloudwatch_logs.filter_pattern import FilterPattern, FilterPatternError, compile_filter_pattern
from emulators.cloudwatch_logs.group_operations import Params, resolve_group, sequence_token
from emulators.cloudwatch_logs.settings import DAY_MS, RequestContext
from emulators.cloudwatch_logs.store import EventRow, EventScope, GroupRow
from emulators.cloudwatch_logs.tokens import (
    MAX_KEY,
    MAX_TIMESTAMP,
    Boundary,
    filter_token,
    parse_filter_token,
    parse_stream_token,
    stream_token,
)

JAN_1_2024_MS = 1_704_067_200_000  # FilterLogEvents reads newest-first only from startTime on or after this


# -- PutLogEvents ------------------------------------------------------------------------------


def put_log_events(ctx: RequestContext, params: Params) -> Params:
    events: list[dict[str, Any]] = params["logEvents"]
    _check_batch(ctx, events)
    group = ctx.store.get_group(ctx.region, params["logGroupName"])
    if group is None:
        raise group_not_found()
    stream = ctx.store.get_stream(group.id, params["logStreamName"])
    if stream is None:
        raise stream_not_found()
    accepted, rejected = _classify(ctx, group, events)
    if accepted and accepted[-1][0] - accepted[0][0] > ctx.settings.max_batch_span_ms:
        raise invalid_parameter(
            "The batch of log events in a single PutLogEvents request cannot span more than 24 hours."
        )
    stored = sum(len(message.encode("utf-8")) for _, message in accepted)
    seq = ctx.store.append_events(stream, accepted, ctx.now_ms, stored)
    if seq is None:
        raise stream_not_found()
    out: Params = {"nextSequenceToken": sequence_token(stream.id, seq)}
    if rejected:
        out["rejectedLogEventsInfo"] = rejected
    return out


def _check_batch(ctx: RequestContext, events: list[dict[str, Any]]) -> None:
    limits = ctx.settings
    if len(events) > limits.max_batch_events:
        raise invalid_parameter(
            f"Too many log events in the batch: {len(events)} exceeds limit of {limits.max_batch_events}"
        )
    total = 0
    for event in events:
        size = ctx.event_size(event["message"])
        if size > limits.max_event_bytes:
            raise invalid_parameter(f"Log event too large: {size} bytes exceeds limit of {limits.max_event_bytes}")
        total += size
    if total > limits.max_batch_bytes:
        raise invalid_parameter(f"Upload too large: {total} bytes exceeds limit of {limits.max_batch_bytes}")
    timestamps = [event["timestamp"] for event in events]
    if any(later < earlier for earlier, later in zip(timestamps, timestamps[1:], strict=False)):
        raise invalid_parameter("Log events in a single PutLogEvents request must be in chronological order.")


def _classify(
    ctx: RequestContext, group: GroupRow, events: list[dict[str, Any]]
) -> tuple[list[tuple[int, str]], Params]:
    """Splits a chronological batch into accepted events and the rejectedLogEventsInfo indices."""
    limits = ctx.settings
    too_old_before = ctx.now_ms - limits.max_age_ms
    expired_before = ctx.now_ms - group.retention_days * DAY_MS if group.retention_days else None
    too_new_after = ctx.now_ms + limits.max_future_ms
    accepted: list[tuple[int, str]] = []
    rejected: Params = {}
    for index, event in enumerate(events):
        ts = event["timestamp"]
        if ts < too_old_before:
            rejected["tooOldLogEventEndIndex"] = index + 1  # exclusive end
        elif expired_before is not None and ts < expired_before:
            rejected["expiredLogEventEndIndex"] = index + 1  # exclusive end
        elif ts > too_new_after:
            rejected.setdefault("tooNewLogEventStartIndex", index)  # inclusive start
        else:
            accepted.append((ts, event["message"]))
    return accepted, rejected


# -- reading pages -----------------------------------------------------------------------------


@dataclass
class _Page:
    events: list[EventRow]
    resume: Boundary | None  # where the next page starts; None when nothing is left


def _read_page(
    ctx: RequestContext,
    rows: Iterator[EventRow],
    boundary: Boundary,
    limit: int,
    pattern: FilterPattern | None = None,
    scan_budget: int | None = None,
) -> _Page:
    """Takes events in read order until ``limit`` events, the page byte limit or the scan budget is reached.

    The page stops *before* the first event it does not take, so the resume boundary re-reads that event.
    """
    taken: list[EventRow] = []
    size = scanned = 0
    for row in rows:
        cost = ctx.event_size(row.message)
        full = len(taken) >= limit or (taken and size + cost > ctx.settings.max_page_bytes)
        if full or (scan_budget is not None and scanned >= scan_budget):
            key = row.key if boundary.forward else (row.timestamp, row.id + 1)
            return _Page(taken, Boundary(boundary.forward, key))
        scanned += 1
        if pattern is None or pattern.matches(row.message):
            taken.append(row)
            size += cost
    return _Page(taken, None)


def _time(params: Params, name: str, default: int | None) -> Any:
    """A time bound in epoch ms; larger than SQLite can hold means 'no bound'."""
    value = params.get(name)
    return default if value is None else min(int(value), MAX_TIMESTAMP)


# -- GetLogEvents ------------------------------------------------------------------------------


def get_log_events(ctx: RequestContext, params: Params) -> Params:
    group = resolve_group(ctx, params)
    stream = ctx.store.get_stream(group.id, params["logStreamName"])
    if stream is None:
        raise stream_not_found()
    start, end = _time(params, "startTime", 0), _time(params, "endTime", None)  # endTime is exclusive here
    token = params.get("nextToken")
    if token is not None:
        boundary = parse_stream_token(token)  # the token's direction wins over startFromHead
    elif params.get("startFromHead", False):
        boundary = Boundary(True, (start, 0))
    else:
        boundary = Boundary(False, (end, 0) if end is not None else MAX_KEY)
    scope = EventScope(group.id, start=start, end=(end - 1) if end is not None else MAX_TIMESTAMP, stream_id=stream.id)
    limit = params.get("limit", ctx.settings.max_page_events)
    page = _read_page(ctx, ctx.store.iter_events(scope, boundary), boundary, limit)
    rows = page.events if boundary.forward else page.events[::-1]
    forward_key = (rows[-1].timestamp, rows[-1].id + 1) if rows else boundary.key
    backward_key = rows[0].key if rows else boundary.key
    return {
        "events": [{"timestamp": r.timestamp, "message": r.message, "ingestionTime": r.ingestion_time} for r in rows],
        "nextForwardToken": stream_token(True, forward_key),
        "nextBackwardToken": stream_token(False, backward_key),
    }


# -- FilterLogEvents ---------------------------------------------------------------------------


def filter_log_events(ctx: RequestContext, params: Params) -> Params:
    group = resolve_group(ctx, params)
    names, prefix = params.get("logStreamNames"), params.get("logStreamNamePrefix")
    if names is not None and prefix is not None:
        raise invalid_parameter("logStreamNames and logStreamNamePrefix are mutually exclusive parameters.")
    try:
        pattern = compile_filter_pattern(params.get("filterPattern"))
    except FilterPatternError as exc:
        raise invalid_parameter(str(exc)) from exc
    # Both bounds inclusive; the end is clamped so that end + 1 still fits in SQLite.
    start, end = _time(params, "startTime", 0), min(_time(params, "endTime", MAX_TIMESTAMP), MAX_TIMESTAMP - 1)
    boundary = _filter_boundary(ctx, params, start, end)
    scope = EventScope(group.id, start=start, end=end, stream_names=names, stream_prefix=prefix)
    limit = params.get("limit", ctx.settings.max_page_events)
    page = _read_page(
        ctx, ctx.store.iter_events(scope, boundary), boundary, limit, pattern, ctx.settings.filter_scan_events
    )
    out: Params = {"events": [_filtered_event(r) for r in page.events], "searchedLogStreams": []}
    if page.resume is not None:
        out["nextToken"] = filter_token(page.resume, ctx.now_ms)
    return out


def _filter_boundary(ctx: RequestContext, params: Params, start: int, end: int) -> Boundary:
    token = params.get("nextToken")
    if token is not None:
        return parse_filter_token(token, ctx.now_ms, ctx.settings.token_ttl_ms)
    if params.get("startFromHead", True):
        return Boundary(True, (start, 0))
    if start < JAN_1_2024_MS:
        raise invalid_parameter(
            "startFromHead=false is supported only when startTime is on or after Jan 1, 2024 00:00:00 UTC."
        )
    return Boundary(False, (end + 1, 0))


def _filtered_event(row: EventRow) -> Params:
    return {
        "logStreamName": row.stream_name,
        "timestamp": row.timestamp,
        "message": row.message,
        "ingestionTime": row.ingestion_time,
        "eventId": f"{row.timestamp:020d}{row.id:036d}",
    }
