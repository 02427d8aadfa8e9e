"""The exact distributions behind the sampling tests."""

from __future__ import annotations

import math
import random

import pytest

from verifiers.sampling.stats import Dist, binomial, convolve, sampled_count


@pytest.mark.parametrize(("n", "p"), [(1, 0.5), (7, 0.1), (30, 0.05), (200, 0.3)])
def test_binomial_matches_the_textbook_formula(n: int, p: float) -> None:
    d = binomial(n, p)
    for k in range(n + 1):
        exact = math.comb(n, k) * p**k * (1 - p) ** (n - k)
        got = d.probs[k - d.offset] if d.offset <= k < d.offset + len(d.probs) else 0.0
        assert got == pytest.approx(exact, rel=1e-9, abs=1e-30)
    assert d.mean == pytest.approx(n * p) and d.variance == pytest.approx(n * p * (1 - p))


def test_degenerate_rates_are_point_masses() -> None:
    assert binomial(10, 0.0) == Dist(0, (1.0,))
    assert binomial(10, 1.0) == Dist(10, (1.0,))
    assert binomial(0, 0.3) == Dist(0, (1.0,))
    with pytest.raises(ValueError):
        binomial(3, 1.5)


def test_sum_of_binomials_with_one_rate_is_a_binomial() -> None:
    a, b, both = binomial(40, 0.2), binomial(25, 0.2), binomial(65, 0.2)
    summed = convolve(a, b)
    for k in range(66):
        assert summed.cdf(k) == pytest.approx(both.cdf(k), abs=1e-12)


def test_bounds_reject_with_at_most_the_tail_probability() -> None:
    d = binomial(100, 0.1)
    low, high = d.lower(0.005), d.upper(0.005)
    assert d.cdf(low - 1) <= 0.005 < d.cdf(low)
    assert d.sf(high + 1) <= 0.005 < d.sf(high)
    assert low < 10 < high


def test_sampled_count_adds_the_certain_part() -> None:
    d = sampled_count([(20, 5, 0.0), (10, 2, 1.0)])
    assert d == Dist(15, (1.0,))  # 5 certain of the first group, all 10 of the second
    mixed = sampled_count([(50, 10, 0.1), (30, 0, 0.5)])
    assert mixed.mean == pytest.approx(10 + 40 * 0.1 + 15)
    with pytest.raises(ValueError):
        sampled_count([(3, 4, 0.5)])


def test_the_exact_test_holds_its_level_on_simulated_binomials() -> None:
    """Rejections of a true Binomial(n, p) at alpha stay at or below alpha (exact, conservative)."""
    rnd = random.Random(7)
    n, p, alpha, runs = 60, 0.1, 0.05, 4000
    d = binomial(n, p)
    low, high = d.lower(alpha / 2), d.upper(alpha / 2)
    rejected = sum(not low <= sum(rnd.random() < p for _ in range(n)) <= high for _ in range(runs))
    assert rejected / runs <= alpha
