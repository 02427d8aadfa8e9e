"""CloudWatch Logs through watchtower: the "cruddur" logger, its log lines and the handler.

The verifiers match these lines with regexes, so the formats below are a contract.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from datetime import UTC, datetime
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError
from watchtower import CloudWatchLogHandler

from target_app.settings import Settings

LOGGER_NAME = "cruddur"
TIMESTAMP_FORMAT = "[%Y-%b-%d %H:%M]"
SEND_INTERVAL_S = 1  # watchtower's default is 60 s; lines should arrive while the verifier polls
_STREAM_NAME_SAFE = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-/#")


class LogsSetupError(RuntimeError):
    """The log group or stream could not be created (names the endpoint, never credentials)."""


def request_line(
    *,
    when: datetime,
    remote_addr: str | None,
    method: str,
    scheme: str,
    full_path: str,
    status_code: int,
    request_id: str,
) -> str:
    """``[2026-Dec-03 16:40] 127.0.0.1 GET http /api/activities/home? 200 request_id=...``"""
    stamp = when.astimezone(UTC).strftime(TIMESTAMP_FORMAT)
    return f"{stamp} {remote_addr} {method} {scheme} {full_path} {status_code:03d} request_id={request_id}"


def home_line(request_id: str) -> str:
    return f"Hello Cloudwatch! from /api/activities/home request_id={request_id}"


def get_logger() -> logging.Logger:
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(logging.INFO)
    logger.propagate = False  # lines go to CloudWatch only, not to the root logger / gunicorn's stderr
    return logger


def log_stream_name(service_name: str) -> str:
    """Unique per process (host, pid, random suffix), so workers never share a stream."""
    raw = f"{service_name}/{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"
    # Stream names may not contain ':' or '*'; keep a conservative character set (and no braces,
    # which watchtower would treat as format placeholders).
    return "".join(ch if ch in _STREAM_NAME_SAFE else "_" for ch in raw)[:512]


def build_logs_client(settings: Settings) -> Any:
    creds = settings.aws_credentials  # None: boto3's own chain (env, profile, instance role)
    session = boto3.session.Session(
        region_name=settings.aws_region,
        aws_access_key_id=creds.access_key_id if creds else None,
        aws_secret_access_key=creds.secret_access_key if creds else None,
        aws_session_token=creds.session_token if creds else None,
    )
    return session.client(
        "logs",
        endpoint_url=settings.cloudwatch_logs_endpoint,
        config=Config(connect_timeout=5, read_timeout=15, retries={"max_attempts": 3, "mode": "standard"}),
    )


def ensure_log_stream(client: Any, group: str, stream: str) -> None:
    """Create group and stream up front: watchtower drops records emitted while it creates a stream."""
    try:
        for call, kwargs in (
            (client.create_log_group, {"logGroupName": group}),
            (client.create_log_stream, {"logGroupName": group, "logStreamName": stream}),
        ):
            try:
                call(**kwargs)
            except client.exceptions.ResourceAlreadyExistsException:
                pass
    except (BotoCoreError, ClientError) as exc:
        endpoint = client.meta.endpoint_url
        raise LogsSetupError(f"cannot create log group {group!r} / stream {stream!r} at {endpoint}: {exc}") from exc


def build_cloudwatch_handler(settings: Settings, client: Any | None = None) -> CloudWatchLogHandler:
    logs_client = client if client is not None else build_logs_client(settings)
    stream = log_stream_name(settings.service_name)
    ensure_log_stream(logs_client, settings.log_group, stream)
    handler = CloudWatchLogHandler(
        log_group_name=settings.log_group,
        log_stream_name=stream,
        boto3_client=logs_client,
        send_interval=SEND_INTERVAL_S,
        create_log_group=False,  # done above
    )
    handler.setLevel(logging.INFO)
    return handler


def flush_and_close(handler: logging.Handler, timeout_s: float) -> None:
    if isinstance(handler, CloudWatchLogHandler):
        # watchtower waits up to FLUSH_TIMEOUT (30 s) per queue; keep within the caller's budget.
        handler.FLUSH_TIMEOUT = max(1, int(timeout_s))
    handler.flush()
    handler.close()
