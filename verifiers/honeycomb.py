"""Honeycomb: read the run's spans through the Query Data API and check them against the sent-ledger.

One poll runs one query: COUNT broken down by the span identity columns plus every attribute
the expectations name, so each result row is one span (COUNT > 1 means the same span arrived
more than once). Create Query Result is limited to 10 a minute, so query results are paced to one per
6 s. A run with more rows than one result returns (10,000) is read in parts (:mod:`verifiers.honeycomb_parts`),
one query result each, planned from one more COUNT query by time: such a poll takes longer.

The Query Data API is Enterprise-only. Without it, the poll reads what any plan offers
(``GET /1/auth``, ``GET /1/columns/{dataset}`` last_written) and every per-request check reports
``unverifiable`` with the reason: never a pass it cannot back up.
"""

from __future__ import annotations

import re
import time
from collections import defaultdict, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from verifiers.base import (
    CheckSpec,
    Findings,
    Observation,
    RateLimiter,
    ReadError,
    RunWindow,
    all_unverifiable,
    by_process,
    run_checks,
    run_spec,
    unverifiable,
    verdict,
)
from verifiers.connections import ApiUnreachable, Connections, HttpAnswer
from verifiers.expectations import (
    MISSING,
    Condition,
    Expectations,
    SpanExpectation,
    honeycomb_slug,
    load_expectations,
    regex_template,
)
from verifiers.honeycomb_parts import Part, count_spec, counts_by_second, initial_parts, plan
from verifiers.matching import SentIndex, tally
from verifiers.model import Backend, BackendReport, CheckResult, SentRequest
from verifiers.sampling.config import SamplingConfig
from verifiers.sampling.otel import OtelSampler, check_otel_sampling, expected_keep, unverifiable_result

BACKEND: Backend = "honeycomb"
QUERY_RESULT_LIMIT = 10_000  # the maximum, allowed only with disable_series
MAX_BREAKDOWNS = 100
WINDOW_PAD_S = 60  # Honeycomb truncates query bounds to the minute for windows up to 6 h
RESULT_TIMEOUT_S = 60.0
QUERY_RESULTS_PER_MINUTE = 10
MAX_QUERY_RESULTS_PER_POLL = 100  # at 10 a minute, 10 minutes: beyond that a poll reads what it has (truncated)
CORE_COLUMNS = (
    "trace.trace_id",
    "trace.span_id",
    "trace.parent_id",
    "name",
    "span.kind",
    "error",
    "meta.annotation_type",
)
ARRIVAL_COLUMNS = ("trace.trace_id",)  # watched with the request id column when the Query Data API is missing


@dataclass(frozen=True, slots=True)
class Span:
    """One query result row: a span (or span event/link) and how many identical events arrived."""

    columns: Mapping[str, Any]
    count: int = 1
    # Read from the columns once (every check reads them for every span; the columns never change).
    trace_id: str | None = field(init=False, repr=False, compare=False)
    span_id: str | None = field(init=False, repr=False, compare=False)
    parent_id: str | None = field(init=False, repr=False, compare=False)
    name: str = field(init=False, repr=False, compare=False)
    is_server: bool = field(init=False, repr=False, compare=False)
    is_annotation: bool = field(init=False, repr=False, compare=False)  # span events and links: not spans
    is_error: bool = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        text, setattr_ = self.text, object.__setattr__  # frozen: each is set once, here
        setattr_(self, "trace_id", text("trace.trace_id"))
        setattr_(self, "span_id", text("trace.span_id"))
        setattr_(self, "parent_id", text("trace.parent_id"))
        setattr_(self, "name", text("name") or "(unnamed)")
        setattr_(self, "is_server", (text("span.kind") or "").lower() == "server")
        setattr_(self, "is_annotation", text("meta.annotation_type") is not None)
        setattr_(self, "is_error", self.columns.get("error") in (True, "true", 1))

    def get(self, column: str) -> Any:
        value = self.columns.get(column)
        return MISSING if value is None else value

    def text(self, column: str) -> str | None:
        value = self.columns.get(column)
        return None if value is None else str(value)


@dataclass
class HoneycombObservation(Observation):
    dataset: str = ""
    columns_queried: tuple[str, ...] = ()  # read: broken down on, or known absent (the dataset lacks them)
    spans: list[Span] = field(default_factory=list)
    truncated: bool = False  # the result hit QUERY_RESULT_LIMIT rows: absence of a span proves nothing
    query_unavailable: str | None = None  # why the Query Data API cannot be used; then only the fields below
    auth_ok: bool | None = None
    auth_detail: str = ""
    last_written: dict[str, float | None] = field(default_factory=dict)  # column -> epoch s (None: never)
    dataset_missing: bool = False


class HoneycombVerifier:
    backend: Backend = BACKEND
    sampling: SamplingConfig | None = None  # set by sampling.config.attach: a head sampler is then checked

    def __init__(
        self,
        connections: Connections,
        expectations: Expectations | None = None,
        *,
        limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.expectations = expectations or load_expectations()
        self._api = connections.http_api(
            connections.honeycomb_api_url, {"X-Honeycomb-Team": connections.honeycomb_api_key}
        )
        self._limiter = limiter or RateLimiter(1, 60.0 / QUERY_RESULTS_PER_MINUTE)
        self._sleep = sleep
        self._query_ids: dict[str, str] = {}  # the same spec is created once and re-run on every poll
        self._plans: dict[tuple[Any, ...], list[Part]] = {}  # the parts the last poll read, per window
        self.progress: Callable[[str], None] | None = None  # told when a poll must split its read

    def __repr__(self) -> str:
        return f"HoneycombVerifier({self._api.base_url!r})"

    def pace_queries(self, seconds: float) -> None:
        """Run a query result at most every ``seconds`` instead of Honeycomb's 10 a minute (a local
        emulator started without that limit only)."""
        self._limiter = RateLimiter(1, seconds)

    # ---- reading ----

    def poll(self, window: RunWindow) -> HoneycombObservation:
        obs = HoneycombObservation(BACKEND, window, dataset=self._dataset(window))
        try:
            self._read(obs)
        except ApiUnreachable as exc:
            raise ReadError(BACKEND, "unreachable", f"{exc} (check HONEYCOMB_API_ENDPOINT)") from exc
        obs.finished_at = time.time()
        return obs

    def _dataset(self, window: RunWindow) -> str:
        service = self.expectations.service
        return service.honeycomb_dataset if window.service_name == service.name else honeycomb_slug(window.service_name)

    def _call(self, obs: Observation, method: str, path: str, operation: str, body: Any = None) -> HttpAnswer:
        obs.called(operation)
        return self._api.call(method, path, json_body=body)

    def _read(self, obs: HoneycombObservation) -> None:
        wanted = tuple(dict.fromkeys(CORE_COLUMNS + tuple(self.expectations.honeycomb_columns())))
        if len(wanted) > MAX_BREAKDOWNS:
            raise ReadError(
                BACKEND,
                "error",
                f"the expectations name {len(wanted)} columns; a Honeycomb query breaks down on at most "
                f"{MAX_BREAKDOWNS}",
            )
        obs.columns_queried = wanted
        # Honeycomb rejects a query naming a column the dataset never had. Such a column is absent from
        # every span, so breaking down on the existing ones loses nothing (and the checks see it missing).
        columns = self._call(obs, "GET", f"1/columns/{obs.dataset}", "GET /1/columns")
        if columns.status == 404:
            obs.dataset_missing = True
            obs.notes.append(f"dataset {obs.dataset!r} does not exist: no span of this service ever arrived")
            return
        if columns.status in (401, 403):
            return self._read_without_queries(obs, columns, "GET /1/columns")
        if (
            columns.status != 200
            or not isinstance(columns.body, list)
            or not all(isinstance(c, dict) for c in columns.body)
        ):
            raise _problem(columns, "GET /1/columns")  # Honeycomb lists columns as objects
        existing = {c.get("key_name"): c for c in columns.body}
        watched = (self.expectations.honeycomb.request_id_attribute, *ARRIVAL_COLUMNS)
        obs.last_written = {name: _epoch((existing.get(name) or {}).get("last_written")) for name in watched}
        if "trace.trace_id" not in existing:
            obs.notes.append(f"dataset {obs.dataset!r} has no trace.trace_id column: no span ever arrived")
            return
        self._read_parts(obs, [c for c in wanted if c in existing])

    def _read_parts(self, obs: HoneycombObservation, columns: list[str]) -> None:
        """Every span of the window: one query result per part; a part whose result hits the row limit is
        split and read again, within MAX_QUERY_RESULTS_PER_POLL. The first time the whole window comes back
        full, one COUNT query by time plans the parts (:func:`plan`); a planned part that still comes back
        full is split by minute, then by trace id prefix. The parts read are the next poll's plan, so a big
        run pays for finding them once."""
        plan_key = (obs.dataset, tuple(columns), obs.window.start, obs.window.end)
        known = self._plans.get(plan_key)
        pending = deque(known or initial_parts(obs.window.start, obs.window.end, WINDOW_PAD_S))
        unplanned = set() if known else set(pending)
        read: list[Part] = []
        spans: list[Span] = []
        while pending:
            part = pending.popleft()
            rows = self._query_rows(obs, part.spec(columns, QUERY_RESULT_LIMIT))
            if rows is None:
                return  # no Query Data API: _read_without_queries said why
            full = len(rows) >= QUERY_RESULT_LIMIT
            children: list[Part] = []
            if full and part in unplanned:
                planned = self._planned(obs, part, rows)
                if planned is None:
                    return
                children = planned
            if full and not children:
                children = part.split(_trace_ids(rows))
            queries = obs.cost_units["query_results"] + len(pending) + len(children)
            if children and queries <= MAX_QUERY_RESULTS_PER_POLL:
                pending.extend(children)
                self._say_split(obs, queries)
                continue
            obs.truncated = obs.truncated or full  # cannot split further (or not this poll): rows may be cut off
            read.append(part)
            spans += [Span(dict(row.get("data") or {}), int((row.get("data") or {}).get("COUNT") or 1)) for row in rows]
        self._plans[plan_key] = read
        obs.spans = spans
        if len(read) > 1:
            obs.notes.append(
                f"more than {QUERY_RESULT_LIMIT} span rows: read in {len(read)} parts (by minute, then by trace id "
                f"prefix); at {QUERY_RESULTS_PER_MINUTE} query results a minute a poll takes about "
                f"{len(read) * 60 / QUERY_RESULTS_PER_MINUTE:.0f} s"
            )

    def _planned(self, obs: HoneycombObservation, part: Part, rows: Sequence[dict[str, Any]]) -> list[Part] | None:
        """``part`` (whose result came back full with ``rows``) in parts planned from one COUNT query by time;
        [] when the counts cannot plan it (then it is split blindly); None without the Query Data API."""
        spec = count_spec(part)
        if spec is None:
            return []
        data = self._query_data(obs, spec, series=True)
        if data is None:
            return None
        per_second = counts_by_second(part, spec["granularity"], data.get("series") or [])
        if sum(per_second) < len(rows):
            return []  # no usable series (a count never holds fewer events than the rows returned)
        parts = plan(part, per_second, _trace_ids(rows), QUERY_RESULT_LIMIT)
        return [] if parts == [part] else parts

    def _say_split(self, obs: HoneycombObservation, queries: int) -> None:
        if self.progress is not None and queries > 1:
            self.progress(
                f"more than {QUERY_RESULT_LIMIT} rows: splitting the read ({queries} query results so far; "
                f"Honeycomb allows {QUERY_RESULTS_PER_MINUTE} a minute, so this poll takes longer)"
            )

    def _query_rows(self, obs: HoneycombObservation, spec: dict[str, Any]) -> list[dict[str, Any]] | None:
        """The result rows of one query spec (created once, then re-run); None when the plan or the key
        refuses the Query Data API (``obs`` then says why)."""
        data = self._query_data(obs, spec)
        if data is None:
            return None
        rows = data.get("results") or []
        return [row for row in rows if isinstance(row, dict)]

    def _query_data(
        self, obs: HoneycombObservation, spec: dict[str, Any], *, series: bool = False
    ) -> dict[str, Any] | None:
        """The ``data`` of one query result (``series`` only when asked for: then at most 1,000 results);
        None when the Query Data API is refused."""
        key = repr(sorted(spec.items()))
        dataset = obs.dataset
        query_id = self._query_ids.get(key)
        if query_id is None:
            answer = self._call(obs, "POST", f"1/queries/{dataset}", "POST /1/queries", spec)
            if answer.status in (401, 402, 403, 404):
                self._read_without_queries(obs, answer, "POST /1/queries")
                return None
            query_id = str(_expect_ok(answer, "POST /1/queries").get("id", ""))
            self._query_ids[key] = query_id
        self._limiter.wait()
        answer = self._call(
            obs,
            "POST",
            f"1/query_results/{dataset}",
            "POST /1/query_results",
            {
                "query_id": query_id,
                "disable_series": not series,
                "disable_total_by_aggregate": True,
                "disable_other_by_aggregate": True,
            }
            | ({} if series else {"limit": QUERY_RESULT_LIMIT}),  # 10,000 is allowed only without series
        )
        obs.cost_units["query_results"] += 1
        if answer.status in (401, 402, 403):
            self._read_without_queries(obs, answer, "POST /1/query_results")
            return None
        result = _expect_ok(answer, "POST /1/query_results")
        result = self._await_result(obs, dataset, result)
        data = result.get("data")
        return data if isinstance(data, dict) else {}

    def _await_result(self, obs: Observation, dataset: str, result: dict[str, Any]) -> dict[str, Any]:
        deadline = time.monotonic() + RESULT_TIMEOUT_S
        delay = 0.2
        while not result.get("complete"):
            if time.monotonic() > deadline:
                raise ReadError(
                    BACKEND, "error", f"query result {result.get('id')} not complete after {RESULT_TIMEOUT_S:.0f} s"
                )
            self._sleep(delay)
            delay = min(delay * 2, 2.0)
            answer = self._call(obs, "GET", f"1/query_results/{dataset}/{result.get('id')}", "GET /1/query_results")
            result = _expect_ok(answer, "GET /1/query_results")
        return result

    def _read_without_queries(self, obs: HoneycombObservation, refused: HttpAnswer, operation: str) -> None:
        """Without the Query Data API: is the key accepted (and why was the query refused)? The columns'
        last_written, read before, is then the only arrival signal."""
        auth = self._call(obs, "GET", "1/auth", "GET /1/auth")
        obs.auth_ok = auth.status == 200
        if obs.auth_ok and not isinstance(auth.body, dict):
            raise _problem(auth, "GET /1/auth")  # says what answered instead of Honeycomb's JSON object
        access = (auth.body or {}).get("api_key_access", {}) if obs.auth_ok else {}
        if auth.status in (401, 403):
            obs.auth_detail = (
                f"Honeycomb rejected HONEYCOMB_API_KEY (GET /1/auth: HTTP {auth.status}: {auth.message()})"
            )
        elif not obs.auth_ok:
            raise _problem(auth, "GET /1/auth")
        else:
            env = (auth.body or {}).get("environment", {}) or {}
            team = (auth.body or {}).get("team", {}) or {}
            obs.auth_detail = (
                f"key accepted (team {team.get('slug', '?')}, environment {env.get('slug') or '(classic)'})"
            )
        if not obs.auth_ok:
            obs.query_unavailable = obs.auth_detail
        elif access and (access.get("queries") is False or access.get("columns") is False):
            missing = "Run Queries" if access.get("queries") is False else "Manage Queries and Columns"
            flag = "queries" if access.get("queries") is False else "columns"
            obs.query_unavailable = (
                f"the API key lacks the '{missing}' permission the Query Data API needs (GET /1/auth: "
                f"api_key_access.{flag} is false); give the key that permission"
            )
        else:
            obs.query_unavailable = (
                f"the Query Data API needs the Enterprise plan (Honeycomb answered "
                f"{operation} with HTTP {refused.status}: {refused.message()})"
            )

    def seen_request_ids(self, obs: HoneycombObservation) -> set[str]:
        column = self.expectations.honeycomb.request_id_attribute
        return {value for s in obs.spans if (value := s.text(column))}

    def item_count(self, obs: HoneycombObservation) -> int:
        if obs.query_unavailable is not None:
            return sum(1 for t in obs.last_written.values() if t is not None and t >= obs.window.start)
        return sum(s.count for s in obs.spans)

    # ---- checking ----

    def verify(
        self, sent: Sequence[SentRequest], obs: HoneycombObservation, expectations: Expectations
    ) -> BackendReport:
        ctx = _Context(SentIndex(sent), expectations, obs)
        sampler = self.sampling.otel() if self.sampling is not None else None
        if sampler is not None:  # a head sampler: only the traces it keeps are expected
            ctx.idx.answered = [r for r in ctx.idx.answered if expected_keep(r, sampler) is not False]
        specs = check_specs(expectations)
        expected_keys = [k for r in ctx.idx.answered for k in _expected_keys(r, expectations)]
        note = _unanswered_note(ctx.idx)
        sampling_checks, sampling = _otel_sampling(sent, ctx, sampler)
        if obs.query_unavailable is not None:
            # Nothing per span was read: what was expected is known, what was found and missing is not.
            checks = _plan_checks(obs, expectations) + all_unverifiable(BACKEND, specs, obs.query_unavailable)
            expected = tally([], ours=lambda key: True, expected=expected_keys).expected_total
            unavailable = f"{obs.query_unavailable}. {note}".strip()
            return BackendReport(
                BACKEND, expected, 0, None, 0, checks + sampling_checks, note=unavailable, sampling=sampling
            )
        if obs.truncated:  # what the rows that did arrive show is still decided; absence proves nothing
            checks = _run_truncated(specs, ctx) + _truncated(sampling_checks)
        else:
            checks = run_checks(BACKEND, specs, ctx) + sampling_checks
        if sampling is not None and sampling_checks:  # truncation may have made the sampling check unverifiable
            sampling["otel"]["verdict"] = next(c.status for c in checks if c.name == sampling_checks[0].name)
        if obs.truncated:
            note = (
                f"the query result hit Honeycomb's {QUERY_RESULT_LIMIT}-row limit: checks that need every span "
                f"are unverifiable; verify a shorter run. {note}"
            ).strip()
        result = tally(
            (k for s in ctx.spans for k in [_found_key(s, ctx.idx)] for _ in range(s.count)),
            ours=lambda key: key[0] in ctx.idx.by_request_id,
            expected=expected_keys,
        )
        report = result.report(BACKEND, checks, note="; ".join(filter(None, [note, *obs.notes])))
        report.extra += sum(s.count for _, s in _unexpected(ctx))  # ours, but not a span the route lists
        report.sampling = sampling
        return report


def _trace_ids(rows: Sequence[dict[str, Any]]) -> list[str]:
    """The trace ids in result rows: what a full result shows of where its rows are."""
    return [t for row in rows if isinstance(t := (row.get("data") or {}).get("trace.trace_id"), str) and t]


def _expect_ok(answer: HttpAnswer, operation: str) -> dict[str, Any]:
    if answer.status not in (200, 201) or not isinstance(answer.body, dict):
        raise _problem(answer, operation)
    return answer.body


def _problem(answer: HttpAnswer, operation: str) -> ReadError:
    if answer.status in (401, 403):
        return ReadError(
            BACKEND,
            "denied",
            f"Honeycomb rejected HONEYCOMB_API_KEY on {operation} (HTTP {answer.status}: {answer.message()})",
        )
    if answer.status == 429:
        reset = answer.headers.get("RateLimit", "")
        shown = f"; {reset}" if reset else ""
        return ReadError(
            BACKEND,
            "throttled",
            f"rate limited on {operation} (HTTP 429{shown}): "
            f"Create Query Result allows {QUERY_RESULTS_PER_MINUTE} a minute",
        )
    if odd := answer.not_the_service(operation, "HONEYCOMB_API_ENDPOINT"):
        return ReadError(BACKEND, "error", odd)
    return ReadError(BACKEND, "error", f"{operation} answered HTTP {answer.status}: {answer.message()}")


def _epoch(value: Any) -> float | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _otel_sampling(
    sent: Sequence[SentRequest], ctx: _Context, sampler: OtelSampler | None
) -> tuple[list[CheckResult], dict[str, Any] | None]:
    """The exact head-sampling check: traces with a server span against the sampler's decisions."""
    if sampler is None:
        return [], None
    if ctx.obs.query_unavailable is not None:
        result = unverifiable_result(sampler, ctx.obs.query_unavailable)
    else:
        result = check_otel_sampling(sent, {s.trace_id for s in ctx.spans if s.is_server and s.trace_id}, sampler)
    assert result.check is not None
    return [result.check], {"otel": result.section()}


def _unanswered_note(idx: SentIndex) -> str:
    if not idx.unanswered:
        return ""
    return f"{idx.unanswered} requests got no response: nothing is expected for them, and their spans are not extra"


# ---- the checks ----------------------------------------------------------------------------


@dataclass
class _Context:
    idx: SentIndex
    exp: Expectations
    obs: HoneycombObservation
    spans: list[Span] = field(init=False)  # spans only (no span events / links)
    by_trace: dict[str, list[Span]] = field(init=False)  # every row of each sent trace, events included
    # Indexed once, since every check asks for every request: a sent trace's spans (no events / links),
    # its server spans, and its other spans.
    _trace: dict[str, list[Span]] = field(init=False)
    _servers: dict[str, list[Span]] = field(init=False)
    _others: dict[str, list[Span]] = field(init=False)
    _with_server: list[tuple[SentRequest, Span]] | None = field(init=False, default=None)  # see with_server()
    unexpected_found: list[tuple[SentRequest, Span]] | None = field(init=False, default=None)  # _unexpected()

    def __post_init__(self) -> None:
        self.spans = []
        self.by_trace = defaultdict(list)
        self._trace, self._servers, self._others = defaultdict(list), defaultdict(list), defaultdict(list)
        sent = self.idx.by_trace_id
        for s in self.obs.spans:
            trace_id = s.trace_id
            if not s.is_annotation:
                self.spans.append(s)
            if trace_id not in sent:
                continue
            self.by_trace[trace_id].append(s)
            if s.is_annotation:
                continue
            self._trace[trace_id].append(s)
            (self._servers if s.is_server else self._others)[trace_id].append(s)

    def trace(self, r: SentRequest) -> Sequence[Span]:
        return self._trace.get(r.trace_id, ())

    def servers(self, r: SentRequest) -> Sequence[Span]:
        return self._servers.get(r.trace_id, ())

    def server(self, r: SentRequest) -> Span | None:
        """The request's server span when exactly one arrived, once."""
        servers = self._servers.get(r.trace_id)
        return servers[0] if servers is not None and len(servers) == 1 and servers[0].count == 1 else None

    def with_server(self) -> list[tuple[SentRequest, Span]]:
        """The answered requests whose server span arrived exactly once, with it (several checks judge them)."""
        if self._with_server is None:
            self._with_server = [(r, span) for r in self.idx.answered if (span := self.server(r)) is not None]
        return self._with_server

    def named(self, r: SentRequest, name: str) -> Sequence[Span]:
        return [s for s in self._others.get(r.trace_id, ()) if s.name == name]

    def queried(self, conditions: Sequence[Condition]) -> str | None:
        """Why ``conditions`` cannot be evaluated (a column the query did not read), or None."""
        missing = [c.key for c in conditions if c.key not in self.obs.columns_queried]
        if missing:
            return (
                f"column(s) {', '.join(missing)} were not in the query: construct the verifier with these "
                "expectations (make_verifiers(connections, expectations))"
            )
        return None


def _label(span: Span) -> str:
    return "server" if span.is_server else span.name


def _found_key(span: Span, idx: SentIndex) -> tuple[str, str]:
    request = idx.by_trace_id.get(span.trace_id or "")
    return (request.request_id if request else f"trace {span.trace_id}", _label(span))


def _expected_keys(r: SentRequest, exp: Expectations) -> list[tuple[str, str]]:
    return [(r.request_id, "server")] + [(r.request_id, s.name) for s in exp.expected(r).spans]


def _describe(conditions: Sequence[Condition]) -> str:
    return ", ".join(c.describe() for c in conditions)


def check_specs(exp: Expectations) -> list[CheckSpec[_Context]]:
    hc = exp.honeycomb
    one_server = "no request had exactly one server span"
    specs: list[CheckSpec[_Context]] = [
        CheckSpec(
            "every request has exactly one server span with its trace id",
            _server_once,
            "no answered request in the sent-ledger",
        ),
        CheckSpec("every server span's parent is the span id the load generator sent", _server_parent, one_server),
    ]
    if hc.server_name:
        specs.append(CheckSpec(f"every server span's name matches {hc.server_name}", _server_name, one_server))
    if hc.server_attributes:
        specs.append(
            CheckSpec(f"every server span has {_describe(hc.server_attributes)}", _server_attributes, one_server)
        )
    specs.append(
        CheckSpec(
            f"server spans have error=true exactly on {hc.error_statuses.describe()} responses",
            _server_error,
            one_server,
        )
    )
    for route in exp.routes:
        for span in route.spans:
            parent = "the server span" if span.parent == "server" else f"span '{span.parent}'"
            when = "" if not span.statuses.patterns else f" ({span.statuses.describe()})"
            specs.append(
                CheckSpec(
                    f"route '{route.name}': exactly one span '{span.name}' per request{when}, under {parent}",
                    _child_placement(route.name, span),
                    f"no answered request of route '{route.name}' with {span.statuses.describe()}",
                )
            )
            if span.attributes:
                specs.append(
                    CheckSpec(
                        f"route '{route.name}': {_describe(span.attributes)} are on span '{span.name}'",
                        _child_attributes(route.name, span),
                        f"no request of route '{route.name}' had exactly one '{span.name}' span",
                    )
                )
    if hc.every_span_attributes:
        specs.append(
            CheckSpec(
                f"every span has {_describe(hc.every_span_attributes)}", _every_span, "no span found in the sent traces"
            )
        )
    specs += [
        CheckSpec("no orphan spans: every parent is the generator's span or a span in the same trace", _orphans),
        CheckSpec("no duplicate span ids", _duplicate_ids),
        CheckSpec("every span has a valid span id (16 hex digits, not all zero)", _span_ids),
        CheckSpec(
            "no unexpected spans: every span of a sent trace is its server span or a span its route lists",
            _unexpected_spans,
        ),
        CheckSpec("no spans for trace ids we did not send", _extra_traces),
    ]
    return specs


def _server_once(c: _Context) -> Findings:
    f = Findings()
    by_request_id: dict[str, list[Span]] | None = None  # server spans by request id: only a missing one needs it
    column = c.exp.honeycomb.request_id_attribute
    for r in c.idx.answered:
        servers = c.servers(r)
        n = sum(s.count for s in servers)
        if n == 1:
            f.ok()
        elif n == 0:
            if by_request_id is None:
                by_request_id = defaultdict(list)
                for s in c.spans:
                    if s.is_server and (rid := s.text(column)):
                        by_request_id[rid].append(s)
            elsewhere = [s.trace_id for s in by_request_id.get(r.request_id, []) if s.trace_id != r.trace_id]
            hint = f"its server span is in trace {elsewhere[0]}: the traceparent was not used" if elsewhere else ""
            f.bad(r.request_id, "no server span", hint)
        else:
            f.bad(r.request_id, "duplicated", f"{n} server spans: {', '.join(s.span_id or '?' for s in servers)}")
    _explain_missing(c, f, c.idx.answered, f.ids("no server span"))
    return f


NO_SPANS_HINT = (
    "No span of this run arrived at all (dataset {dataset} {state}): the likely cause is the exporter endpoint. "
    "OTEL_EXPORTER_OTLP_ENDPOINT is a base URL the exporter appends /v1/traces to, but an endpoint= passed in "
    "code is used as given and must end in /v1/traces; next suspects: the ingest key (OTEL_EXPORTER_OTLP_HEADERS) "
    "and a TracerProvider that is never set up"
)
DROPPED_HINT = (
    "{n} of them have other spans of the same trace in Honeycomb: the app created its spans but dropped some "
    "before export (a BatchSpanProcessor queue too small for the load logs 'Queue full, dropping Span')"
)
ENDED_HINT = (
    "The attributes are missing from a span that did arrive: were they set after the span ended? The SDK drops "
    "attributes set after end(), e.g. after the span's `with` block"
)


def _explain_missing(c: _Context, f: Findings, checked: Sequence[SentRequest], missing: set[str]) -> None:
    """Likely causes of missing spans, from what else arrived; and which app processes lost them."""
    if not missing:
        return
    if not c.by_trace:
        state = "does not exist" if c.obs.dataset_missing else "holds none of the run's trace ids"
        f.note(NO_SPANS_HINT.format(dataset=repr(c.obs.dataset), state=state))
    else:
        partial = sum(1 for rid in missing if c.trace(c.idx.by_request_id[rid]))
        if partial:
            f.note(DROPPED_HINT.format(n=partial))
    f.note(by_process(checked, missing))


def _each_server(c: _Context, judge: Callable[[SentRequest, Span], list[tuple[str, str]]]) -> Findings:
    f = Findings()
    for r, span in c.with_server():
        f.add(r.request_id, judge(r, span))
    return f


def _server_parent(c: _Context) -> Findings:
    return _each_server(
        c,
        lambda r, s: (
            []
            if s.parent_id == (r.parent_span_id or None)  # "" : no traceparent was sent, so no parent
            else [("wrong parent", f"parent {s.parent_id}, sent {r.parent_span_id or '(none)'}")]
        ),
    )


def _server_name(c: _Context) -> Findings:
    pattern = regex_template(c.exp.honeycomb.server_name or "")
    return _each_server(c, lambda r, s: [] if pattern.search(r, s.name) else [("wrong name", repr(s.name))])


def _condition_problems(
    conditions: Sequence[Condition], span: Span, r: SentRequest, others: Sequence[Span] = ()
) -> list[tuple[str, str]]:
    problems = []
    for cond in conditions:
        wrong = cond.check(span.get(cond.key), r)
        if wrong is None:
            continue
        holder = next((o for o in others if o is not span and o.get(cond.key) is not MISSING), None)
        if holder is not None and span.get(cond.key) is MISSING:
            problems.append(("misplaced", f"{cond.key} is on span '{holder.name}' instead"))
        else:
            problems.append(("wrong attribute", wrong))
    return problems


def _server_attributes(c: _Context) -> Findings | CheckResult:
    conditions = c.exp.honeycomb.server_attributes
    name = f"every server span has {_describe(conditions)}"
    if (why := c.queried(conditions)) is not None:
        return unverifiable(BACKEND, name, why)
    return _each_server(c, lambda r, s: _condition_problems(conditions, s, r))


def _server_error(c: _Context) -> Findings:
    statuses = c.exp.honeycomb.error_statuses

    def judge(r: SentRequest, s: Span) -> list[tuple[str, str]]:
        want = r.status in statuses
        if s.is_error == want:
            return []
        return [("error not set" if want else "error set", f"HTTP {r.status}, error={s.columns.get('error')!r}")]

    return _each_server(c, judge)


def _route_requests(c: _Context, route: str, span: SpanExpectation) -> list[SentRequest]:
    return [r for r in c.idx.answered if (e := c.exp.expected(r)).route_name == route and span in e.spans]


def _parent_span(c: _Context, r: SentRequest, parent: str) -> tuple[Span | None, str]:
    if parent == "server":
        return c.server(r), "the server span"
    spans = c.named(r, parent)
    return (spans[0] if len(spans) == 1 and spans[0].count == 1 else None), f"span '{parent}'"


def _child_placement(route: str, expected: SpanExpectation) -> Callable[[_Context], Findings]:
    def run(c: _Context) -> Findings:
        f = Findings()
        requests = _route_requests(c, route, expected)
        for r in requests:
            spans = c.named(r, expected.name)
            n = sum(s.count for s in spans)
            if n != 1:
                f.bad(r.request_id, "missing" if n == 0 else "duplicated", "" if n == 0 else f"{n} spans")
                continue
            parent, parent_name = _parent_span(c, r, expected.parent)
            child = spans[0]
            if parent is None:
                f.bad(r.request_id, "parent not unique", f"{parent_name} is missing or duplicated")
            elif child.parent_id != parent.span_id:
                actual = next((s for s in c.trace(r) if s.span_id == child.parent_id), None)
                where = f"span '{actual.name}'" if actual else f"unknown span {child.parent_id}"
                f.bad(r.request_id, "misplaced", f"under {where} instead of {parent_name}")
            else:
                f.ok()
        _explain_missing(c, f, requests, f.ids("missing"))
        return f

    return run


def _child_attributes(route: str, expected: SpanExpectation) -> Callable[[_Context], Findings | CheckResult]:
    def run(c: _Context) -> Findings | CheckResult:
        if (why := c.queried(expected.attributes)) is not None:
            return unverifiable(
                BACKEND, f"route '{route}': {_describe(expected.attributes)} are on span '{expected.name}'", why
            )
        f = Findings()
        for r in _route_requests(c, route, expected):
            spans = c.named(r, expected.name)
            if len(spans) == 1 and spans[0].count == 1:
                problems = _condition_problems(expected.attributes, spans[0], r, c.trace(r))
                f.add(r.request_id, problems)
                if any(kind == "wrong attribute" and detail.endswith(" missing") for kind, detail in problems):
                    f.note(ENDED_HINT)
        return f

    return run


def _every_span(c: _Context) -> Findings | CheckResult:
    conditions = c.exp.honeycomb.every_span_attributes
    if (why := c.queried(conditions)) is not None:
        return unverifiable(BACKEND, f"every span has {_describe(conditions)}", why)
    f = Findings(unit="spans")
    for r in c.idx.answered:
        for s in c.trace(r):
            problems = _condition_problems(conditions, s, r)
            f.add(r.request_id, [(k, f"span '{s.name}': {d}") for k, d in problems])
    return f


def _orphans(c: _Context) -> Findings:
    f = Findings(unit="spans")
    for trace_id, rows in c.by_trace.items():
        r = c.idx.by_trace_id[trace_id]
        known = {s.span_id for s in rows if s.span_id and not s.is_annotation} | {r.parent_span_id or None}
        for s in rows:
            if s.parent_id in known:
                f.ok()
            else:
                f.bad(r.request_id, "orphan", f"'{s.name}' has parent {s.parent_id or '(none)'}, not in its trace")
    return f


def _duplicate_ids(c: _Context) -> Findings:
    f = Findings(unit="spans")
    for trace_id, rows in c.by_trace.items():
        spans = [s for s in rows if not s.is_annotation and s.span_id]
        if len({s.span_id for s in spans}) == len(spans) and all(s.count == 1 for s in spans):
            f.checked += len(spans)  # the usual case: every id once
            continue
        r = c.idx.by_trace_id[trace_id]
        counts: dict[str, list[Span]] = defaultdict(list)
        for s in spans:
            counts[s.span_id or ""].append(s)
        for span_id, same in counts.items():
            n = sum(s.count for s in same)
            if n == 1:
                f.ok()
            else:
                f.bad(r.request_id, "duplicate span id", f"{span_id} ({same[0].name}) × {n}")
    return f


def _span_ids(c: _Context) -> Findings:
    f = Findings(unit="spans")
    for trace_id, rows in c.by_trace.items():
        r = c.idx.by_trace_id[trace_id]
        for s in rows:
            if s.is_annotation:
                continue  # span events and links have no id of their own
            if s.span_id and _VALID_SPAN_ID.fullmatch(s.span_id) and s.span_id.strip("0"):
                f.ok()
            else:
                f.bad(r.request_id, "invalid span id", f"'{s.name}' has span id {s.span_id or '(none)'!r}")
    return f


_VALID_SPAN_ID = re.compile(r"[0-9a-f]{16}")


def _unexpected(c: _Context) -> list[tuple[SentRequest, Span]]:
    """Spans of answered requests' traces that are neither a server span nor a span the route lists for the
    request's status, nor allowed by ``allow_unlisted``. Worked out once per context (a check and the
    report's extra count both need it)."""
    if c.unexpected_found is not None:
        return c.unexpected_found
    found = []
    for trace_id, rows in c.by_trace.items():
        r = c.idx.by_trace_id[trace_id]
        if r.status is None:
            continue  # never answered: nothing is expected of it
        listed = {e.name for e in c.exp.expected(r).spans}
        found += [
            (r, s)
            for s in rows
            if not s.is_annotation
            and not s.is_server
            and s.name not in listed
            and not c.exp.allows_unlisted("honeycomb", r, s.name)
        ]
    c.unexpected_found = found
    return found


def _unexpected_spans(c: _Context) -> Findings:
    f = Findings(unit="spans")
    answered = (rows for tid, rows in c.by_trace.items() if c.idx.by_trace_id[tid].status is not None)
    f.checked = sum(1 for rows in answered for s in rows if not s.is_annotation)
    for r, s in _unexpected(c):
        route = c.exp.route_name(r)
        f.problems.append((r.request_id, "unexpected", f"'{s.name}' in a trace of route '{route}' (HTTP {r.status})"))
    return f


def _extra_traces(c: _Context) -> Findings:
    f = Findings(unit="traces")
    extra: dict[str, list[Span]] = defaultdict(list)
    for s in c.spans:
        if s.trace_id in c.idx.by_trace_id:
            continue
        extra[s.trace_id or "(no trace id)"].append(s)
    f.checked = len({s.trace_id for s in c.spans})
    for trace_id, spans in extra.items():
        f.problems.append((trace_id, "not sent", f"{sum(s.count for s in spans)} spans, e.g. '{spans[0].name}'"))
    return f


def _plan_checks(obs: HoneycombObservation, exp: Expectations) -> list[CheckResult]:
    """What a plan without the Query Data API can still decide."""
    checks = [
        CheckResult(
            BACKEND,
            "the Honeycomb API key is accepted (GET /1/auth)",
            "pass" if obs.auth_ok else "fail",
            obs.auth_detail,
        )
    ]
    watched = [exp.honeycomb.request_id_attribute, *ARRIVAL_COLUMNS]
    name = f"the dataset received spans during the run ({', '.join(watched)} last_written)"
    if obs.dataset_missing:
        checks.append(CheckResult(BACKEND, name, "fail", f"dataset {obs.dataset!r} does not exist"))
    elif not obs.last_written:
        checks.append(unverifiable(BACKEND, name, "GET /1/columns could not be read with this key"))
    else:
        stale = {k: v for k, v in obs.last_written.items() if v is None or v < obs.window.start}
        shown = ", ".join(f"{k}: {_when(v)}" for k, v in obs.last_written.items())
        checks.append(
            CheckResult(
                BACKEND,
                name,
                "fail" if stale else "pass",
                f"{'not written since the run started' if stale else 'written during the run'} "
                f"({shown}); this shows arrival, not that every request's spans arrived",
            )
        )
    return checks


def _when(epoch: float | None) -> str:
    return "never" if epoch is None else datetime.fromtimestamp(epoch).astimezone().isoformat(timespec="seconds")


_KEEP_WHEN_TRUNCATED = ("no duplicate span ids", "no spans for trace ids we did not send")
# Problems that only the absence of a row shows: with rows cut off they may be the cut, not the app.
_ABSENCE_KINDS = frozenset({"no server span", "missing", "parent not unique", "orphan"})


def _run_truncated(specs: Sequence[CheckSpec[_Context]], ctx: _Context) -> list[CheckResult]:
    """The checks on a result cut off at the row limit: a problem seen in a row that did arrive (a duplicate,
    a wrong attribute, an unexpected span) still fails; one that only a missing row shows is unverifiable."""
    reason = f"the query result hit the {QUERY_RESULT_LIMIT}-row limit, so spans may be cut off"
    results = []
    for spec in specs:
        outcome = run_spec(BACKEND, spec, ctx)
        if isinstance(outcome, CheckResult):
            keep = outcome.status == "fail"
            results.append(outcome if keep else unverifiable(BACKEND, spec.name, f"{reason}; {outcome.detail}"))
            continue
        seen = [p for p in outcome.problems if p[1] not in _ABSENCE_KINDS]
        if seen:
            definite = Findings(outcome.unit, outcome.checked, seen, outcome.notes)
            result = verdict(BACKEND, spec.name, definite)
            results.append(replace(result, detail=f"{result.detail}; {reason}: other problems may be hidden"))
        else:
            result = verdict(BACKEND, spec.name, outcome, empty=spec.empty)
            results.append(unverifiable(BACKEND, spec.name, f"{reason}; {result.detail}"))
    return results


def _truncated(checks: list[CheckResult]) -> list[CheckResult]:
    """With rows cut off, only problems actually seen in the rows (duplicates, extras) are decided."""
    reason = f"the query result hit the {QUERY_RESULT_LIMIT}-row limit, so spans may be cut off"
    return [
        c
        if (c.name in _KEEP_WHEN_TRUNCATED and c.status == "fail")
        else unverifiable(BACKEND, c.name, f"{reason}; {c.detail}")
        for c in checks
    ]
