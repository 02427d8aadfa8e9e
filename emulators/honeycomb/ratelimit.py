"""A per-key sliding one-minute window, reported the way Honeycomb reports it.

Headers follow the IETF draft Honeycomb documents: ``RateLimit: limit=X, remaining=Y, reset=Z``
and ``RateLimit-Policy: X;w=60``. The Query Data API's 429 carries no Retry-After.
"""

from __future__ import annotations

import math
import threading
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class Decision:
    allowed: bool
    headers: dict[str, str]


class RateLimiter:
    def __init__(self, per_minute: int, clock: Callable[[], float]) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> Decision:
        """Count one request for ``key``; a refused request does not use up the window."""
        if self.per_minute <= 0:
            return Decision(True, {})
        now = self._clock()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - WINDOW_SECONDS:
                hits.popleft()
            allowed = len(hits) < self.per_minute
            if allowed:
                hits.append(now)
            reset = math.ceil(hits[0] + WINDOW_SECONDS - now) if hits else WINDOW_SECONDS
            remaining = self.per_minute - len(hits)
        headers = {
            "RateLimit": f"limit={self.per_minute}, remaining={remaining}, reset={max(reset, 0)}",
            "RateLimit-Policy": f"{self.per_minute};w={WINDOW_SECONDS}",
        }
        return Decision(allowed, headers)
