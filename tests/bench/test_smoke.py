"""Every benchmark in a tiny mode, so bench/ cannot rot between `make bench` runs.

The figures of a tiny run mean nothing; what is checked is that each section runs to the end and
measures something real (positive rates, per-request costs, passing verdicts on synthetic data).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from bench import http_overhead, ingest, loadgen, sdk_cost, synthetic, verdict, verification
from bench.common import BenchConfig, Section
from bench.main import main as run_all
from bench.report import section_markdown
from loadtests.ledger import LedgerWriter
from verifiers.model import read_ledger

pytestmark = pytest.mark.e2e


@pytest.fixture
def config(tmp_path: Path) -> BenchConfig:
    return BenchConfig(runs=1, quick=True, work_dir=tmp_path)


def _figure(section: Section, name: str) -> list[float]:
    return next(f.samples for f in section.figures if f.name == name)


def _rendered(section: Section) -> str:
    text = section_markdown(section)
    assert section.method in text and "| figure |" in text
    return text


def test_http_overhead_measures_both_instances(config: BenchConfig) -> None:
    section = http_overhead.run(config)
    _rendered(section)
    ratios = _figure(section, "home: req/s on/off")
    assert len(ratios) == 1 and ratios[0] > 0
    assert _figure(section, "home: added CPU per request (on - off)")


def test_sdk_cost_compares_ours_with_stock(config: BenchConfig) -> None:
    section = sdk_cost.run(config)
    _rendered(section)
    off = _figure(section, "ours: home, everything off")
    assert off and off[0] > 0
    assert _figure(section, "ours/stock added CPU, all four, home")


def test_loadgen_compares_locustfiles(config: BenchConfig) -> None:
    section = loadgen.run(config)
    _rendered(section)
    assert _figure(section, "plain FastHttpUser")[0] > 0
    assert _figure(section, "our locustfile")[0] > 0


def test_ingest_rates_and_no_relay_loss(config: BenchConfig) -> None:
    section = ingest.run(config)
    _rendered(section)
    assert _figure(section, "ours: OTLP spans (protobuf, 512 a batch)")[0] > 0
    assert _figure(section, "ours: Rollbar items (POST item/)")[0] > 0
    assert _figure(section, "ours: X-Ray relay datagrams lost") == [0.0]


def test_verification_passes_on_synthetic_runs(config: BenchConfig) -> None:
    section = verification.run(config, sizes=(150,))
    text = _rendered(section)
    assert "honeycomb pass" in text and "cloudwatch_logs pass" in text and "rollbar pass" in text
    assert _figure(section, "150 requests: wall time")[0] > 0


def test_verdict_times_a_real_drill(config: BenchConfig) -> None:
    section = verdict.run(config)
    _rendered(section)
    total = _figure(section, "whole run: verdict and reports written after load stop")
    assert total and total[0] > 0


def test_run_all_writes_results_with_the_machine(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("bench.main.SECTIONS", {"tiny": lambda cfg: Section("Tiny", method="counted to three")})
    out = tmp_path / "results.md"
    assert run_all(["--quick", "--output", str(out), "--work-dir", str(tmp_path / "work")]) == 0
    text = out.read_text(encoding="utf-8")
    assert "## Machine" in text and "cores" in text and "## Tiny" in text and "counted to three" in text


def test_synthetic_ledger_round_trips_through_the_ledger_writer(tmp_path: Path) -> None:
    sent = synthetic.ledger(30, time.time(), 100.0)
    with LedgerWriter(tmp_path / "sent-x.jsonl") as writer:
        for r in sent:
            writer.record(r)
    assert read_ledger(tmp_path) == sent
    # The writer's fast path writes exactly what SentRequest.to_json would.
    lines = (tmp_path / "sent-x.jsonl").read_text(encoding="utf-8").splitlines()
    assert lines == [r.to_json() for r in sent]
    assert json.loads(lines[0])["request_id"] == sent[0].request_id
