"""The four verifiers against the local emulators, end to end through public APIs only.

Telemetry goes in through each service's public ingest API (OTLP/HTTP, PutTraceSegments,
PutLogEvents, POST /api/1/item/); the verifiers read it back through the public read APIs, exactly
as they would read the SaaS services. Each scenario uses its own service name, log group and
Rollbar environment, so scenarios sharing the stack never see each other's data.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pytest
import requests

from emulators._server import serve
from emulators.honeycomb.api import HoneycombSettings
from emulators.honeycomb.api import create_app as create_honeycomb_app
from emulators.honeycomb.store import HoneycombStore
from emulators.stack import LocalStack, StackConfig, StackEndpoints, verifier_environment
from tests.verifiers import EVERY_ROUTE, EXP, HOME, check, ledger, window
from tests.verifiers.test_cloudwatch_logs import access_line, hello_line
from tests.verifiers.test_xray import segment
from tracedrill import local
from verifiers.base import make_verifiers
from verifiers.connections import Connections
from verifiers.honeycomb import HoneycombVerifier
from verifiers.model import BackendReport, SentRequest


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StackEndpoints]:
    with LocalStack(StackConfig(data_dir=tmp_path_factory.mktemp("stack"), ports=local.LocalPorts.ephemeral())) as s:
        yield s.endpoints


def connections(endpoints: StackEndpoints) -> Connections:
    """The verifier environment the stack publishes; its local AWS keys also open the ingest APIs."""
    return Connections.from_env(verifier_environment(endpoints))


def span_id(r: SentRequest, n: int) -> str:
    return f"{int(r.parent_span_id, 16) * 16 + n:016x}"


def attr(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    return {"key": key, "value": {"stringValue": str(value)}}


@dataclass
class Scenario:
    """One run's telemetry, written through the ingest APIs; ``skip`` names what to leave out or break."""

    endpoints: StackEndpoints
    service: str
    sent: list[SentRequest]
    skip: set[str] = field(default_factory=set)

    @property
    def group(self) -> str:
        return f"{self.service}-logs"

    @property
    def environment(self) -> str:
        return f"{self.service}-env"

    def otlp(self) -> None:
        spans = []
        for r in self.sent:
            ns = int(r.start * 1e9)
            server = {
                "traceId": r.trace_id,
                "spanId": span_id(r, 1),
                "parentSpanId": r.parent_span_id,
                "name": f"GET {r.path}",
                "kind": 2,
                "startTimeUnixNano": str(ns),
                "endTimeUnixNano": str(ns + 40_000_000),
                "attributes": [attr("app.request_id", r.request_id), attr("http.status_code", r.status)],
            }
            if r.status is not None and r.status >= 500:
                server["status"] = {"code": 2, "message": "Internal Server Error"}
            spans.append(server)
            if r.name == "home" and "honeycomb child" not in self.skip:
                spans.append(
                    {
                        "traceId": r.trace_id,
                        "spanId": span_id(r, 2),
                        "parentSpanId": span_id(r, 1),
                        "name": "home-activities-mock-data",
                        "kind": 1,
                        "startTimeUnixNano": str(ns + 1000),
                        "endTimeUnixNano": str(ns + 2000),
                        "attributes": [
                            attr("app.request_id", r.request_id),
                            attr("app.now", "now"),
                            attr("app.result_length", 5),
                        ],
                    }
                )
        body = {
            "resourceSpans": [
                {
                    "resource": {"attributes": [attr("service.name", self.service)]},
                    "scopeSpans": [{"scope": {"name": "test"}, "spans": spans}],
                }
            ]
        }
        answer = requests.post(
            f"{self.endpoints.honeycomb}/v1/traces",
            data=json.dumps(body),
            timeout=10,
            headers={"Content-Type": "application/json", "x-honeycomb-team": local.LOCAL_HONEYCOMB_KEY},
        )
        assert answer.status_code == 200, answer.text

    def xray(self) -> None:
        docs = []
        for r in self.sent:
            doc = segment(r)
            doc["name"] = self.service
            if "xray misnest" in self.skip and doc.get("subsegments"):
                outer = doc["subsegments"][0]
                doc["subsegments"].append(outer.pop("subsegments")[0])
            docs.append(json.dumps(doc))
        answer = connections(self.endpoints).xray_client().put_trace_segments(TraceSegmentDocuments=docs)
        assert answer.get("UnprocessedTraceSegments", []) == []

    def logs(self) -> None:
        client = connections(self.endpoints).logs_client()
        client.create_log_group(logGroupName=self.group)
        client.create_log_stream(logGroupName=self.group, logStreamName="host/app/1")
        events: list[Any] = []
        for r in self.sent:
            ms = int(r.end * 1000)
            if r.name == "home":
                events.append({"timestamp": ms, "message": hello_line(r)})
                if "logs duplicate" in self.skip:
                    events.append({"timestamp": ms, "message": hello_line(r)})
            events.append({"timestamp": ms, "message": access_line(r)})
        client.put_log_events(logGroupName=self.group, logStreamName="host/app/1", logEvents=events)

    def rollbar(self) -> None:
        for i, r in enumerate(self.sent):
            if r.name == "fault" and not ("rollbar lose one" in self.skip and i == 0):
                body: dict[str, Any] = {
                    "trace": {
                        "frames": [{"filename": "target_app/routes.py", "lineno": 80, "method": "fault"}],
                        "exception": {"class": "RuntimeError", "message": "deliberate"},
                    }
                }
                level = "error"
            elif r.name == "rollbar_test":
                body, level = {"message": {"body": "Hello World!"}}, "warning"
            else:
                continue
            payload = {
                "access_token": local.LOCAL_ROLLBAR_POST_TOKEN,
                "data": {
                    "environment": self.environment,
                    "level": level,
                    "body": body,
                    "timestamp": int(r.end),
                    "language": "python",
                    "platform": "linux",
                    "framework": "flask",
                    "uuid": str(uuid.uuid4()),
                    "notifier": {"name": "pyrollbar", "version": "1.5.0"},
                    "custom": {"request_id": r.request_id},
                },
            }
            answer = requests.post(
                f"{self.endpoints.rollbar}/api/1/item/",
                json=payload,
                timeout=10,
                headers={"X-Rollbar-Access-Token": local.LOCAL_ROLLBAR_POST_TOKEN},
            )
            assert answer.status_code == 200, answer.text

    def emit(self) -> Scenario:
        self.otlp()
        self.xray()
        self.logs()
        self.rollbar()
        return self

    def verify(self) -> dict[str, BackendReport]:
        w = window(self.sent, service=self.service, log_group=self.group, environment=self.environment)
        reports: dict[str, BackendReport] = {}
        for verifier in make_verifiers(connections(self.endpoints), EXP):
            obs = verifier.poll(w)
            assert verifier.item_count(obs) > 0
            reports[verifier.backend] = verifier.verify(self.sent, obs, EXP)
        return reports


def fails(report: BackendReport) -> list[str]:
    return [c.name for c in report.checks if c.status == "fail"]


def details(report: BackendReport) -> str:
    return "\n".join(f"{c.status} {c.name}: {c.detail}" for c in report.checks if c.status != "pass")


def test_correct_telemetry_passes_on_every_backend(stack):
    sent = ledger(*EVERY_ROUTE, HOME, t0=time.time() - 20)
    reports = Scenario(stack, "good-flask", sent).emit().verify()
    for report in reports.values():
        assert [c.name for c in report.checks if c.status != "pass"] == [], details(report)
    assert (reports["honeycomb"].expected, reports["honeycomb"].found, reports["honeycomb"].extra) == (10, 10, 0)
    assert (reports["xray"].found, reports["xray"].extra) == (8, 0)
    assert (reports["cloudwatch_logs"].expected, reports["cloudwatch_logs"].found) == (10, 10)
    assert (reports["rollbar"].expected, reports["rollbar"].found, reports["rollbar"].extra) == (2, 2, 0)


def test_broken_telemetry_fails_the_right_checks(stack):
    sent = ledger(("fault", "/api/fault", 500), *EVERY_ROUTE, t0=time.time() - 20)
    broken = {"honeycomb child", "xray misnest", "logs duplicate", "rollbar lose one"}
    reports = Scenario(stack, "broken-flask", sent, broken).emit().verify()
    assert fails(reports["honeycomb"]) == [
        "route 'home': exactly one span 'home-activities-mock-data' per request, under the server span"
    ], details(reports["honeycomb"])
    assert reports["honeycomb"].missing == 1
    assert fails(reports["xray"]) == [
        "route 'user_activities': exactly one subsegment 'mock-data' per sampled request (200), under "
        "subsegment 'user-activities'"
    ], details(reports["xray"])
    assert fails(reports["cloudwatch_logs"]) == ["route 'home': exactly one 'hello line' log line per request"], (
        details(reports["cloudwatch_logs"])
    )
    assert "twice" in check(reports["cloudwatch_logs"], "'hello line'").detail
    assert fails(reports["rollbar"]) == [
        "route 'fault': exactly one error RuntimeError exception occurrence per request"
    ], details(reports["rollbar"])
    assert reports["rollbar"].missing == 1


def test_a_free_plan_makes_per_request_span_checks_unverifiable(stack, tmp_path: Path):
    free = serve(
        "honeycomb-free",
        create_honeycomb_app(HoneycombStore(tmp_path / "hc.sqlite3"), HoneycombSettings.local(plan="free")),
    )
    try:
        sent = ledger(HOME, t0=time.time() - 20)
        endpoints = StackEndpoints(free.url, stack.xray_api, stack.cloudwatch_logs, stack.rollbar, stack.xray_daemon)
        Scenario(endpoints, "free-flask", sent).otlp()
        verifier = HoneycombVerifier(connections(endpoints), EXP)
        obs = verifier.poll(window(sent, service="free-flask"))
        report = verifier.verify(sent, obs, EXP)
    finally:
        free.stop()
    assert obs.query_unavailable is not None and "Enterprise" in obs.query_unavailable
    assert check(report, "API key is accepted").status == "pass"
    decided = {
        "the Honeycomb API key is accepted (GET /1/auth)",
        "the dataset received spans during the run (app.request_id, trace.trace_id last_written)",
    }
    assert all(c.status == "unverifiable" for c in report.checks if c.name not in decided)
    assert report.status != "pass"


def test_unexpected_telemetry_of_sent_requests_fails_and_counts_as_extra(stack):
    """The adversarial review's reproductions, injected through the public ingest APIs on top of correct
    telemetry: each one fails a "nothing unexpected" (or id) check and counts as extra."""
    sent = ledger(*EVERY_ROUTE, HOME, t0=time.time() - 20)
    scenario = Scenario(stack, "unexpected-flask", sent).emit()
    home, health = sent[0], next(r for r in sent if r.name == "health")
    conn = connections(stack)
    # CloudWatch: a wrong-status access line, the home-only line on a health request, a Traceback, a wrong path.
    odd_lines = [
        access_line(home, status=500),
        hello_line(health),
        f"Traceback (most recent call last): request_id={home.request_id}",
        access_line(replace(home, path="/api/health")),
    ]
    conn.logs_client().put_log_events(
        logGroupName=scenario.group,
        logStreamName="host/app/1",
        logEvents=[{"timestamp": int(home.end * 1000), "message": m} for m in odd_lines],
    )
    # Honeycomb: the home child span inside the health trace (valid parent, its own request id); a span with
    # an all-zero trace id; a span of a sent trace with an empty span id (OTLP calls both ids invalid).
    ns = int(health.start * 1e9)
    odd_spans = [
        {
            "traceId": health.trace_id,
            "spanId": span_id(health, 2),
            "parentSpanId": span_id(health, 1),
            "name": "home-activities-mock-data",
            "kind": 1,
            "startTimeUnixNano": str(ns + 1000),
            "endTimeUnixNano": str(ns + 2000),
            "attributes": [attr("app.request_id", health.request_id)],
        },
        {"traceId": "0" * 32, "spanId": "1" * 16, "name": "GET /api/health", "kind": 2, "startTimeUnixNano": str(ns)},
        {
            "traceId": health.trace_id,
            "spanId": "",
            "parentSpanId": span_id(health, 1),
            "name": "GET /api/health",
            "kind": 1,
            "startTimeUnixNano": str(ns + 3000),
            "endTimeUnixNano": str(ns + 4000),
            "attributes": [attr("app.request_id", health.request_id)],
        },
    ]
    body = {
        "resourceSpans": [
            {
                "resource": {"attributes": [attr("service.name", scenario.service)]},
                "scopeSpans": [{"scope": {"name": "test"}, "spans": odd_spans}],
            }
        ]
    }
    answer = requests.post(
        f"{stack.honeycomb}/v1/traces",
        data=json.dumps(body),
        timeout=10,
        headers={"Content-Type": "application/json", "x-honeycomb-team": local.LOCAL_HONEYCOMB_KEY},
    )
    assert answer.status_code == 200, answer.text  # Honeycomb stores invalid ids as sent: the verifier must judge
    # X-Ray: a 'mock-data' subsegment with results_size 0 inside the (sampled) home trace.
    subsegment = {
        "type": "subsegment",
        "trace_id": home.xray_trace_id,
        "parent_id": segment(home)["id"],
        "id": "f" * 16,
        "name": "mock-data",
        "start_time": home.start + 0.01,
        "end_time": home.start + 0.02,
        "metadata": {"cruddur": {"result": {"results_size": 0}}},
    }
    conn.xray_client().put_trace_segments(TraceSegmentDocuments=[json.dumps(subsegment)])

    reports = scenario.verify()
    logs = reports["cloudwatch_logs"]
    assert fails(logs) == ["no unexpected log lines for sent requests (only what route and status expect)"], details(
        logs
    )
    assert logs.extra == 4 and "unexpected: 4" in check(logs, "no unexpected log lines").detail
    hc = reports["honeycomb"]
    assert fails(hc) == [
        "every span has a valid span id (16 hex digits, not all zero)",
        "no unexpected spans: every span of a sent trace is its server span or a span its route lists",
        "no spans for trace ids we did not send",
    ], details(hc)
    assert hc.extra == 3  # the zero trace id, and two spans of the health trace no expectation lists
    xr = reports["xray"]
    assert fails(xr) == [
        "no unexpected segments or subsegments: every segment of a sampled trace is the 'unexpected-flask' "
        "segment and every subsegment one its route lists"
    ], details(xr)
    assert xr.extra == 1
    assert fails(reports["rollbar"]) == [] and reports["rollbar"].extra == 0
