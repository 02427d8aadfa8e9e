"""Defaults for the embedded local stack: loopback ports and its (non-secret) local credentials.

These credentials only open the emulators on 127.0.0.1; they are not secrets and never
reach a real service. Everything here can be overridden on the command line.
"""

from __future__ import annotations

from dataclasses import dataclass

LOCAL_HOST = "127.0.0.1"

# Key and token values the emulators accept by default.
LOCAL_HONEYCOMB_KEY = "tracedrill-local-honeycomb-key"
LOCAL_ROLLBAR_POST_TOKEN = "tracedrill-local-rollbar-post-server-item"
LOCAL_ROLLBAR_READ_TOKEN = "tracedrill-local-rollbar-read"
LOCAL_AWS_ACCESS_KEY_ID = "tracedrill-local"
LOCAL_AWS_SECRET_ACCESS_KEY = "tracedrill-local-secret"
LOCAL_AWS_REGION = "us-east-1"

# Names the bundled target app uses (the Cruddur journal's names).
DEFAULT_SERVICE_NAME = "backend-flask"
DEFAULT_LOG_GROUP = "cruddur"
DEFAULT_ROLLBAR_ENVIRONMENT = "local"


@dataclass(frozen=True)
class LocalPorts:
    """One port per emulator. 4318 is OTLP/HTTP's and 2000 the X-Ray daemon's usual port."""

    honeycomb: int = 4318
    xray_api: int = 4567
    cloudwatch_logs: int = 4566
    rollbar: int = 4580
    xray_daemon: int = 2000  # UDP (segments) and TCP (sampling) on the same port, like the real daemon

    @classmethod
    def ephemeral(cls) -> LocalPorts:
        """All zeros: every emulator picks a free port (tests, parallel runs)."""
        return cls(0, 0, 0, 0, 0)
