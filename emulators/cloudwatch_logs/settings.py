"""The limits the emulator enforces (the real service's, by default) and what each request carries."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from emulators.cloudwatch_logs.store import LogsStore

HOUR_MS = 3_600_000
DAY_MS = 24 * HOUR_MS


@dataclass(frozen=True)
class LogsSettings:
    # FilterLogEvents: 5 requests/s per account and region, a hard limit. 0 disables throttling.
    filter_log_events_per_second: float = 5.0
    # PutLogEvents batch: 10,000 events, 1,048,576 bytes counted as UTF-8 message bytes + 26 per event.
    max_batch_events: int = 10_000
    max_batch_bytes: int = 1_048_576
    event_overhead_bytes: int = 26
    max_event_bytes: int = 1_048_576  # one event, counted the same way
    max_future_ms: int = 2 * HOUR_MS  # newer events are rejected individually (tooNewLogEventStartIndex)
    max_age_ms: int = 14 * DAY_MS  # older events are rejected individually (tooOldLogEventEndIndex)
    max_batch_span_ms: int = 24 * HOUR_MS
    # GetLogEvents / FilterLogEvents pages: at most 10,000 events and 1 MB.
    max_page_events: int = 10_000
    max_page_bytes: int = 1_048_576
    # FilterLogEvents examines at most this many events per call, then answers with a nextToken
    # (the real service also returns partial or empty pages with a nextToken).
    filter_scan_events: int = 100_000
    token_ttl_ms: int = DAY_MS
    max_request_bytes: int = 16 * 1024 * 1024
    account_id: str = "000000000000"
    clock: Callable[[], float] = time.time


@dataclass(frozen=True)
class RequestContext:
    store: LogsStore
    settings: LogsSettings
    region: str
    now_ms: int

    def group_arn(self, group_name: str) -> str:
        return f"arn:aws:logs:{self.region}:{self.settings.account_id}:log-group:{group_name}"

    def event_size(self, message: str) -> int:
        size = len(message) if message.isascii() else len(message.encode("utf-8"))  # isascii() is O(1)
        return size + self.settings.event_overhead_bytes
