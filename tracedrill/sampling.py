"""The sampling a drill runs with and expects: flags -> the app's environment, Locust's mode, the local
X-Ray emulator's rules, and the expectation the sampling checks use (kept in run.json).

- ``--otel-sampler`` / ``--otel-sampler-arg`` (else ``OTEL_TRACES_SAMPLER`` / ``_ARG`` from the
  environment): the bundled app runs with them; parent-based samplers make Locust send no traceparent,
  so the root sampler under test decides, not the generator's sampled flag.
- ``--xray-rule FILE``: centralized rules are what the local X-Ray emulator serves; a local rules file
  (``{"version": 2, ...}``) makes the bundled app sample with it (``TRACEDRILL_XRAY_SAMPLING=local``).
  Either way it is also the expectation. With ``--backends cloud`` it is only the expectation.
- ``--expect-xray-rule FILE``: the expectation alone, when it should differ from what the app gets.
- Without X-Ray flags the expectation is what the app will follow: the local stack's rules file, the
  bundled app's local rules when ``TRACEDRILL_XRAY_SAMPLING=local``, or (cloud) whatever X-Ray serves.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from emulators.stack import DEFAULT_SAMPLING_RULES
from emulators.xray.sampling import SamplingRulesError
from emulators.xray.sampling import parse_rules as emulator_parse_rules
from loadtests.ids import TRACEPARENT_ENV
from target_app.settings import DEFAULT_XRAY_LOCAL_RULES
from verifiers.sampling.config import DEFAULT_ALPHA, SamplingConfig
from verifiers.sampling.otel import SAMPLERS, OtelSampler
from verifiers.sampling.xray_rules import RulesError, XRayRuleSet, load_rules


class SamplingSetupError(ValueError):
    """A sampling flag or file that cannot be used; the message names it."""


@dataclass(frozen=True)
class SamplingOptions:
    otel_sampler: str | None = None
    otel_sampler_arg: float | None = None
    xray_rule: Path | None = None
    expect_xray_rule: Path | None = None
    alpha: float = DEFAULT_ALPHA


@dataclass
class SamplingPlan:
    config: SamplingConfig
    app_env: dict[str, str] = field(default_factory=dict)  # added to the bundled app's environment
    locust_env: dict[str, str] = field(default_factory=dict)  # added to Locust's environment
    stack_rules: Path | None = None  # centralized rules the local X-Ray emulator serves (None: its default)

    @property
    def traceparent(self) -> bool:
        return self.locust_env.get(TRACEPARENT_ENV, "sampled") == "sampled"


def plan_sampling(
    options: SamplingOptions, *, backends: str, bundled_target: bool, app_workers: int, environ: Mapping[str, str]
) -> SamplingPlan:
    notes: list[str] = []
    app_env: dict[str, str] = {}
    locust_env: dict[str, str] = {}
    sampler = _otel_sampler(options, environ, notes)
    if sampler is not None:
        if bundled_target:
            app_env["OTEL_TRACES_SAMPLER"] = sampler.name
            if sampler.arg is not None:
                app_env["OTEL_TRACES_SAMPLER_ARG"] = repr(sampler.arg)
        locust_env[TRACEPARENT_ENV] = sampler.traceparent_mode
    served = options.xray_rule
    served_rules = _load(served, "--xray-rule") if served is not None else None
    stack_rules: Path | None = None
    if served is not None and served_rules is not None:
        if backends != "local":
            notes.append(f"--xray-rule {served}: the backends are not started here, so it is only the expectation")
        elif served_rules.mode == "centralized":
            _check_emulator_accepts(served)
            stack_rules = served
        if bundled_target and served_rules.mode == "local":
            app_env.update({"TRACEDRILL_XRAY_SAMPLING": "local", "TRACEDRILL_XRAY_LOCAL_RULES": str(served.resolve())})
        elif bundled_target:
            app_env["TRACEDRILL_XRAY_SAMPLING"] = "centralized"
    expected_path = options.expect_xray_rule or served or _followed_rules(backends, bundled_target, environ)
    expected = _load(expected_path, "--expect-xray-rule") if expected_path is not None else None
    try:
        config = SamplingConfig(
            alpha=options.alpha,
            otel_sampler=sampler.name if sampler else None,
            otel_sampler_arg=sampler.arg if sampler else None,
            xray_rules=None if expected is None else expected.document,
            xray_rules_source=str(expected_path or ""),
            app_processes=app_workers,
            notes=tuple(notes),
        )
    except (ValueError, RulesError) as exc:
        raise SamplingSetupError(str(exc)) from exc
    return SamplingPlan(config, app_env, locust_env, stack_rules)


def _otel_sampler(options: SamplingOptions, environ: Mapping[str, str], notes: list[str]) -> OtelSampler | None:
    name = options.otel_sampler
    arg = options.otel_sampler_arg
    if name is None and arg is not None:
        raise SamplingSetupError("--otel-sampler-arg needs --otel-sampler")
    if name is None:
        name = (environ.get("OTEL_TRACES_SAMPLER") or "").strip().lower() or None
        if name is None:
            return None
        if name not in SAMPLERS:
            notes.append(f"OTEL_TRACES_SAMPLER={name!r} is not a sampler the OTel SDK knows: not checked")
            return None
        raw = (environ.get("OTEL_TRACES_SAMPLER_ARG") or "").strip()
        if name.endswith("traceidratio"):
            try:
                arg = float(raw)
            except ValueError:
                notes.append(f"OTEL_TRACES_SAMPLER_ARG={raw!r} is not a number: the SDK samples at 1.0")
                arg = 1.0
    try:
        return OtelSampler(name, arg if name.endswith("traceidratio") else None)
    except ValueError as exc:
        raise SamplingSetupError(f"--otel-sampler: {exc}") from exc


def _followed_rules(backends: str, bundled_target: bool, environ: Mapping[str, str]) -> Path | None:
    """The rules the app follows when no X-Ray flag says otherwise (None: ask the backend)."""
    if bundled_target and (environ.get("TRACEDRILL_XRAY_SAMPLING") or "").strip().lower() == "local":
        raw = (environ.get("TRACEDRILL_XRAY_LOCAL_RULES") or "").strip()
        return Path(raw).expanduser() if raw else DEFAULT_XRAY_LOCAL_RULES
    return DEFAULT_SAMPLING_RULES if backends == "local" else None


def _load(path: Path, flag: str) -> XRayRuleSet:
    try:
        return load_rules(path)
    except RulesError as exc:
        raise SamplingSetupError(f"{flag}: {exc}") from exc


def _check_emulator_accepts(path: Path) -> None:
    """The local X-Ray emulator validates like CreateSamplingRule; say so now, not as a crash at start."""
    try:
        emulator_parse_rules(json.loads(path.read_text(encoding="utf-8")), str(path))
    except SamplingRulesError as exc:
        raise SamplingSetupError(f"--xray-rule: {exc}") from exc
