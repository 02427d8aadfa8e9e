from __future__ import annotations

import re
from pathlib import Path

import pytest

from target_app.correlation import REQUEST_ID_HEADER, is_valid_request_id, resolve_request_id
from tests.target_app import app_under_test

UUID_HEX = re.compile(r"[0-9a-f]{32}")


@pytest.mark.parametrize("value", ["abc", "req-1_2.3:4/5", "x" * 128, "~!@#$%^&*()"])
def test_valid_ids_are_kept(value: str) -> None:
    assert is_valid_request_id(value)
    assert resolve_request_id(value) == value


@pytest.mark.parametrize("value", [None, "", "x" * 129, "has space", "tab\there", "new\nline", "caf\u00e9", "\x7f"])
def test_invalid_or_missing_ids_are_replaced(value: str | None) -> None:
    resolved = resolve_request_id(value)
    assert UUID_HEX.fullmatch(resolved)
    assert resolved != value


def test_response_echoes_the_incoming_request_id(tmp_path: Path) -> None:
    with app_under_test(tmp_path, {"TRACEDRILL_DISABLE": "otel,xray,cloudwatch,rollbar"}) as under_test:
        response = under_test.client.get("/api/health", headers={REQUEST_ID_HEADER: "rid-echo-1"})
    assert response.status_code == 200
    assert response.get_json() == {"status": "ok"}
    assert response.headers[REQUEST_ID_HEADER] == "rid-echo-1"


def test_generated_ids_are_unique_per_request(tmp_path: Path) -> None:
    with app_under_test(tmp_path, {"TRACEDRILL_DISABLE": "otel,xray,cloudwatch,rollbar"}) as under_test:
        client = under_test.client
        ids = {
            client.get("/api/health", headers={REQUEST_ID_HEADER: "bad id"}).headers[REQUEST_ID_HEADER]
            for _ in range(5)
        }
    assert len(ids) == 5
    assert all(UUID_HEX.fullmatch(value) for value in ids)
