"""Time to verdict after the load stops, per backend, with `tracedrill run`'s default wait settings."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.common import PROJECT_ROOT, BenchConfig, Section, fmt, log, median_of
from verifiers.model import BACKENDS
from verifiers.polling import MIN_POLL_INTERVAL_S, WaitSettings

_STEP = re.compile(r"^\[\s*(?P<t>[\d.]+)s\] (?P<msg>.*)$")


def run(config: BenchConfig) -> Section:
    load = config.pick(4, 2)
    defaults = WaitSettings()
    section = Section(
        "Time to verdict after the load stops (default settings)",
        method=(
            f"`tracedrill run --run-time {load:.0f}s` (10 users, everything else default: settle "
            f"{defaults.settle_s:.0f} s, deadline {defaults.deadline_s:.0f} s, local stack, bundled target) "
            f"{config.runs} times. From the run's own timestamped progress lines: the load stops when the "
            "target is being stopped (its SDKs flush on shutdown); verification starts at the 'verifying' line; "
            "a backend's verdict is ready when its polling ended (`wait.seconds` in summary.json after the "
            "start of verification); the run's verdict when the reports are written. 'data complete' is "
            "when the backend's count last changed (`wait.complete_after_s`): the rest is the settle window "
            "proving nothing more arrives. Honeycomb is polled at most every "
            f"{MIN_POLL_INTERVAL_S['honeycomb']} s (its 10 query results a minute)."
        ),
    )
    work = config.work_dir / "verdict"
    for run_no in range(config.runs):
        result = _one_drill(work, int(load), ["--settle", "1", "--deadline", "30"] if config.quick else [])
        log(f"verdict: run {run_no + 1}/{config.runs}: {result['total']:.1f} s after load stop, {result['verdict']}")
        for backend in BACKENDS:
            section.figure(f"{backend}: verdict after load stop", "s").add(result["backend"][backend])
        for backend in BACKENDS:
            section.figure(f"{backend}: data complete after load stop", "s").add(result["complete"][backend])
        section.figure("target stop (SDK flush) until verification starts", "s").add(result["flush"])
        section.figure("whole run: verdict and reports written after load stop", "s").add(result["total"])
    slowest = max(BACKENDS, key=lambda b: median_of(section.figure(f"{b}: verdict after load stop", "s").samples))
    why = (
        f": with a count unchanged for the {defaults.settle_s:.0f} s settle window and at least two polls, its "
        f"{MIN_POLL_INTERVAL_S['honeycomb']} s poll interval puts the verdict at the third poll "
        f"({2 * MIN_POLL_INTERVAL_S['honeycomb']:.0f} s) at the earliest, although the data is complete by the first"
        if slowest == "honeycomb"
        else ""
    )
    section.findings.append(f"The slowest backend to reach its verdict is {slowest}{why}.")
    section.findings.append(
        "The gap between 'data complete' and 'verdict' is the settle window (policy, not latency): lowering "
        "`--settle` shortens every backend's verdict by the same amount, at the risk of calling late items missing."
    )
    total = median_of(section.figure("whole run: verdict and reports written after load stop", "s").samples)
    section.findings.append(f"Median time from load stop to the finished report: {fmt(total)} s.")
    return section


def _one_drill(work: Path, load_s: int, extra: list[str]) -> dict[str, Any]:
    work.mkdir(parents=True, exist_ok=True)
    command = [
        sys.executable, "-m", "tracedrill.cli", "run", "--run-time", f"{load_s}s",
        "--users", "10", "--spawn-rate", "10", "--reports-dir", str(work), *extra,
    ]  # fmt: skip
    done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=600)
    steps = [(float(m["t"]), m["msg"]) for line in done.stdout.splitlines() if (m := _STEP.match(line))]
    load_stop = _first(steps, "stopping the target app")
    verify_start = _first(steps, "sent-ledger:")
    finished = _first(steps, "stopping the local backends")
    run_dir = Path(next(msg for _, msg in steps if "reports in" in msg).rsplit("reports in ", 1)[1])
    summary = json.loads((run_dir / "summary.json").read_text(encoding="utf-8"))
    backend, complete = {}, {}
    for name in BACKENDS:
        wait = summary["backends"][name]["wait"] or {}
        backend[name] = verify_start - load_stop + float(wait.get("seconds") or 0)
        complete[name] = verify_start - load_stop + float(wait.get("complete_after_s") or 0)
    return {
        "backend": backend,
        "complete": complete,
        "flush": verify_start - load_stop,
        "total": finished - load_stop,
        "verdict": summary["verdict"],
    }


def _first(steps: list[tuple[float, str]], prefix: str) -> float:
    for t, msg in steps:
        if msg.startswith(prefix):
            return t
    raise RuntimeError(f"the drill printed no '{prefix}' step")


def main() -> int:
    from bench.report import print_section

    quick = "--quick" in sys.argv
    print_section(run(BenchConfig(runs=2 if quick else 5, quick=quick)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
