"""A seeded simulation of aws_xray_sdk's sampling in several app processes, for the statistical tests.

It replays what the SDK does (aws_xray_sdk/core/sampling/*), independently of the model under test:
per process a sampler that starts on the first request (decided by the built-in local rule while
the rules load), borrows one request a second per rule until the target poller's first report (10 s
+ jitter after the start, only for rules that matched since the last report) brings a quota from the
local X-Ray emulator's real QuotaAllocator; then the quota per second, then the fixed rate. Local
rules: a reservoir of fixed_target per second per process. Load: Locust-like users, each pinned to one
process (keep-alive connections), with a random think time.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import defaultdict
from dataclasses import dataclass, field

from emulators.xray.sampling import QuotaAllocator
from verifiers.sampling.xray_model import Request
from verifiers.sampling.xray_rules import XRayRule, XRayRuleSet

LOCAL_DEFAULT = XRayRule("Default", 1, 0.05)  # the SDK's built-in local rule


@dataclass(frozen=True)
class Scenario:
    rules: XRayRuleSet  # what the app actually runs with (mode included)
    rate_rps: float = 50.0
    duration_s: float = 60.0
    processes: int = 2
    think_s: tuple[float, float] = (0.2, 1.0)
    latency_s: tuple[float, float] = (0.002, 0.03)
    paths: tuple[str, ...] = ("/api/activities/home",)
    service: str = "backend-flask"
    fallback: bool = False  # the daemon's TCP side is unreachable: the built-in local rule forever
    pids_known: bool = True


@dataclass
class _Reservoir:
    quota: int | None = None
    ttl: float = 0.0
    second: int = -1
    taken: int = 0
    borrowed: int = 0
    matched: int = 0  # requests since the last report

    def tick(self, now: int) -> None:
        if now != self.second:
            self.second, self.taken, self.borrowed = now, 0, 0


@dataclass
class _Process:
    pid: str
    client_id: str
    started: float | None = None
    rules_at: float = math.inf
    reservoirs: dict[str, _Reservoir] = field(default_factory=lambda: defaultdict(_Reservoir))
    local: dict[str, list[int]] = field(default_factory=dict)  # rule -> [second, used]


@dataclass(frozen=True)
class _Event:
    proc: _Process
    start: float = 0.0
    end: float = 0.0
    path: str = ""
    report: bool = False  # the target poller's tick, else a request being decided


def simulate(sc: Scenario, seed: int) -> list[Request]:
    rnd = random.Random(seed)
    allocator = QuotaAllocator()
    procs = [_Process(f"p{i}", f"{rnd.getrandbits(96):024x}") for i in range(sc.processes)]
    mean_cycle = sum(sc.think_s) / 2 + sum(sc.latency_s) / 2
    users = max(1, round(sc.rate_rps * mean_cycle))
    t0 = 1_700_000_000.0 + rnd.random()
    events: list[tuple[float, int, _Event]] = []  # (time, seq, what)
    seq = 0
    for _ in range(users):
        proc = rnd.choice(procs)
        t = t0 + rnd.uniform(0, 1.0)  # spawn
        while t < t0 + sc.duration_s:
            start = t
            decide = start + rnd.uniform(0.0005, 0.003)
            end = decide + rnd.uniform(*sc.latency_s)
            seq += 1
            events.append((decide, seq, _Event(proc, start, end, rnd.choice(sc.paths))))
            t = end + rnd.uniform(*sc.think_s)
    heapq.heapify(events)
    out: list[Request] = []
    while events:
        now, _, event = heapq.heappop(events)
        proc = event.proc
        if event.report:
            _report(sc, proc, now, allocator)
            if now < t0 + sc.duration_s + 2:  # the load is over: nothing left to decide
                seq += 1
                nxt = now + 10 + rnd.random() / 10 + rnd.uniform(0.001, 0.02)
                heapq.heappush(events, (nxt, seq, _Event(proc, report=True)))
            continue
        if proc.started is None:
            proc.started = now
            proc.rules_at = now + rnd.uniform(0.002, 0.02)
            if sc.rules.mode == "centralized" and not sc.fallback:
                seq += 1
                heapq.heappush(events, (now + 10 + rnd.random() / 10, seq, _Event(proc, report=True)))
        rule = sc.rules.match(sc.service, "127.0.0.1:5000", "GET", event.path)
        sampled = _decide(sc, proc, rule, now, rnd)
        out.append(Request(event.start, event.end, rule.name, proc.pid if sc.pids_known else None, True, sampled))
    return out


def _decide(sc: Scenario, proc: _Process, rule: XRayRule, now: float, rnd: random.Random) -> bool:
    second = int(now)
    if sc.rules.mode == "local":
        return _local_take(proc, rule, second) or rnd.random() < rule.rate
    if sc.fallback or now < proc.rules_at:
        return _local_take(proc, LOCAL_DEFAULT, second) or rnd.random() < LOCAL_DEFAULT.rate
    res = proc.reservoirs[rule.name]
    res.matched += 1
    res.tick(second)
    if res.quota is not None and res.ttl >= second:
        if res.taken < res.quota:
            res.taken += 1
            return True
    elif rule.reservoir > 0:
        if res.borrowed < 1:
            res.borrowed += 1
            return True
    return rnd.random() <= rule.rate


def _local_take(proc: _Process, rule: XRayRule, second: int) -> bool:
    state = proc.local.setdefault(rule.name, [second, 0])
    if state[0] != second:
        state[0], state[1] = second, 0
    if state[1] >= rule.reservoir:
        return False
    state[1] += 1
    return True


def _report(sc: Scenario, proc: _Process, now: float, allocator: QuotaAllocator) -> None:
    for name, res in proc.reservoirs.items():
        if res.matched == 0:
            continue  # never matched since the last report: not a candidate
        res.matched = 0
        rule = sc.rules.rule(name)
        res.quota = allocator.allocate(name, rule.reservoir, proc.client_id, now)
        res.ttl = int(now) + 300
