"""What sampling the user configured: the expectation the checks compare against, kept in run.json."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol, cast

from verifiers.sampling.otel import OtelSampler
from verifiers.sampling.xray_rules import XRayRuleSet, parse_rules

DEFAULT_ALPHA = 0.001


@dataclass(frozen=True)
class SamplingConfig:
    alpha: float = DEFAULT_ALPHA  # significance of the statistical (X-Ray) tests
    otel_sampler: str | None = None  # OTEL_TRACES_SAMPLER the app runs with; None: SDK default, not checked
    otel_sampler_arg: float | None = None
    # The X-Ray rules the app's sampling is expected to follow, as a rules document (any shape
    # xray_rules.parse_rules reads); None: read what the backend serves (GetSamplingRules).
    xray_rules: Any = None
    xray_rules_source: str = ""
    app_processes: int = 2  # processes of the app, each with its own X-Ray sampler
    notes: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 0.5:
            raise ValueError(f"the sampling significance must be between 0 and 0.5, got {self.alpha}")
        if self.app_processes < 1:
            raise ValueError(f"the app needs at least one process, got {self.app_processes}")
        self.otel()  # validates
        if self.xray_rules is not None:
            self.xray_ruleset()

    def otel(self) -> OtelSampler | None:
        return None if self.otel_sampler is None else OtelSampler(self.otel_sampler, self.otel_sampler_arg)

    def xray_ruleset(self) -> XRayRuleSet | None:
        if self.xray_rules is None:
            return None
        return parse_rules(self.xray_rules, self.xray_rules_source or "the expected rules")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["notes"] = list(self.notes)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SamplingConfig:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        known["notes"] = tuple(known.get("notes") or ())
        return cls(**known)


class ChecksSampling(Protocol):
    sampling: SamplingConfig | None


def attach(verifiers: Iterable[object], config: SamplingConfig | None) -> None:
    """Give the verifiers that check sampling (those with a ``sampling`` attribute) the configuration."""
    for verifier in verifiers:
        if hasattr(verifier, "sampling"):
            cast(ChecksSampling, verifier).sampling = config


def sampling_section(
    config: SamplingConfig | None, entries: Iterable[tuple[str, dict[str, Any] | None]]
) -> dict[str, Any]:
    """summary.json "sampling": per mechanism (otel, xray) what was configured, observed and expected.
    ``entries``: (backend, its BackendReport.sampling)."""
    section: dict[str, Any] = {"alpha": config.alpha if config else DEFAULT_ALPHA}
    for _backend, entry in entries:
        if entry:
            section.update(entry)
    if config and config.notes:
        section["notes"] = list(config.notes)
    return section
