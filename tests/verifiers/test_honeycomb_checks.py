"""Honeycomb checks on crafted query results: pass on correct spans, fail on each kind of breakage."""

from __future__ import annotations

from typing import Any

import pytest

from tests.verifiers import EVERY_ROUTE, EXP, FAULT, HOME, USER, check, ledger, request, window
from verifiers.connections import Connections
from verifiers.honeycomb import CORE_COLUMNS, QUERY_RESULT_LIMIT, HoneycombObservation, HoneycombVerifier, Span
from verifiers.model import SentRequest

VERIFIER = HoneycombVerifier(Connections(honeycomb_api_key="k"), EXP)
CHILD = "home-activities-mock-data"


def span_id(r: SentRequest, n: int) -> str:
    return f"{int(r.parent_span_id, 16) * 16 + n:016x}"


def server_row(r: SentRequest) -> dict[str, Any]:
    route = "/api/activities/@<handle>" if "@" in r.path else r.path
    return {
        "trace.trace_id": r.trace_id,
        "trace.span_id": span_id(r, 1),
        "trace.parent_id": r.parent_span_id,
        "name": f"GET {route}",
        "span.kind": "server",
        "error": True if r.status and r.status >= 500 else None,
        "app.request_id": r.request_id,
        "http.status_code": r.status,
    }


def child_row(r: SentRequest) -> dict[str, Any]:
    return {
        "trace.trace_id": r.trace_id,
        "trace.span_id": span_id(r, 2),
        "trace.parent_id": span_id(r, 1),
        "name": CHILD,
        "span.kind": "internal",
        "app.request_id": r.request_id,
        "app.now": "2025-10-09T08:53:20+00:00",
        "app.result_length": 5,
    }


def good_rows(sent: list[SentRequest]) -> dict[str, list[dict[str, Any]]]:
    """Per request id: the rows a correctly instrumented app produces."""
    rows = {}
    for r in sent:
        rows[r.request_id] = [server_row(r)] + ([child_row(r)] if r.name == "home" else [])
    return rows


def observe(
    rows: dict[str, list[dict[str, Any]]] | list[dict[str, Any]],
    sent: list[SentRequest],
    counts: dict[str, int] | None = None,
    **fields: Any,
) -> HoneycombObservation:
    flat = [row for group in rows.values() for row in group] if isinstance(rows, dict) else rows
    counts = counts or {}
    spans = [Span(row, counts.get(row.get("trace.span_id", ""), 1)) for row in flat]
    fields.setdefault("columns_queried", CORE_COLUMNS + tuple(EXP.honeycomb_columns()))
    return HoneycombObservation("honeycomb", window(sent), dataset="backend-flask", spans=spans, **fields)


def verify(rows: Any, sent: list[SentRequest], **kw: Any):
    return VERIFIER.verify(sent, observe(rows, sent, **kw), EXP)


@pytest.fixture
def sent() -> list[SentRequest]:
    return ledger(*EVERY_ROUTE, HOME)


def test_correct_spans_pass_every_check(sent):
    report = verify(good_rows(sent), sent)
    assert [c.name for c in report.checks if c.status != "pass"] == []
    # 8 server spans + 2 home child spans, all found, nothing extra
    assert (report.expected, report.found, report.missing, report.extra) == (10, 10, 0, 0)
    assert "all 8 requests ok" in check(report, "exactly one server span").detail


def test_every_check_name_says_what_it_checked(sent):
    names = [c.name for c in verify(good_rows(sent), sent).checks]
    assert "every request has exactly one server span with its trace id" in names
    assert "route 'home': exactly one span 'home-activities-mock-data' per request, under the server span" in names
    assert "route 'home': app.now exists, app.result_length > 0 are on span 'home-activities-mock-data'" in names
    assert "no spans for trace ids we did not send" in names


def test_missing_server_span_fails_with_count_and_request_id(sent):
    rows = good_rows(sent)
    lost = sent[1]
    rows[lost.request_id] = []
    report = verify(rows, sent)
    result = check(report, "exactly one server span")
    assert result.status == "fail"
    assert "1 of 8 requests failed (no server span: 1)" in result.detail
    assert f"{lost.request_id} no server span" in result.detail
    assert (report.expected, report.found, report.missing) == (10, 9, 1)


def test_server_span_in_another_trace_says_traceparent_was_ignored(sent):
    rows = good_rows(sent)
    moved = sent[0]
    for row in rows[moved.request_id]:
        row["trace.trace_id"] = "f" * 32
    result = check(verify(rows, sent), "exactly one server span")
    assert result.status == "fail"
    assert "traceparent was not used" in result.detail


def test_duplicated_server_span_fails_server_and_duplicate_id_checks(sent):
    rows = good_rows(sent)
    dup = sent[2]
    report = verify(rows, sent, counts={span_id(dup, 1): 2})
    assert "duplicated: 1" in check(report, "exactly one server span").detail
    dup_check = check(report, "no duplicate span ids")
    assert dup_check.status == "fail"
    assert f"{span_id(dup, 1)} (GET /api/activities/@<handle>) × 2" in dup_check.detail
    assert report.found == 10  # a duplicate is counted once


def test_two_server_spans_with_different_ids_fail(sent):
    rows = good_rows(sent)
    extra = dict(rows[sent[3].request_id][0], **{"trace.span_id": "0123456789abcdef"})
    rows[sent[3].request_id].append(extra)
    result = check(verify(rows, sent), "exactly one server span")
    assert result.status == "fail" and "2 server spans" in result.detail


def test_server_span_with_wrong_parent_fails(sent):
    rows = good_rows(sent)
    rows[sent[4].request_id][0]["trace.parent_id"] = "00000000000000ff"
    report = verify(rows, sent)
    result = check(report, "parent is the span id the load generator sent")
    assert result.status == "fail" and "wrong parent: 1" in result.detail
    assert check(report, "orphan").status == "fail"


def test_misplaced_attribute_on_server_span_fails_the_placement_check(sent):
    rows = good_rows(sent)
    home = sent[0]
    server, child = rows[home.request_id]
    server["app.result_length"] = child.pop("app.result_length")
    report = verify(rows, sent)
    placement = check(report, "are on span 'home-activities-mock-data'")
    assert placement.status == "fail"
    assert "misplaced: 1" in placement.detail
    assert "app.result_length is on span 'GET /api/activities/home' instead" in placement.detail
    # the span itself is where it belongs: only the attribute is wrong
    assert check(report, "exactly one span 'home-activities-mock-data'").status == "pass"


def test_child_span_under_the_wrong_parent_fails(sent):
    rows = good_rows(sent)
    home = sent[0]
    other = {**child_row(home), "trace.span_id": span_id(home, 3), "name": "db-query"}
    rows[home.request_id].append(other)
    rows[home.request_id][1]["trace.parent_id"] = span_id(home, 3)
    result = check(verify(rows, sent), "exactly one span 'home-activities-mock-data'")
    assert result.status == "fail"
    assert "under span 'db-query' instead of the server span" in result.detail


def test_missing_and_duplicated_child_spans_fail_with_counts(sent):
    rows = good_rows(sent)
    first, second = sent[0], sent[-1]
    rows[first.request_id].pop()  # child lost
    report = verify(rows, sent, counts={span_id(second, 2): 3})
    result = check(report, "exactly one span 'home-activities-mock-data'")
    assert result.status == "fail"
    assert "2 of 2 requests failed" in result.detail
    assert "missing: 1" in result.detail and "duplicated: 1" in result.detail and "3 spans" in result.detail
    # with no home request left that has exactly one child, the attribute check cannot pass
    assert check(report, "are on span").status == "unverifiable"


def test_child_attribute_with_a_wrong_value_fails():
    sent = ledger(HOME)
    rows = good_rows(sent)
    rows[sent[0].request_id][1]["app.result_length"] = 0
    result = check(verify(rows, sent), "are on span")
    assert result.status == "fail" and "app.result_length is 0, wanted > 0" in result.detail


def test_error_flag_must_match_the_status(sent):
    rows = good_rows(sent)
    fault = next(r for r in sent if r.name == "fault")
    rows[fault.request_id][0]["error"] = None
    rows[sent[0].request_id][0]["error"] = True
    result = check(verify(rows, sent), "error=true exactly on 5xx")
    assert result.status == "fail"
    assert "error not set: 1" in result.detail and "error set: 1" in result.detail


def test_server_attribute_status_mismatch_fails(sent):
    rows = good_rows(sent)
    rows[sent[0].request_id][0]["http.status_code"] = 500
    result = check(verify(rows, sent), "every server span has http.status_code = {status}")
    assert result.status == "fail" and "http.status_code is 500, wanted = 200" in result.detail


def test_span_without_request_id_fails_every_span_check(sent):
    rows = good_rows(sent)
    del rows[sent[0].request_id][1]["app.request_id"]
    result = check(verify(rows, sent), "every span has app.request_id")
    assert result.status == "fail"
    assert "1 of 10 spans failed" in result.detail


def test_orphan_span_fails(sent):
    rows = good_rows(sent)
    rows[sent[0].request_id][1]["trace.parent_id"] = "1234123412341234"
    result = check(verify(rows, sent), "no orphan spans")
    assert result.status == "fail"
    assert "'home-activities-mock-data' has parent 1234123412341234" in result.detail


def test_spans_for_traces_we_did_not_send_are_extra(sent):
    rows = good_rows(sent)
    stranger = request(*HOME)  # not in the ledger
    rows["stranger"] = [server_row(stranger), child_row(stranger)]
    report = verify(rows, sent)
    result = check(report, "no spans for trace ids we did not send")
    assert result.status == "fail"
    assert "1 of 9 traces failed (not sent: 1)" in result.detail
    assert report.extra == 2
    assert report.found == 10 and report.missing == 0


def test_span_events_are_not_spans_but_need_a_parent(sent):
    rows = good_rows(sent)
    home = sent[0]
    event = {
        "trace.trace_id": home.trace_id,
        "trace.parent_id": span_id(home, 2),
        "name": "exception",
        "meta.annotation_type": "span_event",
        "app.request_id": home.request_id,
    }
    rows[home.request_id].append(event)
    report = verify(rows, sent)
    assert [c.name for c in report.checks if c.status != "pass"] == []
    event["trace.parent_id"] = "ffffffffffffffff"
    assert check(verify(rows, sent), "orphan").status == "fail"


def test_a_route_nobody_requested_is_unverifiable_not_passed():
    sent = ledger(USER, FAULT)
    report = verify(good_rows(sent), sent)
    assert check(report, "exactly one span 'home-activities-mock-data'").status == "unverifiable"
    assert "no answered request of route 'home'" in check(report, "exactly one span 'home").detail


def test_unanswered_requests_are_neither_expected_nor_extra():
    sent = ledger(HOME, ("home", "/api/activities/home", None))
    rows = good_rows(sent[:1])
    report = verify(rows, sent)
    assert [c.name for c in report.checks if c.status != "pass"] == []
    assert (report.expected, report.extra) == (2, 0)
    assert "1 requests got no response" in report.note


def test_truncated_result_makes_checks_unverifiable(sent):
    report = verify(good_rows(sent), sent, truncated=True)
    assert {c.status for c in report.checks} == {"unverifiable"}
    assert f"{QUERY_RESULT_LIMIT}-row limit" in report.note


def test_truncated_result_still_fails_on_extras_seen(sent):
    rows = good_rows(sent)
    stranger = request(*HOME)
    rows["stranger"] = [server_row(stranger)]
    report = verify(rows, sent, truncated=True)
    assert check(report, "did not send").status == "fail"


def test_attributes_not_queried_are_unverifiable(sent):
    report = verify(good_rows(sent), sent, columns_queried=CORE_COLUMNS + ("app.request_id",))
    result = check(report, "are on span")
    assert result.status == "unverifiable" and "app.now, app.result_length were not in the query" in result.detail


class TestPlanWithoutQueryApi:
    REASON = "the Query Data API needs the Enterprise plan (Honeycomb answered POST /1/queries with HTTP 403: x)"

    def observation(self, sent, last_written: float | None) -> HoneycombObservation:
        return observe(
            [],
            sent,
            query_unavailable=self.REASON,
            auth_ok=True,
            auth_detail="key accepted",
            last_written={"app.request_id": last_written, "trace.trace_id": last_written},
        )

    def test_per_request_checks_are_unverifiable_and_never_pass(self, sent):
        report = VERIFIER.verify(sent, self.observation(sent, window(sent).start + 10), EXP)
        assert check(report, "API key is accepted").status == "pass"
        assert check(report, "received spans during the run").status == "pass"
        rest = [c for c in report.checks if "API key" not in c.name and "received spans" not in c.name]
        assert len(rest) >= 8
        assert all(c.status == "unverifiable" and "Enterprise plan" in c.detail for c in rest)
        assert report.status == "unverifiable"
        assert (report.expected, report.missing) == (10, None)

    def test_no_write_since_the_run_started_fails_arrival(self, sent):
        report = VERIFIER.verify(sent, self.observation(sent, window(sent).start - 3600), EXP)
        assert check(report, "received spans during the run").status == "fail"
        assert report.status == "fail"

    def test_rejected_key_fails(self, sent):
        obs = observe(
            [],
            sent,
            query_unavailable="Honeycomb rejected HONEYCOMB_API_KEY",
            auth_ok=False,
            auth_detail="Honeycomb rejected HONEYCOMB_API_KEY (GET /1/auth: HTTP 401: unknown API key)",
        )
        report = VERIFIER.verify(sent, obs, EXP)
        assert check(report, "API key is accepted").status == "fail"
        assert "HTTP 401" in check(report, "API key is accepted").detail


def test_seen_request_ids_and_item_count(sent):
    obs = observe(good_rows(sent), sent, counts={span_id(sent[0], 1): 2})
    assert VERIFIER.seen_request_ids(obs) == {r.request_id for r in sent}
    assert VERIFIER.item_count(obs) == 11  # 10 rows, one of them counted twice
