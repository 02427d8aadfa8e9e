"""The X-Ray sampling checks: is the number of sampled traces what the rule says, overall and per second?

For each rule that decided requests, the sampled count is ``K + Binomial(N - K, f)`` with K between
the model's bounds (:mod:`verifiers.sampling.xray_model`). The two-sided exact test accepts the
observed count when it lies in ``[lower tail quantile at K_lo, upper tail quantile at K_hi]``: the
union of the acceptance intervals of every K in the bounds, so the false-failure rate stays at most
alpha whatever the unknown K is (the sampled count grows stochastically with K). With several rules
each is tested at alpha / rules (Bonferroni). The per-second check bounds every second's count from
above at alpha / seconds: no second may exceed its reservoir plus its binomial allowance.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any
from urllib.parse import urlsplit

from verifiers.model import TOO_FEW_TO_TELL, CheckResult, SentRequest, worst
from verifiers.sampling.stats import sampled_count
from verifiers.sampling.xray_model import ModelResult, Request, RuleBounds, SdkTiming, bound_samples
from verifiers.sampling.xray_rules import DEFAULT_RATE, DEFAULT_RESERVOIR, DEFAULT_RULE, XRayRule, XRayRuleSet

COUNT_CHECK = "X-Ray sampling: the sampled count matches the rule (reservoir, then fixed rate)"
SECOND_CHECK = "X-Ray sampling: no second exceeded the reservoir plus its binomial allowance"
CLOCK_SLACK_S = 0.05  # a segment's start may be this far outside the ledger's send..answer window
MATCH_CHECK = "X-Ray sampling rules: a configured rule (not only Default) decides the service's requests"
# What the SDK samples when it never gets its rules (the daemon's TCP side unreachable, a local rules file
# that does not load): its built-in rule, 1 request a second plus 5 % of the rest, in every process.
# A count the rule accepts passes only if the SDK's fallback would rarely give it: outside the fallback's
# central interval at this level (so a run that fell back passes at most (1 - level) / 2 of the time).
FALLBACK_LEVEL = 0.99
SDK_FALLBACK = XRayRuleSet("local", (XRayRule(DEFAULT_RULE, DEFAULT_RESERVOIR, DEFAULT_RATE),), "the SDK's fallback")


@dataclass
class RuleTest:
    bounds: RuleBounds
    alpha: float
    low: int = 0
    high: int = 0

    @property
    def passed(self) -> bool:
        return self.low <= self.bounds.observed <= self.high

    def run(self) -> RuleTest:
        self.low = sampled_count(self.bounds.lower_groups()).lower(self.alpha / 2)
        self.high = sampled_count(self.bounds.upper_groups()).upper(self.alpha / 2)
        return self

    def to_dict(self) -> dict[str, Any]:
        b = self.bounds
        lo, hi = b.mean_range()
        return {
            "rule": b.rule.to_dict(),
            "requests": b.n,
            "observed": b.observed,
            "expected": round((lo + hi) / 2, 2),
            "expected_range": [round(lo, 2), round(hi, 2)],
            "reservoir_taken": [b.k_lo, b.k_hi],
            "startup_samples": b.startup,
            "early_requests": b.early + b.early_unknown,  # maybe decided by the built-in rule while rules loaded
            "interval": [self.low, self.high],
            "alpha": self.alpha,
            "verdict": "pass" if self.passed else "fail",
            "processes": dict(b.regimes),
        }


@dataclass
class SecondRow:
    second: int
    sent: int  # requests sent in this second (by send time, all rules)
    sampled: int  # of which found in X-Ray
    sampled_certain: int  # sampled requests decided in this second for sure
    low: int  # display band: lower quantile at the certain minimum
    high: int  # the allowance: more than this fails


@dataclass
class XRaySamplingResult:
    rules: XRayRuleSet
    model: ModelResult
    alpha: float
    tests: list[RuleTest]
    seconds: list[SecondRow]
    fallback_interval: tuple[int, int] | None = None  # the counts the SDK's fallback gives, when it differs
    checks: list[CheckResult] = field(default_factory=list)
    served: XRayRuleSet | None = None  # what the backend serves, when read (may differ from the expectation)

    @property
    def observed(self) -> int:
        return sum(t.bounds.observed for t in self.tests)

    def section(self) -> dict[str, Any]:
        lo = sum(t.bounds.mean_range()[0] for t in self.tests)
        hi = sum(t.bounds.mean_range()[1] for t in self.tests)
        return {
            "configured": {
                "mode": self.rules.mode,
                "source": self.rules.source,
                "rules": [r.to_dict() for r in self.rules.rules],
                "processes": self.model.processes,
            },
            "served": None if self.served is None else [r.to_dict() for r in self.served.rules],
            "processes_seen": self.model.known_processes,
            "requests": sum(t.bounds.n for t in self.tests),
            "unanswered": self.model.unanswered,
            "observed": self.observed,
            "expected": round((lo + hi) / 2, 2),
            "expected_range": [round(lo, 2), round(hi, 2)],
            "interval": list(_interval(self.tests)),
            "fallback_interval": None if self.fallback_interval is None else list(self.fallback_interval),
            "alpha": self.alpha,
            "verdict": worst(c.status for c in self.checks),
            "by_rule": [t.to_dict() for t in self.tests],
            "per_second": [
                {"t": row.second, "sent": row.sent, "sampled": row.sampled, "low": row.low, "high": row.high}
                for row in self.seconds
            ],
            "notes": list(self.model.notes),
        }


def xray_requests(
    sent: Sequence[SentRequest],
    found_trace_ids: Collection[str],
    rules: XRayRuleSet,
    service: str,
    decided_at: Mapping[str, float] | None = None,
) -> list[Request]:
    """The ledger as the model sees it: which rule decided each request, and whether X-Ray holds it.

    ``decided_at``: X-Ray trace id -> the start_time of its segment, which the SDK stamps right after
    the sampling decision: a sampled request's decision time, exactly (used when it falls within the
    request's send and answer, i.e. when the clocks agree).
    """
    out = []
    for s in sent:
        parts = urlsplit(s.url)
        rule = rules.match(service, parts.netloc, s.method, s.path)
        start, end = s.start, s.end
        at = (decided_at or {}).get(s.xray_trace_id)
        if at is not None and start - CLOCK_SLACK_S <= at <= end + CLOCK_SLACK_S:
            start = end = min(max(at, start), end)
        out.append(
            Request(
                start=start,
                end=end,
                rule=rule.name,
                process=s.app_process,
                answered=s.status is not None,
                sampled=s.status is not None and s.xray_trace_id in found_trace_ids,
            )
        )
    return out


def check_xray_sampling(
    sent: Sequence[SentRequest],
    found_trace_ids: Collection[str],
    rules: XRayRuleSet,
    *,
    service: str,
    processes: int,
    alpha: float,
    decided_at: Mapping[str, float] | None = None,
    timing: SdkTiming = SdkTiming(),
) -> XRaySamplingResult:
    requests = xray_requests(sent, found_trace_ids, rules, service, decided_at)
    return evaluate(requests, rules, processes=processes, alpha=alpha, timing=timing)


def evaluate(
    requests: Sequence[Request], rules: XRayRuleSet, *, processes: int, alpha: float, timing: SdkTiming = SdkTiming()
) -> XRaySamplingResult:
    """Pure: the model, the tests and the three checks for requests already matched to rules."""
    model = bound_samples(requests, rules, processes, timing)
    tests = [RuleTest(b, alpha / max(1, len(model.rules))).run() for b in model.rules]
    fallback = None
    if not _is_fallback(rules):
        as_fallback = bound_samples([replace(r, rule=DEFAULT_RULE) for r in requests], SDK_FALLBACK, processes, timing)
        fallback = _interval([RuleTest(b, 1 - FALLBACK_LEVEL).run() for b in as_fallback.rules])
    result = XRaySamplingResult(rules, model, alpha, tests, _per_second(requests, model, alpha), fallback)
    result.checks = [_count_check(result), _second_check(result), _match_check(requests, rules)]
    return result


def _is_fallback(rules: XRayRuleSet) -> bool:
    """Local rules that sample as the fallback does: nothing to tell apart."""
    return rules.mode == "local" and all(
        (r.reservoir, r.rate) == (DEFAULT_RESERVOIR, DEFAULT_RATE) for r in rules.rules
    )


def _interval(tests: Sequence[RuleTest]) -> tuple[int, int]:
    """The counts the tests accept together."""
    return sum(t.low for t in tests), sum(t.high for t in tests)


def _per_second(requests: Sequence[Request], model: ModelResult, alpha: float) -> list[SecondRow]:
    groups: dict[int, list[tuple[RuleBounds, int, int, int, int]]] = {}
    for b in model.rules:
        for sb in b.seconds:
            groups.setdefault(sb.second, []).append((b, sb.n_lo, sb.n_hi, sb.k_lo, sb.k_hi))
    sent = Counter(int(r.start) for r in requests if r.answered)
    sampled = Counter(int(r.start) for r in requests if r.answered and r.sampled)
    certain = Counter(r.certain_second for r in requests if r.answered and r.sampled and r.certain_second is not None)
    tail = alpha / max(1, len(groups))
    rows = []
    for s in sorted(set(groups) | set(sent)):
        parts = groups.get(s, [])
        high = sampled_count([(n_hi, k_hi, b.rule.rate) for b, _, n_hi, _, k_hi in parts]).upper(tail)
        low = sampled_count([(n_lo, k_lo, b.rule.rate) for b, n_lo, _, k_lo, _ in parts]).lower(tail)
        rows.append(SecondRow(s, sent[s], sampled[s], certain[s], low, high))
    return rows


def _describe_rules(result: XRaySamplingResult) -> str:
    mode = "shared quota" if result.rules.mode == "centralized" else "per-process reservoirs"
    source = result.rules.source or "the backend"
    return f"{result.rules.mode} rules from {source} ({mode}, {result.model.processes} app processes)"


def _count_check(result: XRaySamplingResult) -> CheckResult:
    if not result.tests:
        return CheckResult("xray", COUNT_CHECK, "unverifiable", "nothing to check: no answered request")
    parts = []
    for t in result.tests:
        b = t.bounds
        lo, hi = b.mean_range()
        expected = f"{lo:.1f}" if abs(hi - lo) < 0.05 else f"{lo:.1f}-{hi:.1f}"
        parts.append(
            f"{b.rule.describe()}: {b.observed} sampled of {b.n} requests, expected {expected} "
            f"(reservoir takes {b.k_lo}" + (f"-{b.k_hi}" if b.k_hi != b.k_lo else "") + ", incl. "
            f"{b.startup} start-up), {1 - t.alpha:.4g} interval {t.low}-{t.high}: {'ok' if t.passed else 'OUTSIDE'}"
        )
    failed = [t for t in result.tests if not t.passed]
    hint = _hint(result) if failed else ""
    detail = "; ".join(parts) + f". {_describe_rules(result)}" + (f". {hint}" if hint else "")
    if result.model.notes:
        detail += ". " + "; ".join(result.model.notes)
    if not failed and result.fallback_interval is not None:
        f_lo, f_hi = result.fallback_interval
        if f_lo <= result.observed <= f_hi:  # the count fits the rule, and the fallback just as well
            return CheckResult(
                "xray",
                COUNT_CHECK,
                "unverifiable",
                f"{TOO_FEW_TO_TELL} the rule from the SDK's silent fallback (1 request/s + 5 % per process, used "
                f"when it cannot get its rules): {result.observed} sampled is inside the fallback's "
                f"{FALLBACK_LEVEL:.0%} interval {f_lo}-{f_hi} too; run longer or with more users. {detail}",
            )
    return CheckResult("xray", COUNT_CHECK, "fail" if failed else "pass", detail)


def _second_check(result: XRaySamplingResult) -> CheckResult:
    if not result.seconds:
        return CheckResult("xray", SECOND_CHECK, "unverifiable", "nothing to check: no answered request")
    over = [row for row in result.seconds if row.sampled_certain > row.high]
    tail = result.alpha / max(1, len(result.seconds))
    if not over:
        busiest = max(result.seconds, key=lambda row: row.sampled)
        return CheckResult(
            "xray",
            SECOND_CHECK,
            "pass",
            f"{len(result.seconds)} seconds, each within its allowance (alpha {tail:.2g} per second); busiest "
            f"second: {busiest.sampled} sampled of {busiest.sent} sent (allowance {busiest.high})",
        )
    t0 = result.seconds[0].second
    shown = ", ".join(f"+{row.second - t0}s: {row.sampled_certain} > {row.high}" for row in over[:5])
    return CheckResult(
        "xray",
        SECOND_CHECK,
        "fail",
        f"{len(over)} of {len(result.seconds)} seconds sampled more than the reservoir allows ({shown}); "
        f"{_describe_rules(result)}. More than the reservoir per second usually means every process has its "
        "own reservoir (local rules, or the reservoir multiplied by the worker count)",
    )


def _match_check(requests: Sequence[Request], rules: XRayRuleSet) -> CheckResult:
    configured = [r for r in rules.rules[:-1]]
    used = Counter(r.rule for r in requests)
    if not configured:
        only = f"only the {rules.default.describe()} rule is configured; it decides every request"
        return CheckResult("xray", MATCH_CHECK, "pass", only)
    matched = [r for r in configured if used[r.name]]
    skipped = [f"{r.name}: {r.ignored}" for r in configured if r.ignored]
    if matched:
        share = ", ".join(f"{r.name} {used[r.name]}" for r in matched)
        rest = used[rules.default.name]
        share += f", {rules.default.name} {rest}" if rest else ""
        return CheckResult("xray", MATCH_CHECK, "pass", f"requests per rule: {share}")
    wanted = "; ".join(
        f"{r.name} wants service '{r.service}', host '{r.host}', method '{r.method}', path '{r.path}'"
        for r in configured
    )
    return CheckResult(
        "xray",
        MATCH_CHECK,
        "fail",
        f"none of the {sum(used.values())} requests matched a configured rule, so the {rules.default.describe()} "
        f"rule decided them all ({wanted})" + (f"; the SDK skips {'; '.join(skipped)}" if skipped else ""),
    )


def _hint(result: XRaySamplingResult) -> str:
    """A likely cause, from the direction of the miss."""
    low = any(t.bounds.observed < t.low for t in result.tests)
    if low and result.rules.mode == "centralized":
        return (
            "fewer than expected: if the SDK cannot reach the daemon's TCP side (sampling rules and quotas) it "
            "silently falls back to 1 request/s + 5 % per process; segments lost between the daemon and X-Ray "
            "also look like this"
        )
    if low:
        return "fewer than expected: are the local rules loaded (a wrong file path falls back to 1 request/s + 5 %)?"
    return (
        "more than expected: a larger rate or reservoir than configured, e.g. a reservoir per process "
        "(local rules) where a shared quota was expected"
    )


# ---- glue for the X-Ray verifier -------------------------------------------------------------


def read_served_rules(client: Any) -> dict[str, Any]:
    """The rules the X-Ray service serves (GetSamplingRules, every page), as a rules document."""
    records: list[Any] = []
    token: str | None = None
    while True:
        page = client.get_sampling_rules(**({"NextToken": token} if token else {}))
        records += page.get("SamplingRuleRecords", [])
        token = page.get("NextToken")
        if not token:
            return {"SamplingRuleRecords": records}


def sampling_checks(
    sent: Sequence[SentRequest],
    found_trace_ids: Collection[str],
    *,
    expected: XRayRuleSet | None,
    served: XRayRuleSet | None,
    served_error: str,
    service: str,
    processes: int,
    alpha: float,
    decided_at: Mapping[str, float] | None = None,
) -> tuple[list[CheckResult], dict[str, Any]]:
    """The X-Ray sampling checks and the summary section. The expectation is the configured rules, else
    what the backend serves; when neither is known the checks are unverifiable with the reason."""
    rules = expected or served
    if rules is None:
        why = f"no expected sampling rules were given and GetSamplingRules failed: {served_error}"
        checks = [CheckResult("xray", name, "unverifiable", why) for name in (COUNT_CHECK, SECOND_CHECK, MATCH_CHECK)]
        return checks, {"xray": {"verdict": "unverifiable", "reason": why}}
    result = check_xray_sampling(
        sent, found_trace_ids, rules, service=service, processes=processes, alpha=alpha, decided_at=decided_at
    )
    if expected is not None:
        result.served = served
        if served is not None and (differs := _served_differs(expected, served)):
            # The likeliest cause by far: the app samples by what the service serves, not by the file.
            result.checks = [
                replace(c, detail=f"{c.detail}. {differs}") if c.name == COUNT_CHECK and c.status == "fail" else c
                for c in result.checks
            ]
    return result.checks, {"xray": result.section()}


def _served_differs(expected: XRayRuleSet, served: XRayRuleSet) -> str:
    """What the service serves that differs from the expected rules (by rule name): '' when nothing does.
    Local rules are the app's own file, whatever the service serves."""
    if expected.mode != "centralized":
        return ""
    serving = {r.name: r for r in served.rules}
    changed = [
        f"{r.describe()} is served as {serving[r.name].describe()}"
        for r in expected.rules
        if r.name in serving and (r.reservoir, r.rate) != (serving[r.name].reservoir, serving[r.name].rate)
    ]
    missing = [r.name for r in expected.rules if r.name not in serving and not r.is_default]
    parts = changed + ([f"not served at all: {', '.join(missing)}"] if missing else [])
    return f"GetSamplingRules differs from the expected rules: {'; '.join(parts)}" if parts else ""
