"""Ids the load generator chooses for each request, so every backend item can be found again.

The W3C trace id starts with the epoch seconds (8 hex digits), which makes the same 128-bit
id a valid X-Ray trace id too: ``1-{first 8}-{last 24}``.
"""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestIds:
    request_id: str
    trace_id: str  # 32 lowercase hex
    parent_span_id: str  # 16 lowercase hex

    @property
    def xray_trace_id(self) -> str:
        return xray_trace_id(self.trace_id)

    def headers(self) -> dict[str, str]:
        """The three correlation headers. X-Amzn-Trace-Id has no Sampled flag on purpose:
        the app's X-Ray sampler, not the generator, decides (DESIGN.md decision 2)."""
        return {
            "X-Request-Id": self.request_id,
            "traceparent": f"00-{self.trace_id}-{self.parent_span_id}-01",
            "X-Amzn-Trace-Id": f"Root={self.xray_trace_id}",
        }


def xray_trace_id(trace_id: str) -> str:
    return f"1-{trace_id[:8]}-{trace_id[8:]}"


def new_request_ids(now: float | None = None) -> RequestIds:
    epoch = int(time.time() if now is None else now)
    span_id = secrets.token_hex(8)
    while span_id == "0" * 16:  # all-zero ids are invalid in W3C trace context
        span_id = secrets.token_hex(8)
    return RequestIds(
        request_id=secrets.token_hex(16),
        trace_id=f"{epoch:08x}{secrets.token_hex(12)}",
        parent_span_id=span_id,
    )
