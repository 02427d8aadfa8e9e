"""Telemetry tied to a request we sent but not expected for its route and status fails a "nothing
unexpected" check and counts as extra, on every backend; correct telemetry still passes with extra 0;
``allow_unlisted`` lets an app's own expectations admit what its libraries emit by themselves."""

from __future__ import annotations

import copy
from dataclasses import replace

import pytest

from tests.verifiers import EVERY_ROUTE, EXP, FAULT, HEALTH, HOME, USER, check, ledger
from tests.verifiers import test_cloudwatch_logs as cw
from tests.verifiers import test_honeycomb_checks as hc
from tests.verifiers import test_rollbar as rb
from tests.verifiers import test_xray as xr
from verifiers.expectations import DEFAULT_EXPECTATIONS, parse_expectations
from verifiers.model import SentRequest

EXP_TEXT = DEFAULT_EXPECTATIONS.read_text()

LOGS_CHECK = "no unexpected log lines"
SPANS_CHECK = "no unexpected spans"
SUBSEGMENTS_CHECK = "no unexpected segments or subsegments"


@pytest.fixture
def sent() -> list[SentRequest]:
    return ledger(*EVERY_ROUTE, HOME)


def by_name(sent: list[SentRequest], name: str) -> SentRequest:
    return next(r for r in sent if r.name == name)


# ---- CloudWatch Logs ----


def test_correct_lines_have_nothing_unexpected(sent):
    report = cw.verify(sent, cw.good_lines(sent))
    assert check(report, LOGS_CHECK).status == "pass" and report.extra == 0


@pytest.mark.parametrize(
    "bad_line",
    [
        lambda s: cw.access_line(by_name(s, "home"), status=500),  # a second access line, wrong status
        lambda s: cw.hello_line(by_name(s, "health")),  # the home-only line on a health request
        lambda s: f"Traceback (most recent call last): request_id={by_name(s, 'home').request_id}",
        lambda s: cw.access_line(replace(by_name(s, "home"), path="/api/health")),  # the wrong path
    ],
    ids=["wrong-status", "home-line-on-health", "traceback", "wrong-path"],
)
def test_an_extra_line_of_a_sent_request_is_unexpected(sent, bad_line):
    line = bad_line(sent)
    report = cw.verify(sent, cw.good_lines(sent) + [line])
    result = check(report, LOGS_CHECK)
    assert result.status == "fail" and "unexpected: 1" in result.detail, result.detail
    assert line[:40] in result.detail
    assert report.extra == 1
    # every expected line is still there exactly once: only the new check sees it
    assert [c.name for c in report.checks if c.status != "pass"] == [result.name]


def test_lines_of_unanswered_requests_are_not_judged():
    sent = ledger(HOME, ("health", "/api/health", None))
    stray = cw.hello_line(sent[1])
    report = cw.verify(sent, cw.good_lines(sent[:1]) + [stray])
    assert check(report, LOGS_CHECK).status == "pass" and report.extra == 0


# ---- Honeycomb ----


def test_correct_spans_have_nothing_unexpected(sent):
    report = hc.verify(hc.good_rows(sent), sent)
    assert check(report, SPANS_CHECK).status == "pass" and report.extra == 0


def test_a_home_child_span_in_a_health_trace_is_unexpected(sent):
    health = by_name(sent, "health")
    rows = hc.good_rows(sent)
    rows[health.request_id].append(hc.child_row(health))  # valid parent and request id, wrong route
    report = hc.verify(rows, sent)
    result = check(report, SPANS_CHECK)
    assert result.status == "fail" and health.request_id in result.detail
    assert "'home-activities-mock-data' in a trace of route 'health' (HTTP 200)" in result.detail
    assert report.extra == 1
    assert [c.name for c in report.checks if c.status != "pass"] == [result.name]


def test_a_listed_span_on_a_status_it_is_not_listed_for_is_unexpected():
    exp = parse_expectations(
        EXP_TEXT.replace('name = "home-activities-mock-data"', 'name = "home-activities-mock-data"\n  statuses = [500]')
    )
    sent = ledger(HOME)
    report = hc.VERIFIER.verify(sent, hc.observe(hc.good_rows(sent), sent), exp)
    assert check(report, SPANS_CHECK).status == "fail"


def test_span_with_an_invalid_span_id_fails(sent):
    home = by_name(sent, "home")
    rows = hc.good_rows(sent)
    rows[home.request_id][1]["trace.span_id"] = "0" * 16
    result = check(hc.verify(rows, sent), "valid span id")
    assert result.status == "fail" and "'0000000000000000'" in result.detail
    rows[home.request_id][1]["trace.span_id"] = ""
    assert check(hc.verify(rows, sent), "valid span id").status == "fail"


def test_allow_unlisted_admits_a_client_span():
    sent = ledger(HOME)
    home = sent[0]
    rows = hc.good_rows(sent)
    client = {**hc.child_row(home), "name": "HTTP GET", "trace.span_id": hc.span_id(home, 3), "span.kind": "client"}
    rows[home.request_id].append(client)
    assert check(hc.verify(rows, sent), SPANS_CHECK).status == "fail"  # the bundled file allows nothing
    exp = parse_expectations(EXP_TEXT.replace("[honeycomb]\n", '[honeycomb]\nallow_unlisted = ["^HTTP GET$"]\n'))
    report = hc.VERIFIER.verify(sent, hc.observe(rows, sent), exp)
    assert check(report, SPANS_CHECK).status == "pass" and report.extra == 0


# ---- X-Ray ----


def test_correct_traces_have_nothing_unexpected(sent):
    report = xr.verify(sent, [xr.trace(r) for r in sent])
    assert check(report, SUBSEGMENTS_CHECK).status == "pass" and report.extra == 0


def test_a_mock_data_subsegment_in_a_home_trace_is_unexpected(sent):
    home = by_name(sent, "home")
    doc = xr.segment(home)
    doc["subsegments"] = [
        {
            "id": xr.seg_id(home, 3),
            "name": "mock-data",
            "start_time": home.start + 0.01,
            "end_time": home.end - 0.01,
            "metadata": {"cruddur": {"result": {"results_size": 0}}},
        }
    ]
    traces = [xr.trace(r) for r in sent if r is not home] + [xr.trace(home, [doc])]
    report = xr.verify(sent, traces)
    result = check(report, SUBSEGMENTS_CHECK)
    assert result.status == "fail" and "subsegment 'mock-data' in a trace of route 'home' (HTTP 200)" in result.detail
    assert report.extra == 1
    assert [c.name for c in report.checks if c.status != "pass"] == [result.name]


def test_a_subsegment_of_a_status_that_expects_none_is_unexpected():
    sent = ledger(USER, ("user_activities", "/api/activities/@not-a-handle", 422))
    invalid = sent[1]
    doc = xr.segment(replace(invalid, status=200))  # the subsegments a 200 writes ...
    doc["http"]["response"]["status"] = 422  # ... on a 422
    doc["error"] = True
    report = xr.verify(sent, [xr.trace(sent[0]), xr.trace(invalid, [doc])])
    result = check(report, SUBSEGMENTS_CHECK)
    assert result.status == "fail" and "2 of 4 segments and subsegments failed (unexpected: 2)" in result.detail
    assert report.extra == 2  # both subsegments


def test_allow_unlisted_admits_a_subsegment_by_name():
    sent = ledger(HOME)
    doc = xr.segment(sent[0])
    doc["subsegments"] = [
        {"id": xr.seg_id(sent[0], 4), "name": "sqlite", "start_time": sent[0].start, "end_time": sent[0].start + 0.01}
    ]
    exp = parse_expectations(EXP_TEXT.replace("[xray]\n", '[xray]\nallow_unlisted = ["^sqlite$"]\n'))
    obs = xr.observe(sent, [xr.trace(sent[0], [copy.deepcopy(doc)])])
    assert check(xr.VERIFIER.verify(sent, obs, EXP), SUBSEGMENTS_CHECK).status == "fail"
    report = xr.VERIFIER.verify(sent, obs, exp)
    assert check(report, SUBSEGMENTS_CHECK).status == "pass" and report.extra == 0


def test_a_second_root_segment_under_another_name_is_unexpected(sent):
    # The request's telemetry again, under a second root with a 500 and a subsegment no route lists.
    user = by_name(sent, "user_activities")
    foreign = xr.segment(user) | {"id": xr.seg_id(user, 9), "name": "Flask", "fault": True}
    foreign["http"] = {"request": {"method": "GET", "url": user.url}, "response": {"status": 500}}
    foreign["subsegments"] = [
        {"id": xr.seg_id(user, 10), "name": "surprise", "start_time": user.start, "end_time": user.start + 0.01}
    ]
    traces = [xr.trace(r) for r in sent if r is not user] + [xr.trace(user, [xr.segment(user), foreign])]
    report = xr.verify(sent, traces)
    result = check(report, SUBSEGMENTS_CHECK)
    assert result.status == "fail" and "segment 'Flask' in a trace of route 'user_activities'" in result.detail
    assert report.extra == 1  # the foreign segment, once
    assert [c.name for c in report.checks if c.status != "pass"] == [result.name]
    exp = parse_expectations(EXP_TEXT.replace("[xray]\n", '[xray]\nallow_unlisted = ["^Flask$"]\n'))
    allowed = xr.VERIFIER.verify(sent, xr.observe(sent, traces), exp)
    assert check(allowed, SUBSEGMENTS_CHECK).status == "pass" and allowed.extra == 0
    # X-Ray's inferred segment for a downstream AWS call is its mirror of a subsegment, not telemetry sent
    inferred = {"id": xr.seg_id(user, 11), "name": "DynamoDB", "inferred": True, "trace_id": user.xray_trace_id}
    inferred |= {"start_time": user.start, "end_time": user.start + 0.01, "parent_id": xr.seg_id(user, 2)}
    mirrored = [xr.trace(r) for r in sent if r is not user] + [xr.trace(user, [xr.segment(user), inferred])]
    assert check(xr.verify(sent, mirrored), SUBSEGMENTS_CHECK).status == "pass"
    # "inferred" on a segment that mirrors nothing of ours (no parent_id, or one that is not our subsegment)
    # is a foreign segment like any other; and a mirror holds no subsegments of its own
    for forged in ({k: v for k, v in inferred.items() if k != "parent_id"}, inferred | {"parent_id": "f" * 16}):
        others = [xr.trace(r) for r in sent if r is not user] + [xr.trace(user, [xr.segment(user), forged])]
        assert "segment 'DynamoDB'" in check(xr.verify(sent, others), SUBSEGMENTS_CHECK).detail
    surprise = {"id": xr.seg_id(user, 12), "name": "surprise", "start_time": user.start, "end_time": user.start}
    loaded = [xr.trace(r) for r in sent if r is not user]
    loaded.append(xr.trace(user, [xr.segment(user), inferred | {"subsegments": [surprise]}]))
    assert "subsegment 'surprise'" in check(xr.verify(sent, loaded), SUBSEGMENTS_CHECK).detail


# ---- Rollbar ----


def test_rollbar_unexpected_occurrences_count_as_extra():
    sent = ledger(HOME, FAULT, HEALTH)
    occurrences = rb.good(sent) + [rb.fault_occurrence(sent[0]), rb.warning_occurrence(sent[2])]
    report = rb.verify(sent, occurrences)
    assert check(report, "beyond the expected ones").status == "fail"
    assert report.extra == 2
    assert rb.verify(sent, rb.good(sent)).extra == 0
