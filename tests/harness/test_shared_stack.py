"""Pieces that let drills share a running stack: its endpoints file, the rules it served, the faster
polling a private emulator allows, and the notes checks add when they fail."""

from __future__ import annotations

from pathlib import Path

import pytest

from emulators.stack import (
    DEFAULT_SAMPLING_RULES,
    StackEndpoints,
    keep_served_rules,
    read_endpoints,
    served_rules,
    write_endpoints,
)
from verifiers.base import Findings, by_process, make_verifiers, verdict
from verifiers.connections import Connections
from verifiers.honeycomb import HoneycombVerifier
from verifiers.model import SentRequest
from verifiers.polling import MIN_POLL_INTERVAL_S, WaitSettings


def test_a_running_stack_tells_other_commands_where_it_listens(tmp_path: Path) -> None:
    endpoints = StackEndpoints("http://h:1", "http://x:2", "http://l:3", "http://r:4", "127.0.0.1:5")
    write_endpoints(tmp_path, endpoints)
    assert read_endpoints(tmp_path) == endpoints
    with pytest.raises(FileNotFoundError):
        read_endpoints(tmp_path / "elsewhere")


def test_the_served_sampling_rules_stay_with_the_data(tmp_path: Path) -> None:
    assert served_rules(tmp_path) is None
    keep_served_rules(DEFAULT_SAMPLING_RULES, tmp_path)
    kept = served_rules(tmp_path)
    assert kept is not None and kept.read_bytes() == DEFAULT_SAMPLING_RULES.read_bytes()
    keep_served_rules(kept, tmp_path)  # reopening the data with its own copy keeps it
    assert kept.read_bytes() == DEFAULT_SAMPLING_RULES.read_bytes()


def test_poll_intervals_keep_the_api_limits_unless_overridden() -> None:
    assert WaitSettings().min_interval("honeycomb") == MIN_POLL_INTERVAL_S["honeycomb"] == 6.5
    fast = WaitSettings(backend_intervals_s={"honeycomb": 1.0})
    assert fast.min_interval("honeycomb") == 1.0 and fast.min_interval("xray") == 1.0
    with pytest.raises(ValueError, match="honeycomb"):
        WaitSettings(backend_intervals_s={"honeycomb": -1.0})


def test_honeycomb_queries_are_paced_by_the_override_only() -> None:
    connections = Connections(honeycomb_api_key="k", rollbar_read_token="t", aws_region="us-east-1")
    default = next(v for v in make_verifiers(connections) if isinstance(v, HoneycombVerifier))
    fast = next(
        v for v in make_verifiers(connections, min_intervals_s={"honeycomb": 0.5}) if isinstance(v, HoneycombVerifier)
    )
    assert default._limiter.per_s == 6.0 and fast._limiter.per_s == 0.5


def _sent(request_id: str, process: str | None) -> SentRequest:
    return SentRequest(request_id, "home", "GET", "http://t/", "/", 0.0, 1.0, 200, "0" * 32, "1" * 16, "1-x", "w",
                       app_process=process)  # fmt: skip


def test_a_failing_check_says_which_app_process_failed_and_why() -> None:
    sent = [_sent("a", "p1"), _sent("b", "p1"), _sent("c", "p2")]
    assert by_process(sent, {"a", "b"}) == "Failed per app process: p1 2 of 2, p2 0 of 1"
    assert by_process([_sent("a", None)], {"a"}) == ""  # the app did not name its processes
    f = Findings()
    f.bad("a", "missing")
    f.ok()
    f.note("likely cause")
    f.note("likely cause")
    assert f.ids("missing") == {"a"} and f.ids("duplicated") == set()
    result = verdict("honeycomb", "check", f)
    assert result.status == "fail" and result.detail.endswith("a missing. likely cause")
    passing = Findings()
    passing.ok()
    passing.note("not shown when nothing failed")
    assert verdict("honeycomb", "check", passing).detail == "all 1 requests ok"
