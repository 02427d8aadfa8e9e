"""Sampling in the verifiers' reports: Honeycomb's expected set under a head sampler, X-Ray's checks,
the summary section and report.html's chart."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from typing import Any

from tests.verifiers import EXP, HOME, ledger
from tests.verifiers.test_honeycomb_checks import good_rows, observe
from verifiers.connections import Connections
from verifiers.honeycomb import HoneycombVerifier
from verifiers.model import SentRequest
from verifiers.sampling.chart import per_second_svg, sampling_html
from verifiers.sampling.config import SamplingConfig, attach, sampling_section
from verifiers.sampling.otel import ratio_keeps
from verifiers.sampling.xray_check import sampling_checks
from verifiers.sampling.xray_rules import parse_rules
from verifiers.xray import XRayVerifier

RATIO = SamplingConfig(otel_sampler="traceidratio", otel_sampler_arg=0.5)


def test_attach_reaches_only_the_verifiers_that_check_sampling() -> None:
    honeycomb, xray, other = (
        HoneycombVerifier(Connections(honeycomb_api_key="k"), EXP),
        XRayVerifier(Connections()),
        object(),
    )
    attach([honeycomb, xray, other], RATIO)
    assert honeycomb.sampling is RATIO and xray.sampling is RATIO and not hasattr(other, "sampling")
    assert HoneycombVerifier.sampling is None  # the class default stays off


def _sampled_ledger() -> tuple[list[SentRequest], set[str]]:
    # Trace ids spread over the low 64 bits, as the generator's random ones are.
    sent = [replace(s, trace_id=hashlib.sha256(s.request_id.encode()).hexdigest()[:32]) for s in ledger(*[HOME] * 40)]
    return sent, {s.trace_id for s in sent if ratio_keeps(s.trace_id, 0.5)}


def test_honeycomb_expects_only_the_kept_traces_and_counts_mismatches() -> None:
    sent, keep = _sampled_ledger()
    assert 0 < len(keep) < 40
    verifier = HoneycombVerifier(Connections(honeycomb_api_key="k"), EXP)
    verifier.sampling = RATIO
    rows = good_rows([s for s in sent if s.trace_id in keep])
    report = verifier.verify(sent, observe(rows, sent), EXP)
    assert report.missing == 0 and report.expected == 2 * len(keep)  # a server and a child span each
    assert all(c.status == "pass" for c in report.checks), [(c.name, c.detail) for c in report.checks]
    otel = (report.sampling or {})["otel"]
    assert otel["expected"] == otel["observed"] == len(keep) and otel["verdict"] == "pass"

    dropped = next(s for s in sent if s.trace_id not in keep)  # the app kept one it should have dropped
    report = verifier.verify(sent, observe({**rows, **good_rows([dropped])}, sent), EXP)
    failed = [c for c in report.checks if c.status == "fail"]
    assert [c.name for c in failed] == [next(c.name for c in report.checks if "OTel head sampling" in c.name)]
    assert (report.sampling or {})["otel"]["kept_but_should_have_dropped"] == 1

    without = HoneycombVerifier(Connections(honeycomb_api_key="k"), EXP)  # no sampler: every request expected
    assert without.verify(sent, observe(rows, sent), EXP).missing == 2 * (40 - len(keep))


def test_no_rules_anywhere_makes_the_xray_checks_unverifiable() -> None:
    checks, section = sampling_checks(
        [], set(), expected=None, served=None, served_error="AccessDenied", service="s", processes=2, alpha=0.001
    )
    assert [c.status for c in checks] == ["unverifiable"] * 3 and "AccessDenied" in checks[0].detail
    assert section == {"xray": {"verdict": "unverifiable", "reason": checks[0].detail}}


def _xray_section() -> dict[str, Any]:
    fields = {"ServiceName": "*", "Host": "*", "HTTPMethod": "*", "URLPath": "*", "ServiceType": "*", "Priority": 1}
    rule = {"SamplingRule": {"RuleName": "R", "ReservoirSize": 1, "FixedRate": 0.0, **fields}}
    sent = [replace(s, app_process="p1") for s in ledger(*[HOME] * 30)]
    _, section = sampling_checks(
        sent, {sent[0].xray_trace_id}, expected=parse_rules(rule, "r"), served=None, served_error="",
        service="backend-flask", processes=1, alpha=0.001,
    )  # fmt: skip
    return section


def test_summary_section_and_chart() -> None:
    xray = _xray_section()
    summary = sampling_section(RATIO, [("xray", xray), ("honeycomb", None)])
    assert summary["alpha"] == 0.001 and summary["xray"]["verdict"] in ("pass", "fail")
    json.dumps(summary)  # summary.json material
    html = sampling_html(summary)
    assert "<h2>Sampling</h2>" in html and "<svg" in html and "R (reservoir 1/s, rate 0)" in html
    svg = per_second_svg(
        [
            {"t": 10, "sent": 5, "sampled": 1, "low": 0, "high": 2},
            {"t": 11, "sent": 0, "sampled": 0, "low": 0, "high": 0},
        ]
    )
    assert svg.count("<polyline") == 2 and "<polygon" in svg and "1s" in svg


def test_a_failed_count_names_the_served_rule_that_differs_from_the_expected_one() -> None:
    fields = {"ServiceName": "*", "Host": "*", "HTTPMethod": "*", "URLPath": "*", "ServiceType": "*", "Priority": 1}
    intended = parse_rules({"SamplingRule": {"RuleName": "R", "ReservoirSize": 0, "FixedRate": 0.1, **fields}}, "i")
    served = parse_rules({"SamplingRule": {"RuleName": "R", "ReservoirSize": 0, "FixedRate": 0.5, **fields}}, "s")
    sent = [replace(s, app_process="p1") for s in ledger(*[HOME] * 200)]
    every_other = {s.xray_trace_id for s in sent[::2]}  # sampled as the served rule says
    args: dict[str, Any] = dict(served_error="", service="backend-flask", processes=1, alpha=0.001)
    checks, _ = sampling_checks(sent, every_other, expected=intended, served=served, **args)
    count = next(c for c in checks if c.status == "fail")
    assert "GetSamplingRules differs from the expected rules: R (reservoir 0/s, fixed rate 0.1) is served as " in (
        count.detail
    )
    # served as expected: no such sentence (the miss has another cause)
    same, _ = sampling_checks(sent, every_other, expected=intended, served=intended, **args)
    assert all("GetSamplingRules differs" not in c.detail for c in same)
