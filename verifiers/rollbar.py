"""Rollbar: read the run's occurrences (items in the environment, then each item's instances) and check them.

Each occurrence is tied to its request by the request id in its data (``[rollbar] request_id_path``,
``custom.request_id`` for the bundled app). Routes say which occurrences each request should
produce (level, exception class or message, how many, grouped into one item); every other
occurrence during the run is unexpected (ours) or extra (not ours).
"""

from __future__ import annotations

import re
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

from verifiers.base import CheckSpec, Findings, Observation, ReadError, RunWindow, lookup_path, run_checks, times
from verifiers.connections import ApiUnreachable, Connections, HttpAnswer
from verifiers.expectations import MISSING, Expectations, OccurrenceExpectation, load_expectations
from verifiers.matching import SentIndex, tally
from verifiers.model import Backend, BackendReport, CheckResult, SentRequest

BACKEND: Backend = "rollbar"
WINDOW_PAD_S = 60
MAX_PAGES = 10_000  # a guard against a server that never returns an empty page


@dataclass(frozen=True)
class Occurrence:
    id: str
    item_id: str
    timestamp: float
    level: str
    environment: str
    request_id: str | None
    exception_class: str | None  # the (last) exception's class for trace / trace_chain bodies
    message: str | None  # the message text for message bodies


@dataclass
class RollbarObservation(Observation):
    items: dict[str, dict[str, Any]] = field(default_factory=dict)  # item id -> item as listed
    occurrences: list[Occurrence] = field(default_factory=list)
    # Occurrences of the items read whose own (client-set) timestamp is outside the run's window: they count
    # only when they carry a request id we sent (a duplicate or replay with a skewed clock is still ours).
    outside_window: list[Occurrence] = field(default_factory=list)


class RollbarVerifier:
    backend: Backend = BACKEND

    def __init__(self, connections: Connections, expectations: Expectations | None = None) -> None:
        self.expectations = expectations or load_expectations()
        self._api = connections.http_api(
            connections.rollbar_api_url, {"X-Rollbar-Access-Token": connections.rollbar_read_token}
        )

    def __repr__(self) -> str:
        return f"RollbarVerifier({self._api.base_url!r})"

    # ---- reading ----

    def poll(self, window: RunWindow) -> RollbarObservation:
        obs = RollbarObservation(BACKEND, window)
        try:
            self._read(obs)
        except ApiUnreachable as exc:
            raise ReadError(BACKEND, "unreachable", f"{exc} (check ROLLBAR_API_ENDPOINT)") from exc
        obs.finished_at = time.time()
        return obs

    def _get(self, obs: Observation, path: str, operation: str, params: dict[str, Any]) -> dict[str, Any]:
        obs.called(operation)
        answer = self._api.call("GET", path, params=params)
        body = answer.body
        # Rollbar answers every read with {"err": 0, "result": {...}}: anything else is not Rollbar
        if answer.status != 200 or not isinstance(body, dict) or body.get("err") != 0:
            raise _problem(answer, operation)
        result = body.get("result")
        if not isinstance(result, dict):
            raise _problem(answer, operation)
        return result

    def _pages(
        self, obs: Observation, path: str, operation: str, key: str, params: dict[str, Any]
    ) -> Iterator[list[dict[str, Any]]]:
        fetched = 0
        for page in range(1, MAX_PAGES + 1):
            result = self._get(obs, path, operation, {**params, "page": page})
            rows = [r for r in result.get(key) or [] if isinstance(r, dict)]
            if not rows:
                return
            yield rows
            fetched += len(rows)
            total = result.get("total_count")
            if isinstance(total, int) and fetched >= total:
                return

    def _read(self, obs: RollbarObservation) -> None:
        window = obs.window
        since, until = window.start - WINDOW_PAD_S, window.end + WINDOW_PAD_S
        for rows in self._pages(obs, "items/", "GET /items", "items", {"environment": window.rollbar_environment}):
            for item in rows:
                last = item.get("last_occurrence_timestamp")
                if isinstance(last, int | float) and last < since:
                    continue  # nothing of this run in it
                obs.items[str(item.get("id"))] = item
        for item_id in obs.items:
            for rows in self._pages(obs, f"item/{item_id}/instances/", "GET /item/{id}/instances", "instances", {}):
                for row in rows:
                    occurrence = self._occurrence(row, item_id)
                    in_window = since <= occurrence.timestamp <= until
                    (obs.occurrences if in_window else obs.outside_window).append(occurrence)
                # Pages come newest first: once a whole page predates the run, the rest do too.
                if all(float(r.get("timestamp") or 0) < since for r in rows):
                    break

    def _occurrence(self, row: dict[str, Any], item_id: str) -> Occurrence:
        data = _table(row.get("data"))
        body = _table(data.get("body"))
        request_id = lookup_path(data, self.expectations.rollbar.request_id_path)
        return Occurrence(
            id=str(row.get("id")),
            item_id=str(row.get("item_id", item_id)),
            timestamp=float(row.get("timestamp") or data.get("timestamp") or 0),
            level=_level(data, body),
            environment=str(data.get("environment", "")),
            request_id=None if request_id is MISSING or request_id is None else str(request_id),
            exception_class=_exception_class(body),
            message=_message(body),
        )

    def seen_request_ids(self, obs: RollbarObservation) -> set[str]:
        return {o.request_id for o in obs.occurrences if o.request_id}

    def item_count(self, obs: RollbarObservation) -> int:
        return len(obs.occurrences)

    # ---- checking ----

    def verify(self, sent: Sequence[SentRequest], obs: RollbarObservation, expectations: Expectations) -> BackendReport:
        idx = SentIndex(sent)
        ours_outside = [o for o in obs.outside_window if o.request_id in idx.by_request_id]
        obs = replace(obs, occurrences=obs.occurrences + ours_outside, outside_window=[])
        ctx = _Context(idx, expectations, obs)
        checks = run_checks(BACKEND, check_specs(expectations), ctx)
        expected = {
            (r.request_id, spec.describe()): spec.count
            for r in ctx.idx.answered
            for spec in expectations.expected(r).occurrences
        }
        found = [(o.request_id or f"occurrence {o.id}", ctx.spec_name(o)) for o in obs.occurrences]
        result = tally(found, ours=lambda key: key[0] in ctx.idx.by_request_id, expected=expected)
        report = result.report(BACKEND, checks, note="; ".join(obs.notes))
        report.extra += len(_unexpected_occurrences(ctx))  # ours, but not an occurrence the route expects
        return report


def _table(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _level(data: dict[str, Any], body: dict[str, Any]) -> str:
    """The level as Rollbar reads it: case does not matter, and a payload without one is an "error" when it
    reports an exception and "info" when it is a message (Rollbar's documented defaults)."""
    level = data.get("level")
    if isinstance(level, str) and level:
        return level.lower()
    return "info" if "message" in body and not {"trace", "trace_chain", "crash_report"} & body.keys() else "error"


def _exception_class(body: dict[str, Any]) -> str | None:
    trace = body.get("trace")
    if not isinstance(trace, dict):
        chain = body.get("trace_chain")
        trace = chain[0] if isinstance(chain, list) and chain and isinstance(chain[0], dict) else None
    if trace is None:
        return None
    exception = trace.get("exception")
    return str(exception.get("class")) if isinstance(exception, dict) and exception.get("class") else None


def _message(body: dict[str, Any]) -> str | None:
    message = body.get("message")
    if isinstance(message, dict):
        return str(message.get("body", ""))
    return None


def _problem(answer: HttpAnswer, operation: str) -> ReadError:
    if answer.status in (401, 403):
        return ReadError(
            BACKEND,
            "denied",
            f"Rollbar rejected ROLLBAR_READ_ACCESS_TOKEN on {operation} "
            f"(HTTP {answer.status}: {answer.message()}); it needs the 'read' scope",
        )
    if answer.status == 429:
        return ReadError(BACKEND, "throttled", f"rate limited on {operation} (HTTP 429: {answer.message()})")
    if odd := answer.not_the_service(operation, "ROLLBAR_API_ENDPOINT"):
        return ReadError(BACKEND, "error", odd)
    return ReadError(BACKEND, "error", f"{operation} answered HTTP {answer.status}: {answer.message()}")


# ---- the checks ----------------------------------------------------------------------------


def matches(spec: OccurrenceExpectation, o: Occurrence) -> bool:
    if o.level != spec.level:
        return False
    if spec.exception_class is not None:
        return o.exception_class == spec.exception_class
    return o.message is not None and re.search(spec.message or "", o.message) is not None


@dataclass
class _Context:
    idx: SentIndex
    exp: Expectations
    obs: RollbarObservation
    by_request: dict[str, list[Occurrence]] = field(init=False)
    # what _unexpected_occurrences() found, once it has looked
    unexpected_found: list[tuple[SentRequest, Occurrence]] | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.by_request = defaultdict(list)
        for o in self.obs.occurrences:
            if o.request_id:
                self.by_request[o.request_id].append(o)

    def spec_name(self, o: Occurrence) -> str:
        r = self.idx.by_request_id.get(o.request_id or "")
        spec = next((s for s in self.exp.expected(r).occurrences if matches(s, o)), None) if r else None
        return spec.describe() if spec else "(unexpected)"


def _describe(o: Occurrence) -> str:
    what = f"{o.exception_class} exception" if o.exception_class else f"message {o.message!r}"
    return f"{o.level or '?'} {what}"


def check_specs(exp: Expectations) -> list[CheckSpec[_Context]]:
    specs: list[CheckSpec[_Context]] = []
    for route in exp.routes:
        for spec in route.occurrences:
            count = "exactly one" if spec.count == 1 else f"exactly {spec.count}"
            when = "" if not spec.statuses.patterns else f" ({spec.statuses.describe()})"
            empty = f"no answered request of route '{route.name}' with {spec.statuses.describe()}"
            specs.append(
                CheckSpec(
                    f"route '{route.name}': {count} {spec.describe()} occurrence per request{when}",
                    _per_request(route.name, spec),
                    empty,
                )
            )
            if spec.one_item:
                specs.append(
                    CheckSpec(
                        f"route '{route.name}': all {spec.describe()} occurrences are grouped into one item",
                        _one_item(route.name, spec),
                    )
                )
    specs += [
        CheckSpec("no Rollbar occurrences beyond the expected ones (none for other routes)", _unexpected),
        CheckSpec("no occurrences for request ids we did not send", _extra),
    ]
    return specs


def _route_requests(c: _Context, route: str, spec: OccurrenceExpectation) -> list[SentRequest]:
    return [r for r in c.idx.answered if (e := c.exp.expected(r)).route_name == route and spec in e.occurrences]


def _per_request(route: str, spec: OccurrenceExpectation) -> Callable[[_Context], Findings]:
    def run(c: _Context) -> Findings:
        f = Findings()
        for r in _route_requests(c, route, spec):
            mine = c.by_request.get(r.request_id, [])
            n = sum(1 for o in mine if matches(spec, o))
            if n == spec.count:
                f.ok()
            elif n < spec.count:
                others = [o for o in mine if not matches(spec, o)]
                hint = f"found {times(n)}" + (f"; got {_describe(others[0])} instead" if others else "")
                f.bad(r.request_id, "missing", hint)
            else:
                f.bad(r.request_id, "duplicated", times(n))
        if f.ids("missing") and not any(rid in c.idx.by_request_id for rid in c.by_request):
            f.note(NEVER_REPORTED_HINT.format(environment=repr(c.obs.window.rollbar_environment)))
        return f

    return run


NEVER_REPORTED_HINT = (
    "No occurrence of this run reached Rollbar (environment {environment}) at all: is rollbar.init() called in "
    "every worker? Flask 2.3 removed @app.before_first_request, and an init function that lost it is never called"
)


def _one_item(route: str, spec: OccurrenceExpectation) -> Callable[[_Context], CheckResult]:
    def run(c: _Context) -> CheckResult:
        name = f"route '{route}': all {spec.describe()} occurrences are grouped into one item"
        per_item: dict[str, int] = defaultdict(int)
        for r in _route_requests(c, route, spec):
            for o in c.by_request.get(r.request_id, []):
                if matches(spec, o):
                    per_item[o.item_id] += 1
        if not per_item:
            return CheckResult(BACKEND, name, "unverifiable", "nothing to check: no such occurrence was found")
        shown = ", ".join(f"item {item} ({n} occurrences)" for item, n in sorted(per_item.items()))
        if len(per_item) == 1:
            return CheckResult(BACKEND, name, "pass", f"all in {shown}")
        return CheckResult(BACKEND, name, "fail", f"split over {len(per_item)} items: {shown}")

    return run


def _unexpected_occurrences(c: _Context) -> list[tuple[SentRequest, Occurrence]]:
    """Occurrences of answered requests we sent that match none of the occurrences their route expects.
    Worked out once per context (a check and the report's extra count both need it)."""
    if c.unexpected_found is not None:
        return c.unexpected_found
    found = []
    for rid, occurrences in c.by_request.items():
        r = c.idx.by_request_id.get(rid)
        if r is None or r.status is None:
            continue
        specs = c.exp.expected(r).occurrences
        found += [(r, o) for o in occurrences if not any(matches(s, o) for s in specs)]
    c.unexpected_found = found
    return found


def _unexpected(c: _Context) -> Findings:
    f = Findings(unit="occurrences")
    f.checked = sum(
        len(occurrences)
        for rid, occurrences in c.by_request.items()
        if (r := c.idx.by_request_id.get(rid)) is not None and r.status is not None
    )
    for r, o in _unexpected_occurrences(c):
        f.problems.append(
            (r.request_id, "unexpected", f"{_describe(o)} for route '{c.exp.route_name(r)}' (HTTP {r.status})")
        )
    return f


def _extra(c: _Context) -> Findings:
    f = Findings(unit="occurrences", checked=len(c.obs.occurrences))
    for o in c.obs.occurrences:
        if o.request_id is None:
            f.problems.append((f"occurrence {o.id}", "no request id", _describe(o)))
        elif o.request_id not in c.idx.by_request_id:
            f.problems.append((o.request_id, "not sent", _describe(o)))
    return f
