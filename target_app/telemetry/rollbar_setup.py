"""Rollbar via pyrollbar: init in the app factory (Flask >= 2.3 has no before_first_request).

Every payload gets ``data.custom.request_id`` from a payload handler (it runs on the reporting
thread, inside the request, before the item is handed to a send thread).

Items go out through pyrollbar's ``thread_pool`` handler: its ``thread`` handler (the default) starts a
thread per item, and pyrollbar's transport keeps one requests session per thread, so every item paid
for a new thread, session and TCP connection (about 40 % of an item's CPU here: bench/results.md,
SDK cost section). A few long-lived send threads keep their sessions and connections.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Literal

import rollbar
import rollbar.contrib.flask
from flask import Flask, got_request_exception
from rollbar.lib import thread_pool as rollbar_pool

from target_app.correlation import current_request_id
from target_app.settings import Settings

RollbarHandler = Literal["thread_pool", "thread", "blocking"]
SEND_THREADS = 2  # per app process; the pool's queue holds items while both are busy
REQUEST_ID_KEY = "request_id"
_APP_ROOT = str(Path(__file__).resolve().parent.parent)


def add_request_id(payload: dict[str, Any], **_kw: Any) -> dict[str, Any]:
    """pyrollbar payload handler: ``payload["data"]["custom"]["request_id"] = <current request id>``."""
    request_id = current_request_id()
    if request_id is None:
        return payload
    data = payload.setdefault("data", {})
    custom = data.get("custom")
    if not isinstance(custom, dict):
        custom = {} if custom is None else {"value": custom}
    custom[REQUEST_ID_KEY] = request_id
    data["custom"] = custom
    return payload


def init_rollbar(settings: Settings, handler: RollbarHandler = "thread_pool") -> None:
    """Configure the process-wide pyrollbar. Safe to call again (tests build several apps)."""
    rollbar.init(
        settings.rollbar_access_token,
        settings.rollbar_environment,
        endpoint=settings.rollbar_endpoint,  # Settings guarantees the trailing "/" urljoin needs
        handler=handler,  # "thread_pool": requests never wait on Rollbar; worker_exit waits instead
        thread_pool_workers=SEND_THREADS,
        root=_APP_ROOT,
        allow_logging_basic_config=False,
        log_payload_on_error=False,  # the logged payload would include the access token
        suppress_reinit_warning=True,
        enabled=True,
    )
    # A repeated init() merges keyword settings but keeps the first token and environment; pyrollbar
    # documents overriding SETTINGS directly, so make a re-init take effect completely.
    rollbar.SETTINGS["access_token"] = settings.rollbar_access_token
    rollbar.SETTINGS["environment"] = settings.rollbar_environment
    # ... and only the first init() creates the send pool: a later switch to "thread_pool" needs one too.
    if handler == "thread_pool" and _send_pool() is None:
        rollbar_pool.init_pool(SEND_THREADS)
    # After init(): the first init() resets all event handlers. pos=0 runs it before any other handler.
    rollbar.events.add_payload_handler(add_request_id, pos=0)


def connect_flask(app: Flask) -> None:
    """Report unhandled exceptions of this app (the signal fires before Flask answers 500)."""
    got_request_exception.connect(rollbar.contrib.flask.report_exception, app)


def report_test_message() -> None:
    rollbar.report_message("Hello World!", "warning")


def wait_for_pending(timeout_s: float) -> bool:
    """Wait for items still being sent (by either threaded handler); False if the timeout ran out.

    Neither ``rollbar.wait()`` (the ``thread`` handler's threads only) nor the pool's shutdown has a
    timeout of its own, so both run on a helper thread.
    """
    waiter = threading.Thread(target=_drain, name="rollbar-wait", daemon=True)
    waiter.start()
    waiter.join(timeout_s)
    return not waiter.is_alive()


def _drain() -> None:
    rollbar.wait()
    pool = _send_pool()
    if pool is not None:
        rollbar_pool.init_pool(SEND_THREADS)  # items reported from now on go to a fresh pool ...
        pool.shutdown(wait=True)  # ... while this one sends what it holds


def _send_pool() -> ThreadPoolExecutor | None:
    # pyrollbar keeps its pool in a module global and offers no way to wait for it.
    pool = getattr(rollbar_pool, "_pool", None)
    return pool if isinstance(pool, ThreadPoolExecutor) else None
