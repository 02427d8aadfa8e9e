"""How many requests the X-Ray SDK must sample for sure: bounds on the reservoir's take, per rule and second.

Per process, the SDK decides each request with the rule that matches it: the rule's reservoir
first (a per-second budget, counted in whole epoch seconds), then ``FixedRate`` of the rest. So the
sampled count of a rule is ``K + Binomial(N - K, f)`` where K, the requests the reservoir took, is
the sum over seconds s and processes p of ``min(n[s,p], capacity[s,p])``.

Capacity per process (aws_xray_sdk 2.x ``DefaultSampler``, centralized rules):

1. start-up: the sampler starts on the process's first request; that request is decided before the
   rules arrive, by the SDK's built-in local rule (1/s + 5 %), so it is sampled for sure. Requests in
   the next ``rules_load_s`` may be decided by the built-in rule too (at 5 %): "early" requests.
2. borrowing: until the first quota arrives, 1 request a second per rule (when ReservoirSize > 0).
3. quota: the target poller reports every 10 s (+ up to 0.1 s jitter) from the first request, for
   rules that matched a request since the last report; the answer's ReservoirQuota is this process's
   share of ReservoirSize. Shares are the service's business: the model assumes each process in the
   quota regime holds at least floor(R / m) and at most R (m: processes holding a quota), that the
   shares sum to exactly R once every holder has re-reported after the last one joined, and in the
   10 s after a process joins (earlier shares are stale then) to at most ceil(R/1) + ... + ceil(R/m):
   the i-th process to report got its share among the i clients active then (the local emulator's
   split, and the natural reading of "the reservoir is shared"; the real service does not document it).

With local rules (``LocalSampler``) each process has its own reservoir of ``fixed_target`` per second
from the start: no start-up request, no borrowing, no sharing.

What is not known exactly is turned into bounds, never guesses: a request is counted in every
second between its send and its answer (the SDK decided somewhere in between); the second a quota
arrives may be either regime; an unanswered request may have used a reservoir slot. When the app
names the process that served each request (``SentRequest.app_process``), loads per process are
exact; otherwise any split of the load over ``processes`` is allowed, which widens the bounds.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace

from verifiers.sampling.xray_rules import DEFAULT_RATE, DEFAULT_RESERVOIR, XRayRule, XRayRuleSet

BUILT_IN_RULE = XRayRule("built-in", DEFAULT_RESERVOIR, DEFAULT_RATE)  # the SDK's local rule before rules arrive

# A client counts as active for the quota split while it reported within this window (15 s in the
# local emulator: one polling interval plus the SDK's jitter; the real service does not say).
ACTIVE_CLIENT_WINDOW_S = 15.0


@dataclass(frozen=True)
class Request:
    """One request as the model sees it."""

    start: float
    end: float
    rule: str
    process: str | None = None  # the app process that served it; None: the app did not say
    answered: bool = True
    sampled: bool = False  # observed: its trace reached X-Ray

    @property
    def seconds(self) -> range:
        """Every epoch second the SDK may have decided this request in."""
        return range(math.floor(self.start), math.floor(max(self.start, self.end)) + 1)

    @property
    def certain_second(self) -> int | None:
        s = self.seconds
        return s[0] if len(s) == 1 else None


@dataclass(frozen=True)
class SdkTiming:
    """The SDK's sampling clock; the slack covers the poller's jitter, its round trip and scheduling."""

    target_interval_s: float = 10.0
    tick_slack_s: float = 0.3  # per report: jitter up to 0.1 s plus the GetSamplingTargets call
    start_slack_s: float = 1.0  # thread start-up and scheduling on a busy machine
    rules_load_s: float = 0.5  # until the first GetSamplingRules answer, the built-in rule decides


@dataclass
class SecondBounds:
    second: int
    n_lo: int  # requests of the rule decided in this second for sure
    n_hi: int  # requests that may have been decided in this second
    k_lo: int  # certain samples (reservoir, borrowed, start-up) in this second: at least
    k_hi: int  # ... at most
    startup: int = 0  # start-up and early requests (already in k_hi) that may fall in this second


@dataclass
class RuleBounds:
    rule: XRayRule
    n: int = 0  # answered requests this rule decided
    k_lo: int = 0  # certain samples over the run: bounds
    k_hi: int = 0
    startup: int = 0  # of which: first requests of a process, decided by the SDK's built-in rule
    # Requests a process may have decided while its rules were loading, with the built-in rule (5 %)
    # instead of this one: certain in k_hi, at the lower of the two rates in the lower bound.
    early: int = 0
    early_unknown: int = 0  # without process names: how many of the other requests may be such
    observed: int = 0
    seconds: list[SecondBounds] = field(default_factory=list)
    regimes: dict[str, str] = field(default_factory=dict)  # process -> when its quota arrived (for the report)

    def lower_groups(self) -> list[tuple[int, int, float]]:
        """``(n, certain, rate)`` groups of the stochastically smallest sampled count the model allows."""
        early = self.early + max(0, min(self.early_unknown, self.n - self.early - self.k_lo))
        return [(self.n - early, self.k_lo, self.rule.rate), (early, 0, min(self.rule.rate, BUILT_IN_RULE.rate))]

    def upper_groups(self) -> list[tuple[int, int, float]]:
        return [(self.n, self.k_hi, self.rule.rate)]

    def mean_range(self) -> tuple[float, float]:
        def mean(groups: list[tuple[int, int, float]]) -> float:
            return sum(k + (n - k) * f for n, k, f in groups)

        return mean(self.lower_groups()), mean(self.upper_groups())


@dataclass
class ModelResult:
    mode: str
    processes: int  # configured
    known_processes: int  # distinct processes the app named (0: it named none)
    rules: list[RuleBounds]
    unanswered: int
    notes: list[str] = field(default_factory=list)


def bound_samples(
    requests: Sequence[Request], rules: XRayRuleSet, processes: int, timing: SdkTiming = SdkTiming()
) -> ModelResult:
    """Per rule: how many requests it decided, and bounds on the samples its reservoir took for sure."""
    if processes == 1:  # one process: it served everything, named or not
        requests = [replace(r, process=r.process or "the app") if r.answered else r for r in requests]
    answered = [r for r in requests if r.answered]
    unanswered = [r for r in requests if not r.answered]
    by_pid = all(r.process for r in answered)
    pids = sorted({r.process for r in answered if r.process})
    result = ModelResult(rules.mode, processes, len(pids) if by_pid else 0, [], len(unanswered))
    if answered and not by_pid:
        result.notes.append(
            f"{sum(1 for r in answered if not r.process)} answered requests do not name the app process that "
            f"served them: any split over {processes} processes is allowed, so the bounds are wide"
        )
    if by_pid and len(pids) > processes:
        result.notes.append(f"the app named {len(pids)} processes, more than the {processes} configured")
    centralized = rules.mode == "centralized"
    startup, early = _start_up(answered, by_pid, timing) if centralized else (set(), set())
    # Without process names, the other processes' start-up and early requests could be any of them.
    others = max(0, min(processes, len(answered)) - 1) if centralized and not by_pid else 0
    for rule in rules.rules:
        mine = [r for r in answered if r.rule == rule.name]
        if not mine:
            continue
        lost = [r for r in unanswered if r.rule == rule.name]
        bounds = RuleBounds(rule, n=len(mine), observed=sum(1 for r in mine if r.sampled))
        first = [r for r in mine if id(r) in startup]
        maybe = [r for r in mine if id(r) in early]
        regular = [r for r in mine if id(r) not in startup and id(r) not in early]
        if not centralized:
            seconds = _local_seconds(regular, rule, pids if by_pid else None, processes)
        elif by_pid:
            seconds = _centralized_seconds(regular, rule, answered, timing, bounds.regimes)
        else:
            seconds = _unknown_process_seconds(regular, rule, answered, processes, timing)
        _subtract_unanswered(seconds, lost)
        unknown = others * (1 + _busiest_window(mine, timing.rules_load_s + 0.1)) if others else 0
        bounds.startup, bounds.early, bounds.early_unknown = len(first), len(maybe), unknown
        bounds.k_lo = sum(b.k_lo for b in seconds.values()) + len(first)
        bounds.k_hi = sum(b.k_hi for b in seconds.values()) + len(first) + len(maybe) + unknown
        bounds.k_hi = min(bounds.n, bounds.k_hi)
        _add_possible(seconds, first, certain=True)
        _add_possible(seconds, maybe, certain=False)
        for b in seconds.values():  # per second, the unknown ones could be anywhere
            b.k_hi = min(b.n_hi, b.k_hi + unknown)
        bounds.seconds = [seconds[s] for s in sorted(seconds)]
        result.rules.append(bounds)
    return result


def _start_up(answered: Sequence[Request], by_pid: bool, timing: SdkTiming) -> tuple[set[int], set[int]]:
    """The request each process decided first (by send time: the SDK's built-in rule sampled it), and the
    requests it may have decided while its rules were still loading (the built-in rule, 5 %)."""
    per: dict[str, list[Request]] = defaultdict(list)
    for r in answered:
        per[r.process if by_pid and r.process else "?"].append(r)
    startup: set[int] = set()
    early: set[int] = set()
    for reqs in per.values():
        decided_by = min(r.end for r in reqs)  # the first decision happened by then
        could_be_first = [r for r in reqs if r.start <= decided_by]
        # The first request was sampled for sure: among those that could be first, a sampled one it is.
        first = min(could_be_first, key=lambda r: (not r.sampled, r.end, r.start))
        startup.add(id(first))
        early.update(id(r) for r in reqs if r is not first and r.start < decided_by + timing.rules_load_s)
    return startup, early


def _busiest_window(requests: Sequence[Request], width: float) -> int:
    """The most requests sent within any ``width`` seconds."""
    times = sorted(r.start for r in requests)
    best = lo = 0
    for hi, t in enumerate(times):
        while t - times[lo] > width:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def _loads(requests: Iterable[Request], key: str | None = None) -> dict[int, dict[str, list[int]]]:
    """second -> process -> [certain, possible] request counts."""
    loads: dict[int, dict[str, list[int]]] = defaultdict(lambda: defaultdict(lambda: [0, 0]))
    for r in requests:
        proc = key or r.process or "?"
        certain = r.certain_second
        for s in r.seconds:
            counts = loads[s][proc]
            counts[1] += 1
            if certain == s:
                counts[0] += 1
    return loads


def _local_seconds(
    regular: Sequence[Request], rule: XRayRule, pids: Sequence[str] | None, processes: int
) -> dict[int, SecondBounds]:
    cap = rule.reservoir
    out = {}
    if pids is not None:
        for s, per in _loads(regular).items():
            out[s] = SecondBounds(
                s,
                sum(c[0] for c in per.values()),
                sum(c[1] for c in per.values()),
                sum(min(c[0], cap) for c in per.values()),
                sum(min(c[1], cap) for c in per.values()),
            )
        return out
    for s, per in _loads(regular, key="all").items():
        n_lo, n_hi = per["all"]
        out[s] = SecondBounds(s, n_lo, n_hi, min(n_lo, cap), min(n_hi, processes * cap))
    return out


@dataclass
class _Process:
    first_lo: float  # the SDK started between these two times (its first request was being decided)
    first_hi: float
    times: list[float]  # send times of this rule's requests (start-up request excluded), sorted
    arrival_lo: float = math.inf  # this rule's first quota arrived between these two times
    arrival_hi: float = math.inf
    _gaps: list[tuple[float, float]] | None = None

    def gaps(self, longer_than: float) -> list[tuple[float, float]]:
        """Pauses between consecutive requests longer than ``longer_than`` seconds (computed once)."""
        if self._gaps is None:
            self._gaps = [(a, b) for a, b in zip(self.times, self.times[1:], strict=False) if b - a >= longer_than]
        return self._gaps


def _centralized_seconds(
    regular: Sequence[Request],
    rule: XRayRule,
    answered: Sequence[Request],
    timing: SdkTiming,
    regimes: dict[str, str],
) -> dict[int, SecondBounds]:
    starts: dict[str, list[Request]] = defaultdict(list)
    for r in answered:
        starts[str(r.process)].append(r)
    mine: dict[str, list[Request]] = defaultdict(list)
    for r in regular:
        mine[str(r.process)].append(r)
    procs: dict[str, _Process] = {}
    for pid, reqs in starts.items():
        p = _Process(min(r.start for r in reqs), min(r.end for r in reqs), sorted(r.start for r in mine.get(pid, [])))
        if rule.reservoir > 0 and p.times:
            p.arrival_lo, p.arrival_hi = _quota_arrival(p, mine[pid], timing)
        regimes[pid] = (
            "never matched this rule after its first request"
            if not p.times
            else "no reservoir"
            if rule.reservoir == 0
            else "borrowing 1/s to the end"
            if p.arrival_lo > p.times[-1]
            else f"quota {p.arrival_lo - p.first_lo:.1f}-{p.arrival_hi - p.first_lo:.1f} s after its first request"
        )
        procs[pid] = p
    holders = sum(1 for p in procs.values() if not math.isinf(p.arrival_lo))
    out = {}
    for s, per in _loads(regular).items():
        n_lo = sum(c[0] for c in per.values())
        n_hi = sum(c[1] for c in per.values())
        k_lo, k_hi = _second_bounds(s, per, procs, rule.reservoir, holders, timing)
        out[s] = SecondBounds(s, n_lo, n_hi, min(k_lo, n_lo), min(k_hi, n_hi))
    return out


def _second_bounds(
    s: int, per: dict[str, list[int]], procs: dict[str, _Process], reservoir: int, holders: int, timing: SdkTiming
) -> tuple[int, int]:
    borrow = 1 if reservoir > 0 else 0
    k_lo = k_hi = 0
    pool: list[tuple[_Process, bool, list[int]]] = []  # (process, certainly holding a quota, [certain, possible] load)
    for pid, p in procs.items():
        load = per.get(pid, [0, 0])
        if s + 1 <= p.arrival_lo:  # the whole second before any quota: borrowing
            starting = math.floor(p.first_lo) <= s <= math.floor(p.first_hi + timing.rules_load_s)
            k_lo += min(load[0], 0 if starting else borrow)  # an early request may have taken the borrow
            k_hi += min(load[1], borrow)
        else:
            pool.append((p, s >= p.arrival_hi, load))
    if not pool:
        return k_lo, k_hi
    m = len(pool)
    steady = all(_steady(p, s, timing) for p, _, _ in pool)
    # Steady: every holder re-reported since the last one joined, so the shares are fair and sum to R.
    # Otherwise shares may be stale: each between floor(R / all holders) and R, summing to R or more.
    low_share = reservoir // m if steady else reservoir // max(holders, m)
    lows = [low_share if held else 0 for _, held, _ in pool]
    highs = [reservoir] * m
    # The shares sum to R for sure only once every member holds one (else the holders' share is unknown).
    need = reservoir if all(held for _, held, _ in pool) else 0
    k_lo += pool_min([load[0] for _, _, load in pool], lows, highs, need)
    # Stale shares: the i-th process to join got at most ceil(R / i) (the clients active then), and keeps it
    # until its next report.
    stale_total = sum(-(-reservoir // i) for i in range(1, m + 1))
    k_hi += pool_max([load[1] for _, _, load in pool], lows, highs, reservoir if steady else stale_total)
    # In the second a quota arrives, the process may have borrowed before it.
    k_hi += sum(min(load[1], borrow) for _, held, load in pool if not held)
    return k_lo, k_hi


def _steady(p: _Process, s: int, timing: SdkTiming) -> bool:
    """Holding a fair, current share: the quota arrived over one report interval ago, and the process kept
    matching the rule (no gap that would skip a report) over the window the service counts clients in."""
    interval = timing.target_interval_s
    if s < p.arrival_hi + interval + timing.tick_slack_s + timing.start_slack_s:
        return False
    since = max(p.arrival_lo, s - 2 * interval - ACTIVE_CLIENT_WINDOW_S)
    if not p.times or p.times[0] > since or p.times[-1] < s - interval + 1:
        return False
    return not any(b > since and a < s + 1 for a, b in p.gaps(interval - 1))


def _quota_arrival(p: _Process, reqs: Sequence[Request], timing: SdkTiming) -> tuple[float, float]:
    """When the first GetSamplingTargets answer for this rule can have arrived: the first report tick
    after a request matched the rule (the SDK reports only rules that matched since the last report)."""
    interval = timing.target_interval_s
    earliest_start = min(r.start for r in reqs)
    earliest_end = min(r.end for r in reqs)

    def latest_tick(k: int) -> float:
        return p.first_hi + k * (interval + timing.tick_slack_s) + timing.start_slack_s

    k_lo = 1
    while earliest_start >= latest_tick(k_lo):
        k_lo += 1
    k_hi = 1
    while earliest_end > p.first_lo + k_hi * interval:
        k_hi += 1
    return p.first_lo + k_lo * interval, latest_tick(k_hi)


def _unknown_process_seconds(
    regular: Sequence[Request], rule: XRayRule, answered: Sequence[Request], processes: int, timing: SdkTiming
) -> dict[int, SecondBounds]:
    """Without process names: any process may be in any regime once the first report could have
    happened, and any split of the load over ``processes`` is possible."""
    first_lo = min(r.start for r in answered)
    first_hi = min(r.end for r in answered)
    borrow = 1 if rule.reservoir > 0 else 0
    out = {}
    for s, per in _loads(regular, key="all").items():
        n_lo, n_hi = per["all"]
        before_quota = s + 1 <= first_lo + timing.target_interval_s
        if before_quota:
            starting = math.floor(first_lo) <= s <= math.floor(first_hi + timing.rules_load_s)
            lo = 0 if starting else min(n_lo, borrow)
            hi = min(n_hi, processes * borrow)
        else:
            lo = min(n_lo, borrow, rule.reservoir // processes)
            hi = min(n_hi, processes * (borrow + rule.reservoir))
        out[s] = SecondBounds(s, n_lo, n_hi, lo, hi)
    return out


def _subtract_unanswered(seconds: dict[int, SecondBounds], lost: Iterable[Request]) -> None:
    """A request that got no answer may still have taken a reservoir slot from the answered ones."""
    for r in lost:
        for s in r.seconds:
            if s in seconds:
                seconds[s].k_lo = max(0, seconds[s].k_lo - 1)


def _add_possible(seconds: dict[int, SecondBounds], requests: Iterable[Request], *, certain: bool) -> None:
    """Start-up requests (``certain``: sampled for sure) and early ones (maybe) in the per-second bounds."""
    for r in requests:
        only = r.certain_second
        for s in r.seconds:
            b = seconds.setdefault(s, SecondBounds(s, 0, 0, 0, 0))
            b.n_hi += 1
            b.k_hi += 1
            b.startup += 1
            if only == s:
                b.n_lo += 1
                b.k_lo += 1 if certain else 0


def pool_max(loads: Sequence[int], lows: Sequence[int], highs: Sequence[int], total: int) -> int:
    """max over integer quotas lows <= q <= highs with sum(q) <= total of sum(min(load, q))."""
    base = sum(min(n, lo) for n, lo in zip(loads, lows, strict=True))
    room = sum(max(0, min(n, hi) - lo) for n, lo, hi in zip(loads, lows, highs, strict=True))
    spare = max(0, total - sum(lows))
    return base + min(room, spare)


def pool_min(loads: Sequence[int], lows: Sequence[int], highs: Sequence[int], total: int) -> int:
    """min over integer quotas lows <= q <= highs with sum(q) >= total of sum(min(load, q)): the quota
    goes first where it is wasted (a process with fewer requests than its quota)."""
    base = sum(min(n, lo) for n, lo in zip(loads, lows, strict=True))
    extra = max(0, total - sum(lows))
    waste = sum(max(0, hi - max(lo, n)) for n, lo, hi in zip(loads, lows, highs, strict=True))
    return base + max(0, extra - waste)
