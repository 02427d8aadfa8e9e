"""Where each backend's public read API lives and the credentials for it.

Local or cloud is nothing but these values: the emulators and the SaaS services are read the
same way (HTTP for Honeycomb and Rollbar, boto3 for X-Ray and CloudWatch Logs).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

import boto3
import requests
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    PartialCredentialsError,
    ReadTimeoutError,
)

from verifiers.base import ReadError
from verifiers.model import BACKENDS, Backend

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient
    from mypy_boto3_xray import XRayClient

DEFAULT_HONEYCOMB_API_URL = "https://api.honeycomb.io"
DEFAULT_ROLLBAR_API_URL = "https://api.rollbar.com/api/1/"
# Every API call is bounded, so a backend that accepts connections and never answers fails a poll within
# about attempts x (connect + read) and --deadline holds. A read timeout bounds the wait for each chunk.
CONNECT_TIMEOUT_S = 5.0
READ_TIMEOUT_S = 15.0
HTTP_TIMEOUT_S = READ_TIMEOUT_S
# Standard retry mode backs off on ThrottlingException and retries timeouts; 3 attempts (2 retries) ride out
# a burst without stretching one call past ~50 s.
BOTO_TOTAL_ATTEMPTS = 3


def boto_config(connect_timeout_s: float = CONNECT_TIMEOUT_S, read_timeout_s: float = READ_TIMEOUT_S) -> Config:
    return Config(
        connect_timeout=connect_timeout_s,
        read_timeout=read_timeout_s,
        retries={"mode": "standard", "total_max_attempts": BOTO_TOTAL_ATTEMPTS},
    )


class ConfigError(Exception):
    """A setting is missing or malformed; the message names it and says how to set it."""


# Why each variable is needed, for the error message when it is missing.
_HOW_TO_SET = {
    "HONEYCOMB_API_KEY": "a Honeycomb configuration API key with 'Run Queries' permission "
    "(Honeycomb > Environment settings > API keys); the ingest key the app uses also answers /1/auth",
    "ROLLBAR_READ_ACCESS_TOKEN": "a Rollbar project access token with the 'read' scope "
    "(Rollbar > Project settings > Project Access Tokens)",
    "AWS_DEFAULT_REGION": "the AWS region the app sends X-Ray segments and CloudWatch logs to, e.g. us-east-1 "
    "(AWS_REGION works too)",
}


def _missing(variable: str) -> str:
    return f"{variable} is not set: export {variable}=<{_HOW_TO_SET[variable]}>"


@dataclass(frozen=True)
class Connections:
    """Read-side endpoints and credentials. ``repr`` shows whether a secret is set, never its value."""

    honeycomb_api_key: str = field(default="", repr=False)
    rollbar_read_token: str = field(default="", repr=False)
    aws_region: str = ""
    honeycomb_api_url: str = DEFAULT_HONEYCOMB_API_URL
    xray_endpoint_url: str | None = None  # None: the AWS endpoint for aws_region
    logs_endpoint_url: str | None = None
    rollbar_api_url: str = DEFAULT_ROLLBAR_API_URL
    # Passed to boto3 only when set; otherwise boto3's own chain (profile, SSO, instance role) applies.
    aws_access_key_id: str | None = field(default=None, repr=False)
    aws_secret_access_key: str | None = field(default=None, repr=False)
    aws_session_token: str | None = field(default=None, repr=False)
    aws_profile: str | None = None
    # Bounds of every read API call (boto3 and HTTP): see CONNECT_TIMEOUT_S.
    connect_timeout_s: float = CONNECT_TIMEOUT_S
    read_timeout_s: float = READ_TIMEOUT_S

    def __post_init__(self) -> None:
        # Rollbar URLs are joined relative to this base: without the slash "api/1" loses its last segment.
        if not self.rollbar_api_url.endswith("/"):
            object.__setattr__(self, "rollbar_api_url", self.rollbar_api_url + "/")
        object.__setattr__(self, "honeycomb_api_url", self.honeycomb_api_url.rstrip("/"))

    def __repr__(self) -> str:
        parts = []
        for f in fields(self):
            value = getattr(self, f.name)
            shown = repr(value) if f.repr else ("<set>" if value else "<not set>")
            parts.append(f"{f.name}={shown}")
        return f"Connections({', '.join(parts)})"

    __str__ = __repr__

    @classmethod
    def from_env(cls, env: Mapping[str, str], backends: Collection[Backend] = BACKENDS) -> Connections:
        """Read the real services' variable names; only what ``backends`` need is required."""

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        def need(names: Iterable[str]) -> str:
            names = list(names)
            for name in names:
                value = get(name)
                if value:
                    return value
            raise ConfigError(_missing(names[0]))

        uses_aws = "xray" in backends or "cloudwatch_logs" in backends
        return cls(
            honeycomb_api_key=need(["HONEYCOMB_API_KEY"]) if "honeycomb" in backends else "",
            rollbar_read_token=need(["ROLLBAR_READ_ACCESS_TOKEN"]) if "rollbar" in backends else "",
            aws_region=need(["AWS_DEFAULT_REGION", "AWS_REGION"]) if uses_aws else "",
            honeycomb_api_url=get("HONEYCOMB_API_ENDPOINT") or DEFAULT_HONEYCOMB_API_URL,
            xray_endpoint_url=get("AWS_ENDPOINT_URL_XRAY") or get("AWS_ENDPOINT_URL"),
            logs_endpoint_url=get("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS") or get("AWS_ENDPOINT_URL"),
            rollbar_api_url=get("ROLLBAR_API_ENDPOINT") or DEFAULT_ROLLBAR_API_URL,
            aws_access_key_id=get("AWS_ACCESS_KEY_ID"),
            aws_secret_access_key=get("AWS_SECRET_ACCESS_KEY"),
            aws_session_token=get("AWS_SESSION_TOKEN"),
            aws_profile=get("AWS_PROFILE"),
        )

    def _boto_session(self) -> boto3.session.Session:
        if bool(self.aws_access_key_id) != bool(self.aws_secret_access_key):
            missing = "AWS_SECRET_ACCESS_KEY" if self.aws_access_key_id else "AWS_ACCESS_KEY_ID"
            raise ConfigError(f"{missing} is not set: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY go together")
        if not self.aws_region:
            raise ConfigError(_missing("AWS_DEFAULT_REGION"))
        return boto3.session.Session(
            aws_access_key_id=self.aws_access_key_id,
            aws_secret_access_key=self.aws_secret_access_key,
            aws_session_token=self.aws_session_token,
            region_name=self.aws_region,
            profile_name=None if self.aws_access_key_id else self.aws_profile,
        )

    def xray_client(self) -> XRayClient:
        client = self._boto_session().client("xray", endpoint_url=self.xray_endpoint_url, config=self._boto_config())
        client.meta.events.register("before-parse", _refuse_non_json_answers)
        return client

    def logs_client(self) -> CloudWatchLogsClient:
        client = self._boto_session().client("logs", endpoint_url=self.logs_endpoint_url, config=self._boto_config())
        client.meta.events.register("before-parse", _refuse_non_json_answers)
        return client

    def _boto_config(self) -> Config:
        return boto_config(self.connect_timeout_s, self.read_timeout_s)

    def http_api(self, base_url: str, headers: Mapping[str, str]) -> HttpJsonApi:
        """An HTTP JSON API client with these connections' timeouts."""
        return HttpJsonApi(base_url, headers, timeout_s=self.read_timeout_s, connect_timeout_s=self.connect_timeout_s)


class ApiUnreachable(Exception):
    """No HTTP answer at all (connection refused, DNS, timeout)."""


@dataclass(frozen=True)
class HttpAnswer:
    status: int
    body: Any  # parsed JSON, or None when the body is not JSON
    text: str
    headers: Mapping[str, str]

    def message(self) -> str:
        """The service's own error text, for error messages (RFC 7807 ``detail``/``error``, Rollbar ``message``)."""
        if isinstance(self.body, dict):
            for key in ("detail", "error", "message", "title"):
                if isinstance(self.body.get(key), str) and self.body[key]:
                    return str(self.body[key])
        return self.text[:200]

    def not_the_service(self, operation: str, endpoint_variable: str) -> str | None:
        """For a success status the caller could not use (an HTML page, null, a list, an object without the
        service's fields): what to say, since whatever answered is not the service; None for an error status,
        which speaks for itself."""
        if not 200 <= self.status < 300:
            return None
        if isinstance(self.body, dict):
            shown = f"a JSON object without the service's fields ({self.text[:80]!r})"
        elif self.body is not None or self.text.strip() == "null":
            shown = f"a JSON {'null' if self.body is None else type(self.body).__name__}"
        else:
            shown = repr(self.text[:80]) if self.text.strip() else "an empty body"
        return f"{operation} answered HTTP {self.status} with {shown}: is {endpoint_variable} the service's API?"


class HttpJsonApi:
    """A JSON-over-HTTP API under ``base_url`` with its auth header; secrets stay in headers, never in URLs."""

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        timeout_s: float = HTTP_TIMEOUT_S,
        connect_timeout_s: float = CONNECT_TIMEOUT_S,
    ) -> None:
        self.base_url = base_url if base_url.endswith("/") else base_url + "/"
        self._session = requests.Session()
        self._session.headers.update(headers)
        self._timeout = (connect_timeout_s, timeout_s)  # requests: (connect, read); never None (= wait forever)

    def __repr__(self) -> str:
        return f"HttpJsonApi({self.base_url!r})"

    def call(
        self, method: str, path: str, *, params: Mapping[str, Any] | None = None, json_body: Any = None
    ) -> HttpAnswer:
        url = self.base_url + path.lstrip("/")
        try:
            response = self._session.request(
                method, url, params=params, json=json_body, timeout=self._timeout, allow_redirects=True
            )
        except requests.RequestException as exc:
            raise ApiUnreachable(f"{method} {url}: {type(exc).__name__}: {exc}") from exc
        try:
            body = response.json()
        except ValueError:
            body = None
        return HttpAnswer(response.status_code, body, response.text, response.headers)

    def close(self) -> None:
        self._session.close()


_DENIED_CODES = frozenset(
    {
        "AccessDeniedException",
        "AccessDenied",
        "UnrecognizedClientException",
        "InvalidSignatureException",
        "ExpiredToken",
        "ExpiredTokenException",
        "InvalidClientTokenId",
        "SignatureDoesNotMatch",
    }
)
_THROTTLED_CODES = frozenset(
    {"ThrottlingException", "ThrottledException", "Throttling", "TooManyRequestsException", "LimitExceededException"}
)


class NotAnAwsAnswer(BotoCoreError):
    """A successful HTTP answer whose body is no JSON object: whatever answered is not the AWS service."""

    fmt = "{operation} answered HTTP {status} with {what}, which no AWS JSON API sends"


def _refuse_non_json_answers(operation_model: Any, response_dict: dict[str, Any], **_: Any) -> None:
    # botocore reads an HTML page as an empty answer (no traces, no events: a "missing" verdict that
    # blames the app) and crashes on a JSON null or list; both mean the endpoint is not X-Ray or Logs.
    if response_dict.get("status_code", 0) >= 300:
        return  # error answers have their own parsing and messages
    body = response_dict.get("body") or b""
    try:
        document = json.loads(body)
    except ValueError:
        what = f"{len(body)} bytes that are not JSON" if body else "an empty body"
    else:
        if isinstance(document, dict):
            return
        what = f"a JSON {type(document).__name__}"
    raise NotAnAwsAnswer(operation=operation_model.name, status=response_dict.get("status_code"), what=what)


def aws_read_error(backend: Backend, exc: Exception, endpoint_variable: str) -> ReadError:
    """A boto3 failure as a ReadError whose message says what to fix (never a credential value)."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        code, message = str(error.get("Code", "")), str(error.get("Message", ""))
        operation = exc.operation_name
        if code in _DENIED_CODES:
            return ReadError(
                backend,
                "denied",
                f"{operation}: AWS refused the credentials ({code}: {message}); "
                "check AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY/AWS_PROFILE and IAM",
            )
        if code in _THROTTLED_CODES:
            return ReadError(backend, "throttled", f"{operation}: throttled ({code}: {message})")
        return ReadError(backend, "error", f"{operation}: {code}: {message}")
    if isinstance(exc, NoCredentialsError | PartialCredentialsError):
        return ReadError(
            backend,
            "denied",
            f"no AWS credentials ({exc}): set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE",
        )
    if isinstance(exc, EndpointConnectionError | ConnectTimeoutError | ReadTimeoutError):
        return ReadError(backend, "unreachable", f"{exc} (check {endpoint_variable} and AWS_DEFAULT_REGION)")
    if isinstance(exc, NotAnAwsAnswer):
        return ReadError(backend, "error", f"{exc}: is {endpoint_variable} the service's endpoint?")
    return ReadError(backend, "error", f"{type(exc).__name__}: {exc}")
