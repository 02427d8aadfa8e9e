"""Ids the load generator chooses for each request, so every backend item can be found again.

The W3C trace id starts with the epoch seconds (8 hex digits), which makes the same 128-bit
id a valid X-Ray trace id too: ``1-{first 8}-{last 24}``.
"""

from __future__ import annotations

import os
import random
import re
import time
from collections.abc import Mapping
from typing import Any, NamedTuple, Protocol

# "sampled" (default): send the traceparent, sampled flag 01. "none": send no traceparent, so a
# parent-based sampler's root sampler decides in the app (the sampling check sets this).
TRACEPARENT_ENV = "TRACEDRILL_TRACEPARENT"
TRACEPARENT_MODES = ("sampled", "none")
PROCESS_HEADER = "X-Tracedrill-Process"  # the app process that served the request (target_app/telemetry/xray.py)
_TRACERESPONSE = re.compile(r"^\s*00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})\s*$")


class RequestIds(NamedTuple):  # a tuple: built once per request, cheaper than a frozen dataclass
    request_id: str
    trace_id: str  # 32 lowercase hex
    parent_span_id: str  # 16 lowercase hex

    @property
    def xray_trace_id(self) -> str:
        return xray_trace_id(self.trace_id)

    def headers(self, traceparent: bool = True) -> dict[str, str]:
        """The three correlation headers. X-Amzn-Trace-Id has no Sampled flag on purpose:
        the app's X-Ray sampler, not the generator, decides (DESIGN.md decision 2). Without
        ``traceparent`` the app starts its own W3C trace (a root sampler under test)."""
        headers = {"X-Request-Id": self.request_id, "X-Amzn-Trace-Id": f"Root={self.xray_trace_id}"}
        if traceparent:
            headers["traceparent"] = f"00-{self.trace_id}-{self.parent_span_id}-01"
        return headers


def xray_trace_id(trace_id: str) -> str:
    return f"1-{trace_id[:8]}-{trace_id[8:]}"


# Ids must be unique, not secret: one Mersenne Twister draw per request takes half the time of three
# os.urandom reads (secrets), and runs inside every Locust request. A private generator, seeded from
# os.urandom: a locustfile's random.seed() cannot make ids repeat across runs, and a forked Locust
# worker (--processes) reseeds rather than repeat its parent's ids.
_random = random.Random()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_random.seed)
_ZERO_SPAN = "0" * 16


def new_request_ids(now: float | None = None) -> RequestIds:
    epoch = int(time.time() if now is None else now)
    # 288 random bits: request id (128), the trace id after its epoch seconds (96), parent span id (64).
    text = f"{_random.getrandbits(288):072x}"
    span_id = text[56:]
    while span_id == _ZERO_SPAN:  # all-zero ids are invalid in W3C trace context
        span_id = f"{_random.getrandbits(64):016x}"
    return RequestIds(text[:32], f"{epoch:08x}{text[32:56]}", span_id)  # request id, trace id, parent span id


class HeaderLookup(Protocol):
    def get(self, key: str, /) -> Any: ...


def traceparent_mode(environ: Mapping[str, str] | None = None) -> bool:
    """Whether to send a traceparent, from ``$TRACEDRILL_TRACEPARENT`` (ValueError names a bad value)."""
    value = (os.environ if environ is None else environ).get(TRACEPARENT_ENV, "").strip().lower() or "sampled"
    if value not in TRACEPARENT_MODES:
        raise ValueError(f"{TRACEPARENT_ENV}={value!r}: use one of {', '.join(TRACEPARENT_MODES)}")
    return value == "sampled"


def ledger_ids(ids: RequestIds, traceparent: bool, response_headers: HeaderLookup | None) -> dict[str, Any]:
    """The id fields of a sent-ledger line, with what the response said: the app's W3C ``traceresponse``
    (the trace id it used, and its sampled flag) and the process that served the request. Without a
    traceparent the trace id is the app's own, when it said so."""
    headers = response_headers if response_headers is not None else {}
    answer = _TRACERESPONSE.match(str(headers.get("traceresponse") or "").split(",")[0])
    app_trace_id = answer.group(1) if answer else None
    process = headers.get(PROCESS_HEADER)
    return {
        "trace_id": ids.trace_id if traceparent or app_trace_id is None else app_trace_id,
        "parent_span_id": ids.parent_span_id if traceparent else "",
        "xray_trace_id": ids.xray_trace_id,
        "traceparent_sent": traceparent,
        "app_sampled": None if answer is None else bool(int(answer.group(3), 16) & 1),
        "app_process": str(process) if process else None,
    }
