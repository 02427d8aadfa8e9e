"""The X-Ray reservoir model on hand-made timelines, and the checks built on it."""

from __future__ import annotations

import itertools
import random

from verifiers.model import SentRequest
from verifiers.sampling.xray_check import COUNT_CHECK, MATCH_CHECK, SECOND_CHECK, check_xray_sampling, evaluate
from verifiers.sampling.xray_model import Request, bound_samples, pool_max, pool_min
from verifiers.sampling.xray_rules import parse_rules

T0 = 1_700_000_000.0


def central(reservoir: int, rate: float, service: str = "backend-flask") -> dict[str, object]:
    return {
        "SamplingRule": {
            "RuleName": "Cruddur", "ResourceARN": "*", "Priority": 9000, "FixedRate": rate,
            "ReservoirSize": reservoir, "ServiceName": service, "ServiceType": "*", "Host": "*",
            "HTTPMethod": "*", "URLPath": "*", "Version": 1,
        }
    }  # fmt: skip


def local(fixed_target: int, rate: float) -> dict[str, object]:
    rule = {"description": "Cruddur", "host": "*", "http_method": "*", "url_path": "*", "fixed_target": fixed_target}
    rule["rate"] = rate
    return {"version": 2, "rules": [rule], "default": {"fixed_target": 1, "rate": 0.05}}


def brute(loads: list[int], lows: list[int], highs: list[int], total: int, best: bool) -> int:
    values = [
        sum(min(n, q) for n, q in zip(loads, qs, strict=True))
        for qs in itertools.product(*(range(lo, hi + 1) for lo, hi in zip(lows, highs, strict=True)))
        if (sum(qs) <= total if best else sum(qs) >= total)
    ]
    return max(values) if best else min(values)


def test_quota_split_bounds_hold_and_are_exact_where_it_matters() -> None:
    """The upper bound is the true maximum; the lower bound never exceeds the true minimum, and equals it
    when every process is either busier than any quota or not busier than its lowest share."""
    rnd = random.Random(3)
    exact = 0
    for _ in range(400):
        m = rnd.randint(1, 3)
        highs = [rnd.randint(0, 5)] * m
        lows = [rnd.randint(0, highs[0]) for _ in range(m)]
        loads = [rnd.randint(0, 7) for _ in range(m)]
        cap = rnd.randint(sum(lows), sum(highs))
        assert pool_max(loads, lows, highs, cap) == brute(loads, lows, highs, cap, best=True)
        true_min = brute(loads, lows, highs, cap, best=False)
        assert pool_min(loads, lows, highs, cap) <= true_min
        if all(n >= hi or n <= lo for n, lo, hi in zip(loads, lows, highs, strict=True)):
            assert pool_min(loads, lows, highs, cap) == true_min
            exact += 1
    assert exact > 100


def steady(
    n_per_s: int, seconds: int, process: str | None, offset: float = 0.0, rule: str = "Cruddur"
) -> list[Request]:
    """n requests a second, well inside each second (no boundary ambiguity), 10 ms each."""
    return [
        Request(T0 + s + offset + 0.1 + i * 0.8 / n_per_s, T0 + s + offset + 0.11 + i * 0.8 / n_per_s, rule, process)
        for s in range(seconds)
        for i in range(n_per_s)
    ]


def test_local_rules_give_each_process_its_own_reservoir() -> None:
    rules = parse_rules(local(2, 0.1), "t")
    reqs = steady(5, 4, "a") + steady(3, 4, "b")
    [bounds] = bound_samples(reqs, rules, processes=2).rules
    assert bounds.n == 32 and bounds.startup == 0
    assert bounds.k_lo == bounds.k_hi == 4 * (2 + 2)  # min(5, 2) + min(3, 2) every second
    # Without process names the same load could all be on one process: min(8, 2) .. min(8, 2 x 2) a second.
    anonymous = [Request(r.start, r.end, r.rule) for r in reqs]
    [wide] = bound_samples(anonymous, rules, processes=2).rules
    assert (wide.k_lo, wide.k_hi) == (8, 16)


def test_centralized_start_up_then_borrowing_one_a_second_per_process() -> None:
    rules = parse_rules(central(5, 0.1), "t")
    reqs = steady(10, 6, "a") + steady(10, 6, "b", offset=0.05)
    result = bound_samples(reqs, rules, processes=2)
    [b] = result.rules
    assert b.startup == 2 and b.n == 120
    # Each process: its first request (built-in rule), then 1 borrowed a second; the second of the
    # start-up (rules still loading) is uncertain, so the lower bound skips its borrow.
    assert b.k_hi == 2 + b.early + 2 * 6
    assert b.k_lo == 2 + 2 * 5
    assert all("quota" not in regime for regime in b.regimes.values())  # no report within 6 s


def test_quota_regime_shares_the_reservoir_once_steady() -> None:
    rules = parse_rules(central(4, 0.0), "t")
    reqs = steady(10, 60, "a") + steady(10, 60, "b", offset=0.03)
    [b] = bound_samples(reqs, rules, processes=2).rules
    late = [s for s in b.seconds if s.second >= T0 + 40]
    assert late and all(s.k_lo == s.k_hi == 4 for s in late)  # the whole reservoir, shared, no more
    # A local (per-process) reservoir of 4 samples 8 a second: the per-second check catches it.
    doubled = [Request(r.start, r.end, r.rule, r.process, sampled=True) for r in reqs if (r.start - T0) % 1 < 0.42]
    result = evaluate(doubled + [r for r in reqs if (r.start - T0) % 1 >= 0.42], rules, processes=2, alpha=0.001)
    statuses = {c.name: c.status for c in result.checks}
    assert statuses[SECOND_CHECK] == "fail" and statuses[COUNT_CHECK] == "fail"


def test_unanswered_requests_may_have_used_the_reservoir() -> None:
    rules = parse_rules(local(2, 0.0), "t")
    reqs = steady(4, 3, "a")
    lost = [Request(T0 + 1.5, T0 + 1.6, "Cruddur", None, answered=False)]
    [b] = bound_samples(reqs + lost, rules, processes=1).rules
    assert (b.k_lo, b.k_hi) == (5, 6)


def _sent(i: int, start: float, path: str = "/api/activities/home", process: str = "a") -> SentRequest:
    return SentRequest(
        f"r{i}", "home", "GET", f"http://127.0.0.1:5000{path}", path, start, start + 0.01, 200,
        f"{i:032x}", "b" * 16, f"1-{i:08x}-{i:024x}", "w", app_process=process,
    )  # fmt: skip


def test_a_rule_for_another_service_fails_the_match_check() -> None:
    sent = [_sent(i, T0 + i * 0.25) for i in range(40)]
    found = {s.xray_trace_id for s in sent[::4]}
    result = check_xray_sampling(
        sent, found, parse_rules(central(5, 0.1, service="frontend"), "t"), service="backend-flask", processes=1,
        alpha=0.001,
    )  # fmt: skip
    match = next(c for c in result.checks if c.name == MATCH_CHECK)
    assert match.status == "fail" and "frontend" in match.detail and "Default" in match.detail
    section = result.section()
    assert section["by_rule"][0]["rule"]["name"] == "Default" and section["observed"] == 10


def test_section_numbers_and_a_pass() -> None:
    sent = [_sent(i, T0 + 0.05 + i * 0.1) for i in range(50)]  # 5 s, 10 a second, one process
    rules = parse_rules(central(5, 0.0), "t")
    [b] = bound_samples(
        [Request(s.start, s.end, "Cruddur", s.app_process) for s in sent], rules, processes=1
    ).rules  # fmt: skip
    # f = 0: the start-up request plus one borrowed per second (what the SDK does once its rules are in)
    sampled = [sent[0], sent[1]] + [sent[i] for i in range(10, 50, 10)]
    result = check_xray_sampling(
        sent, {s.xray_trace_id for s in sampled}, rules, service="backend-flask", processes=1, alpha=0.001
    )
    # In 5 s the SDK borrows one a second before its quota arrives: just what its silent fallback does. The
    # count fits the rule, but it cannot tell the two apart, and says so (without failing the run).
    count, *others = result.checks
    assert count.status == "unverifiable" and count.vacuous and "too few requests to tell" in count.detail
    assert all(c.status == "pass" for c in others), [c.detail for c in result.checks]
    section = result.section()
    assert section["observed"] == 6 and (b.k_lo, b.k_hi) == (5, 11)  # 5 early requests: maybe the built-in rule
    assert section["interval"] == [5, 11] and section["verdict"] == "unverifiable"
    assert [row["sent"] for row in section["per_second"]] == [10] * 5
    assert [row["sampled"] for row in section["per_second"]] == [2, 1, 1, 1, 1]
