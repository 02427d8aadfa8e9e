"""Run every benchmark and write bench/results.md (`make bench`; `python bench/run_all.py --help`)."""

from __future__ import annotations

import argparse
import os
import shutil
import time
import traceback
from collections.abc import Callable, Sequence
from pathlib import Path

from bench import http_overhead, ingest, loadgen, sdk_cost, verdict, verification
from bench.common import MIN_RUNS, PROJECT_ROOT, BenchConfig, Section, log
from bench.report import document, write

SECTIONS: dict[str, Callable[[BenchConfig], Section]] = {
    "overhead": http_overhead.run,
    "sdk-cost": sdk_cost.run,
    "loadgen": loadgen.run,
    "ingest": ingest.run,
    "verification": verification.run,
    "verdict": verdict.run,
}
RESULTS = PROJECT_ROOT / "bench" / "results.md"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench/run_all.py", description="Run the benchmarks, write results.md.")
    parser.add_argument("--runs", type=int, default=MIN_RUNS, help=f"runs per figure (default {MIN_RUNS})")
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes, 2 runs: checks the scripts work; figures mean nothing"
    )
    parser.add_argument("--only", default="", help=f"comma list of sections (default all: {', '.join(SECTIONS)})")
    parser.add_argument("--output", type=Path, help="where to write (default bench/results.md; --quick: the work dir)")
    parser.add_argument(
        "--work-dir", type=Path, default=BenchConfig().work_dir, help="scratch space, emptied first (bench/.work)"
    )
    args = parser.parse_args(argv)
    wanted = [s for s in args.only.split(",") if s] or list(SECTIONS)
    unknown = set(wanted) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s): {', '.join(sorted(unknown))}")
    config = BenchConfig(runs=2 if args.quick else args.runs, quick=args.quick, work_dir=args.work_dir)
    shutil.rmtree(config.work_dir, ignore_errors=True)  # every run starts from empty backends
    config.work_dir.mkdir(parents=True)
    output = args.output or (config.work_dir / "results.md" if args.quick else RESULTS)
    started = time.perf_counter()
    sections, failed = [], []
    for name in wanted:
        log(f"section {name}")
        load_before = os.getloadavg()[0]
        t0 = time.perf_counter()
        try:
            section = SECTIONS[name](config)
        except Exception:
            failed.append(name)
            section = Section(
                f"{name}: FAILED", method="The benchmark raised:\n\n```\n" + traceback.format_exc() + "```"
            )
        section.seconds = time.perf_counter() - t0
        section.load = f"{load_before:.1f} → {os.getloadavg()[0]:.1f}"
        sections.append(section)
        log(f"section {name}: {section.seconds:.0f} s")
    notes = [
        "The machine's 1-minute load average (shown per section) counts every process on this shared 2-core "
        "machine; above 2 the benchmark competed for the cores, which widens the min-max spans.",
    ]
    write(output, document(sections, config, time.perf_counter() - started, notes))
    log(f"wrote {output} in {(time.perf_counter() - started) / 60:.1f} min")
    return 1 if failed else 0
