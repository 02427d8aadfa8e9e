from __future__ import annotations

import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.stub import ANY, Stubber

from target_app.settings import Settings
from target_app.telemetry import cloudwatch
from tests.target_app import app_under_test

LINE_RE = re.compile(
    r"\[(?P<ts>\d{4}-[A-Z][a-z]{2}-\d{2} \d{2}:\d{2})\] (?P<addr>\S+) (?P<method>[A-Z]+) (?P<scheme>https?) "
    r"(?P<path>\S+) (?P<status>\d{3}) request_id=(?P<rid>\S+)"
)


def _request_lines(lines: list[str]) -> list[re.Match[str]]:
    matches = [LINE_RE.fullmatch(line) for line in lines]
    return [m for m in matches if m]


def test_access_line_format(tmp_path: Path) -> None:
    before = datetime.now(UTC).replace(second=0, microsecond=0)
    with app_under_test(tmp_path) as under_test:
        under_test.client.get("/api/activities/notifications?page=2", headers={"X-Request-Id": "rid-fmt"})
        lines = list(under_test.logs.lines)
    (match,) = _request_lines(lines)
    assert len(lines) == 1
    assert match["addr"] == "127.0.0.1" and match["method"] == "GET" and match["scheme"] == "http"
    assert match["path"] == "/api/activities/notifications?page=2"
    assert match["status"] == "200" and match["rid"] == "rid-fmt"
    stamp = datetime.strptime(match["ts"], "%Y-%b-%d %H:%M").replace(tzinfo=UTC)
    assert before <= stamp <= datetime.now(UTC)


def test_home_writes_hello_line_then_access_line(tmp_path: Path) -> None:
    with app_under_test(tmp_path) as under_test:
        under_test.client.get("/api/activities/home", headers={"X-Request-Id": "rid-home"})
        lines = list(under_test.logs.lines)
    assert lines[0] == "Hello Cloudwatch! from /api/activities/home request_id=rid-home"
    (access,) = _request_lines(lines)
    assert access["path"] == "/api/activities/home?" and access["status"] == "200"
    assert len(lines) == 2


def test_exactly_one_line_per_request_including_errors(tmp_path: Path) -> None:
    requests = {
        "/api/activities/home": 200,
        "/api/activities/@andrew": 200,
        "/api/activities/@bad-handle!": 422,
        "/api/fault": 500,
        "/no/such/route": 404,
        "/rollbar/test": 200,
        "/api/health": 200,
    }
    with app_under_test(tmp_path) as under_test:
        for index, (path, status) in enumerate(requests.items()):
            assert under_test.client.get(path, headers={"X-Request-Id": f"rid-{index}"}).status_code == status
        lines = list(under_test.logs.lines)
    access = _request_lines(lines)
    assert [(m["rid"], int(m["status"])) for m in access] == [
        (f"rid-{index}", status) for index, status in enumerate(requests.values())
    ]
    hello = [line for line in lines if line.startswith("Hello Cloudwatch!")]
    assert hello == ["Hello Cloudwatch! from /api/activities/home request_id=rid-0"]
    assert len(lines) == len(access) + len(hello)


def test_propagated_exception_still_gets_one_500_line(tmp_path: Path) -> None:
    # With PROPAGATE_EXCEPTIONS, Flask skips after_request for the unhandled error; teardown still logs.
    with app_under_test(tmp_path) as under_test:
        under_test.app.config["PROPAGATE_EXCEPTIONS"] = True
        with pytest.raises(RuntimeError):
            under_test.client.get("/api/fault", headers={"X-Request-Id": "rid-prop"})
        lines = list(under_test.logs.lines)
    (access,) = _request_lines(lines)
    assert (access["status"], access["rid"]) == ("500", "rid-prop")
    assert len(lines) == 1


def test_each_home_request_logs_one_hello_line(tmp_path: Path) -> None:
    with app_under_test(tmp_path) as under_test:
        for index in range(3):
            under_test.client.get("/api/activities/home", headers={"X-Request-Id": f"h{index}"})
        hello = [line for line in under_test.logs.lines if line.startswith("Hello")]
    assert hello == [f"Hello Cloudwatch! from /api/activities/home request_id=h{i}" for i in range(3)]


def test_logger_is_cruddur_and_does_not_propagate(tmp_path: Path) -> None:
    with app_under_test(tmp_path) as under_test:
        logger = under_test.telemetry.logger
        assert logger.name == "cruddur" and logger.propagate is False
        assert under_test.logs in logger.handlers
    assert under_test.logs not in logger.handlers  # shutdown detaches its sink


def test_disabled_cloudwatch_attaches_no_handler(tmp_path: Path) -> None:
    with app_under_test(tmp_path, {"TRACEDRILL_DISABLE": "cloudwatch"}) as under_test:
        under_test.client.get("/api/activities/home")
        assert under_test.logs.lines == []
        assert under_test.telemetry.log_handler is None


def test_stream_names_are_unique_and_valid() -> None:
    names = {cloudwatch.log_stream_name("backend-flask") for _ in range(50)}
    assert len(names) == 50
    assert all(re.fullmatch(r"[A-Za-z0-9._\-/#]{1,512}", name) for name in names)


def _stubbed_client() -> tuple[Any, Stubber]:
    client = boto3.client(
        "logs",
        region_name="us-east-1",
        endpoint_url="http://127.0.0.1:9",
        aws_access_key_id="k",
        aws_secret_access_key="s",
    )
    return client, Stubber(client)


def test_handler_precreates_group_and_stream_and_ships_first_line() -> None:
    client, stub = _stubbed_client()
    stub.add_client_error("create_log_group", service_error_code="ResourceAlreadyExistsException")
    stub.add_response("create_log_stream", {}, {"logGroupName": "cruddur", "logStreamName": ANY})
    stub.add_response(
        "put_log_events",
        {"nextSequenceToken": "1"},
        {"logGroupName": "cruddur", "logStreamName": ANY, "logEvents": ANY},
    )
    sent: list[dict[str, Any]] = []
    client.meta.events.register(
        "provide-client-params.cloudwatch-logs.PutLogEvents", lambda params, **_: sent.append(params)
    )
    with stub:
        handler = cloudwatch.build_cloudwatch_handler(Settings.from_env({}), client)
        logger = cloudwatch.get_logger()
        logger.addHandler(handler)
        try:
            logger.info("%s", cloudwatch.home_line("rid-first"))  # the very first record must not be dropped
        finally:
            logger.removeHandler(handler)
            cloudwatch.flush_and_close(handler, timeout_s=5)
        stub.assert_no_pending_responses()
    assert handler.send_interval == cloudwatch.SEND_INTERVAL_S
    assert [event["message"] for event in sent[0]["logEvents"]] == [
        "Hello Cloudwatch! from /api/activities/home request_id=rid-first"
    ]


def test_setup_failure_names_group_and_endpoint() -> None:
    client, stub = _stubbed_client()
    stub.add_client_error("create_log_group", service_error_code="AccessDeniedException", service_message="nope")
    with stub, pytest.raises(cloudwatch.LogsSetupError, match=r"'cruddur'.*http://127\.0\.0\.1:9"):
        cloudwatch.build_cloudwatch_handler(Settings.from_env({}), client)
