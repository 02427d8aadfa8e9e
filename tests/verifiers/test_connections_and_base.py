"""Connections from the environment, secrets kept out of repr, the rate limiter, matching and make_verifiers."""

from __future__ import annotations

import re

import pytest

from verifiers.base import CheckSpec, Findings, RateLimiter, RunWindow, lookup_path, make_verifiers, run_checks
from verifiers.connections import ConfigError, Connections
from verifiers.expectations import MISSING
from verifiers.matching import tally
from verifiers.model import BACKENDS, CheckResult

SECRETS = {
    "HONEYCOMB_API_KEY": "hc-key-7f3a9",
    "ROLLBAR_READ_ACCESS_TOKEN": "rb-token-55e1",
    "AWS_ACCESS_KEY_ID": "AKIAEXAMPLE123",
    "AWS_SECRET_ACCESS_KEY": "aws-secret-9b8c7d",
    "AWS_SESSION_TOKEN": "session-token-42",
}
ENV = {**SECRETS, "AWS_DEFAULT_REGION": "eu-west-1"}


def test_from_env_reads_the_real_variable_names():
    c = Connections.from_env(
        {
            **ENV,
            "HONEYCOMB_API_ENDPOINT": "http://127.0.0.1:4318/",
            "AWS_ENDPOINT_URL_XRAY": "http://127.0.0.1:4567",
            "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": "http://127.0.0.1:4566",
            "ROLLBAR_API_ENDPOINT": "http://127.0.0.1:4580/api/1",
        }
    )
    assert c.honeycomb_api_url == "http://127.0.0.1:4318"
    assert c.rollbar_api_url == "http://127.0.0.1:4580/api/1/"  # the slash urljoin needs
    assert (c.xray_endpoint_url, c.logs_endpoint_url) == ("http://127.0.0.1:4567", "http://127.0.0.1:4566")
    assert (c.aws_region, c.aws_access_key_id, c.honeycomb_api_key) == ("eu-west-1", "AKIAEXAMPLE123", "hc-key-7f3a9")


def test_defaults_are_the_saas_endpoints():
    c = Connections.from_env({**ENV, "AWS_DEFAULT_REGION": "", "AWS_REGION": "us-west-2"})
    assert c.honeycomb_api_url == "https://api.honeycomb.io"
    assert c.rollbar_api_url == "https://api.rollbar.com/api/1/"
    assert c.xray_endpoint_url is None and c.logs_endpoint_url is None
    assert c.aws_region == "us-west-2"


@pytest.mark.parametrize("variable", ["HONEYCOMB_API_KEY", "ROLLBAR_READ_ACCESS_TOKEN", "AWS_DEFAULT_REGION"])
def test_a_missing_variable_is_named_with_how_to_set_it(variable):
    env = {k: v for k, v in ENV.items() if k != variable}
    with pytest.raises(ConfigError) as err:
        Connections.from_env(env)
    message = str(err.value)
    assert message.startswith(f"{variable} is not set: export {variable}=<")
    assert not any(secret in message for secret in SECRETS.values())


def test_only_the_backends_asked_for_are_required():
    c = Connections.from_env({"AWS_REGION": "us-east-1"}, backends=("xray", "cloudwatch_logs"))
    assert c.honeycomb_api_key == "" and c.aws_region == "us-east-1"
    with pytest.raises(ConfigError, match="ROLLBAR_READ_ACCESS_TOKEN"):
        Connections.from_env({}, backends=("rollbar",))


def test_repr_and_str_never_show_secrets():
    c = Connections.from_env(ENV)
    for text in (repr(c), str(c), f"{c}", repr([c])):
        assert not any(secret in text for secret in SECRETS.values()), text
    assert "honeycomb_api_key=<set>" in repr(c) and "aws_region='eu-west-1'" in repr(c)
    assert "rollbar_read_token=<not set>" in repr(Connections())


def test_boto3_clients_use_the_endpoints_and_region():
    c = Connections.from_env(
        {
            **ENV,
            "AWS_ENDPOINT_URL_XRAY": "http://127.0.0.1:4567",
            "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": "http://127.0.0.1:4566",
        }
    )
    xray, logs = c.xray_client(), c.logs_client()
    assert xray.meta.endpoint_url == "http://127.0.0.1:4567" and xray.meta.region_name == "eu-west-1"
    assert logs.meta.endpoint_url == "http://127.0.0.1:4566"
    assert xray._request_signer._credentials.access_key == "AKIAEXAMPLE123"


def test_half_a_key_pair_is_a_config_error():
    with pytest.raises(ConfigError, match="AWS_SECRET_ACCESS_KEY"):
        Connections(aws_region="us-east-1", aws_access_key_id="AKIA").xray_client()


def test_rate_limiter_spaces_calls():
    now = [0.0]
    slept: list[float] = []

    def sleep(s: float) -> None:
        slept.append(s)
        now[0] += s

    limiter = RateLimiter(2, 1.0, clock=lambda: now[0], sleep=sleep)
    for _ in range(5):
        limiter.wait()
    assert slept == [1.0, 1.0]  # 2 a second: calls 3 and 5 wait for the window to slide
    assert now[0] == 2.0


def test_tally_counts_expected_found_missing_extra_and_duplicates():
    result = tally(["a", "a", "b", "x"], ours=lambda k: k in {"a", "b", "c"}, expected={"a": 1, "b": 1, "c": 2})
    assert (result.expected_total, result.found_total, result.missing_total, result.extra_total) == (4, 2, 2, 1)
    assert result.missing == {"c": 2} and result.duplicates == {"a": 1} and result.extra == {"x": 1}
    undecided = tally(["t1", "t1", "t9"], ours=lambda k: k != "t9", expected=None)
    assert (undecided.expected_total, undecided.found_total, undecided.missing_total) == (None, 1, None)
    assert undecided.duplicates == {"t1": 1}


def test_lookup_path_handles_nested_and_dotted_keys():
    data = {"cruddur": {"result": {"results_size": 3}, "a.b": 1}}
    assert lookup_path(data, "cruddur.result.results_size") == 3
    assert lookup_path(data, "cruddur.a.b") == 1
    assert lookup_path(data, "cruddur.nope") is MISSING
    assert lookup_path({"custom": {"request_id": "r"}}, "custom.request_id") == "r"


def test_make_verifiers_returns_one_per_backend_in_order():
    verifiers = make_verifiers(Connections(honeycomb_api_key="k", rollbar_read_token="t", aws_region="us-east-1"))
    assert [v.backend for v in verifiers] == list(BACKENDS)
    assert [v.backend for v in make_verifiers(Connections(), backends=["rollbar", "xray"])] == ["xray", "rollbar"]
    assert not any("k" == part for v in verifiers for part in repr(v).split("'"))


def test_run_window_rejects_an_end_before_the_start():
    with pytest.raises(ValueError, match="ends"):
        RunWindow("r", 10.0, 5.0, "s", "g", "e")


def test_a_pattern_that_breaks_at_check_time_makes_its_check_unverifiable_not_the_run_crash() -> None:
    def broken(_: object) -> Findings:
        re.compile("[a-G]")  # as "[a-{method}]" filled with GET
        raise AssertionError("not reached")

    fine = CheckSpec[object]("fine", lambda _: CheckResult("xray", "fine", "pass", "ok"))
    results = run_checks("xray", [CheckSpec[object]("broken", broken), fine], object())
    assert [(r.name, r.status) for r in results] == [("broken", "unverifiable"), ("fine", "pass")]
    assert "does not compile with a request's values filled in (bad character range a-G" in results[0].detail
