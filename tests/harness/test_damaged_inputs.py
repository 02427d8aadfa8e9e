"""Files a person may edit or a killed process may cut short (the sent-ledger, run.json, a sampling rules
file) are refused with the file, the line or field, and the fix named: exit 2, never a traceback."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from loadtests.ids import new_request_ids
from tracedrill.cli import main
from tracedrill.rundir import RUN_FILE, RunRecord, RunRecordError
from verifiers.expectations import DEFAULT_EXPECTATIONS
from verifiers.field_types import wrong_field_types
from verifiers.model import LedgerError, SentRequest, read_ledger

NOW = 1_760_000_000.0


def request_line(**changes: Any) -> str:
    ids = new_request_ids()
    sent = SentRequest(
        request_id=ids.request_id, name="home", method="GET", url="http://127.0.0.1:1/api/activities/home",
        path="/api/activities/home", start=NOW, end=NOW + 0.1, status=200, trace_id=ids.trace_id,
        parent_span_id=ids.parent_span_id, xray_trace_id=ids.xray_trace_id, worker="w1",
    )  # fmt: skip
    return json.dumps({**dataclasses.asdict(sent), **changes}) + "\n"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (request_line() + request_line()[:40], "sent-w1.jsonl:2: not a sent-ledger record (the file's last line, cut"),
        (request_line() + "garbage\n" + request_line(), "sent-w1.jsonl:2: not a sent-ledger record: Expecting value"),
        (request_line(start="yesterday"), "sent-w1.jsonl:1: not a sent-ledger record: start: expected a number"),
        (request_line(status=True), "status: expected int or None, got bool"),
        ("[1, 2]\n", "a JSON list, not an object"),
        (request_line().replace('"worker"', '"wrker"'), "unexpected keyword argument 'wrker'"),
        (request_line(start=NOW * 1000, end=NOW * 1000), "start: 1760000000000.0 is no time in seconds since 1970"),
        (request_line(end=float("nan")), "end: nan is no time in seconds since 1970 between 2000 and 2100"),
        (request_line(end=NOW - 5), f"end {NOW - 5} is before start {NOW}"),
    ],
)
def test_a_damaged_ledger_line_is_named(tmp_path: Path, text: str, expected: str) -> None:
    (tmp_path / "sent-w1.jsonl").write_text(text, encoding="utf-8")
    with pytest.raises(LedgerError) as info:
        read_ledger(tmp_path)
    assert expected in str(info.value) and "remove or repair the line" in str(info.value)


def test_a_good_ledger_reads_whole_with_whole_numbers_for_times(tmp_path: Path) -> None:
    (tmp_path / "sent-w1.jsonl").write_text(request_line(start=int(NOW), end=int(NOW) + 1) + request_line(status=None))
    assert [r.status for r in read_ledger(tmp_path)] == [200, None]


def record(run_dir: Path, **changes: Any) -> None:
    fields = dict(
        run_id="r1", backends="local", target_url="http://127.0.0.1:1", started_target=True,
        service_name="backend-flask", log_group="cruddur", rollbar_environment="local",
        expectations=str(DEFAULT_EXPECTATIONS), honeycomb_plan="enterprise", local_data_dir="local-backends",
    )  # fmt: skip
    (run_dir / RUN_FILE).write_text(json.dumps({**fields, **changes}), encoding="utf-8")
    (run_dir / "local-backends").mkdir(exist_ok=True)  # the run's local stack data, as `run` leaves it


@pytest.mark.parametrize(
    ("changes", "text", "expected"),
    [
        ({"load_start": "yesterday"}, None, "load_start: expected a number, got str"),
        ({"started_target": "yes"}, None, "started_target: expected bool, got str"),
        ({}, '{"run_id": "r1", ', "Expecting"),
        ({}, "[]", "a JSON list, not an object"),
        ({"surprise": 1}, None, "unexpected keyword argument 'surprise'"),
        ({"load_end": 1e400}, None, "load_end: inf is no time in seconds since 1970"),
        ({"load_start": NOW * 1000}, None, "load_start: 1760000000000.0 is no time"),
        ({"honeycomb_plan": "bogus"}, None, "honeycomb_plan: 'bogus' is not one of enterprise, free"),
        ({"backends": "mars"}, None, "backends: 'mars' is not one of local, stack, cloud"),
        ({"sampling": {"alpha": 5}}, None, "sampling: the sampling significance must be between 0 and 0.5"),
        ({"sampling": {"alpha": "x"}}, None, "sampling: "),
    ],
)
def test_a_damaged_run_record_is_named(tmp_path: Path, changes: dict[str, Any], text: str, expected: str) -> None:
    record(tmp_path, **changes)
    if text is not None:
        (tmp_path / RUN_FILE).write_text(text, encoding="utf-8")
    with pytest.raises(RunRecordError) as info:
        RunRecord.load_from(tmp_path)
    assert f"{tmp_path / RUN_FILE}: not a run record" in str(info.value) and expected in str(info.value)


def test_verify_refuses_a_damaged_run_with_exit_2_and_the_file_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record(tmp_path)
    (tmp_path / "sent-w1.jsonl").write_text(request_line() + request_line()[:30], encoding="utf-8")
    assert main(["verify", str(tmp_path), "--no-budget"]) == 2
    out = capsys.readouterr().out
    assert "tracedrill: error: " in out and "sent-w1.jsonl:2: not a sent-ledger record" in out
    assert "Traceback" not in out
    record(tmp_path, load_end="soon")
    assert main(["verify", str(tmp_path), "--no-budget"]) == 2
    assert "load_end: expected a number, got str" in capsys.readouterr().out


def test_a_run_longer_than_a_verification_reads_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # times within bounds each, but years apart: the window would be millions of reads
    record(tmp_path, load_start=NOW - 400 * 86400)
    (tmp_path / "sent-w1.jsonl").write_text(request_line(), encoding="utf-8")
    assert main(["verify", str(tmp_path), "--no-budget"]) == 2
    assert "more than the 7 days a verification reads" in capsys.readouterr().out


def test_verify_of_a_run_whose_data_directory_is_gone_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    record(tmp_path, local_data_dir="removed")
    (tmp_path / "sent-w1.jsonl").write_text(request_line(), encoding="utf-8")
    assert main(["verify", str(tmp_path), "--no-budget"]) == 2
    assert f"names the data directory {tmp_path / 'removed'}, which is gone" in capsys.readouterr().out
    assert not (tmp_path / "removed").exists()  # not created empty and verified as all "missing"


def test_verify_names_run_json_for_its_expectations_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    record(tmp_path, expectations=str(tmp_path / "moved.toml"))
    assert main(["verify", str(tmp_path), "--no-budget"]) == 2
    assert f"{tmp_path / RUN_FILE} names expectations {tmp_path / 'moved.toml'}: file not found" in (
        capsys.readouterr().out
    )


def test_a_rules_file_that_is_not_utf8_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rules = tmp_path / "rules.json"
    rules.write_bytes(b"\xff\xfe{}")
    assert main(["run", "--xray-rule", str(rules), "--run-time", "1s", "--no-budget"]) == 2
    out = capsys.readouterr().out
    assert f"{rules}: not UTF-8 text" in out and "Traceback" not in out


def test_field_types_follow_the_annotations() -> None:
    @dataclasses.dataclass
    class Shape:
        count: int
        ratio: float
        label: str | None
        anything: Any
        table: dict[str, Any] | None = None

    assert wrong_field_types(Shape(1, 2, None, object())) == []
    assert wrong_field_types(Shape(True, "x", 3, None, [])) == [  # type: ignore[arg-type]
        "count: expected int, got bool",
        "ratio: expected a number, got str",
        "label: expected str or None, got int",
        "table: expected dict or None, got list",
    ]
