"""`tracedrill run` sampling flags: what the app, Locust and the local X-Ray emulator get, and what is expected."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from emulators.stack import DEFAULT_SAMPLING_RULES
from tracedrill.cli import build_parser
from tracedrill.commands.common import load_plan
from tracedrill.commands.run import drill_options_from
from tracedrill.commands.sampling_flags import sampling_options
from tracedrill.drill import UsageError
from tracedrill.sampling import SamplingOptions, SamplingSetupError, plan_sampling
from verifiers.sampling.config import SamplingConfig


def plan(
    options: SamplingOptions, backends: str = "local", environ: dict[str, str] | None = None, bundled: bool = True
):
    return plan_sampling(options, backends=backends, bundled_target=bundled, app_workers=3, environ=environ or {})


def rule_file(tmp_path: Path, name: str, reservoir: int, rate: float) -> Path:
    path = tmp_path / name
    rule = {
        "RuleName": "Cruddur", "ResourceARN": "*", "Priority": 9000, "FixedRate": rate, "ReservoirSize": reservoir,
        "ServiceName": "backend-flask", "ServiceType": "*", "Host": "*", "HTTPMethod": "*", "URLPath": "*",
        "Version": 1,
    }  # fmt: skip
    path.write_text(json.dumps({"SamplingRule": rule}))
    return path


def test_defaults_expect_the_rules_the_local_stack_serves() -> None:
    result = plan(SamplingOptions())
    assert result.app_env == {} and result.locust_env == {} and result.traceparent and result.stack_rules is None
    rules = result.config.xray_ruleset()
    assert rules is not None and result.config.xray_rules_source == str(DEFAULT_SAMPLING_RULES)
    assert result.config.otel() is None and result.config.app_processes == 3
    assert plan(SamplingOptions(), backends="cloud").config.xray_rules is None  # cloud: what X-Ray serves


def test_a_parent_based_sampler_makes_locust_send_no_traceparent() -> None:
    result = plan(SamplingOptions(otel_sampler="parentbased_traceidratio", otel_sampler_arg=0.25))
    assert result.app_env == {"OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.25"}
    assert result.locust_env == {"TRACEDRILL_TRACEPARENT": "none"} and not result.traceparent
    plain = plan(SamplingOptions(otel_sampler="traceidratio", otel_sampler_arg=0.5))
    assert plain.traceparent and plain.config.otel_sampler_arg == 0.5
    from_env = plan(SamplingOptions(), environ={"OTEL_TRACES_SAMPLER": "traceidratio", "OTEL_TRACES_SAMPLER_ARG": "x"})
    assert from_env.config.otel_sampler_arg == 1.0 and "not a number" in from_env.config.notes[0]
    unreached = plan(SamplingOptions(otel_sampler="traceidratio", otel_sampler_arg=0.5), bundled=False)
    assert unreached.app_env == {} and unreached.config.otel_sampler == "traceidratio"  # --target: expectation only


def test_xray_rule_files_go_to_the_emulator_or_the_app(tmp_path: Path) -> None:
    served = rule_file(tmp_path, "served.json", 1, 0.05)
    result = plan(SamplingOptions(xray_rule=served))
    assert result.stack_rules == served and result.app_env == {"TRACEDRILL_XRAY_SAMPLING": "centralized"}
    local = tmp_path / "local.json"
    local.write_text(json.dumps({"version": 2, "rules": [], "default": {"fixed_target": 2, "rate": 0.1}}))
    local_plan = plan(SamplingOptions(xray_rule=local))
    assert local_plan.stack_rules is None and local_plan.app_env["TRACEDRILL_XRAY_SAMPLING"] == "local"
    assert (local_plan.config.xray_ruleset() or pytest.fail()).mode == "local"
    expected = rule_file(tmp_path, "expected.json", 5, 0.1)
    both = plan(SamplingOptions(xray_rule=served, expect_xray_rule=expected))
    assert both.stack_rules == served and (both.config.xray_ruleset() or pytest.fail()).rules[0].reservoir == 5
    cloud = plan(SamplingOptions(xray_rule=served), backends="cloud")
    assert cloud.stack_rules is None and "only the expectation" in cloud.config.notes[0]
    # The configuration survives run.json.
    assert SamplingConfig.from_dict(json.loads(json.dumps(both.config.to_dict()))) == both.config


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (SamplingOptions(otel_sampler_arg=0.5), "needs --otel-sampler"),
        (SamplingOptions(otel_sampler="traceidratio", otel_sampler_arg=2.0), "from 0 to 1"),
        (SamplingOptions(xray_rule=Path("/nonexistent/rule.json")), "--xray-rule"),
        (SamplingOptions(alpha=0.9), "significance"),
    ],
)
def test_bad_settings_name_the_flag(options: SamplingOptions, message: str) -> None:
    with pytest.raises(SamplingSetupError, match=message):
        plan(options)


def test_the_emulator_must_accept_a_served_rule(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"SamplingRule": {"RuleName": "X", "FixedRate": 0.1, "ReservoirSize": 1}}))
    with pytest.raises(SamplingSetupError, match="missing"):
        plan(SamplingOptions(xray_rule=bad))


def test_run_parses_the_flags() -> None:
    args = build_parser().parse_args(
        ["run", "--otel-sampler", "traceidratio", "--otel-sampler-arg", "0.25", "--xray-rule", "r.json",
         "--expect-xray-rule", "e.json", "--sampling-alpha", "0.01"]
    )  # fmt: skip
    assert sampling_options(args) == SamplingOptions("traceidratio", 0.25, Path("r.json"), Path("e.json"), 0.01)


def test_locusts_load_shape_flags_after_the_separator_become_the_plan() -> None:
    args = build_parser().parse_args(
        ["run", "--users", "10", "--run-time", "5s", "--", "-u", "2", "--spawn-rate=0.5", "-t", "10m", "-L", "DEBUG"]
    )
    plan = load_plan(args)
    assert (plan.users, plan.spawn_rate, plan.run_time) == (2, 0.5, "10m")
    assert tuple(plan.extra_args) == ("-L", "DEBUG")  # the rest still passes through verbatim
    # every form Locust's own parser takes: attached values and abbreviated long flags
    for extra in (["-u1000", "-t1h", "-r50"], ["--user", "1000", "--run-t", "1h", "--spawn", "50"]):
        plan = load_plan(build_parser().parse_args(["run", "--", *extra]))
        assert (plan.users, plan.spawn_rate, plan.run_time, tuple(plan.extra_args)) == (1000, 50.0, "1h", ())
    with pytest.raises(UsageError, match=r"after --: argument -u/--users: invalid int value: 'two'"):
        load_plan(build_parser().parse_args(["run", "--", "-u", "two"]))
    with pytest.raises(UsageError, match=r"after --: argument -t/--run-time: expected one argument"):
        load_plan(build_parser().parse_args(["run", "--", "-t"]))


def test_ui_takes_every_flag_of_run() -> None:
    argv = ["--no-budget", "--fault", "logger-none", "--xray-rule", "r.json", "--users", "3", "--", "-t", "9s"]
    ui, run = (drill_options_from(build_parser().parse_args([command, *argv])) for command in ("ui", "run"))
    assert ui == run and not ui.budget.enabled and ui.fault == "logger-none" and ui.plan.run_time == "9s"
    assert build_parser().parse_args(["ui"]).run_time is None  # the web UI runs until stopped
