from __future__ import annotations

import pytest

from target_app.settings import ServerSettings, Settings, SettingsError
from tracedrill import local

PORTS = local.LocalPorts()


def test_defaults_point_at_the_local_stack() -> None:
    settings = Settings.from_env({})
    assert settings.otlp_env_defaults == {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{PORTS.honeycomb}",
        "OTEL_EXPORTER_OTLP_HEADERS": f"x-honeycomb-team={local.LOCAL_HONEYCOMB_KEY}",
    }
    assert settings.xray_daemon_address == f"127.0.0.1:{PORTS.xray_daemon}"
    assert settings.cloudwatch_logs_endpoint == f"http://127.0.0.1:{PORTS.cloudwatch_logs}"
    assert settings.rollbar_endpoint == f"http://127.0.0.1:{PORTS.rollbar}/api/1/"
    assert settings.rollbar_access_token == local.LOCAL_ROLLBAR_POST_TOKEN
    assert settings.aws_credentials is not None
    assert settings.aws_credentials.access_key_id == local.LOCAL_AWS_ACCESS_KEY_ID
    assert settings.aws_region == local.LOCAL_AWS_REGION
    assert settings.service_name == settings.xray_tracing_name == local.DEFAULT_SERVICE_NAME
    assert settings.log_group == "cruddur"
    assert settings.rollbar_environment == local.DEFAULT_ROLLBAR_ENVIRONMENT
    assert settings.xray_sampling == "centralized"
    assert settings.disabled == frozenset()


def test_stack_environment_is_taken_verbatim() -> None:
    env = {
        "OTEL_SERVICE_NAME": "svc",
        "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:9001",
        "OTEL_EXPORTER_OTLP_HEADERS": "x-honeycomb-team=k",
        "AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:9002",
        "AWS_XRAY_TRACING_NAME": "xray-svc",
        "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": "http://127.0.0.1:9003",
        "AWS_DEFAULT_REGION": "eu-west-1",
        "AWS_ACCESS_KEY_ID": "id",
        "AWS_SECRET_ACCESS_KEY": "secret",
        "CLOUDWATCH_LOG_GROUP": "group/a",
        "ROLLBAR_ACCESS_TOKEN": "tok",
        "ROLLBAR_ENDPOINT": "http://127.0.0.1:9004/api/1/",
        "ROLLBAR_ENVIRONMENT": "ci",
    }
    settings = Settings.from_env(env)
    assert settings.otlp_env_defaults == {}  # the exporter reads the user's variables itself
    assert (settings.service_name, settings.xray_tracing_name) == ("svc", "xray-svc")
    assert settings.xray_daemon_address == "127.0.0.1:9002"
    assert settings.cloudwatch_logs_endpoint == "http://127.0.0.1:9003"
    assert settings.aws_region == "eu-west-1"
    assert settings.aws_credentials is not None and settings.aws_credentials.secret_access_key == "secret"
    assert settings.log_group == "group/a"
    assert (settings.rollbar_access_token, settings.rollbar_environment) == ("tok", "ci")
    assert settings.rollbar_endpoint == "http://127.0.0.1:9004/api/1/"


def test_rollbar_endpoint_gets_its_trailing_slash() -> None:
    settings = Settings.from_env({"ROLLBAR_ENDPOINT": "http://127.0.0.1:4580/api/1", "ROLLBAR_ACCESS_TOKEN": "t"})
    assert settings.rollbar_endpoint == "http://127.0.0.1:4580/api/1/"


def test_local_credentials_only_for_the_local_logs_endpoint() -> None:
    settings = Settings.from_env({"AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": "https://logs.us-east-1.amazonaws.com"})
    assert settings.aws_credentials is None  # boto3 resolves its own chain


def test_otlp_headers_default_only_with_the_default_endpoint() -> None:
    assert Settings.from_env({"OTEL_EXPORTER_OTLP_HEADERS": "x-honeycomb-team=mine"}).otlp_env_defaults == {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{PORTS.honeycomb}"
    }
    assert (
        Settings.from_env(
            {"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "https://api.honeycomb.io/v1/traces"}
        ).otlp_env_defaults
        == {}
    )


def test_disable_switch_parses_a_comma_list() -> None:
    settings = Settings.from_env({"TRACEDRILL_DISABLE": " OTel , rollbar,,"})
    assert settings.disabled == frozenset({"otel", "rollbar"})
    assert not settings.enabled("otel") and settings.enabled("xray")


def test_local_sampling_uses_the_bundled_rules_by_default() -> None:
    settings = Settings.from_env({"TRACEDRILL_XRAY_SAMPLING": "local"})
    assert settings.xray_sampling == "local"
    assert settings.xray_local_rules.name == "xray-local-rules.json" and settings.xray_local_rules.is_file()


def test_secrets_stay_out_of_repr() -> None:
    env = {"AWS_SECRET_ACCESS_KEY": "s3cr3t-aws", "AWS_ACCESS_KEY_ID": "AKIDEXAMPLE", "ROLLBAR_ACCESS_TOKEN": "rb-tok"}
    text = repr(Settings.from_env(env))
    for secret in (*env.values(), local.LOCAL_HONEYCOMB_KEY):
        assert secret not in text


@pytest.mark.parametrize(
    ("env", "names"),
    [
        ({"TRACEDRILL_DISABLE": "otel,metrics"}, ["TRACEDRILL_DISABLE", "'metrics'", "valid names"]),
        ({"TRACEDRILL_XRAY_SAMPLING": "sometimes"}, ["TRACEDRILL_XRAY_SAMPLING", "centralized"]),
        (
            {"TRACEDRILL_XRAY_SAMPLING": "local", "TRACEDRILL_XRAY_LOCAL_RULES": "/nonexistent/r.json"},
            ["no rules file"],
        ),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "localhost:4318"}, ["OTEL_EXPORTER_OTLP_ENDPOINT", "http(s) URL"]),
        ({"OTEL_EXPORTER_OTLP_HEADERS": "justakey"}, ["OTEL_EXPORTER_OTLP_HEADERS", "key=value"]),
        ({"AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1"}, ["AWS_XRAY_DAEMON_ADDRESS", "host:port"]),
        ({"AWS_XRAY_DAEMON_ADDRESS": "tcp:127.0.0.1:2000 tcp:127.0.0.1:2001"}, ["AWS_XRAY_DAEMON_ADDRESS"]),
        ({"AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": "ftp://x"}, ["AWS_ENDPOINT_URL_CLOUDWATCH_LOGS"]),
        ({"AWS_ACCESS_KEY_ID": "only-the-id"}, ["AWS_SECRET_ACCESS_KEY"]),
        ({"CLOUDWATCH_LOG_GROUP": "bad:group"}, ["CLOUDWATCH_LOG_GROUP"]),
        ({"AWS_DEFAULT_REGION": "Mars 1"}, ["AWS_DEFAULT_REGION"]),
        ({"ROLLBAR_ENDPOINT": "https://api.rollbar.com/api/1/"}, ["ROLLBAR_ACCESS_TOKEN is required"]),
    ],
)
def test_bad_values_give_errors_naming_the_variable(env: dict[str, str], names: list[str]) -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env(env)
    for name in names:
        assert name in str(info.value)


def test_header_errors_never_echo_the_value() -> None:
    with pytest.raises(SettingsError) as info:
        Settings.from_env({"OTEL_EXPORTER_OTLP_HEADERS": "=supersecretvalue"})
    assert "supersecretvalue" not in str(info.value)


def test_two_address_daemon_form_is_accepted() -> None:
    value = "tcp:127.0.0.1:2000 udp:127.0.0.1:2001"
    assert Settings.from_env({"AWS_XRAY_DAEMON_ADDRESS": value}).xray_daemon_address == value


def test_rollbar_token_not_needed_when_rollbar_is_disabled() -> None:
    settings = Settings.from_env(
        {"ROLLBAR_ENDPOINT": "https://api.rollbar.com/api/1/", "TRACEDRILL_DISABLE": "rollbar"}
    )
    assert not settings.enabled("rollbar")


def test_server_settings_default_to_loopback() -> None:
    assert ServerSettings.from_env({}) == ServerSettings(
        bind="127.0.0.1:5000", workers=2, threads=4, graceful_timeout=20
    )


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"TRACEDRILL_APP_WORKERS": "two"}, "TRACEDRILL_APP_WORKERS"),
        ({"TRACEDRILL_APP_WORKERS": "0"}, "TRACEDRILL_APP_WORKERS"),
        ({"TRACEDRILL_APP_THREADS": "1000"}, "TRACEDRILL_APP_THREADS"),
        ({"TRACEDRILL_APP_BIND": "127.0.0.1"}, "TRACEDRILL_APP_BIND"),
        ({"TRACEDRILL_APP_BIND": "127.0.0.1:99999"}, "TRACEDRILL_APP_BIND"),
    ],
)
def test_bad_server_values(env: dict[str, str], name: str) -> None:
    with pytest.raises(SettingsError, match=name):
        ServerSettings.from_env(env)


def test_settings_read_os_environ_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CLOUDWATCH_LOG_GROUP", "from-environ")
    assert Settings.from_env().log_group == "from-environ"
