"""Cruddur-like traffic for the bundled target app, every request tagged and written to the sent-ledger.

Runs inside Locust's own (gevent) process only. The ledger goes to ``$TRACEDRILL_RUN_DIR``
(the current directory when unset), one file per Locust process.
"""

from __future__ import annotations

import os
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from locust import FastHttpUser, between, events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner

from loadtests.cookiejar import LazyCookieJar
from loadtests.ids import ledger_ids, new_request_ids, traceparent_mode
from loadtests.ledger import LedgerWriter, ledger_path

RUN_DIR_ENV = "TRACEDRILL_RUN_DIR"


@dataclass(frozen=True)
class Route:
    name: str
    path: str
    weight: int
    expected_status: int  # what the route answers when the app is healthy; anything else is a Locust failure


# Weighted like a timeline app: mostly reads of the home feed, a small share of faults.
ROUTES: tuple[Route, ...] = (
    Route("home", "/api/activities/home", 6, 200),
    Route("user_activities", "/api/activities/@andrewbrown", 3, 200),
    Route("user_activities_invalid", "/api/activities/@not-a-handle", 1, 422),
    Route("notifications", "/api/activities/notifications", 2, 200),
    Route("health", "/api/health", 1, 200),
    Route("rollbar_test", "/rollbar/test", 1, 200),
    Route("fault", "/api/fault", 1, 500),
)

_ledger: LedgerWriter | None = None
_traceparent = traceparent_mode()  # $TRACEDRILL_TRACEPARENT: "none" when a root sampler is under test
_worker = f"{socket.gethostname()}-{os.getpid()}"


@events.init.add_listener
def _open_ledger(environment: Environment, **_: Any) -> None:
    global _ledger, _worker
    if isinstance(environment.runner, MasterRunner):
        return  # a master sends no requests: each of its workers writes its own ledger file
    if isinstance(environment.runner, WorkerRunner):
        _worker = environment.runner.client_id
    run_dir = Path(os.environ.get(RUN_DIR_ENV, "."))
    _ledger = LedgerWriter(ledger_path(run_dir, _worker))


@events.quitting.add_listener
def _close_ledger(**_: Any) -> None:
    if _ledger is not None:
        _ledger.close()


def _send(user: FastHttpUser, route: Route, statuses: frozenset[int]) -> None:
    ids = new_request_ids()
    # The client itself fails any status but the expected one (and follows no redirect): cheaper than a
    # catch_response block around every request, and no exception is raised for an expected 422 or 500
    # (bench/results.md, load-generator section). FastHttpSession sets its agent's redirect codes alike.
    user.client.client.valid_response_codes = statuses  # type: ignore[misc]  # per request, like its redirect codes
    start = time.time()
    response = user.client.get(route.path, headers=ids.headers(_traceparent), name=route.name)
    end = time.time()
    if _ledger is not None:
        # SentRequest's fields, written without building one (that alone was a few µs a request).
        _ledger.record_fields(
            {
                "request_id": ids.request_id,
                "name": route.name,
                "method": "GET",
                "url": f"{user.host}{route.path}",
                "path": route.path,
                "start": start,
                "end": end,
                "status": response.status_code or None,  # 0 means no response at all
                "worker": _worker,
                **ledger_ids(ids, _traceparent, response.headers),
            }
        )


def _task_for(route: Route) -> Callable[[FastHttpUser], None]:
    statuses = frozenset({route.expected_status})

    def task(user: FastHttpUser) -> None:
        _send(user, route, statuses)

    task.__name__ = route.name
    return task


class CruddurUser(FastHttpUser):
    wait_time = between(0.2, 1.0)
    # A list with each task repeated by its weight: Locust's typed form of weighted tasks.
    tasks = [task for route in ROUTES for task in [_task_for(route)] * route.weight]

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        # Cookies behave as with Locust's own jar, at a fraction of the CPU (loadtests/cookiejar.py).
        self.client.cookiejar = self.client.client.cookiejar = LazyCookieJar()
