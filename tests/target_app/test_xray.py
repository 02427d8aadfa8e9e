from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from aws_xray_sdk.core import AWSXRayRecorder
from aws_xray_sdk.core.sampling.local.sampler import LocalSampler
from aws_xray_sdk.core.sampling.sampler import DefaultSampler

from target_app.settings import Settings, SettingsError
from target_app.telemetry import xray
from tests.target_app import XRAY_ROOT, CapturingEmitter, app_under_test

HEADERS = {"X-Amzn-Trace-Id": f"Root={XRAY_ROOT}", "X-Request-Id": "rid-xray"}


def _one_segment(tmp_path: Path, path: str, **kwargs: Any) -> tuple[int, dict[str, Any]]:
    with app_under_test(tmp_path, **kwargs) as under_test:
        response = under_test.client.get(path, headers=HEADERS)
        (segment,) = under_test.emitter.documents
    return response.status_code, segment


def test_segment_keeps_the_incoming_root_and_has_http_fields(tmp_path: Path) -> None:
    status, segment = _one_segment(tmp_path, "/api/activities/home")
    assert status == 200
    assert segment["trace_id"] == XRAY_ROOT
    assert "parent_id" not in segment  # the header had no Parent=
    assert segment["name"] == "backend-flask"
    assert segment["http"]["request"]["method"] == "GET"
    assert segment["http"]["request"]["url"].endswith("/api/activities/home")
    assert segment["http"]["response"]["status"] == 200
    assert segment["annotations"] == {"request_id": "rid-xray"}
    assert not segment.get("fault") and not segment.get("error")
    assert "subsegments" not in segment  # nothing patched: no surprise subsegments


def test_user_activities_subsegment_tree(tmp_path: Path) -> None:
    status, segment = _one_segment(tmp_path, "/api/activities/@andrew_b")
    assert status == 200
    (outer,) = segment["subsegments"]
    assert outer["name"] == "user-activities"
    assert outer["annotations"] == {"user_handle": "andrew_b"}
    query = outer["metadata"]["cruddur"]["query"]
    assert query["handle"] == "andrew_b" and query["now"]
    (inner,) = outer["subsegments"]
    assert inner["name"] == "mock-data"
    assert inner["metadata"]["cruddur"]["result"] == {"results_size": 1}
    for entity in (outer, inner):
        assert entity["end_time"] >= entity["start_time"] and not entity.get("in_progress")
    assert segment["annotations"]["request_id"] == "rid-xray"


def test_bad_handle_is_422_with_error_flag_and_no_subsegments(tmp_path: Path) -> None:
    with app_under_test(tmp_path) as under_test:
        response = under_test.client.get("/api/activities/@not-a-handle!", headers=HEADERS)
        (segment,) = under_test.emitter.documents
    assert response.status_code == 422
    assert response.get_json()["error"] == "invalid handle"
    assert segment["error"] is True and not segment.get("fault")
    assert segment["http"]["response"]["status"] == 422
    assert "subsegments" not in segment


def test_fault_sets_fault_flag_and_cause(tmp_path: Path) -> None:
    status, segment = _one_segment(tmp_path, "/api/fault")
    assert status == 500
    assert segment["fault"] is True
    assert segment["http"]["response"]["status"] == 500
    (exception,) = segment["cause"]["exceptions"]
    assert exception["type"] == "RuntimeError"
    assert segment["annotations"]["request_id"] == "rid-xray"


def test_the_app_makes_its_own_sampling_decision(tmp_path: Path) -> None:
    # Root without Sampled=: the local rule decides. Rate 0 and no reservoir -> nothing is sent.
    with app_under_test(tmp_path, xray_rate=0.0) as under_test:
        for _ in range(5):
            assert under_test.client.get("/api/activities/@andrew", headers=HEADERS).status_code == 200
        assert under_test.emitter.documents == []


def test_an_explicit_sampled_flag_is_respected(tmp_path: Path) -> None:
    with app_under_test(tmp_path, xray_rate=0.0) as under_test:
        under_test.client.get("/api/health", headers={"X-Amzn-Trace-Id": f"Root={XRAY_ROOT};Sampled=1"})
        assert [doc["trace_id"] for doc in under_test.emitter.documents] == [XRAY_ROOT]


def test_disabled_xray_sends_nothing_and_routes_still_work(tmp_path: Path) -> None:
    with app_under_test(tmp_path, {"TRACEDRILL_DISABLE": "xray"}) as under_test:
        assert under_test.client.get("/api/activities/@andrew", headers=HEADERS).status_code == 200
        assert under_test.emitter.documents == []
        assert under_test.telemetry.xray_recorder is None


def test_subsegment_ends_once_even_when_the_block_raises() -> None:
    recorder, emitter = AWSXRayRecorder(), CapturingEmitter()
    recorder.configure(emitter=emitter, sampling=False, context_missing="LOG_ERROR")
    recorder.begin_segment("t")
    with pytest.raises(ValueError), xray.subsegment(recorder, "boom"):
        raise ValueError("inside")
    recorder.end_segment()
    (segment,) = emitter.documents
    (sub,) = segment["subsegments"]
    assert sub["name"] == "boom" and sub["fault"] is True and not sub.get("in_progress")


def test_subsegment_without_a_segment_is_a_no_op() -> None:
    recorder = AWSXRayRecorder()
    recorder.configure(emitter=CapturingEmitter(), context_missing="IGNORE_ERROR")
    with xray.subsegment(recorder, "orphan") as entity:
        entity.put_annotation("k", "v")  # must not raise
    assert entity is xray.NO_ENTITY


def test_sampler_modes() -> None:
    assert isinstance(xray.build_sampler(Settings.from_env({})), DefaultSampler)
    local = Settings.from_env({"TRACEDRILL_XRAY_SAMPLING": "local"})
    assert isinstance(xray.build_sampler(local), LocalSampler)


def test_configure_recorder_uses_the_daemon_address_and_name() -> None:
    settings = Settings.from_env({"AWS_XRAY_DAEMON_ADDRESS": "127.0.0.1:2999", "AWS_XRAY_TRACING_NAME": "cruddur-x"})
    emitter = CapturingEmitter()
    recorder = xray.configure_recorder(settings, AWSXRayRecorder(), emitter)
    assert (emitter.ip, emitter.port) == ("127.0.0.1", 2999)
    assert recorder.service == "cruddur-x"
    assert recorder.context.context_missing == "LOG_ERROR"


@pytest.mark.parametrize(("content", "message"), [("{not json", "is not JSON"), ('{"version": 9}', "invalid")])
def test_bad_local_rules_give_clear_errors(tmp_path: Path, content: str, message: str) -> None:
    rules = tmp_path / "rules.json"
    rules.write_text(content, encoding="utf-8")
    settings = Settings.from_env({"TRACEDRILL_XRAY_SAMPLING": "local", "TRACEDRILL_XRAY_LOCAL_RULES": str(rules)})
    with pytest.raises(SettingsError, match=message):
        xray.build_sampler(settings)
