"""Configuration of the target app, read from environment variables with the real services' names.

With nothing set, every endpoint points at the embedded local stack's default ports
(``tracedrill.local.LocalPorts``) and its non-secret local credentials. Pointing the same app at the
SaaS services changes values, never code.

Telemetry (read by ``Settings.from_env``):

==================================  =====================================================================
``OTEL_SERVICE_NAME``               resource ``service.name`` (default ``backend-flask``)
``OTEL_EXPORTER_OTLP_ENDPOINT``     OTLP/HTTP base URL; the exporter appends ``/v1/traces`` itself
``OTEL_EXPORTER_OTLP_HEADERS``      ``k=v,...``, e.g. ``x-honeycomb-team=<key>``
``AWS_XRAY_DAEMON_ADDRESS``         ``host:port`` or ``tcp:host:port udp:host:port`` (default 127.0.0.1:2000)
``AWS_XRAY_TRACING_NAME``           X-Ray segment name (default: the service name)
``AWS_ENDPOINT_URL_CLOUDWATCH_LOGS`` CloudWatch Logs endpoint (then ``AWS_ENDPOINT_URL``, then local)
``AWS_DEFAULT_REGION``              AWS region (then ``AWS_REGION``; default us-east-1)
``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``AWS_SESSION_TOKEN``
``CLOUDWATCH_LOG_GROUP``            log group (default ``cruddur``)
``ROLLBAR_ACCESS_TOKEN``            post_server_item token
``ROLLBAR_ENDPOINT``                API base, a trailing ``/`` is added when missing
``ROLLBAR_ENVIRONMENT``             Rollbar environment (default ``local``)
``TRACEDRILL_DISABLE``              comma list of ``otel,xray,cloudwatch,rollbar`` to switch off (to show
                                    that the verifiers catch missing telemetry)
``TRACEDRILL_FAULT``                a fault profile (``target_app.faults``): run a known instrumentation
                                    mistake on purpose (default ``correct``)
``TRACEDRILL_XRAY_SAMPLING``        ``centralized`` (default: rules from the daemon's TCP side) | ``local``
``TRACEDRILL_XRAY_LOCAL_RULES``     v2 local-rules file for ``local`` (default target_app/xray-local-rules.json)
==================================  =====================================================================

Server (read by ``ServerSettings.from_env``, used by gunicorn_conf.py):
``TRACEDRILL_APP_BIND`` (default ``127.0.0.1:5000``, loopback only), ``TRACEDRILL_APP_WORKERS`` (2),
``TRACEDRILL_APP_THREADS`` (4), ``TRACEDRILL_APP_GRACEFUL_TIMEOUT`` (20 s).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from target_app.faults import CORRECT, FAULT_ENV, FaultError, parse_fault
from tracedrill import local

INSTRUMENTATIONS: tuple[str, ...] = ("otel", "xray", "cloudwatch", "rollbar")
XRaySampling = Literal["centralized", "local"]

DEFAULT_XRAY_LOCAL_RULES = Path(__file__).resolve().parent / "xray-local-rules.json"
_LOCAL_PORTS = local.LocalPorts()
DEFAULT_OTLP_ENDPOINT = f"http://{local.LOCAL_HOST}:{_LOCAL_PORTS.honeycomb}"
DEFAULT_XRAY_DAEMON_ADDRESS = f"{local.LOCAL_HOST}:{_LOCAL_PORTS.xray_daemon}"
DEFAULT_LOGS_ENDPOINT = f"http://{local.LOCAL_HOST}:{_LOCAL_PORTS.cloudwatch_logs}"
DEFAULT_ROLLBAR_ENDPOINT = f"http://{local.LOCAL_HOST}:{_LOCAL_PORTS.rollbar}/api/1/"
DEFAULT_BIND = f"{local.LOCAL_HOST}:5000"

_LOG_GROUP_RE = re.compile(r"[.\-_/#A-Za-z0-9]{1,512}")
_REGION_RE = re.compile(r"[a-z0-9]+(-[a-z0-9]+)+")
_HOST_PORT_RE = re.compile(r"(?P<host>[A-Za-z0-9.\-]+|\[[0-9A-Fa-f:]+\]):(?P<port>\d{1,5})")


class SettingsError(ValueError):
    """A bad configuration value; the message names the variable and what it accepts (never a secret)."""


@dataclass(frozen=True)
class AwsCredentials:
    access_key_id: str = field(repr=False)
    secret_access_key: str = field(repr=False)
    session_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True, kw_only=True)
class Settings:
    service_name: str
    # OTEL_EXPORTER_OTLP_* variables the user left unset, filled with the local stack's values; the
    # exporter itself reads them from the environment (it must, so "/v1/traces" gets appended).
    otlp_env_defaults: Mapping[str, str] = field(repr=False)
    xray_daemon_address: str
    xray_tracing_name: str
    xray_sampling: XRaySampling
    xray_local_rules: Path
    aws_region: str
    cloudwatch_logs_endpoint: str
    aws_credentials: AwsCredentials | None = field(repr=False)  # None: boto3's own credential chain
    log_group: str
    rollbar_access_token: str = field(repr=False)
    rollbar_endpoint: str  # always ends with "/"
    rollbar_environment: str
    disabled: frozenset[str] = frozenset()
    fault: str = CORRECT  # a target_app.faults profile name

    def enabled(self, instrumentation: str) -> bool:
        if instrumentation not in INSTRUMENTATIONS:
            raise ValueError(f"unknown instrumentation {instrumentation!r}")
        return instrumentation not in self.disabled

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        env = os.environ if env is None else env
        service_name = _get(env, "OTEL_SERVICE_NAME") or local.DEFAULT_SERVICE_NAME
        logs_endpoint = _get(env, "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS") or _get(env, "AWS_ENDPOINT_URL")
        rollbar_endpoint = _get(env, "ROLLBAR_ENDPOINT")
        sampling = _xray_sampling(env)
        rollbar_url = _url_or("ROLLBAR_ENDPOINT", rollbar_endpoint, DEFAULT_ROLLBAR_ENDPOINT)
        return cls(
            service_name=service_name,
            otlp_env_defaults=_otlp_env_defaults(env),
            xray_daemon_address=_daemon_address(env),
            xray_tracing_name=_get(env, "AWS_XRAY_TRACING_NAME") or service_name,
            xray_sampling=sampling,
            xray_local_rules=_local_rules(env, sampling),
            aws_region=_region(env),
            cloudwatch_logs_endpoint=_url_or("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", logs_endpoint, DEFAULT_LOGS_ENDPOINT),
            # The local credentials only make sense against the local endpoint; anywhere else boto3 resolves.
            aws_credentials=_aws_credentials(env, local_default=logs_endpoint is None),
            log_group=_log_group(env),
            rollbar_access_token=_rollbar_token(env, local_default=rollbar_endpoint is None),
            rollbar_endpoint=_with_trailing_slash(rollbar_url),
            rollbar_environment=_get(env, "ROLLBAR_ENVIRONMENT") or local.DEFAULT_ROLLBAR_ENVIRONMENT,
            disabled=parse_disabled(_get(env, "TRACEDRILL_DISABLE")),
            fault=_fault(env),
        )


@dataclass(frozen=True)
class ServerSettings:
    bind: str
    workers: int
    threads: int
    graceful_timeout: int

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> ServerSettings:
        env = os.environ if env is None else env
        bind = _get(env, "TRACEDRILL_APP_BIND") or DEFAULT_BIND
        _host_port("TRACEDRILL_APP_BIND", bind)
        return cls(
            bind=bind,
            workers=_int_in(env, "TRACEDRILL_APP_WORKERS", default=2, low=1, high=64),
            threads=_int_in(env, "TRACEDRILL_APP_THREADS", default=4, low=1, high=64),
            graceful_timeout=_int_in(env, "TRACEDRILL_APP_GRACEFUL_TIMEOUT", default=20, low=1, high=600),
        )


def parse_disabled(value: str | None) -> frozenset[str]:
    names = {part.strip().lower() for part in (value or "").split(",") if part.strip()}
    unknown = sorted(names - set(INSTRUMENTATIONS))
    if unknown:
        raise SettingsError(
            f"TRACEDRILL_DISABLE: unknown instrumentation {', '.join(map(repr, unknown))}; "
            f"valid names are {', '.join(INSTRUMENTATIONS)}"
        )
    return frozenset(names)


def _fault(env: Mapping[str, str]) -> str:
    try:
        return parse_fault(_get(env, FAULT_ENV))
    except FaultError as exc:
        raise SettingsError(str(exc)) from None


def _get(env: Mapping[str, str], name: str) -> str | None:
    """An unset and an empty variable mean the same: use the default."""
    value = env.get(name, "").strip()
    return value or None


def _otlp_env_defaults(env: Mapping[str, str]) -> dict[str, str]:
    endpoint = _get(env, "OTEL_EXPORTER_OTLP_ENDPOINT")
    traces_endpoint = _get(env, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if endpoint:
        _http_url("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint)
    if traces_endpoint:
        _http_url("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", traces_endpoint)
    for name in ("OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"):
        _check_headers(name, _get(env, name))
    if endpoint or traces_endpoint:
        return {}  # pointed somewhere on purpose: add nothing, least of all the local key
    defaults = {"OTEL_EXPORTER_OTLP_ENDPOINT": DEFAULT_OTLP_ENDPOINT}
    if not (_get(env, "OTEL_EXPORTER_OTLP_HEADERS") or _get(env, "OTEL_EXPORTER_OTLP_TRACES_HEADERS")):
        defaults["OTEL_EXPORTER_OTLP_HEADERS"] = f"x-honeycomb-team={local.LOCAL_HONEYCOMB_KEY}"
    return defaults


def _check_headers(name: str, value: str | None) -> None:
    for item in (value or "").split(","):
        key, sep, _ = item.strip().partition("=")
        if item.strip() and not (sep and key.strip()):
            # Only the shape is reported: header values are usually API keys.
            raise SettingsError(f"{name} must be comma-separated key=value pairs (e.g. x-honeycomb-team=KEY)")


def _http_url(name: str, value: str) -> str:
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise SettingsError(f"{name}={value!r} is not an http(s) URL such as http://127.0.0.1:4566")
    return value


def _url_or(name: str, value: str | None, default: str) -> str:
    return _http_url(name, value) if value else default


def _with_trailing_slash(url: str) -> str:
    # pyrollbar builds "<endpoint>item/" with urljoin: without the slash "api/1" loses its last segment.
    return url if url.endswith("/") else url + "/"


def _host_port(name: str, value: str) -> tuple[str, int]:
    match = _HOST_PORT_RE.fullmatch(value)
    if not match or int(match["port"]) > 65535:
        raise SettingsError(f"{name}={value!r} must be host:port, e.g. 127.0.0.1:2000")
    return match["host"], int(match["port"])


def _daemon_address(env: Mapping[str, str]) -> str:
    value = _get(env, "AWS_XRAY_DAEMON_ADDRESS") or DEFAULT_XRAY_DAEMON_ADDRESS
    parts = value.split()
    if len(parts) == 1:
        _host_port("AWS_XRAY_DAEMON_ADDRESS", parts[0])
        return value
    # The SDK's two-address form: "tcp:127.0.0.1:2000 udp:127.0.0.1:2001" (either order).
    prefixes = sorted(part.partition(":")[0] for part in parts)
    if prefixes != ["tcp", "udp"]:
        raise SettingsError(f"AWS_XRAY_DAEMON_ADDRESS={value!r} must be host:port or 'tcp:host:port udp:host:port'")
    for part in parts:
        _host_port("AWS_XRAY_DAEMON_ADDRESS", part.partition(":")[2])
    return value


def _xray_sampling(env: Mapping[str, str]) -> XRaySampling:
    value = (_get(env, "TRACEDRILL_XRAY_SAMPLING") or "centralized").lower()
    if value == "centralized":
        return "centralized"
    if value == "local":
        return "local"
    raise SettingsError(f"TRACEDRILL_XRAY_SAMPLING={value!r}: use 'centralized' (default) or 'local'")


def _local_rules(env: Mapping[str, str], sampling: XRaySampling) -> Path:
    raw = _get(env, "TRACEDRILL_XRAY_LOCAL_RULES")
    path = Path(raw).expanduser() if raw else DEFAULT_XRAY_LOCAL_RULES
    if sampling == "local" and not path.is_file():
        raise SettingsError(f"TRACEDRILL_XRAY_LOCAL_RULES: no rules file at {path}")
    return path


def _region(env: Mapping[str, str]) -> str:
    value = _get(env, "AWS_DEFAULT_REGION") or _get(env, "AWS_REGION") or local.LOCAL_AWS_REGION
    if not _REGION_RE.fullmatch(value):
        raise SettingsError(f"AWS_DEFAULT_REGION={value!r} is not a region name such as us-east-1")
    return value


def _aws_credentials(env: Mapping[str, str], *, local_default: bool) -> AwsCredentials | None:
    key_id, secret = _get(env, "AWS_ACCESS_KEY_ID"), _get(env, "AWS_SECRET_ACCESS_KEY")
    if bool(key_id) != bool(secret):
        raise SettingsError("AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY must be set together")
    if key_id and secret:
        return AwsCredentials(key_id, secret, _get(env, "AWS_SESSION_TOKEN"))
    if local_default:
        return AwsCredentials(local.LOCAL_AWS_ACCESS_KEY_ID, local.LOCAL_AWS_SECRET_ACCESS_KEY)
    return None


def _log_group(env: Mapping[str, str]) -> str:
    value = _get(env, "CLOUDWATCH_LOG_GROUP") or local.DEFAULT_LOG_GROUP
    if not _LOG_GROUP_RE.fullmatch(value):
        raise SettingsError(f"CLOUDWATCH_LOG_GROUP={value!r}: 1-512 characters from A-Z a-z 0-9 _ - / . #")
    return value


def _rollbar_token(env: Mapping[str, str], *, local_default: bool) -> str:
    token = _get(env, "ROLLBAR_ACCESS_TOKEN")
    if token:
        return token
    if local_default:
        return local.LOCAL_ROLLBAR_POST_TOKEN
    if "rollbar" in parse_disabled(_get(env, "TRACEDRILL_DISABLE")):
        return ""
    raise SettingsError(
        "ROLLBAR_ACCESS_TOKEN is required when ROLLBAR_ENDPOINT is set (or add 'rollbar' to TRACEDRILL_DISABLE)"
    )


def _int_in(env: Mapping[str, str], name: str, *, default: int, low: int, high: int) -> int:
    raw = _get(env, name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"{name}={raw!r} is not an integer") from None
    if not low <= value <= high:
        raise SettingsError(f"{name}={value} is out of range {low}..{high}")
    return value
