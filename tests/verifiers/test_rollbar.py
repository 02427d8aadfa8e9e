"""Rollbar: checks on crafted occurrences, and poll() against a fake read API (paging, auth, time window)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.verifiers import (
    EVERY_ROUTE,
    EXP,
    FAULT,
    HOME,
    ROLLBAR_TEST,
    FakeHttpApi,
    Recorded,
    check,
    ledger,
    request,
    served,
    window,
)
from verifiers.base import ReadError
from verifiers.connections import Connections
from verifiers.model import SentRequest
from verifiers.rollbar import Occurrence, RollbarObservation, RollbarVerifier

TOKEN = "rollbar-read-secret"
VERIFIER = RollbarVerifier(Connections(rollbar_read_token=TOKEN), EXP)
_ids = iter(range(1000, 100000))


def fault_occurrence(r: SentRequest, item: str = "1", **kw: Any) -> Occurrence:
    fields = dict(
        id=str(next(_ids)),
        item_id=item,
        timestamp=r.end,
        level="error",
        environment="local",
        request_id=r.request_id,
        exception_class="RuntimeError",
        message=None,
    )
    return Occurrence(**{**fields, **kw})


def warning_occurrence(r: SentRequest, item: str = "2", **kw: Any) -> Occurrence:
    fields = dict(
        id=str(next(_ids)),
        item_id=item,
        timestamp=r.end,
        level="warning",
        environment="local",
        request_id=r.request_id,
        exception_class=None,
        message="Hello World!",
    )
    return Occurrence(**{**fields, **kw})


def good(sent: list[SentRequest]) -> list[Occurrence]:
    out = []
    for r in sent:
        if r.name == "fault":
            out.append(fault_occurrence(r))
        if r.name == "rollbar_test":
            out.append(warning_occurrence(r))
    return out


def verify(sent: list[SentRequest], occurrences: list[Occurrence]):
    return VERIFIER.verify(sent, RollbarObservation("rollbar", window(sent), occurrences=occurrences), EXP)


@pytest.fixture
def sent() -> list[SentRequest]:
    return ledger(*EVERY_ROUTE, FAULT, FAULT)


def test_correct_occurrences_pass(sent):
    report = verify(sent, good(sent))
    assert [c.name for c in report.checks if c.status != "pass"] == []
    assert (report.expected, report.found, report.missing, report.extra) == (4, 4, 0, 0)
    names = [c.name for c in report.checks]
    assert "route 'fault': exactly one error RuntimeError exception occurrence per request" in names
    assert "route 'fault': all error RuntimeError exception occurrences are grouped into one item" in names
    assert "route 'rollbar_test': exactly one warning message occurrence per request" in names


def test_missing_fault_occurrence_fails(sent):
    occurrences = good(sent)
    lost = next(o for o in occurrences if o.level == "error")
    occurrences.remove(lost)
    report = verify(sent, occurrences)
    result = check(report, "exactly one error RuntimeError")
    assert result.status == "fail" and "1 of 3 requests failed (missing: 1)" in result.detail
    assert lost.request_id in result.detail
    assert report.missing == 1


def test_duplicated_occurrence_fails(sent):
    occurrences = good(sent)
    occurrences.append(fault_occurrence(next(r for r in sent if r.name == "fault")))
    result = check(verify(sent, occurrences), "exactly one error RuntimeError")
    assert result.status == "fail" and "duplicated: 1" in result.detail and "twice" in result.detail


def test_faults_split_over_two_items_fail_grouping(sent):
    faults = [r for r in sent if r.name == "fault"]
    occurrences = [
        fault_occurrence(faults[0], item="1"),
        fault_occurrence(faults[1], item="7"),
        fault_occurrence(faults[2], item="7"),
    ] + [warning_occurrence(r) for r in sent if r.name == "rollbar_test"]
    result = check(verify(sent, occurrences), "grouped into one item")
    assert result.status == "fail"
    assert result.detail == "split over 2 items: item 1 (1 occurrences), item 7 (2 occurrences)"


def test_wrong_level_is_missing_and_unexpected(sent):
    occurrences = good(sent)
    first_fault = next(i for i, o in enumerate(occurrences) if o.level == "error")
    occurrences[first_fault] = fault_occurrence(sent[6], level="critical")
    report = verify(sent, occurrences)
    assert "got critical RuntimeError exception instead" in check(report, "exactly one error RuntimeError").detail
    assert check(report, "beyond the expected ones").status == "fail"


def test_occurrence_for_a_route_that_expects_none_fails():
    sent = ledger(HOME, FAULT)
    occurrences = good(sent) + [fault_occurrence(sent[0])]
    result = check(verify(sent, occurrences), "beyond the expected ones")
    assert result.status == "fail"
    assert "unexpected" in result.detail and "for route 'home' (HTTP 200)" in result.detail


def test_occurrences_we_did_not_send_are_extra(sent):
    stranger = request(*FAULT)
    no_id = fault_occurrence(sent[0], request_id=None)
    report = verify(sent, good(sent) + [fault_occurrence(stranger), no_id])
    result = check(report, "did not send")
    assert result.status == "fail"
    assert "not sent: 1" in result.detail and "no request id: 1" in result.detail
    assert report.extra == 2


def test_a_run_without_faults_is_unverifiable_for_fault_checks():
    sent = ledger(HOME, ROLLBAR_TEST)
    report = verify(sent, good(sent))
    assert check(report, "exactly one error RuntimeError").status == "unverifiable"
    assert check(report, "grouped into one item").status == "unverifiable"
    assert check(report, "warning message").status == "pass"


# ---- poll() against a fake read API ----


def instance(
    r: SentRequest | None, item: int, occ: int, ts: float, *, body: dict[str, Any] | None = None, level: str = "error"
) -> dict[str, Any]:
    data: dict[str, Any] = {
        "level": level,
        "environment": "local",
        "timestamp": int(ts),
        "body": body or {"trace": {"frames": [], "exception": {"class": "RuntimeError", "message": "deliberate"}}},
    }
    if r is not None:
        data["custom"] = {"request_id": r.request_id}
    return {"id": occ, "item_id": item, "timestamp": int(ts), "data": data}


def rollbar_api(
    items: list[dict[str, Any]], instances: dict[int, list[dict[str, Any]]], page_size: int = 2, status: int = 200
):
    def handle(req: Recorded) -> tuple[int, Any]:
        if status != 200:
            return status, {"err": 1, "message": "invalid access token"}
        page = int(req.args.get("page", ["1"])[0])
        if req.path == "/api/1/items/":
            rows = items[(page - 1) * 100 : page * 100]
            return 200, {"err": 0, "result": {"page": page, "total_count": len(items), "items": rows}}
        item_id = int(req.path.split("/")[4])
        rows = instances.get(item_id, [])[(page - 1) * page_size : page * page_size]
        return 200, {"err": 0, "result": {"page": page, "instances": rows}}

    return FakeHttpApi(handle)


def test_poll_lists_items_and_pages_instances_within_the_window():
    sent = ledger(FAULT, FAULT, FAULT, ROLLBAR_TEST)
    w = window(sent)
    old = w.start - 3600
    items = [
        {"id": 11, "counter": 1, "environment": "local", "last_occurrence_timestamp": int(sent[2].end)},
        {"id": 12, "counter": 2, "environment": "local", "last_occurrence_timestamp": int(sent[3].end)},
        {"id": 13, "counter": 3, "environment": "local", "last_occurrence_timestamp": int(old)},  # before the run
    ]
    warning = {"message": {"body": "Hello World!"}}
    instances = {
        11: [
            instance(sent[2], 11, 103, sent[2].end),
            instance(sent[1], 11, 102, sent[1].end),
            instance(sent[0], 11, 101, sent[0].end),
            instance(None, 11, 50, old),
            instance(None, 11, 49, old),
            instance(None, 11, 48, old),
        ],
        12: [instance(sent[3], 12, 104, sent[3].end, body=warning, level="warning")],
    }
    api = rollbar_api(items, instances)
    with served(api) as url:
        v = RollbarVerifier(Connections(rollbar_read_token=TOKEN, rollbar_api_url=f"{url}/api/1"), EXP)
        obs = v.poll(w)
    listed = api.calls("GET", "/api/1/items/")
    assert listed[0].args["environment"] == ["local"] and listed[0].args["page"] == ["1"]
    assert all(r.headers.get("X-Rollbar-Access-Token") == TOKEN for r in api.requests)
    assert all("access_token" not in r.args for r in api.requests)  # never in a URL
    assert not api.calls("GET", "/api/1/item/13/")  # its last occurrence predates the run
    # item 11: pages 1-2 hold run occurrences, page 3 is all older than the run: paging stops there
    assert [r.args["page"] for r in api.calls("GET", "/api/1/item/11/instances/")] == [["1"], ["2"], ["3"]]
    assert sorted(o.id for o in obs.occurrences) == ["101", "102", "103", "104"]
    assert {o.request_id for o in obs.occurrences} == {r.request_id for r in sent}
    report = v.verify(sent, obs, EXP)
    assert [c.name for c in report.checks if c.status != "pass"] == []


def test_a_skewed_clock_does_not_hide_a_duplicate_of_a_sent_request():
    # The client sets an occurrence's timestamp: a duplicate an hour off is still a duplicate, while an
    # old occurrence of an earlier run (a request id we did not send) stays out.
    sent = ledger(FAULT, FAULT)
    w = window(sent)
    earlier_run = ledger(FAULT)[0]
    items = [{"id": 11, "counter": 1, "environment": "local", "last_occurrence_timestamp": int(sent[1].end)}]
    instances = {
        11: [
            instance(sent[1], 11, 104, sent[1].end),
            instance(sent[0], 11, 103, w.start + 3600),  # the duplicate, from a clock an hour ahead
            instance(sent[0], 11, 102, sent[0].end),
            instance(earlier_run, 11, 101, w.start - 3600),
        ]
    }
    with served(rollbar_api(items, instances, page_size=10)) as url:
        v = RollbarVerifier(Connections(rollbar_read_token=TOKEN, rollbar_api_url=f"{url}/api/1"), EXP)
        obs = v.poll(w)
    report = v.verify(sent, obs, EXP)
    result = check(report, "exactly one error RuntimeError")
    assert result.status == "fail" and "duplicated: 1" in result.detail
    assert [c.name for c in report.checks if c.status == "fail"] == [result.name]  # the earlier run's is no extra


def test_levels_are_read_as_rollbar_reads_them():
    # Any case, and no level at all means "error" for an exception: both are the expected error occurrence.
    sent = ledger(FAULT, FAULT)
    shouted, unsaid = instance(sent[0], 11, 102, sent[0].end, level="ERROR"), instance(sent[1], 11, 101, sent[1].end)
    del unsaid["data"]["level"]
    items = [{"id": 11, "counter": 1, "environment": "local", "last_occurrence_timestamp": int(sent[1].end)}]
    with served(rollbar_api(items, {11: [shouted, unsaid]}, page_size=10)) as url:
        v = RollbarVerifier(Connections(rollbar_read_token=TOKEN, rollbar_api_url=f"{url}/api/1"), EXP)
        obs = v.poll(window(sent))
    assert sorted(o.level for o in obs.occurrences) == ["error", "error"]
    report = v.verify(sent, obs, EXP)
    assert [c.name for c in report.checks if c.status == "fail"] == []


def test_rejected_token_is_a_read_error_without_the_token():
    api = rollbar_api([], {}, status=401)
    with served(api) as url:
        v = RollbarVerifier(Connections(rollbar_read_token=TOKEN, rollbar_api_url=f"{url}/api/1/"), EXP)
        with pytest.raises(ReadError) as err:
            v.poll(window(ledger(FAULT)))
    assert err.value.kind == "denied" and "'read' scope" in str(err.value)
    assert TOKEN not in str(err.value)
