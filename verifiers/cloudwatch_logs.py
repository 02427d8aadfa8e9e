"""CloudWatch Logs: read the run's log lines (FilterLogEvents, all streams) and check them against the ledger.

Each line is tied to its request by the request id in it (``[logs] request_id_regex``). Every
expected line must appear exactly as often as the expectations say: a lost line is missing, a
line written twice is a duplicate, a line for a request id we never sent is extra, and so is a
line of a sent request that matches none of the patterns its route and status expect (unexpected).
FilterLogEvents is limited to 5 transactions a second per account and region: calls are paced.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from verifiers.base import (
    CheckSpec,
    Findings,
    Observation,
    RateLimiter,
    RunWindow,
    by_process,
    run_checks,
    times,
)
from verifiers.connections import Connections, aws_read_error
from verifiers.expectations import Expectations, LineExpectation, load_expectations
from verifiers.matching import SentIndex, tally
from verifiers.model import Backend, BackendReport, SentRequest

if TYPE_CHECKING:
    from mypy_boto3_logs import CloudWatchLogsClient

BACKEND: Backend = "cloudwatch_logs"
WINDOW_PAD_S = 60
FILTER_CALLS_PER_SECOND = 5  # the account-wide hard limit for FilterLogEvents
PAGE_LIMIT = 10_000
MAX_SHOWN = 120  # characters of a line quoted in a check detail


@dataclass(frozen=True)
class LogEvent:
    message: str
    timestamp: int  # epoch ms
    stream: str
    event_id: str


@dataclass
class LogsObservation(Observation):
    events: list[LogEvent] = field(default_factory=list)
    group_missing: bool = False


class CloudWatchLogsVerifier:
    backend: Backend = BACKEND

    def __init__(
        self,
        connections: Connections,
        expectations: Expectations | None = None,
        *,
        limiter: RateLimiter | None = None,
        client: CloudWatchLogsClient | None = None,
    ) -> None:
        self.expectations = expectations or load_expectations()
        self._connections = connections
        self._client = client  # built from the connections on the first poll unless given (tests: a Stubber)
        self._limiter = limiter or RateLimiter(1, 1.0 / FILTER_CALLS_PER_SECOND)

    def __repr__(self) -> str:
        return f"CloudWatchLogsVerifier(endpoint={self._connections.logs_endpoint_url or 'AWS'!r})"

    # ---- reading ----

    def poll(self, window: RunWindow) -> LogsObservation:
        obs = LogsObservation(BACKEND, window)
        try:
            if self._client is None:
                self._client = self._connections.logs_client()
            self._read(self._client, obs)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") != "ResourceNotFoundException":
                raise aws_read_error(BACKEND, exc, "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS") from exc
            obs.group_missing = True  # decided: nothing was ever written to this group
            obs.events = []
            obs.notes.append(f"log group {window.log_group!r} does not exist: no line was ever written to it")
        except BotoCoreError as exc:
            raise aws_read_error(BACKEND, exc, "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS") from exc
        obs.finished_at = time.time()
        return obs

    def _read(self, client: CloudWatchLogsClient, obs: LogsObservation) -> None:
        window = obs.window
        request: dict[str, Any] = {
            "logGroupName": window.log_group,
            "startTime": int((window.start - WINDOW_PAD_S) * 1000),
            "endTime": int((window.end + WINDOW_PAD_S) * 1000),
            "limit": PAGE_LIMIT,
        }
        if self.expectations.logs.filter_pattern:
            request["filterPattern"] = self.expectations.logs.filter_pattern
        seen_tokens: set[str] = set()
        while True:
            self._limiter.wait()
            obs.called("FilterLogEvents")
            page = client.filter_log_events(**request)
            for event in page.get("events", []):
                obs.events.append(
                    LogEvent(
                        str(event.get("message", "")),
                        int(event.get("timestamp", 0)),
                        str(event.get("logStreamName", "")),
                        str(event.get("eventId", "")),
                    )
                )
            token = page.get("nextToken")
            # Pages may be empty with a token still present; a repeated token would loop forever.
            if not token or token in seen_tokens:
                break
            seen_tokens.add(token)
            request["nextToken"] = token
        obs.cost_units["log_events_read"] += len(obs.events)
        # What the reads returned (UTF-8 message bytes): a lower bound of what they scanned, for the budget ledger.
        obs.cost_units["bytes_read"] += sum(len(e.message.encode("utf-8")) for e in obs.events)

    def seen_request_ids(self, obs: LogsObservation) -> set[str]:
        return {rid for e in obs.events if (rid := _request_id(self.expectations, e.message))}

    def item_count(self, obs: LogsObservation) -> int:
        return len(obs.events)

    # ---- checking ----

    def verify(self, sent: Sequence[SentRequest], obs: LogsObservation, expectations: Expectations) -> BackendReport:
        ctx = _Context(SentIndex(sent), expectations, obs)
        checks = run_checks(BACKEND, check_specs(expectations), ctx)
        expected = {
            (r.request_id, line.name): line.count for r in ctx.idx.answered for line in expectations.expected(r).lines
        }
        result = tally(ctx.found_keys(), ours=lambda key: key[0] in ctx.idx.by_request_id, expected=expected)
        report = result.report(BACKEND, checks, note="; ".join(obs.notes))
        report.extra += len(_unexpected_lines(ctx))  # ours, but not a line the expectations allow
        return report


def _request_id(exp: Expectations, message: str) -> str | None:
    match = exp.logs.request_id_regex.search(message)
    return match["request_id"] if match else None


@dataclass
class _Context:
    idx: SentIndex
    exp: Expectations
    obs: LogsObservation
    by_request: dict[str, list[str]] = field(init=False)  # request id -> its lines (ours and extras)
    # request id (ours) -> for each of its lines, the expected lines it matches: every check asks, matched once
    matched: dict[str, list[tuple[LineExpectation, ...]]] = field(init=False)
    unexpected_found: list[tuple[SentRequest, str]] | None = field(init=False, default=None)  # _unexpected_lines()

    def __post_init__(self) -> None:
        self.by_request = defaultdict(list)
        for e in self.obs.events:
            rid = _request_id(self.exp, e.message)
            if rid is not None:
                self.by_request[rid].append(e.message)
        self.matched = {}
        for rid, lines in self.by_request.items():
            r = self.idx.by_request_id.get(rid)
            if r is not None:
                specs = self.exp.expected(r).lines
                self.matched[rid] = [tuple(s for s in specs if s.matches(r, text)) for text in lines]

    def found_keys(self) -> list[tuple[str, str]]:
        keys = []
        for rid, lines in self.by_request.items():
            matched = self.matched.get(rid) or [()] * len(lines)
            keys += [(rid, specs[0].name if specs else "(unexpected line)") for specs in matched]
        return keys


def _count_words(n: int) -> str:
    return "exactly one" if n == 1 else f"exactly {n}"


def check_specs(exp: Expectations) -> list[CheckSpec[_Context]]:
    specs: list[CheckSpec[_Context]] = []
    for line in exp.logs.lines:
        fields = f" with its {', '.join(line.fields())}" if line.fields() else ""
        specs.append(
            CheckSpec(
                f"every request has {_count_words(line.count)} '{line.name}' log line{fields}",
                _lines(None, line),
                "no answered request in the sent-ledger",
            )
        )
    for route in exp.routes:
        for line in route.lines:
            specs.append(
                CheckSpec(
                    f"route '{route.name}': {_count_words(line.count)} '{line.name}' log line per request",
                    _lines(route.name, line),
                    f"no answered request of route '{route.name}' with {line.statuses.describe()}",
                )
            )
    specs += [
        CheckSpec("no unexpected log lines for sent requests (only what route and status expect)", _unexpected),
        CheckSpec("no log lines for request ids we did not send", _extra),
    ]
    return specs


NO_LINES_HINT = (
    "No line of this run reached log group {group} at all: is the CloudWatch handler added to the logger "
    "that writes them? A handler that is built but never added creates its log stream and sends nothing"
)
OTHER_LINES_HINT = (
    "Other lines of the same requests did arrive, so the handler works: the code that writes this line did not "
    "log through it (e.g. a logger=None handed down to it, or another logger)"
)
TWICE_HINT = (
    "Each of these lines arrived more than once: two handlers on the same logger (a second setup adding its "
    "own) write every line twice"
)


def _lines(route: str | None, line: LineExpectation) -> Callable[[_Context], Findings]:
    def run(c: _Context) -> Findings:
        f = Findings()
        lost = surplus = 0
        checked = [
            r
            for r in c.idx.answered
            if line in (e := c.exp.expected(r)).lines and (route is None or e.route_name == route)
        ]
        for r in checked:
            lines = c.by_request.get(r.request_id, [])
            matched = c.matched.get(r.request_id, [])
            n = sum(1 for specs in matched if line in specs)
            lost += max(0, line.count - n)
            surplus += max(0, n - line.count)
            if n == line.count:
                f.ok()
            elif n < line.count:
                odd = next((text for text, specs in zip(lines, matched, strict=True) if not specs), None)
                hint = f"found {times(n)}" + (
                    f"; a line of this request matching no pattern: {_shorten(odd)}" if odd else ""
                )
                f.bad(r.request_id, "missing", hint)
            else:
                f.bad(r.request_id, "duplicated", f"{times(n)}")
        _explain_lines(c, f, line, checked, (lost, surplus))
        return f

    return run


def _explain_lines(
    c: _Context, f: Findings, line: LineExpectation, checked: list[SentRequest], counts: tuple[int, int]
) -> None:
    """The exact counts (lines missing, lines too many), a likely cause, and the app processes that failed."""
    lost, surplus = counts
    if lost:
        f.note(f"{lost} '{line.name}' lines missing")
        missing = f.ids("missing")
        if not any(rid in c.idx.by_request_id for rid in c.by_request):
            f.note(NO_LINES_HINT.format(group=repr(c.obs.window.log_group)))
        elif any(c.by_request.get(rid) for rid in missing):
            f.note(OTHER_LINES_HINT)
    if surplus:
        f.note(f"{surplus} '{line.name}' lines too many")
        f.note(TWICE_HINT)
    f.note(by_process(checked, f.ids()))


def _unexpected_lines(c: _Context) -> list[tuple[SentRequest, str]]:
    """Lines of answered requests we sent that match no expected pattern (nor an ``allow_unlisted`` one).
    Worked out once per context (a check and the report's extra count both need it)."""
    if c.unexpected_found is not None:
        return c.unexpected_found
    found = []
    for rid, lines in c.by_request.items():
        r = c.idx.by_request_id.get(rid)
        if r is None or r.status is None:
            continue  # not ours (the extra check), or never answered: nothing is expected of it
        found += [
            (r, text)
            for text, specs in zip(lines, c.matched[rid], strict=True)
            if not specs and not c.exp.allows_unlisted("logs", r, text)
        ]
    c.unexpected_found = found
    return found


def _unexpected(c: _Context) -> Findings:
    f = Findings(unit="lines")
    f.checked = sum(len(lines) for rid, lines in c.by_request.items() if rid in c.idx.by_request_id)
    for r, text in _unexpected_lines(c):
        route = c.exp.route_name(r)
        f.problems.append((r.request_id, "unexpected", f"{_shorten(text)} (route '{route}', HTTP {r.status})"))
    return f


def _extra(c: _Context) -> Findings:
    f = Findings(unit="lines")
    for rid, lines in c.by_request.items():
        if rid in c.idx.by_request_id:
            f.checked += len(lines)
            continue
        for text in lines:
            f.bad(rid, "not sent", _shorten(text))
    return f


def _shorten(text: str) -> str:
    return repr(text if len(text) <= MAX_SHOWN else text[:MAX_SHOWN] + "…")
