"""CloudWatch Logs: checks on crafted log events, and poll() request shapes and pagination via a Stubber."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from tests.verifiers import EVERY_ROUTE, EXP, HOME, USER, check, ledger, request, window
from verifiers.base import RateLimiter, ReadError
from verifiers.cloudwatch_logs import CloudWatchLogsVerifier, LogEvent, LogsObservation
from verifiers.connections import Connections
from verifiers.model import SentRequest

CONNECTIONS = Connections(aws_region="us-east-1", aws_access_key_id="AKIDTEST", aws_secret_access_key="s3cret")
VERIFIER = CloudWatchLogsVerifier(CONNECTIONS, EXP)


def access_line(r: SentRequest, status: int | None = None) -> str:
    status = r.status if status is None else status
    return f"[2025-Oct-09 08:53] 127.0.0.1 {r.method} http {r.path}? {status:03d} request_id={r.request_id}"


def hello_line(r: SentRequest) -> str:
    return f"Hello Cloudwatch! from /api/activities/home request_id={r.request_id}"


def good_lines(sent: list[SentRequest]) -> list[str]:
    lines = []
    for r in sent:
        if r.name == "home":
            lines.append(hello_line(r))
        lines.append(access_line(r))
    return lines


def observe(sent: list[SentRequest], lines: list[str]) -> LogsObservation:
    events = [LogEvent(text, 1_760_000_000_000 + i, "host/app/cruddur/1", str(i)) for i, text in enumerate(lines)]
    return LogsObservation("cloudwatch_logs", window(sent), events=events)


def verify(sent: list[SentRequest], lines: list[str]):
    return VERIFIER.verify(sent, observe(sent, lines), EXP)


@pytest.fixture
def sent() -> list[SentRequest]:
    return ledger(*EVERY_ROUTE, HOME)


def test_correct_lines_pass(sent):
    report = verify(sent, good_lines(sent))
    assert [c.name for c in report.checks if c.status != "pass"] == []
    assert (report.expected, report.found, report.missing, report.extra) == (10, 10, 0, 0)
    names = [c.name for c in report.checks]
    assert "every request has exactly one 'access line' log line with its method, path, status" in names
    assert "route 'home': exactly one 'hello line' log line per request" in names


def test_lost_line_is_missing_with_count(sent):
    lines = good_lines(sent)
    lines.remove(access_line(sent[3]))
    report = verify(sent, lines)
    result = check(report, "'access line'")
    assert result.status == "fail" and "1 of 8 requests failed (missing: 1)" in result.detail
    assert sent[3].request_id in result.detail
    assert (report.found, report.missing) == (9, 1)


def test_duplicated_line_fails_with_the_count(sent):
    lines = good_lines(sent) + [hello_line(sent[0])]
    report = verify(sent, lines)
    result = check(report, "'hello line'")
    assert result.status == "fail" and "duplicated: 1" in result.detail and "twice" in result.detail
    assert report.found == 10  # the duplicate is not a second find


def test_line_with_the_wrong_status_does_not_count_and_is_quoted(sent):
    lines = good_lines(sent)
    index = lines.index(access_line(sent[1]))
    lines[index] = access_line(sent[1], status=500)
    result = check(verify(sent, lines), "'access line'")
    assert result.status == "fail"
    assert (
        "found none; a line of this request matching no pattern" in result.detail
        and " 500 request_id=" in result.detail
    )


def test_hello_line_on_another_route_is_not_expected_but_its_own_route_needs_it():
    sent = ledger(HOME, USER)
    lines = [access_line(sent[0]), access_line(sent[1]), hello_line(sent[1])]  # the hello line of the wrong request
    report = verify(sent, lines)
    assert check(report, "'hello line'").status == "fail"  # the home request has none
    assert check(report, "'access line'").status == "pass"


def test_lines_for_request_ids_we_did_not_send_are_extra(sent):
    stranger = request(*HOME)
    report = verify(sent, good_lines(sent) + [access_line(stranger)])
    result = check(report, "did not send")
    assert result.status == "fail" and "1 of 11 lines failed (not sent: 1)" in result.detail
    assert report.extra == 1


def test_unanswered_and_unmatched_lines():
    sent = ledger(HOME, ("health", "/api/health", None))
    report = verify(sent, good_lines(sent[:1]) + ["gunicorn booting worker (no request id)"])
    assert [c.name for c in report.checks if c.status != "pass"] == []
    assert report.expected == 2


def test_no_request_of_a_route_is_unverifiable():
    sent = ledger(USER)
    report = verify(sent, good_lines(sent))
    assert check(report, "'hello line'").status == "unverifiable"


def test_seen_ids_and_item_count(sent):
    obs = observe(sent, good_lines(sent) + ["no id here"])
    assert VERIFIER.seen_request_ids(obs) == {r.request_id for r in sent}
    assert VERIFIER.item_count(obs) == 11


# ---- poll() through a Stubber ----


class Clock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, s: float) -> None:
        self.slept.append(round(s, 3))
        self.now += s


def stubbed(clock: Clock) -> tuple[CloudWatchLogsVerifier, Stubber]:
    client = boto3.client("logs", region_name="us-east-1", aws_access_key_id="AKIDTEST", aws_secret_access_key="s3cret")
    limiter = RateLimiter(1, 0.2, clock=clock, sleep=clock.sleep)
    return CloudWatchLogsVerifier(CONNECTIONS, EXP, limiter=limiter, client=client), Stubber(client)


def test_poll_pages_through_empty_pages_and_paces_calls():
    sent = ledger(HOME)
    w = window(sent)
    clock = Clock()
    v, stub = stubbed(clock)
    base = {
        "logGroupName": "cruddur",
        "startTime": int((w.start - 60) * 1000),
        "endTime": int((w.end + 60) * 1000),
        "limit": 10000,
        "filterPattern": '"request_id="',
    }
    lines = good_lines(sent)
    stub.add_response(
        "filter_log_events",
        {"events": [{"message": lines[0], "timestamp": 1, "eventId": "1", "logStreamName": "s"}], "nextToken": "t1"},
        base,
    )
    stub.add_response("filter_log_events", {"events": [], "nextToken": "t2"}, {**base, "nextToken": "t1"})
    stub.add_response(
        "filter_log_events",
        {"events": [{"message": lines[1], "timestamp": 2, "eventId": "2", "logStreamName": "s"}]},
        {**base, "nextToken": "t2"},
    )
    with stub:
        obs = v.poll(w)
    stub.assert_no_pending_responses()
    assert [e.message for e in obs.events] == lines
    assert obs.api_calls == {"FilterLogEvents": 3}
    assert clock.slept == [0.2, 0.2]  # 5 calls a second at most
    assert [c.name for c in v.verify(sent, obs, EXP).checks if c.status != "pass"] == []


def test_missing_log_group_is_a_complete_empty_read():
    sent = ledger(HOME)
    v, stub = stubbed(Clock())
    stub.add_client_error("filter_log_events", "ResourceNotFoundException", "The specified log group does not exist.")
    with stub:
        obs = v.poll(window(sent))
    assert obs.group_missing and obs.events == []
    report = v.verify(sent, obs, EXP)
    assert report.status == "fail" and report.missing == 2 and "does not exist" in report.note


def test_denied_credentials_raise_a_read_error():
    v, stub = stubbed(Clock())
    stub.add_client_error("filter_log_events", "UnrecognizedClientException", "The security token is invalid", 400)
    with stub, pytest.raises(ReadError) as err:
        v.poll(window(ledger(HOME)))
    assert err.value.kind == "denied" and "s3cret" not in str(err.value)
