"""`tracedrill ui` without a browser: the board, verification rounds, the loopback API, VERIFY entries
and the Locust commands. The browser test is tests/e2e/test_ui_browser.py."""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest
from werkzeug.test import Client

from loadtests.verify_stats import inject_before_body_end, verify_entries
from tracedrill.loadgen import VERIFICATION_TAB, LoadPlan, WebUi, locust_command, worker_command
from tracedrill.ui import VerificationRounds, web_url
from tracedrill.ui_api import create_app
from tracedrill.verification_board import LiveVerifier, RoundSettings, VerificationBoard
from verifiers.base import RunWindow
from verifiers.expectations import Expectations
from verifiers.model import Backend, BackendReport, CheckResult, CheckStatus, SentRequest

SETTINGS = RoundSettings(settle_s=3.0, deadline_s=60.0, fail_on_unverifiable=False)
CHECK = "every request has a span"


def _sent(n: int) -> list[SentRequest]:
    return [
        SentRequest(f"r{i}", "home", "GET", "u", "/p", 1.0, 2.0, 200, "a" * 32, "b" * 16, "1-x-y", "w")
        for i in range(n)
    ]


class FakeVerifier:
    """Finds ``len(obs)`` of the sent requests; one check that fails while anything is missing."""

    backend: Backend = "honeycomb"

    def poll(self, window: RunWindow) -> list[str]:
        raise AssertionError("not polled in these tests")

    def seen_request_ids(self, obs: list[str]) -> set[str]:
        return set(obs)

    def item_count(self, obs: list[str]) -> int:
        return len(obs)

    def verify(self, sent: Sequence[SentRequest], obs: list[str], expectations: Any) -> BackendReport:
        missing = len(sent) - len(obs)
        status: CheckStatus = "pass" if missing == 0 else "fail"
        check = CheckResult("honeycomb", CHECK, status, f"{missing} missing")
        return BackendReport("honeycomb", len(sent), len(obs), missing, 0, [check])


def _summary(status: str = "fail") -> dict[str, Any]:
    return {
        "verdict": "fail" if status == "fail" else "pass",
        "sent": {"total": 3},
        "backends": {
            "honeycomb": {
                "expected": 3,
                "found": 2,
                "missing": 1,
                "extra": 0,
                "status": status,
                "wait": {"ended_by": "settled", "seconds": 12.4},
                "note": "",
            }
        },
        "checks": [{"backend": "honeycomb", "name": CHECK, "status": status, "detail": "1 missing"}],
        "budget": {"allowances": []},
    }


def test_counts_move_while_polling_and_checks_stay_pending_until_the_round_ends() -> None:
    board = VerificationBoard("run-1", SETTINGS, backends=("honeycomb",))
    assert board.begin("test-stop") == 1
    (live,) = board.watch([FakeVerifier()], _sent(3), Expectations.__new__(Expectations))
    assert isinstance(live, LiveVerifier) and live.backend == "honeycomb"

    assert live.item_count(["r0"]) == 1  # one poll read one request's span
    snap = board.snapshot()
    row = snap["backends"][0]
    assert (snap["phase"], snap["round"], snap["sent"]) == ("verifying", 1, 3)
    assert (row["state"], row["expected"], row["found"], row["missing"]) == ("pending", 3, 1, 2)
    assert snap["checks"] == [
        {"backend": "honeycomb", "name": CHECK, "state": "pending", "detail": "so far fail: 2 missing"}
    ]
    live.item_count(["r0", "r1", "r2"])
    assert board.snapshot()["backends"][0]["found"] == 3

    board.progress("honeycomb", "3 items found")
    board.finish(_summary("fail"))
    snap = board.snapshot()
    row = snap["backends"][0]
    assert (snap["phase"], snap["verdict"]) == ("done", "fail")
    assert (row["state"], row["found"], row["missing"], row["waited"], row["progress"]) == (
        "fail",
        2,
        1,
        "settled 12s",
        "3 items found",
    )
    assert snap["checks"][0]["state"] == "fail"
    assert snap["budget"] == {"allowances": []} and snap["sampling"] is None


def test_an_interim_view_that_breaks_never_stops_the_count() -> None:
    class Broken(FakeVerifier):
        def verify(self, sent: Sequence[SentRequest], obs: list[str], expectations: Any) -> BackendReport:
            raise KeyError("boom")

    board = VerificationBoard("run-1", SETTINGS, backends=("honeycomb",))
    board.begin("verify-now")
    (live,) = board.watch([Broken()], _sent(2), Expectations.__new__(Expectations))
    assert live.item_count(["r0"]) == 1
    assert "interim check failed" in board.snapshot()["backends"][0]["progress"]


def test_a_round_without_summary_is_an_error_with_the_reason() -> None:
    board = VerificationBoard("run-1", SETTINGS)
    board.begin("verify-now")
    board.fail("the sent-ledger has no requests yet: start a test first")
    snap = board.snapshot()
    assert snap["phase"] == "error" and "start a test" in snap["error"]
    assert [b["backend"] for b in snap["backends"]] == ["honeycomb", "xray", "cloudwatch_logs", "rollbar"]


def test_a_request_during_a_round_queues_exactly_one_more() -> None:
    board = VerificationBoard("run-1", SETTINGS)
    release = threading.Event()
    seen: list[str] = []

    def verify(b: VerificationBoard) -> None:
        seen.append(b.snapshot()["reason"])
        release.wait(5)
        b.finish(_summary("pass"))

    rounds = VerificationRounds(board, verify)
    assert rounds.request("test-stop") == {"round": 1, "queued": False}
    assert rounds.request("verify-now") == {"round": 2, "queued": True}
    assert rounds.request("verify-now") == {"round": 2, "queued": True}  # still one queued round
    assert rounds.busy()
    release.set()
    assert rounds.wait(5)
    assert seen == ["test-stop", "verify-now"]
    assert board.snapshot()["round"] == 2 and board.snapshot()["phase"] == "done"


def test_a_failing_round_is_shown_and_the_next_one_still_runs() -> None:
    board = VerificationBoard("run-1", SETTINGS)

    def verify(b: VerificationBoard) -> None:
        raise RuntimeError("backend exploded")

    rounds = VerificationRounds(board, verify)
    rounds.request("test-stop")
    assert rounds.wait(5)
    assert board.snapshot()["error"] == "RuntimeError: backend exploded"
    assert rounds.request("verify-now")["round"] == 2


def test_loopback_api_routes() -> None:
    board = VerificationBoard("run-9", SETTINGS)
    asked: list[str] = []

    class Rounds:
        def request(self, reason: str) -> dict[str, Any]:
            asked.append(reason)
            return {"round": 1, "queued": False}

    client = Client(create_app(board, Rounds()))
    status = client.get("/status")
    assert status.status_code == 200 and status.json is not None
    assert status.json["run_id"] == "run-9" and status.json["phase"] == "idle"
    assert status.headers["Cache-Control"] == "no-store"
    answer = client.post("/verify", data=json.dumps({"reason": "test-stop"}))
    assert answer.status_code == 202 and answer.json == {"round": 1, "queued": False}
    assert client.post("/verify").status_code == 202  # no body: Verify now
    assert asked == ["test-stop", "verify-now"]
    assert client.post("/verify", data=json.dumps({"reason": "whenever"})).status_code == 400
    assert client.post("/verify", data=b"{not json").status_code == 400
    assert client.get("/verify").status_code == 405
    assert client.get("/nope").status_code == 404


def _status(states: list[str], fail_on_unverifiable: bool = False) -> dict[str, Any]:
    return {
        "phase": "done",
        "started_at": 100.0,
        "finished_at": 112.5,
        "settings": {"fail_on_unverifiable": fail_on_unverifiable},
        "backends": [
            {"backend": "xray", "state": states[0], "expected": None, "found": 4, "missing": None, "extra": 0}
        ],
        "checks": [
            {"backend": "xray", "name": f"check {i}", "state": state, "detail": f"d{i}"}
            for i, state in enumerate(states)
        ],
    }


def test_verify_entries_fail_exactly_on_fail_and_timed_out() -> None:
    entries = verify_entries(_status(["fail", "pass", "timed-out", "unverifiable"]))
    assert [e.name for e in entries] == ["xray", "xray: check 0", "xray: check 1", "xray: check 2", "xray: check 3"]
    assert all(e.response_time_ms == 12500.0 for e in entries)
    assert [e.failure for e in entries] == [
        "fail: expected -, found 4, missing -, extra 0",
        "fail: d0",
        None,
        "timed-out: d2",
        None,
    ]
    strict = verify_entries(_status(["unverifiable"], fail_on_unverifiable=True))
    assert [e.failure for e in strict] == ["unverifiable: expected -, found 4, missing -, extra 0", "unverifiable: d0"]


def test_verify_entries_of_an_error_and_of_an_unfinished_round() -> None:
    (entry,) = verify_entries({"phase": "error", "error": "no requests", "started_at": 1.0, "finished_at": 2.0})
    assert entry.name == "verification" and entry.failure == "error: no requests"
    assert verify_entries({"phase": "verifying"}) == []


def test_the_tab_script_goes_just_before_the_body_end() -> None:
    page = "<html><body><div id=root></div>\n</body></html>"
    assert inject_before_body_end(page, "<script></script>") == (
        "<html><body><div id=root></div>\n<script></script></body></html>"
    )
    assert inject_before_body_end("<p>", "<s>") == "<p><s>"


def test_locust_commands_for_the_web_ui_and_for_workers(tmp_path: Path) -> None:
    plan = LoadPlan(users=3, spawn_rate=3, run_time=None, processes=2, extra_args=("--loglevel", "DEBUG"))
    web = locust_command(plan, "http://127.0.0.1:5000", tmp_path, WebUi("http://127.0.0.1:9"), master_port=5557)
    assert web[web.index("-f") + 1].endswith(f",{VERIFICATION_TAB}")
    assert "--headless" not in web and "--run-time" not in web
    assert web[web.index("--web-host") + 1] == "127.0.0.1"  # loopback unless asked
    assert web[web.index("--master-bind-host") + 1] == "127.0.0.1"
    assert web[web.index("--expect-workers") + 1] == "2"
    assert web[-2:] == ["--loglevel", "DEBUG"]
    asked = LoadPlan(extra_args=("--web-host", "0.0.0.0"))
    assert locust_command(asked, "h", tmp_path, WebUi("u")).count("--web-host") == 1

    headless = locust_command(LoadPlan(run_time="5s"), "h", tmp_path)
    assert "--headless" in headless and "--master" not in headless
    assert headless[headless.index("-f") + 1] == str(LoadPlan().locustfile)  # no tab without the web UI

    worker = worker_command(plan, 5557)
    assert worker[worker.index("--master-port") + 1] == "5557" and "--worker" in worker
    assert "--html" not in worker and "--csv" not in worker  # the master writes Locust's reports


def test_web_url_follows_the_flags_passed_to_locust() -> None:
    assert web_url([]) == "http://127.0.0.1:8089/"
    assert web_url(["--web-port", "9000"]) == "http://127.0.0.1:9000/"
    assert web_url(["-P", "9001", "--web-host=0.0.0.0"]) == "http://localhost:9001/"


def test_processes_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="--processes must be at least 1"):
        LoadPlan(processes=0).validate()
