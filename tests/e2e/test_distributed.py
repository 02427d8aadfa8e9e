"""`tracedrill run --processes 2`: a Locust master and two worker processes on loopback, every worker's
sent-ledger in the run directory, and verification over all of their requests."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from loadtests.ledger import ledger_path
from verifiers.model import PROBE_ROUTE_NAME, read_ledger

from .conftest import all_passed_but_a_short_runs_sampling_count

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]


def test_two_workers_write_complete_ledgers_and_verify_with_exact_counts(tmp_path: Path) -> None:
    reports = tmp_path / "reports"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "AWS_", "ROLLBAR_", "HONEYCOMB_"))}
    command = [
        sys.executable, "-m", "tracedrill.cli", "run", "--processes", "2",
        "--run-time", "6s", "--users", "6", "--spawn-rate", "6", "--settle", "4", "--deadline", "60",
        "--reports-dir", str(reports),
    ]  # fmt: skip
    proc = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    run_dir = (reports / "latest").resolve()
    summary = json.loads((run_dir / "summary.json").read_text())

    # Every worker wrote its own ledger file; the master sent nothing and wrote none.
    sent = [s for s in read_ledger(run_dir) if s.name != PROBE_ROUTE_NAME]
    workers = {s.worker for s in sent}
    assert len(workers) == 2, workers
    assert {p.name for p in run_dir.glob("sent*.jsonl")} == {
        ledger_path(run_dir, name).name for name in (*workers, "readiness-probe")
    }
    assert all((run_dir / f"locust-worker-{n}.log").is_file() for n in (1, 2))
    # Everything Locust's master counted is in the ledgers (the master may miss a worker's last report,
    # the ledgers may not miss a request: see the "nothing extra" counts below).
    with (run_dir / "locust_stats.csv").open() as fh:
        aggregated = next(r for r in csv.DictReader(fh) if r["Name"] == "Aggregated")
    assert 0 < int(aggregated["Request Count"]) <= len(sent)

    # The same per-backend arithmetic as a one-process run: nothing missing, nothing extra.
    assert summary["verdict"] == "pass"
    total, routes = summary["sent"]["total"], summary["sent"]["by_route"]
    assert total == len(sent) + 1  # + the readiness probe
    backends = summary["backends"]
    for name in ("honeycomb", "cloudwatch_logs"):
        assert backends[name]["expected"] == total + routes.get("home", 0), name
        assert backends[name]["found"] == backends[name]["expected"], name
        assert backends[name]["missing"] == 0 and backends[name]["extra"] == 0, name
    rollbar_expected = routes.get("fault", 0) + routes.get("rollbar_test", 0)
    assert backends["rollbar"]["expected"] == backends["rollbar"]["found"] == rollbar_expected
    assert 0 < backends["xray"]["found"] <= total and backends["xray"]["extra"] == 0
    assert all_passed_but_a_short_runs_sampling_count(summary["checks"]), summary["checks"]
    assert "on a Locust master and 2 workers" in proc.stdout


def test_compose_runs_locust_the_same_way() -> None:
    """A master and scalable workers, one locustfile, every worker's ledger in one shared run directory."""
    services = yaml.safe_load((ROOT / "compose.yaml").read_text())["services"]
    master, worker = services["locust-master"], services["locust-worker"]
    assert "--master" in master["command"] and "--worker" in worker["command"]
    locustfile = master["command"][master["command"].index("-f") + 1]
    assert worker["command"][worker["command"].index("-f") + 1] == locustfile
    assert master["environment"]["TRACEDRILL_RUN_DIR"] == worker["environment"]["TRACEDRILL_RUN_DIR"]
    assert master["volumes"] == worker["volumes"]
    assert worker["deploy"]["replicas"] >= 2
