"""OpenTelemetry head sampling, decided exactly: the generator knows every trace id the sampler sees.

The SDK's ``TraceIdRatioBased(rate)`` keeps a trace when the low 64 bits of its id are below
``round(rate * 2**64)``; ``ParentBased`` samplers follow a remote parent's sampled flag and ask the
ratio only for root spans. So:

- ``traceidratio``: the generator's traceparent is continued (same trace id) but its flag is
  ignored: the ratio decides on the generator's trace id.
- ``parentbased_*``: a sampled traceparent would decide for the app, so the generator sends none
  (mode "root"): the app starts its own trace, and the trace id comes back in the W3C
  ``traceresponse`` header the app returns (Trace Context Level 2).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

from verifiers.model import Backend, CheckResult, SentRequest

SAMPLERS = (
    "always_on",
    "always_off",
    "traceidratio",
    "parentbased_always_on",
    "parentbased_always_off",
    "parentbased_traceidratio",
)
_LOW_64 = (1 << 64) - 1
CHECK_NAME = "OTel head sampling: the traces kept are exactly those the sampler must keep"


def ratio_bound(rate: float) -> int:
    """The SDK's ``TraceIdRatioBased.get_bound_for_rate``."""
    return round(rate * (_LOW_64 + 1))


def ratio_keeps(trace_id: str, rate: float) -> bool:
    return int(trace_id, 16) & _LOW_64 < ratio_bound(rate)


@dataclass(frozen=True)
class OtelSampler:
    name: str  # an OTEL_TRACES_SAMPLER value
    arg: float | None = None  # OTEL_TRACES_SAMPLER_ARG (ratio samplers)

    def __post_init__(self) -> None:
        if self.name not in SAMPLERS:
            raise ValueError(f"unknown OTel sampler {self.name!r}; use one of {', '.join(SAMPLERS)}")
        if self.name.endswith("traceidratio"):
            if self.arg is None or not 0.0 <= self.arg <= 1.0:
                raise ValueError(f"{self.name} needs a sampler argument from 0 to 1, got {self.arg!r}")

    @property
    def parent_based(self) -> bool:
        return self.name.startswith("parentbased_")

    @property
    def root_rate(self) -> float:
        """What the sampler keeps of traces it starts itself (the SDK reads a bad argument as 1.0)."""
        base = self.name.removeprefix("parentbased_")
        return {"always_on": 1.0, "always_off": 0.0}.get(base, self.arg if self.arg is not None else 1.0)

    @property
    def traceparent_mode(self) -> str:
        """ "none": the generator sends no traceparent, so the root sampler decides (parent-based samplers);
        "sampled": the generator's traceparent (flag 01) is sent and continued."""
        return "none" if self.parent_based else "sampled"

    def keeps(self, trace_id: str, parent_sampled: bool | None) -> bool:
        """The SDK's decision for a server span in trace ``trace_id`` whose remote parent was sampled
        (True), not sampled (False) or absent (None)."""
        if self.parent_based and parent_sampled is not None:
            return parent_sampled
        return ratio_keeps(trace_id, self.root_rate)

    def describe(self) -> str:
        return self.name if self.arg is None or not self.name.endswith("traceidratio") else f"{self.name} {self.arg:g}"


@dataclass
class OtelSamplingResult:
    sampler: OtelSampler
    decided: int = 0  # answered requests whose trace id is known
    undecidable: int = 0  # no trace id to decide on (root mode without a traceresponse header)
    should_keep: int = 0
    kept: int = 0
    kept_should_drop: list[str] | None = None  # request ids
    dropped_should_keep: list[str] | None = None
    app_disagrees: int = 0  # the app's traceresponse flag differs from the expected decision
    check: CheckResult | None = None

    @property
    def mode(self) -> str:
        if self.sampler.traceparent_mode == "none":
            return (
                "no traceparent sent: the app's root sampler decided on its own trace ids "
                "(read back from its traceresponse header)"
            )
        ignored = "" if self.sampler.parent_based else "; the sampler ignores its sampled flag"
        return f"traceparent sent with sampled flag 01: the app continued the generator's trace ids{ignored}"

    def section(self) -> dict[str, Any]:
        head = {
            "configured": {"sampler": self.sampler.name, "arg": self.sampler.arg},
            "mode": self.mode,
            "traceparent": self.sampler.traceparent_mode,
        }
        if self.kept_should_drop is None or self.dropped_should_keep is None:  # nothing was decided
            return {**head, "verdict": "unverifiable", "reason": self.check.detail if self.check else ""}
        return {
            **head,
            "decided": self.decided,
            "undecidable": self.undecidable,
            "expected": self.should_keep,
            "observed": self.kept,
            "kept_but_should_have_dropped": len(self.kept_should_drop or []),
            "dropped_but_should_have_kept": len(self.dropped_should_keep or []),
            "app_traceresponse_disagrees": self.app_disagrees,
            "verdict": self.check.status if self.check else "unverifiable",
        }


def expected_keep(r: SentRequest, sampler: OtelSampler) -> bool | None:
    """Must the sampler keep this request's trace? None: cannot be decided (no trace id known)."""
    if not r.traceparent_sent and r.app_sampled is None:
        return None  # the app started its own trace and did not say which
    return sampler.keeps(r.trace_id, True if r.traceparent_sent else None)


def check_otel_sampling(
    sent: Sequence[SentRequest], kept_trace_ids: Collection[str], sampler: OtelSampler, backend: Backend = "honeycomb"
) -> OtelSamplingResult:
    """Compare the traces found (``kept_trace_ids``: traces with a server span) with the exact decisions."""
    result = OtelSamplingResult(sampler, kept_should_drop=[], dropped_should_keep=[])
    assert result.kept_should_drop is not None and result.dropped_should_keep is not None
    for r in sent:
        if r.status is None:
            continue
        want = expected_keep(r, sampler)
        if want is None:
            result.undecidable += 1
            continue
        result.decided += 1
        got = r.trace_id in kept_trace_ids
        result.should_keep += want
        result.kept += got
        if r.app_sampled is not None and r.app_sampled != want:
            result.app_disagrees += 1
        if got and not want:
            result.kept_should_drop.append(r.request_id)
        elif want and not got:
            result.dropped_should_keep.append(r.request_id)
    result.check = _check(result, backend)
    return result


def _check(res: OtelSamplingResult, b: Backend) -> CheckResult:
    assert res.kept_should_drop is not None and res.dropped_should_keep is not None
    name = f"{CHECK_NAME} ({res.sampler.describe()})"
    if res.decided == 0:
        why = (
            f"{res.undecidable} requests without a traceresponse header: the app's trace ids are unknown"
            if res.undecidable
            else "no answered request"
        )
        return CheckResult(b, name, "unverifiable", f"nothing to check: {why}")
    counts = (
        f"{res.kept} kept of {res.decided} decided, {res.should_keep} expected; kept but should have dropped: "
        f"{len(res.kept_should_drop)}, dropped but should have kept: {len(res.dropped_should_keep)}"
    )
    extra = f"; {res.undecidable} requests undecidable (no traceresponse)" if res.undecidable else ""
    if res.app_disagrees:
        extra += f"; the app's traceresponse flag disagreed with the expected decision {res.app_disagrees} times"
    wrong = res.kept_should_drop + res.dropped_should_keep
    if not wrong:
        return CheckResult(b, name, "pass", f"{counts}{extra}. Mode: {res.mode}")
    examples = ", ".join(
        [f"{rid} kept" for rid in res.kept_should_drop[:3]] + [f"{rid} dropped" for rid in res.dropped_should_keep[:3]]
    )
    return CheckResult(b, name, "fail", f"{counts}{extra}; e.g. {examples}. Mode: {res.mode}")


def unverifiable_result(sampler: OtelSampler, reason: str, backend: Backend = "honeycomb") -> OtelSamplingResult:
    """When the spans cannot be read (e.g. no Query Data API): the configuration, and why nothing was decided."""
    result = OtelSamplingResult(sampler)
    result.check = CheckResult(backend, f"{CHECK_NAME} ({sampler.describe()})", "unverifiable", reason)
    return result
