"""Expectations.expected: what a request's method, path and status expect is worked out once, and stays right."""

from __future__ import annotations

from dataclasses import replace

from tests.verifiers import EXP, FAULT, HOME, USER, USER_INVALID, request
from verifiers import expectations as expectations_module
from verifiers.expectations import Condition, load_expectations


def test_the_same_answers_as_matching_every_route_each_time():
    """The memo answers for each request what the first matching route and its status filters say."""
    requests = [request(*r) for r in (HOME, USER, USER_INVALID, FAULT)]
    requests += [replace(request(*HOME), path="/api/activities/home?x=1"), request("x", "/nowhere", 200)]
    requests += [replace(request(*USER), status=s) for s in (200, 422, 500, None)]
    for r in requests * 2:  # the second round comes from the memo
        route = next((route for route in EXP.routes if route.matches(r)), None)
        got = EXP.expected(r)
        assert got.route is route and EXP.route_for(r) is route
        assert got.route_name == (route.name if route else "(no route)") == EXP.route_name(r)
        assert list(got.spans) == [s for s in (route.spans if route else ()) if r.status in s.statuses]
        assert list(got.subsegments) == [s for s in (route.subsegments if route else ()) if r.status in s.statuses]
        lines = EXP.logs.lines + (route.lines if route else ())
        assert list(got.lines) == [line for line in lines if r.status in line.statuses]
        assert EXP.spans_for(r) == list(got.spans) and EXP.lines_for(r) == list(got.lines)


def test_the_lists_handed_out_are_copies():
    r = request(*HOME)
    EXP.spans_for(r).clear()
    assert EXP.spans_for(r) != []


def test_the_memo_is_not_part_of_the_value_and_is_bounded(monkeypatch):
    fresh = load_expectations()
    fresh.expected(request(*HOME))
    assert fresh == load_expectations()  # a used memo does not make two equal files differ
    monkeypatch.setattr(expectations_module, "_MAX_EXPECTED", 3)
    for i in range(10):
        fresh.expected(replace(request(*USER), path=f"/api/activities/@user{i}"))
    assert len(fresh._expected) <= 3
    assert fresh.route_name(replace(request(*USER), path="/api/activities/@someone")) == "user_activities"


def test_a_whole_placeholder_condition_compares_as_before():
    r = request(*HOME)
    equal, regex = Condition("k", "=", "{request_id}"), Condition("k", "~", "^{request_id}$")
    assert equal.check(r.request_id, r) is None and equal.check(r.request_id + "x", r) is not None
    dotted = replace(r, request_id="a.b")
    assert regex.check("a.b", dotted) is None and regex.check("axb", dotted) is not None
    assert Condition("k", "=", "{status}").check(200.0, r) is None  # 200.0 reads "200"
