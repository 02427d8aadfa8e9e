"""Fault profiles: instrumentation mistakes people have reported, reproduced on purpose.

``TRACEDRILL_FAULT=PROFILE`` (or ``tracedrill run --fault PROFILE``) makes the bundled app run the wrong
code a person writes: not a shortcut that skips sending, the same mistake with the same SDK calls.
Every place that does so is marked ``FAULT <profile>`` in routes.py, telemetry/*.py or gunicorn_conf.py.
``correct`` (the default) runs none of them. ``tracedrill mutants`` proves the verifiers catch each one.

This module holds only the names and the parsing, so any part of the app can import it.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping

FAULT_ENV = "TRACEDRILL_FAULT"
CORRECT = "correct"

# name -> the mistake, as one line for --help and the README.
PROFILES: Mapping[str, str] = {
    CORRECT: "no mistake: the app as it should be instrumented",
    "attr-after-end": "the home span's attributes are set after its `with` block has ended the span",
    "attr-wrong-span": "trace.get_current_span() runs before the child span starts, so the attributes land on the "
    "server span",
    "subsegment-double-end": "end_subsegment() in the body and again in `finally` (the Cruddur journal's "
    "UserActivities.run): the enclosing subsegment ends early",
    "rollbar-never-init": "rollbar.init() sits in an init function that lost its @app.before_first_request "
    "(removed in Flask 2.3): nobody calls it",
    "no-cloudwatch-handler": "the watchtower handler is built but never added to the logger",
    "logger-none": "the home route calls the service with logger=None, so its log line is never written",
    "fork-unsafe-otel": "the TracerProvider is created in the gunicorn master before it forks the workers and is "
    "never re-created after fork",
    "otlp-endpoint-no-path": "OTLPSpanExporter(endpoint=<base URL>) in code: unlike the environment variable, "
    "nothing appends /v1/traces",
    "xray-no-sampling-proxy": "the X-Ray daemon's TCP port is not reachable (only UDP is), so the SDK falls back "
    "to 1 request/s + 5 %",
    "bsp-queue-overflow": "BatchSpanProcessor(max_queue_size=...) shrunk so far that spans are dropped under load",
    "duplicate-log-handler": "a second, copy-pasted watchtower handler on the same logger: every line twice",
}


class FaultError(ValueError):
    """An unknown profile name; the message lists the valid ones."""


def parse_fault(value: str | None) -> str:
    """The profile named by ``value`` (None or empty: ``correct``)."""
    name = (value or "").strip().lower() or CORRECT
    if name not in PROFILES:
        raise FaultError(f"{FAULT_ENV}={value!r} is not a fault profile; valid profiles are {', '.join(PROFILES)}")
    return name


def closed_tcp_port(host: str) -> int:
    """A TCP port on ``host`` (a local address) that nothing listens on: it was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def daemon_address_without_tcp(address: str) -> str:
    """``AWS_XRAY_DAEMON_ADDRESS`` as it reads when only the daemon's UDP port is published (``docker run -p
    2000:2000/udp``): segments still arrive over UDP, the sampling calls over TCP are refused."""
    parts = dict(part.split(":", 1) for part in address.split()) if " " in address else {"udp": address}
    udp = parts["udp"]
    host = udp.rsplit(":", 1)[0]
    try:
        port = closed_tcp_port(host)
    except OSError:  # not an address of this machine: a closed port here says the same (refused)
        host, port = "127.0.0.1", closed_tcp_port("127.0.0.1")
    return f"tcp:{host}:{port} udp:{udp}"
