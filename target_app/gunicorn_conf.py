"""gunicorn configuration for the target app (``python -m gunicorn -c target_app/gunicorn_conf.py ...``).

No preload: every worker imports and builds the app after fork, so the OTel BatchSpanProcessor
thread (and watchtower's and X-Ray's threads) live in the worker that produces the telemetry.
Bind, workers and threads come from ``TRACEDRILL_APP_*`` (see ``target_app.settings``).
"""

from __future__ import annotations

import time
from typing import Any

from target_app.settings import ServerSettings

_server = ServerSettings.from_env()

bind = [_server.bind]  # default 127.0.0.1:5000: loopback only unless asked
workers = _server.workers
worker_class = "gthread"
threads = _server.threads
preload_app = False
graceful_timeout = _server.graceful_timeout
timeout = 30
errorlog = "-"
loglevel = "info"
accesslog = None  # the app writes its own access line to CloudWatch
proc_name = "tracedrill-target"
# gunicorn >= 25.1 opens a control socket at one fixed per-user path; parallel runs would share it.
control_socket_disable = True

# Time each telemetry sink may take to flush in worker_exit; stays inside graceful_timeout.
FLUSH_TIMEOUT_S = max(1.0, graceful_timeout / 2)


def on_starting(server: Any) -> None:
    """Runs once in the master before it forks the workers: nothing to do unless a fault profile says so."""
    from target_app.settings import Settings

    settings = Settings.from_env()
    if settings.fault == "fork-unsafe-otel" and settings.enabled("otel"):
        from target_app.telemetry import otel

        # FAULT fork-unsafe-otel: the TracerProvider is created here, in the master, and never again after fork.
        otel.create_provider_before_fork(settings)


def worker_exit(server: Any, worker: Any) -> None:
    """Runs in the worker as it exits: flush spans, log batches and Rollbar items still in flight."""
    from target_app.telemetry import shutdown_all  # imported here: the master never loads the SDKs

    started = time.monotonic()
    count = shutdown_all(timeout_s=FLUSH_TIMEOUT_S)
    elapsed = time.monotonic() - started
    worker.log.info("tracedrill: telemetry flushed (%d app(s), %.2f s, worker pid %s)", count, elapsed, worker.pid)
