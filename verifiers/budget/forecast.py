"""Before a run: how much of each allowance it will use (and the guard). After: how long an allowance lasts.

Forecast = planned requests x usage per request.

- Planned requests = users x run time x requests per user-second, from earlier runs of the same traffic
  profile (measured), else the locustfile's ``wait_time`` (an upper bound: response time is ignored),
  else an assumed 1 a second. Ramp-up is ignored, so the forecast errs high.
- Usage per request, per metric = what earlier runs of the same profile and account used / their answered
  requests (the 10 newest measured runs); with no history, from the expectations file and the locustfile's
  route weights (see ``from_expectations`` for the assumptions, all on the high side).
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass

from verifiers.budget.allowances import Allowance
from verifiers.budget.ledger import RunEntry
from verifiers.budget.traffic import LocustfileTraffic, PlannedRoute
from verifiers.expectations import Expectations
from verifiers.model import Backend, SentRequest

HISTORY_RUNS = 10  # the newest measured runs of the same profile that per-request usage is averaged over
ASSUMED_REQUESTS_PER_USER_S = 1.0  # when neither history nor the locustfile's wait_time says
# No-history assumptions (the first run of a profile replaces them with measurements):
ASSUMED_LOG_LINE_BYTES = 200  # a log line's message; the bundled access line is about 105 bytes
ASSUMED_XRAY_POLLS = 15  # each verifier poll scans and retrieves every trace of the run again
MEASURED_SOURCES = ("measured", "lower-bound")


@dataclass(frozen=True)
class Emission:
    """Usage per answered request, by metric, and where the figures come from."""

    per_request: dict[str, float]
    basis: str
    from_history: bool


@dataclass(frozen=True)
class RequestForecast:
    requests: float
    per_user_s: float
    basis: str


def from_history(runs: Sequence[RunEntry]) -> Emission | None:
    runs = [r for r in runs if r.requests > 0]
    if not runs:
        return None
    requests = sum(r.requests for r in runs)
    metrics = {m for r in runs for m in r.usage}
    per_request = {m: sum(r.usage.get(m, 0.0) for r in runs) / requests for m in sorted(metrics)}
    shown = "1 earlier run" if len(runs) == 1 else f"{len(runs)} earlier runs"
    return Emission(per_request, f"measured in {shown} ({requests} requests)", True)


# A route whose status the locustfile does not say is forecast at the costliest of these: an estimate the
# guard relies on must not come out low because a route's failures (and their error reports) were unknown.
CANDIDATE_STATUSES = (200, 201, 204, 400, 401, 403, 404, 409, 422, 429, 500, 502, 503)


def _probe_requests(route: PlannedRoute) -> list[SentRequest]:
    """Stand-in ledger lines for a planned request, one per status it may answer: the expectations decide
    what each should emit."""
    return [
        SentRequest(
            request_id="forecast",
            name=route.name,
            method=route.method,
            url=route.path,
            path=route.path,
            start=0.0,
            end=0.0,
            status=status,
            trace_id="0" * 32,
            parent_span_id="0" * 16,
            xray_trace_id="1-00000000-" + "0" * 24,
            worker="forecast",
        )  # fmt: skip
        for status in ((route.status,) if route.status is not None else CANDIDATE_STATUSES)
    ]


def _per_request(backend: Backend, r: SentRequest, exp: Expectations) -> dict[str, float]:
    if backend == "honeycomb":
        # The server span, the route's child spans, and an exception span event on an error status.
        return {"events": 1.0 + len(exp.spans_for(r)) + (1.0 if r.status in exp.honeycomb.error_statuses else 0.0)}
    if backend == "xray":
        # Every request may be sampled: an upper bound (the reservoir + rate usually record far fewer).
        return {"traces_recorded": 1.0, "traces_scanned": ASSUMED_XRAY_POLLS, "traces_retrieved": ASSUMED_XRAY_POLLS}
    if backend == "cloudwatch_logs":
        lines = sum(line.count for line in exp.lines_for(r))
        return {"events_ingested": float(lines), "bytes_ingested": lines * (ASSUMED_LOG_LINE_BYTES + 26.0)}
    return {"occurrences": float(sum(o.count for o in exp.occurrences_for(r)))}


def _mean(
    backend: Backend, exp: Expectations, requests: Sequence[tuple[Sequence[SentRequest], float]]
) -> dict[str, float]:
    """Weighted mean per request; a request with several possible statuses counts its costliest, per metric."""
    total = sum(weight for _, weight in requests)
    per_request: dict[str, float] = {}
    for variants, weight in requests:
        usages = [_per_request(backend, variant, exp) for variant in variants]
        for metric in {m for usage in usages for m in usage}:
            costliest = max(usage.get(metric, 0.0) for usage in usages)
            per_request[metric] = per_request.get(metric, 0.0) + costliest * weight / total
    return per_request


def from_expectations(backend: Backend, exp: Expectations, traffic: LocustfileTraffic) -> Emission:
    """What the expectations say each request emits, weighted by the locustfile's route weights."""
    routes = traffic.routes
    basis = "the expectations file and the locustfile's route weights (no earlier run of this profile)"
    if not routes:
        routes = (PlannedRoute("(any)", "/", 1.0, None),)
        basis = (
            "the expectations file for a request matching no route, at its costliest status (the locustfile's "
            "routes are unreadable)"
        )
    elif any(r.status is None for r in routes):
        basis += ", each route at its costliest status (the locustfile does not say what they answer)"
    return Emission(_mean(backend, exp, [(_probe_requests(r), r.weight) for r in routes]), basis, False)


def from_sent(backend: Backend, exp: Expectations, sent: Sequence[SentRequest]) -> Emission | None:
    """What the expectations say the requests actually sent (and answered) should have emitted."""
    answered = [([r], 1.0) for r in sent if r.status is not None]
    if not answered:
        return None
    basis = "the expectations file for the requests sent (no earlier measured run of this profile)"
    return Emission(_mean(backend, exp, answered), basis, False)


def forecast_requests(
    users: int, run_time_s: float, history: Sequence[RunEntry], traffic: LocustfileTraffic
) -> RequestForecast:
    user_seconds = sum(r.users * r.load_seconds for r in history if r.requests > 0)
    if user_seconds > 0:
        per_user_s = sum(r.requests for r in history if r.requests > 0) / user_seconds
        basis = f"{per_user_s:.2f} requests per user-second measured in earlier runs"
    elif traffic.requests_per_user_s is not None:
        per_user_s = traffic.requests_per_user_s
        basis = f"at most {per_user_s:.2f} requests per user-second (wait_time = {traffic.wait_time})"
    else:
        per_user_s = ASSUMED_REQUESTS_PER_USER_S
        basis = f"an assumed {per_user_s:g} request per user-second (no history, no readable wait_time)"
    return RequestForecast(per_user_s * users * run_time_s, per_user_s, basis)


@dataclass(frozen=True)
class AllowanceForecast:
    allowance: Allowance
    account: str
    forecast: float
    month_to_date: float
    basis: str

    @property
    def remaining(self) -> float:
        return max(0.0, self.allowance.limit - self.month_to_date)

    @property
    def exceeds(self) -> bool:
        return self.forecast > self.remaining


def amount(allowance: Allowance, usage: dict[str, float]) -> float:
    return sum(usage.get(m, 0.0) for m in allowance.metrics)


def forecast_allowance(
    allowance: Allowance, account: str, requests: float, emission: Emission, month_to_date: dict[str, float]
) -> AllowanceForecast:
    return AllowanceForecast(
        allowance, account, requests * amount(allowance, emission.per_request), amount(allowance, month_to_date),
        emission.basis,
    )  # fmt: skip


# ---- after a run -----------------------------------------------------------------------------


def month_seconds(month: str) -> float:
    year, number = (int(x) for x in month.split("-"))
    return calendar.monthrange(year, number)[1] * 86400.0


@dataclass(frozen=True)
class Outlook:
    """One allowance after a run, at the rate the run was sent."""

    allowance: Allowance
    account: str
    this_run: float
    month_to_date: float  # including this run
    per_request: float | None  # None: no answered request
    lasts_s: float | None  # the full allowance at this run's usage rate (traffic allowances)
    remaining_lasts_s: float | None  # what is left this month at that rate
    sustainable_rps: float | None  # requests a second that use exactly the allowance over this month
    runs_left: float | None  # reading allowances: how many more runs like this one fit this month
    # Sustainable whatever the usage per request does (Allowance.max_per_request); shown when lower.
    safe_rps: float | None = None

    @property
    def remaining(self) -> float:
        return max(0.0, self.allowance.limit - self.month_to_date)

    @property
    def used_fraction(self) -> float | None:
        return self.month_to_date / self.allowance.limit if self.allowance.limit else None  # JSON has no infinity


def outlook(
    allowance: Allowance,
    account: str,
    this_run: float,
    month_to_date: float,
    requests: int,
    load_seconds: float,
    month: str,
) -> Outlook:
    per_request = this_run / requests if requests else None
    remaining = max(0.0, allowance.limit - month_to_date)
    lasts = remaining_lasts = sustainable = runs_left = safe = None
    if allowance.traffic:
        rate = this_run / load_seconds if load_seconds > 0 else 0.0
        if rate > 0:
            lasts, remaining_lasts = allowance.limit / rate, remaining / rate
        if per_request:
            sustainable = allowance.limit / month_seconds(month) / per_request
        if allowance.max_per_request:
            safe = allowance.limit / month_seconds(month) / allowance.max_per_request
            safe = safe if sustainable is None or safe < sustainable else None
    elif this_run > 0:
        runs_left = remaining / this_run
    return Outlook(
        allowance, account, this_run, month_to_date, per_request, lasts, remaining_lasts, sustainable, runs_left, safe
    )
