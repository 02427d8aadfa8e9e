"""Verification cost: wall time, peak memory and API calls to verify runs of 1k, 10k and 100k requests.

Each size gets its own local stack (a `tracedrill stack up` process) pre-loaded through the public
ingest APIs with a synthetic run (bench/synthetic.py). Each measured run is a fresh child process
that reads the sent-ledger and, like `verify_run`, reads every backend once in parallel threads
through its public read API and runs all the checks: one complete poll plus the checks, without the
waiting policy (settle/deadline: how often that repeats is the "time to verdict" section's business).
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import psutil

from bench import preload, synthetic
from bench.backends import StackProcess
from bench.common import PROJECT_ROOT, BenchConfig, Section, fmt, log, median_of
from loadtests.ledger import LedgerWriter, ledger_path
from tracedrill import local

RATE = 200.0
READ_TIMEOUT_S = 120.0  # synthetic requests per second: a 100k run is an 8-minute drill
BACKENDS = ("honeycomb", "xray", "cloudwatch_logs", "rollbar")


def run(config: BenchConfig, sizes: Sequence[int] = ()) -> Section:
    sizes = sizes or ((50, 200) if config.quick else (1_000, 10_000, 100_000))
    section = Section(
        "Verification: wall time, peak memory and API calls by run size",
        method=(
            f"For each size a synthetic run (the locustfile's route mix at {RATE:.0f} req/s ending just now; X-Ray "
            "sampled as the bundled rule would: 5/s + 10 %) is written as a sent-ledger and its telemetry sent "
            "to a fresh local stack (`tracedrill stack up` in its own process) through the public ingest APIs. "
            "Each measured run is a fresh child process: read the ledger, then one complete read of every "
            "backend in parallel threads through the public read APIs (what one poll of `verify_run` does) "
            "and every check. Wall time is from process start of the work (after imports) to the last report; "
            "peak memory is the child's maximum RSS (`getrusage`), of which the Python interpreter and imports "
            "are the 'before' figure. API calls are counted by the verifiers themselves for that one read. "
            "Honeycomb's Query Data API allows 10 query results a minute and the verifier paces itself to one "
            "every 6 s; here the stack runs without that limit and the verifier unpaced, so the wall time is "
            "the work, and the cost table shows the floor the pacing adds against the real service. The read "
            f"timeout is raised from the verifiers' 15 s to {READ_TIMEOUT_S:.0f} s: the Honeycomb emulator computes "
            "a query result inside POST /1/query_results (Honeycomb answers at once and computes after)."
        ),
    )
    rows = [
        "| requests | spans | X-Ray traces | log events | Rollbar occurrences | preload s | verdicts |",
        "|---:|---:|---:|---:|---:|---:|---|",
    ]
    cost_rows = [
        "| requests | GetTraceSummaries | BatchGetTraces | traces scanned + retrieved | FilterLogEvents "
        "(min s at 5/s) | Honeycomb query results (min s at 10/min; rows) | Rollbar GETs |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    backend_rows = [
        "| requests | " + " | ".join(f"{b}: wall s (verifier CPU s)" for b in BACKENDS) + " |",
        "|---:|" + "---:|" * len(BACKENDS),
    ]
    walls: dict[int, list[float]] = {}
    for size in sizes:
        stack_dir = config.work_dir / f"verify-{size}"
        shutil.rmtree(stack_dir, ignore_errors=True)  # telemetry of an earlier run would be extras
        with StackProcess(stack_dir / "stack", query_limit=False) as stack:
            sent = synthetic.ledger(size, time.time() - size / RATE - 2, RATE)
            run_dir = stack_dir / "run"
            run_dir.mkdir(parents=True, exist_ok=True)
            for old in run_dir.glob("sent*.jsonl"):
                old.unlink()
            with LedgerWriter(ledger_path(run_dir, "bench")) as ledger:
                for r in sent:
                    ledger.record(r)
            log(f"verification: preloading {size} requests")
            started = time.perf_counter()
            preload.preload(stack.endpoints, sent, partial(_progress, size))
            preload_s = time.perf_counter() - started
            results = []
            server = psutil.Process(stack.proc.pid)
            for run_no in range(config.runs):
                server_before = sum(server.cpu_times()[:2])
                result = _child(run_dir, stack.endpoints)
                result["server_cpu_s"] = sum(server.cpu_times()[:2]) - server_before
                results.append(result)
                log(f"verification {size}: run {run_no + 1} {result['wall_s']:.1f} s, {result['peak_mb']:.0f} MB")
        walls[size] = [r["wall_s"] for r in results]
        section.figure(f"{size:,} requests: wall time", "s").samples = walls[size]
        section.figure(f"{size:,} requests: verifier CPU (our code + boto3/requests parsing)", "s").samples = [
            r["cpu_s"] for r in results
        ]
        section.figure(f"{size:,} requests: local stack CPU answering the reads", "s").samples = [
            r["server_cpu_s"] for r in results
        ]
        section.figure(f"{size:,} requests: peak memory", "MB").samples = [r["peak_mb"] for r in results]
        section.figure(f"{size:,} requests: memory before reading (interpreter + imports)", "MB").samples = [
            r["base_mb"] for r in results
        ]
        last = results[-1]
        found = last["found"]
        verdicts = ", ".join(f"{b} {last['status'][b]}" for b in BACKENDS)
        rows.append(
            f"| {size:,} | {found['honeycomb']:,} | {found['xray']:,} | {found['cloudwatch_logs']:,} | "
            f"{found['rollbar']:,} | {fmt(preload_s)} | {verdicts} |"
        )
        if last["honeycomb_truncated"]:
            section.findings.append(
                f"Honeycomb at {size:,} requests: the verifier reads spans with one query result, capped at 10,000 "
                "rows (the API's maximum); the run has more spans, so every per-span check is unverifiable. "
                "Verifying such runs needs a query split (by time slices) or a shorter run."
            )
        calls = last["api_calls"]
        units = last["cost_units"]
        filter_calls = calls["cloudwatch_logs"].get("FilterLogEvents", 0)
        queries = int(units["honeycomb"].get("query_results", 0))
        cost_rows.append(
            f"| {size:,} | {calls['xray'].get('GetTraceSummaries', 0):,} | {calls['xray'].get('BatchGetTraces', 0):,} "
            f"| {units['xray'].get('traces_scanned', 0):,} + {units['xray'].get('traces_retrieved', 0):,} "
            f"| {filter_calls:,} ({filter_calls / 5:.1f}) | {queries} ({max(queries - 1, 0) * 6}; "
            f"{last['honeycomb_rows']:,}{', truncated' if last['honeycomb_truncated'] else ''}) "
            f"| {sum(calls['rollbar'].values()):,} |"
        )
        backend_rows.append(f"| {size:,} | " + " | ".join(_backend_cell(results, b) for b in BACKENDS) + " |")
    section.tables += ["\n".join(rows), "\n".join(backend_rows), "\n".join(cost_rows)]
    _growth(section, sizes, walls)
    _where_time_goes(section, sizes[-1])
    return section


def _backend_cell(results: Sequence[dict[str, Any]], backend: str) -> str:
    wall = median_of([r["backend_s"][backend] for r in results])
    cpu = median_of([r["backend_cpu_s"][backend] for r in results])
    return f"{fmt(wall)} ({fmt(cpu)})"


def _where_time_goes(section: Section, size: int) -> None:
    def med(name: str) -> float:
        return median_of(section.figure(f"{size:,} requests: {name}", "").samples)

    wall = med("wall time")
    ours = med("verifier CPU (our code + boto3/requests parsing)")
    stack = med("local stack CPU answering the reads")
    section.findings.append(
        f"Where {size:,} requests' {fmt(wall)} s go: {fmt(ours)} s CPU in the verifier process (the checks, "
        f"plus boto3/requests parsing every answer; per backend in the table above, each backend's thread) and "
        f"{fmt(stack)} s CPU in the local stack answering the reads (one process for all four emulators), on "
        "2 cores shared with everything else on the machine."
    )


def _progress(size: int, message: str) -> None:
    log(f"verification {size}: {message}")


def _growth(section: Section, sizes: Sequence[int], walls: dict[int, list[float]]) -> None:
    for small, big in zip(sizes, sizes[1:], strict=False):
        factor = median_of(walls[big]) / median_of(walls[small])
        section.findings.append(
            f"{small:,} → {big:,} requests ({big // small}x): wall time x{factor:.1f} "
            f"({'about linear' if factor <= 1.3 * big / small else 'worse than linear'})"
        )
    biggest = sizes[-1]
    peak = median_of(section.figure(f"{biggest:,} requests: peak memory", "MB").samples)
    wall = median_of(walls[biggest])
    section.findings.append(
        f"{biggest:,} requests: {fmt(wall)} s ({'within' if wall <= 30 else 'over'} the 30 s goal) and "
        f"{fmt(peak)} MB ({'within' if peak <= 1024 else 'over'} the 1 GB goal)"
    )


def _child(run_dir: Path, endpoints: dict[str, str]) -> dict[str, Any]:
    import subprocess

    command = [
        sys.executable,
        "-m",
        "bench.verification",
        "--child",
        str(run_dir),
        "--endpoints",
        json.dumps(endpoints),
    ]
    done = subprocess.run(command, cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=900)
    if done.returncode != 0:
        raise RuntimeError(f"verification child failed:\n{done.stderr[-3000:]}")
    answer: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return answer


def _rss_mb() -> float:
    """Peak RSS of this process so far. VmHWM, not getrusage: Linux carries ru_maxrss over exec from the
    parent, which here holds the whole synthetic run."""
    for line in Path("/proc/self/status").read_text(encoding="utf-8").splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_main(run_dir: Path, endpoints: dict[str, str]) -> dict[str, Any]:
    from emulators.stack import StackEndpoints, verifier_environment
    from verifiers.base import RunWindow, make_verifiers
    from verifiers.connections import Connections
    from verifiers.expectations import load_expectations
    from verifiers.model import read_ledger

    base_mb = _rss_mb()
    started = time.perf_counter()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_before = usage.ru_utime + usage.ru_stime
    sent = read_ledger(run_dir)
    expectations = load_expectations()
    window = RunWindow(
        run_id="bench",
        start=min(s.start for s in sent) - 5,
        end=max(s.end for s in sent) + 60,
        service_name=synthetic.SERVICE,
        log_group=local.DEFAULT_LOG_GROUP,
        rollbar_environment=local.DEFAULT_ROLLBAR_ENVIRONMENT,
    )
    # The verifiers' 15 s read timeout is for the real services, which answer POST /1/query_results at once;
    # the emulator computes the result inside that call, which at 100k under 4 parallel readers can take longer.
    connections = replace(
        Connections.from_env(verifier_environment(StackEndpoints(**endpoints))), read_timeout_s=READ_TIMEOUT_S
    )
    verifiers = make_verifiers(connections, expectations)
    for verifier in verifiers:
        pace = getattr(verifier, "pace_queries", None)
        if pace is not None:  # Honeycomb: measure the reads' work; the 10-a-minute floor is reported apart
            pace(0.0)
    out: dict[str, Any] = {
        "backend_s": {},
        "backend_cpu_s": {},
        "status": {},
        "found": {},
        "api_calls": {},
        "cost_units": {},
    }

    def one(verifier: Any) -> None:
        t0 = time.perf_counter()
        cpu0 = time.thread_time()  # this backend's share of the verifier's CPU (its own thread)
        name = verifier.backend
        try:
            obs = verifier.poll(window)
            report = verifier.verify(sent, obs, expectations)
        except Exception as exc:  # one backend's failure is a figure too, not the end of the benchmark
            out["backend_s"][name] = time.perf_counter() - t0
            out["backend_cpu_s"][name] = time.thread_time() - cpu0
            out["status"][name] = f"error ({type(exc).__name__}: {str(exc)[:160]})"
            out["found"][name] = 0
            out["api_calls"][name], out["cost_units"][name] = {}, {}
            out.setdefault("honeycomb_rows", 0)
            out.setdefault("honeycomb_truncated", False)
            return
        out["backend_s"][name] = time.perf_counter() - t0
        out["backend_cpu_s"][name] = time.thread_time() - cpu0
        out["status"][name] = report.status
        out["found"][name] = report.found
        out["api_calls"][name] = dict(obs.api_calls)
        out["cost_units"][name] = dict(obs.cost_units)
        if name == "honeycomb":
            out["honeycomb_rows"] = len(obs.spans)
            out["honeycomb_truncated"] = bool(obs.truncated)

    threads = [threading.Thread(target=one, args=(v,)) for v in verifiers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    out["wall_s"] = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_SELF)
    out["cpu_s"] = usage.ru_utime + usage.ru_stime - cpu_before
    out["peak_mb"] = _rss_mb()
    out["base_mb"] = base_mb
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", type=Path)
    parser.add_argument("--endpoints")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--sizes", default="", help="comma list of run sizes (default 1000,10000,100000)")
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(child_main(args.child, json.loads(args.endpoints))))
        return 0
    from bench.report import print_section

    sizes = [int(x) for x in args.sizes.split(",") if x]
    print_section(run(BenchConfig(runs=2 if args.quick else args.runs, quick=args.quick), sizes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
