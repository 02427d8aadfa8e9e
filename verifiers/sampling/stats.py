"""Exact discrete distributions for sampling counts: binomials, their sums, and two-sided bounds.

A sampled count is ``K + Binomial(N - K, f)``: K requests the reservoir takes for sure, then each
other request independently with the fixed rate f. Sums over rules (different f) are convolutions.
Everything is exact (log-space binomial pmf, no normal approximation), because runs are short and
rates small, where a normal approximation is at its worst. Support far in the tails (beyond
``TAIL_SDS`` standard deviations, probability < 1e-30) is cut off.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

TAIL_SDS = 12.0


@dataclass(frozen=True)
class Dist:
    """A distribution on the integers ``offset .. offset + len(probs) - 1``."""

    offset: int
    probs: tuple[float, ...]

    @property
    def mean(self) -> float:
        return sum((self.offset + i) * p for i, p in enumerate(self.probs))

    @property
    def variance(self) -> float:
        mu = self.mean
        return sum((self.offset + i - mu) ** 2 * p for i, p in enumerate(self.probs))

    def shifted(self, k: int) -> Dist:
        return Dist(self.offset + k, self.probs)

    def cdf(self, x: int) -> float:
        """P(X <= x)."""
        upto = x - self.offset + 1
        if upto <= 0:
            return 0.0
        return min(1.0, math.fsum(self.probs[:upto]))

    def sf(self, x: int) -> float:
        """P(X >= x)."""
        start = max(0, x - self.offset)
        if start >= len(self.probs):
            return 0.0
        return min(1.0, math.fsum(self.probs[start:]))

    def lower(self, tail: float) -> int:
        """The smallest x with P(X <= x) > tail: observing less rejects at level ``tail``."""
        total = 0.0
        for i, p in enumerate(self.probs):
            total += p
            if total > tail:
                return self.offset + i
        return self.offset + len(self.probs) - 1

    def upper(self, tail: float) -> int:
        """The largest x with P(X >= x) > tail: observing more rejects at level ``tail``."""
        total = 0.0
        for i in range(len(self.probs) - 1, -1, -1):
            total += self.probs[i]
            if total > tail:
                return self.offset + i
        return self.offset


POINT_ZERO = Dist(0, (1.0,))


def binomial(n: int, p: float) -> Dist:
    """Binomial(n, p), exact, with negligible tails cut."""
    if n < 0:
        raise ValueError(f"binomial needs n >= 0, got {n}")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"binomial needs 0 <= p <= 1, got {p}")
    if n == 0 or p == 0.0:
        return POINT_ZERO
    if p == 1.0:
        return Dist(n, (1.0,))
    mu, sd = n * p, math.sqrt(n * p * (1 - p))
    lo = max(0, math.floor(mu - TAIL_SDS * sd) - 10)
    hi = min(n, math.ceil(mu + TAIL_SDS * sd) + 10)
    log_p, log_q = math.log(p), math.log1p(-p)
    log_n = math.lgamma(n + 1)
    logs = [
        log_n - math.lgamma(k + 1) - math.lgamma(n - k + 1) + k * log_p + (n - k) * log_q for k in range(lo, hi + 1)
    ]
    peak = max(logs)
    probs = [math.exp(v - peak) for v in logs]
    total = math.fsum(probs)
    return Dist(lo, tuple(v / total for v in probs))


def convolve(a: Dist, b: Dist) -> Dist:
    """The distribution of X + Y for independent X ~ a, Y ~ b."""
    if len(a.probs) == 1:
        return Dist(b.offset + a.offset, tuple(p * a.probs[0] for p in b.probs))
    if len(b.probs) == 1:
        return convolve(b, a)
    out = [0.0] * (len(a.probs) + len(b.probs) - 1)
    for i, pa in enumerate(a.probs):
        if pa < 1e-300:
            continue
        for j, pb in enumerate(b.probs):
            out[i + j] += pa * pb
    return _trim(Dist(a.offset + b.offset, tuple(out)))


def total(parts: Iterable[Dist]) -> Dist:
    result = POINT_ZERO
    for part in parts:
        result = convolve(result, part)
    return result


def sampled_count(groups: Sequence[tuple[int, int, float]]) -> Dist:
    """Sum over groups ``(n, k, f)`` of ``k + Binomial(n - k, f)``: k certain, the rest at rate f."""
    dist = POINT_ZERO
    for n, k, f in groups:
        if not 0 <= k <= n:
            raise ValueError(f"certain count {k} outside 0..{n}")
        dist = convolve(dist, binomial(n - k, f).shifted(k))
    return dist


def _trim(d: Dist, eps: float = 1e-300) -> Dist:
    probs = d.probs
    start, end = 0, len(probs)
    while start < end - 1 and probs[start] < eps:
        start += 1
    while end - 1 > start and probs[end - 1] < eps:
        end -= 1
    return Dist(d.offset + start, probs[start:end])
