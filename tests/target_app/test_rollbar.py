from __future__ import annotations

import json
from pathlib import Path

import pytest
import rollbar
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from target_app.app import create_app
from target_app.settings import Settings
from target_app.telemetry import EXTENSION_KEY, Telemetry, TelemetryOverrides, rollbar_setup
from target_app.telemetry.rollbar_setup import RollbarHandler
from tests.target_app import CaptureServer, app_under_test


def test_test_route_reports_a_warning_with_the_request_id(tmp_path: Path) -> None:
    with app_under_test(tmp_path) as under_test:
        response = under_test.client.get("/rollbar/test", headers={"X-Request-Id": "rid-rb-msg"})
        payloads = list(under_test.rollbar_payloads)
    assert response.status_code == 200 and response.get_json()["reported"] is True
    (payload,) = payloads
    data = payload["data"]
    assert data["level"] == "warning"
    assert data["body"]["message"]["body"] == "Hello World!"
    assert data["custom"]["request_id"] == "rid-rb-msg"
    assert data["environment"] == "local"
    assert data["framework"] == "flask"


def test_unhandled_exception_is_reported_with_the_request_id(tmp_path: Path) -> None:
    with app_under_test(tmp_path) as under_test:
        response = under_test.client.get("/api/fault", headers={"X-Request-Id": "rid-rb-exc"})
        payloads = list(under_test.rollbar_payloads)
    assert response.status_code == 500
    (payload,) = payloads
    data = payload["data"]
    assert data["level"] == "error"
    assert data["body"]["trace"]["exception"]["class"] == "RuntimeError"
    assert data["custom"]["request_id"] == "rid-rb-exc"
    assert data["request"]["url"].endswith("/api/fault")


def test_handled_errors_are_not_reported(tmp_path: Path) -> None:
    with app_under_test(tmp_path) as under_test:
        for path in ("/api/activities/@bad-handle!", "/api/activities/home", "/missing"):
            under_test.client.get(path)
        assert under_test.rollbar_payloads == []


def test_disabled_rollbar_reports_nothing(tmp_path: Path) -> None:
    with app_under_test(tmp_path, {"TRACEDRILL_DISABLE": "rollbar"}) as under_test:
        response = under_test.client.get("/rollbar/test")
        assert under_test.client.get("/api/fault").status_code == 500
        assert response.status_code == 200 and response.get_json()["reported"] is False
        assert under_test.rollbar_payloads == []


def test_existing_custom_data_is_kept() -> None:
    payload = rollbar_setup.add_request_id({"data": {"custom": {"a": 1}}})
    assert payload == {"data": {"custom": {"a": 1}}}  # outside a request: untouched
    app = create_app(Settings.from_env({"TRACEDRILL_DISABLE": "otel,xray,cloudwatch,rollbar"}))
    with app.test_request_context(headers={"X-Request-Id": "rid-ctx"}):
        assert rollbar_setup.add_request_id({"data": {"custom": {"a": 1}}}) == {
            "data": {"custom": {"a": 1, "request_id": "rid-ctx"}}
        }


@pytest.mark.parametrize("handler", ["thread_pool", "thread"])
def test_items_reach_the_endpoint_without_a_trailing_slash_and_without_extra_spans(handler: RollbarHandler) -> None:
    """Real transport with the app's ``thread_pool`` handler (and pyrollbar's default ``thread``); shutdown
    waits for the send."""
    with CaptureServer(b'{"err": 0, "result": {"id": null, "uuid": "u"}}') as server:
        settings = Settings.from_env(
            {
                "ROLLBAR_ENDPOINT": f"{server.url}/api/1",  # no trailing slash on purpose
                "ROLLBAR_ACCESS_TOKEN": "post-token-xyz",
                "ROLLBAR_ENVIRONMENT": "drill",
                "TRACEDRILL_DISABLE": "xray,cloudwatch",
            }
        )
        spans = InMemorySpanExporter()
        # instrument_requests on: pyrollbar posts through requests, and that must not become a span.
        overrides = TelemetryOverrides(span_exporter=spans, batch_spans=False, rollbar_handler=handler)
        app = create_app(settings, overrides=overrides)
        telemetry: Telemetry = app.extensions[EXTENSION_KEY]
        try:
            assert app.test_client().get("/rollbar/test", headers={"X-Request-Id": "rid-wire"}).status_code == 200
        finally:
            telemetry.shutdown(timeout_s=10)  # waits for the send thread, then flushes spans
        span_names = [span.name for span in spans.get_finished_spans()]
        captured = server.captured()
    (item,) = captured
    assert item.path == "/api/1/item/"
    assert item.headers["X-Rollbar-Access-Token"] == "post-token-xyz"
    body = json.loads(item.body)
    assert body["data"]["custom"]["request_id"] == "rid-wire"
    assert body["data"]["environment"] == "drill" and body["data"]["level"] == "warning"
    assert span_names == ["GET /rollbar/test"]
    assert rollbar.SETTINGS["endpoint"] == f"{server.url}/api/1/"


def test_shutdown_waits_for_every_pooled_item_and_a_new_app_sends_again() -> None:
    with CaptureServer(b'{"err": 0, "result": {"id": null, "uuid": "u"}}', delay_s=0.1) as server:
        settings = Settings.from_env(
            {
                "ROLLBAR_ENDPOINT": f"{server.url}/api/1/",
                "ROLLBAR_ACCESS_TOKEN": "post-token-xyz",
                "TRACEDRILL_DISABLE": "otel,xray,cloudwatch",
            }
        )
        for round_no in (1, 2):  # the second app reports after the first one's pool was drained
            app = create_app(settings, overrides=TelemetryOverrides(rollbar_handler="thread_pool"))
            client = app.test_client()
            for n in range(6):  # more items than send threads, each answered after 0.1 s
                assert client.get("/rollbar/test", headers={"X-Request-Id": f"r{round_no}-{n}"}).status_code == 200
            app.extensions[EXTENSION_KEY].shutdown(timeout_s=10)
            ids = [json.loads(item.body)["data"]["custom"]["request_id"] for item in server.captured()]
            assert sorted(ids) == sorted(f"r{r}-{n}" for r in range(1, round_no + 1) for n in range(6))
