"""HoneycombVerifier.poll against a fake Query Data API: request shapes, polling, plans and errors."""

from __future__ import annotations

from typing import Any

import pytest

from tests.verifiers import EXP, HOME, FakeHttpApi, Recorded, ledger, served, window
from verifiers.base import RateLimiter, ReadError
from verifiers.connections import Connections
from verifiers.honeycomb import CORE_COLUMNS, HoneycombVerifier

KEY = "hc-secret-key-123"
SENT = ledger(HOME)
ROW = {
    "trace.trace_id": SENT[0].trace_id,
    "trace.span_id": "a" * 16,
    "trace.parent_id": SENT[0].parent_span_id,
    "name": "GET /api/activities/home",
    "span.kind": "server",
    "app.request_id": SENT[0].request_id,
    "COUNT": 1,
}


# What the dataset has: no span event ever arrived, so meta.annotation_type does not exist (yet).
DATASET_COLUMNS = [c for c in CORE_COLUMNS if c != "meta.annotation_type"] + [
    "app.request_id",
    "app.now",
    "app.result_length",
    "http.status_code",
    "duration_ms",
]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def query_api(rows: list[dict[str, Any]], incomplete_polls: int = 1):
    state = {"polls": 0}

    def handle(req: Recorded) -> tuple[int, Any]:
        if req.method == "GET" and req.path == "/1/columns/backend-flask":
            return 200, [{"key_name": c, "last_written": "2026-01-01T00:00:00Z"} for c in DATASET_COLUMNS]
        if req.method == "POST" and req.path == "/1/queries/backend-flask":
            return 200, {"id": "q1", **req.body}
        if req.method == "POST" and req.path == "/1/query_results/backend-flask":
            return 201, {"id": "r1", "complete": False}
        if req.method == "GET" and req.path == "/1/query_results/backend-flask/r1":
            state["polls"] += 1
            if state["polls"] <= incomplete_polls:
                return 200, {"id": "r1", "complete": False}
            return 200, {
                "id": "r1",
                "complete": True,
                "data": {"results": [{"data": r} for r in rows]},
                "links": {"query_url": "https://ui.honeycomb.io/q"},
            }
        return 404, {"error": "not found"}

    return FakeHttpApi(handle)


def verifier(url: str, clock: FakeClock | None = None) -> HoneycombVerifier:
    clock = clock or FakeClock()
    return HoneycombVerifier(
        Connections(honeycomb_api_key=KEY, honeycomb_api_url=url),
        EXP,
        limiter=RateLimiter(1, 6.0, clock=clock, sleep=clock.sleep),
        sleep=lambda s: None,
    )


def test_poll_runs_one_query_with_the_needed_breakdowns():
    api = query_api([ROW])
    with served(api) as url:
        obs = verifier(url).poll(window(SENT))
    create = api.calls("POST", "/1/queries/")[0]
    spec = create.body
    assert spec["calculations"] == [{"op": "COUNT"}]
    # every column the checks read that the dataset has; never one it lacks (Honeycomb would reject the query)
    assert set(spec["breakdowns"]) == set(DATASET_COLUMNS) - {"duration_ms"}
    w = window(SENT)
    assert spec["start_time"] <= w.start - 60 and spec["end_time"] >= w.end + 60
    result = api.calls("POST", "/1/query_results/")[0].body
    assert result == {
        "query_id": "q1",
        "disable_series": True,
        "disable_total_by_aggregate": True,
        "disable_other_by_aggregate": True,
        "limit": 10000,
    }
    assert all(r.headers.get("X-Honeycomb-Team") == KEY for r in api.requests)
    assert len(api.calls("GET", "/1/query_results/backend-flask/r1")) == 2  # polled until complete
    assert [s.span_id for s in obs.spans] == ["a" * 16]
    assert obs.api_calls == {
        "GET /1/columns": 1,
        "POST /1/queries": 1,
        "POST /1/query_results": 1,
        "GET /1/query_results": 2,
    }
    assert "meta.annotation_type" in obs.columns_queried  # known absent: no row can have it
    assert obs.cost_units["query_results"] == 1
    assert obs.query_unavailable is None and not obs.truncated


def test_second_poll_reuses_the_query_and_respects_ten_results_a_minute():
    api = query_api([ROW], incomplete_polls=0)
    clock = FakeClock()
    with served(api) as url:
        v = verifier(url, clock)
        v.poll(window(SENT))
        v.poll(window(SENT))
    assert len(api.calls("POST", "/1/queries/")) == 1
    assert len(api.calls("POST", "/1/query_results/")) == 2
    assert clock.slept == [6.0]


def test_a_result_at_the_row_limit_is_marked_truncated(monkeypatch):
    monkeypatch.setattr("verifiers.honeycomb.QUERY_RESULT_LIMIT", 2)
    api = query_api([ROW, {**ROW, "trace.span_id": "b" * 16}], incomplete_polls=0)
    with served(api) as url:
        assert verifier(url).poll(window(SENT)).truncated


def plan_without_query_api(
    auth_status: int = 200, queries: bool = True, columns_status: int = 200, last_written: str = "2099-01-01T00:00:00Z"
):
    def handle(req: Recorded) -> tuple[int, Any]:
        if req.path.startswith("/1/queries/"):
            return 403, {
                "status": 403,
                "error": "Query Data API access requires an Enterprise plan",
                "type": "https://api.honeycomb.io/problems/forbidden",
                "title": "Forbidden",
            }
        if req.path == "/1/auth":
            if auth_status != 200:
                return auth_status, {"error": "unknown API key - check your credentials"}
            return 200, {
                "api_key_access": {"events": True, "queries": queries, "columns": True},
                "environment": {"name": "test", "slug": "test"},
                "team": {"name": "t", "slug": "t"},
            }
        if req.path == "/1/columns/backend-flask":
            if columns_status != 200:
                return columns_status, {"error": "Dataset not found"}
            return 200, [
                {"key_name": "app.request_id", "last_written": last_written},
                {"key_name": "trace.trace_id", "last_written": last_written},
            ]
        return 404, {"error": "not found"}

    return FakeHttpApi(handle)


def test_without_the_query_api_the_poll_reads_auth_and_columns():
    api = plan_without_query_api()
    with served(api) as url:
        v = verifier(url)
        obs = v.poll(window(SENT))
    assert obs.query_unavailable is not None
    assert "Enterprise plan" in obs.query_unavailable and "HTTP 403" in obs.query_unavailable
    assert obs.auth_ok is True
    assert obs.last_written["app.request_id"] == pytest.approx(4070908800.0)
    assert v.item_count(obs) == 2
    report = v.verify(SENT, obs, EXP)
    assert report.status == "unverifiable"  # never a pass without the per-request data


def test_a_key_without_run_queries_permission_is_named():
    with served(plan_without_query_api(queries=False)) as url:
        obs = verifier(url).poll(window(SENT))
    assert obs.query_unavailable is not None and "'Run Queries' permission" in obs.query_unavailable


def test_a_key_that_cannot_read_columns_is_named():
    def handle(req: Recorded) -> tuple[int, Any]:
        if req.path == "/1/auth":
            return 200, {"api_key_access": {"queries": True, "columns": False}}
        return 403, {"error": "this API key lacks the columns permission"}

    with served(FakeHttpApi(handle)) as url:
        obs = verifier(url).poll(window(SENT))
    assert obs.query_unavailable is not None and "'Manage Queries and Columns' permission" in obs.query_unavailable
    assert obs.last_written == {}


def test_a_dataset_without_spans_yet_is_a_complete_empty_read():
    def handle(req: Recorded) -> tuple[int, Any]:
        return 200, [{"key_name": "service.name"}]  # only GET /1/columns is called

    api = FakeHttpApi(handle)
    with served(api) as url:
        obs = verifier(url).poll(window(SENT))
    assert obs.spans == [] and obs.query_unavailable is None
    assert [r.path for r in api.requests] == ["/1/columns/backend-flask"]


def test_a_rejected_key_fails_the_auth_check():
    with served(plan_without_query_api(auth_status=401, columns_status=401)) as url:
        v = verifier(url)
        obs = v.poll(window(SENT))
    report = v.verify(SENT, obs, EXP)
    assert report.status == "fail"
    assert any(c.name.startswith("the Honeycomb API key is accepted") and c.status == "fail" for c in report.checks)


def test_a_missing_dataset_is_a_complete_empty_read():
    def handle(req: Recorded) -> tuple[int, Any]:
        if req.path == "/1/auth":
            return 200, {"api_key_access": {"queries": True}}
        return 404, {"error": "Dataset not found"}

    with served(FakeHttpApi(handle)) as url:
        v = verifier(url)
        obs = v.poll(window(SENT))
    assert obs.dataset_missing and obs.query_unavailable is None and obs.spans == []
    report = v.verify(SENT, obs, EXP)
    assert report.status == "fail" and report.missing == 2
    assert "does not exist" in report.note


def test_throttled_query_result_raises_a_read_error():
    def handle(req: Recorded) -> tuple[int, Any]:
        if req.path.startswith("/1/columns/"):
            return 200, [{"key_name": c} for c in DATASET_COLUMNS]
        if req.path.startswith("/1/queries/"):
            return 200, {"id": "q1"}
        return 429, {"status": 429, "error": "rate limited"}

    with served(FakeHttpApi(handle)) as url, pytest.raises(ReadError) as err:
        verifier(url).poll(window(SENT))
    assert err.value.kind == "throttled" and "10 a minute" in str(err.value)


def test_unreachable_api_raises_a_read_error_naming_the_variable():
    with pytest.raises(ReadError) as err:
        verifier("http://127.0.0.1:9").poll(window(SENT))
    assert err.value.kind == "unreachable" and "HONEYCOMB_API_ENDPOINT" in str(err.value)
    assert KEY not in str(err.value)
