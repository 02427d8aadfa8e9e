"""Load-generator efficiency: our locustfile versus a plain FastHttpUser against the same no-op endpoint."""

from __future__ import annotations

import csv
import resource
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import psutil

from bench.common import PROJECT_ROOT, BenchConfig, Section, fmt, log, median_of, ratio_samples
from tracedrill.loadgen import RUN_DIR_ENV

LOCUSTFILES = {
    "ours": PROJECT_ROOT / "bench" / "locustfiles" / "ours.py",
    "plain": PROJECT_ROOT / "bench" / "locustfiles" / "plain.py",
}
USERS = 20


class NoOpServer:
    def __init__(self) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "bench.noop_server"], cwd=PROJECT_ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert self.proc.stdout is not None
        self.url = f"http://127.0.0.1:{int(self.proc.stdout.readline())}"
        self.ps = psutil.Process(self.proc.pid)

    def cpu_s(self) -> float:
        times = self.ps.cpu_times()
        return float(times.user + times.system)

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(10)


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run_locust(locustfile: Path, host: str, seconds: int, work: Path) -> tuple[float, float, int]:
    """(req/s, Locust CPU µs per request, requests) of one headless run."""
    run_dir = Path(tempfile.mkdtemp(dir=work))
    command = [
        sys.executable, "-m", "locust", "-f", str(locustfile), "--headless",
        "--users", str(USERS), "--spawn-rate", "1000", "--run-time", f"{seconds}s",
        "--host", host, "--csv", str(run_dir / "locust"), "--only-summary",
        "--stop-timeout", "1", "--exit-code-on-error", "0", "--loglevel", "WARNING",
    ]  # fmt: skip
    cpu_before = _children_cpu_s()
    env = {**dict(__import__("os").environ), RUN_DIR_ENV: str(run_dir)}
    done = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=seconds + 60)
    cpu = _children_cpu_s() - cpu_before
    if done.returncode != 0:
        raise RuntimeError(f"locust failed ({done.returncode}):\n{done.stderr[-2000:]}")
    with (run_dir / "locust_stats.csv").open(encoding="utf-8") as fh:
        total = next(row for row in csv.DictReader(fh) if row["Name"] == "Aggregated")
    requests = int(total["Request Count"])
    rps = float(total["Requests/s"])
    shutil.rmtree(run_dir, ignore_errors=True)
    return rps, cpu / requests * 1e6 if requests else float("nan"), requests


def bookkeeping_us(n: int) -> dict[str, float]:
    """µs per call of each piece of per-request work our locustfile adds (timeit, no network)."""
    import time
    import timeit

    from loadtests.ids import new_request_ids
    from loadtests.ledger import LedgerWriter
    from verifiers.model import SentRequest

    ids = new_request_ids()

    def sent() -> SentRequest:
        now = time.time()
        return SentRequest(ids.request_id, "home", "GET", "http://127.0.0.1:1/api/activities/home",
                           "/api/activities/home", now, now, 200, ids.trace_id, ids.parent_span_id,
                           ids.xray_trace_id, "bench")  # fmt: skip

    sample = sent()
    with tempfile.TemporaryDirectory() as tmp, LedgerWriter(Path(tmp) / "sent-bench.jsonl") as ledger:
        parts: dict[str, Callable[[], object]] = {
            "new request ids": new_request_ids,
            "correlation headers": ids.headers,
            "SentRequest(...)": sent,
            "LedgerWriter.record (one line)": lambda: ledger.record(sample),
            "SentRequest.to_json (what record used before)": sample.to_json,
        }
        return {name: timeit.timeit(fn, number=n) / n * 1e6 for name, fn in parts.items()}


def run(config: BenchConfig) -> Section:
    seconds = config.count(6, 2)
    section = Section(
        "Load-generator efficiency (our locustfile vs a plain FastHttpUser)",
        method=(
            f"One Locust process (headless, {USERS} users spawned at once, no think time, {seconds} s) against a "
            "no-op HTTP server (`bench/noop_server.py`: asyncio, keep-alive, answers 200 `ok` to everything; it "
            "stays far from saturation, see its CPU below). `ours` is the drill's locustfile (`loadtests/"
            "locustfile.py`: new request id, traceparent and X-Amzn-Trace-Id per request, `catch_response` status "
            "check, one sent-ledger line per request) with `wait_time = constant(0)` (`bench/locustfiles/ours.py`); "
            "`plain` is a bare FastHttpUser doing `client.get('/api/health')` (`bench/locustfiles/plain.py`). "
            "Runs alternate ours/plain. req/s is Locust's own aggregated figure; Locust CPU µs/req is the Locust "
            "process's user+system CPU (including start-up) per request. The ratio is ours/plain per run pair."
        ),
    )
    work = config.work_dir / "loadgen"
    work.mkdir(parents=True, exist_ok=True)
    rps: dict[str, list[float]] = {"ours": [], "plain": []}
    cpu: dict[str, list[float]] = {"ours": [], "plain": []}
    server = NoOpServer()
    server_cpu, server_requests = 0.0, 0
    try:
        for run_no in range(config.runs):
            for name in ("ours", "plain") if run_no % 2 == 0 else ("plain", "ours"):
                before = server.cpu_s()
                r, c, n = run_locust(LOCUSTFILES[name], server.url, seconds, work)
                server_cpu += server.cpu_s() - before
                server_requests += n
                rps[name].append(r)
                cpu[name].append(c)
                log(f"loadgen: {name} {r:.0f} req/s, {c:.0f} µs CPU/req")
    finally:
        server.close()
    parts = bookkeeping_us(config.count(20_000, 200))
    section.tables.append(
        "| per-request bookkeeping of our locustfile (timeit, no network) | µs per call |\n|---|---:|\n"
        + "\n".join(f"| {name} | {fmt(us)} |" for name, us in parts.items())
    )
    section.figure("plain FastHttpUser", "req/s").samples = rps["plain"]
    section.figure("our locustfile", "req/s").samples = rps["ours"]
    ratio = section.figure("our locustfile / plain FastHttpUser", "ratio")
    ratio.samples = ratio_samples(rps["ours"], rps["plain"])
    section.figure("plain FastHttpUser: Locust CPU", "µs/req").samples = cpu["plain"]
    section.figure("our locustfile: Locust CPU", "µs/req").samples = cpu["ours"]
    extra = median_of(cpu["ours"]) - median_of(cpu["plain"])
    section.findings.append(
        f"Our locustfile reaches {fmt(ratio.median, 'ratio')} of a plain FastHttpUser's req/s "
        f"({'meets' if ratio.median >= 0.90 else 'below'} the 0.90 goal); it costs about {fmt(extra)} µs more "
        "Locust CPU per request. The bookkeeping in our own code (ids, headers, the ledger record; table above) "
        "is a small part of it. The rest was not attributed here; what our requests make Locust do that the "
        "plain ones do not: the `catch_response` context, three more request headers, reading the response "
        "headers for the ledger, seven request names instead of one, and failure records for the two routes "
        "whose expected 422/500 the no-op server never answers."
    )
    section.findings.append(
        f"The no-op server used {fmt(server_cpu / max(server_requests, 1) * 1e6)} µs CPU per request, so Locust, "
        "not the server, was the limit."
    )
    return section


def main() -> int:
    from bench.report import print_section

    quick = "--quick" in sys.argv
    print_section(run(BenchConfig(runs=2 if quick else 5, quick=quick)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
