"""Builders the verifier tests share: a sent-ledger, a run window, and finding a check by name."""

from __future__ import annotations

import contextlib
import itertools
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from werkzeug.wrappers import Request, Response

from emulators._server import serve
from verifiers.base import RunWindow
from verifiers.expectations import load_expectations
from verifiers.model import BackendReport, CheckResult, SentRequest

EXP = load_expectations()
T0 = 1_760_000_000.0  # a fixed epoch second: every id and timestamp below derives from it

# (ledger name, path, status) for every route of the bundled Cruddur app.
HOME = ("home", "/api/activities/home", 200)
USER = ("user_activities", "/api/activities/@andrewbrown", 200)
USER_INVALID = ("user_activities_invalid", "/api/activities/@not-a-handle", 422)
NOTIFICATIONS = ("notifications", "/api/activities/notifications", 200)
HEALTH = ("health", "/api/health", 200)
ROLLBAR_TEST = ("rollbar_test", "/rollbar/test", 200)
FAULT = ("fault", "/api/fault", 500)
EVERY_ROUTE = (HOME, USER, USER_INVALID, NOTIFICATIONS, HEALTH, ROLLBAR_TEST, FAULT)

_counter = itertools.count(1)


def request(name: str, path: str, status: int | None, *, offset: float = 0.0, t0: float = T0) -> SentRequest:
    """One ledger line with unique, well-formed ids (request id and trace id are 32 hex)."""
    n = next(_counter)
    start = t0 + offset
    trace_id = f"{int(start):08x}{n:024x}"
    return SentRequest(
        request_id=f"{n:032x}",
        name=name,
        method="GET",
        url=f"http://127.0.0.1:5000{path}",
        path=path,
        start=start,
        end=start + 0.05,
        status=status,
        trace_id=trace_id,
        parent_span_id=f"{n:016x}",
        xray_trace_id=f"1-{trace_id[:8]}-{trace_id[8:]}",
        worker="test-1",
    )


def ledger(*routes: tuple[str, str, int | None], t0: float = T0) -> list[SentRequest]:
    return [request(*route, offset=i * 0.1, t0=t0) for i, route in enumerate(routes)]


def window(
    sent: Sequence[SentRequest],
    service: str | None = None,
    log_group: str | None = None,
    environment: str | None = None,
) -> RunWindow:
    return RunWindow(
        run_id="run-test",
        start=min(s.start for s in sent) - 5 if sent else T0,
        end=max(s.end for s in sent) + 60 if sent else T0 + 60,
        service_name=service or EXP.service.name,
        log_group=log_group or EXP.service.log_group,
        rollbar_environment=environment or EXP.service.rollbar_environment,
    )


def check(report: BackendReport | Sequence[CheckResult], fragment: str) -> CheckResult:
    """The one check whose name contains ``fragment``."""
    checks = report.checks if isinstance(report, BackendReport) else report
    matching = [c for c in checks if fragment in c.name]
    assert len(matching) == 1, f"{len(matching)} checks match {fragment!r}: {[c.name for c in checks]}"
    return matching[0]


def statuses(report: BackendReport) -> dict[str, str]:
    return {c.name: c.status for c in report.checks}


def failing(report: BackendReport) -> list[str]:
    return [c.name for c in report.checks if c.status != "pass"]


# ---- a tiny fake HTTP API, to test request shapes and pagination of the HTTP verifiers ----


@dataclass
class Recorded:
    method: str
    path: str
    args: dict[str, list[str]]
    headers: dict[str, str]
    body: Any


Handler = Callable[[Recorded], tuple[int, Any]]


class FakeHttpApi:
    """A WSGI app answering from ``handler`` and recording every request it got."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.requests: list[Recorded] = []

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Any:
        req = Request(environ)
        body = json.loads(req.get_data() or b"null")
        recorded = Recorded(req.method, req.path, req.args.to_dict(flat=False), dict(req.headers), body)
        self.requests.append(recorded)
        status, answer = self.handler(recorded)
        return Response(json.dumps(answer), status=status, content_type="application/json")(environ, start_response)

    def calls(self, method: str, prefix: str) -> list[Recorded]:
        return [r for r in self.requests if r.method == method and r.path.startswith(prefix)]


@contextlib.contextmanager
def served(app: FakeHttpApi) -> Iterator[str]:
    running = serve("fake-api", app)
    try:
        yield running.url
    finally:
        running.stop()
