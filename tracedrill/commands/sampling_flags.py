"""`tracedrill run` flags for the sampling under test (see tracedrill/sampling.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from tracedrill.sampling import SamplingOptions
from verifiers.sampling.config import DEFAULT_ALPHA
from verifiers.sampling.otel import SAMPLERS


def add_sampling_flags(group: argparse._ActionsContainer) -> None:
    group.add_argument(
        "--otel-sampler",
        choices=SAMPLERS,
        metavar="NAME",
        help="OTEL_TRACES_SAMPLER for the bundled app, checked exactly against every trace id "
        "(traceidratio, parentbased_traceidratio, ...; default: OTEL_TRACES_SAMPLER if set, else not checked)",
    )
    group.add_argument(
        "--otel-sampler-arg",
        type=float,
        metavar="RATIO",
        help="OTEL_TRACES_SAMPLER_ARG: the ratio a traceidratio sampler keeps, e.g. 0.25",
    )
    group.add_argument(
        "--xray-rule",
        type=Path,
        metavar="FILE",
        help="X-Ray sampling rules the local X-Ray emulator serves (CreateSamplingRule JSON), or a local "
        'rules file ({"version": 2, ...}) the bundled app samples with; also the expectation '
        "(default: the bundled target_app/xray-sampling-rules.json)",
    )
    group.add_argument(
        "--expect-xray-rule",
        type=Path,
        metavar="FILE",
        help="verify X-Ray sampling against this rule instead of the one the app gets (same formats)",
    )
    group.add_argument(
        "--sampling-alpha",
        type=float,
        default=DEFAULT_ALPHA,
        metavar="ALPHA",
        help=f"significance of the statistical X-Ray sampling tests (default {DEFAULT_ALPHA}): a correct "
        "run fails them with at most this probability",
    )


def sampling_options(args: argparse.Namespace) -> SamplingOptions:
    return SamplingOptions(
        otel_sampler=args.otel_sampler,
        otel_sampler_arg=args.otel_sampler_arg,
        xray_rule=args.xray_rule,
        expect_xray_rule=args.expect_xray_rule,
        alpha=args.sampling_alpha,
    )
