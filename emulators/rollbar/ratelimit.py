"""Per-token item rate limit, answered with 429 like Rollbar.

Rollbar's window is not aligned to the clock: it "starts whenever the first occurrence is
logged for that time frame" (rollbar.com knowledge base, "Rate limiting strategies"), and
until it ends every POST /item/ over the limit gets 429 Too Many Requests (docs.rollbar.com
/docs/rate-limits). Counters live in memory: a restarted emulator starts a fresh window.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

WINDOW_SECONDS = 60.0


class ItemRateLimiter:
    """``allow(token)`` is False once ``per_minute`` items were accepted in the token's window."""

    def __init__(self, per_minute: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.per_minute = per_minute
        self._clock = clock
        self._windows: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def allow(self, token: str) -> bool:
        if self.per_minute <= 0:
            return True
        now = self._clock()
        with self._lock:
            start, count = self._windows.get(token, (now, 0))
            if now - start >= WINDOW_SECONDS:
                start, count = now, 0
            if count >= self.per_minute:
                return False
            self._windows[token] = (start, count + 1)
            return True
