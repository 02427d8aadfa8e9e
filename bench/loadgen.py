"""Load-generator efficiency: our locustfile versus a plain FastHttpUser against the same no-op endpoint."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psutil

from bench.common import PROJECT_ROOT, BenchConfig, Section, fmt, log, median_of, ratio_samples
from tracedrill.loadgen import RUN_DIR_ENV

LOCUSTFILES = PROJECT_ROOT / "bench" / "locustfiles"
CPU_METER = LOCUSTFILES / "cpu_meter.py"
METER_ENV = "BENCH_CPU_METER"  # read by cpu_meter.py


@dataclass(frozen=True)
class Variant:
    key: str
    label: str  # figure names: the first two are the ones results.md has always had
    locustfile: Path


PLAIN = Variant("plain", "plain FastHttpUser", LOCUSTFILES / "plain.py")
OURS = Variant("ours", "our locustfile", LOCUSTFILES / "ours.py")
# Attribution: the Locust-side cost of three more request headers, and ours without its lazy cookie jar.
HEADERS = Variant("headers", "plain + the three correlation headers", LOCUSTFILES / "plain_headers.py")
STOCK_JAR = Variant("stock_jar", "our locustfile, Locust's stock cookie jar", LOCUSTFILES / "ours_stock_jar.py")
VARIANTS = (PLAIN, OURS, HEADERS, STOCK_JAR)
USERS = 20
LINE_ONLY = "ledger line (`ledger_line`)"


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


@dataclass(frozen=True)
class LocustRun:
    rps: float  # Locust's own aggregated Requests/s
    cpu_us: float  # Locust CPU per request during the load (start-up and shutdown left out)
    cpu_use: float  # Locust CPU seconds per second during the load: below 1, something else had the core
    requests: int
    failures: int


def run_locust(locustfile: Path, host: str, seconds: int, work: Path) -> LocustRun:
    """One headless Locust process, with ``cpu_meter.py`` loaded beside the locustfile."""
    run_dir = Path(tempfile.mkdtemp(dir=work))
    command = [
        sys.executable, "-m", "locust", "-f", f"{locustfile},{CPU_METER}", "--headless",
        "--users", str(USERS), "--spawn-rate", "1000", "--run-time", f"{seconds}s",
        "--host", host, "--json-file", str(run_dir / "stats"), "--only-summary",
        "--stop-timeout", "1", "--exit-code-on-error", "0", "--loglevel", "WARNING",
    ]  # fmt: skip
    env = {**os.environ, RUN_DIR_ENV: str(run_dir), METER_ENV: str(run_dir / "cpu.json")}
    done = subprocess.run(command, cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=seconds + 60)
    if done.returncode != 0:
        raise RuntimeError(f"locust failed ({done.returncode}):\n{done.stderr[-2000:]}")
    # Locust's final stats (its CSV files are snapshots up to a second old).
    entries = json.loads((run_dir / "stats.json").read_text(encoding="utf-8"))
    meter = json.loads((run_dir / "cpu.json").read_text(encoding="utf-8"))
    shutil.rmtree(run_dir, ignore_errors=True)
    requests = sum(int(e["num_requests"]) for e in entries)
    elapsed = max(e["last_request_timestamp"] for e in entries) - min(e["start_time"] for e in entries)
    metered = meter["requests"]
    return LocustRun(
        rps=requests / elapsed,  # as Locust's aggregated Requests/s
        cpu_us=meter["cpu_s"] / metered * 1e6 if metered else float("nan"),
        cpu_use=meter["cpu_s"] / meter["wall_s"] if meter["wall_s"] else float("nan"),
        requests=requests,
        failures=sum(int(e["num_failures"]) for e in entries),
    )


def bookkeeping_us(n: int) -> dict[str, float]:
    """µs per call of each piece of per-request work our locustfile adds (timeit, no network)."""
    import time
    import timeit

    from geventhttpclient.header import Headers  # what FastHttpUser's responses carry

    from loadtests.ids import ledger_ids, new_request_ids
    from loadtests.ledger import LedgerWriter, ledger_line
    from verifiers.model import SentRequest

    ids = new_request_ids()
    # As the no-op server (and the bundled app) answer.
    answer = Headers({"traceresponse": f"00-{ids.trace_id}-00f067aa0ba902b7-01", "X-Tracedrill-Process": "noop:1"})
    now = time.time()
    fields = {
        "request_id": ids.request_id, "name": "home", "method": "GET",
        "url": "http://127.0.0.1:1/api/activities/home", "path": "/api/activities/home", "start": now, "end": now,
        "status": 200, "worker": "bench", **ledger_ids(ids, True, answer),
    }  # fmt: skip
    sample = SentRequest(**fields)
    encoder = json.JSONEncoder(separators=(",", ":"))  # what LedgerWriter.record used before
    with tempfile.TemporaryDirectory() as tmp, LedgerWriter(Path(tmp) / "sent-bench.jsonl") as ledger:
        parts: dict[str, Callable[[], object]] = {
            "new request ids": new_request_ids,
            "correlation headers": ids.headers,
            "response ids for the ledger (`ledger_ids`, from the response headers)": lambda: ledger_ids(
                ids, True, answer
            ),
            LINE_ONLY: lambda: ledger_line(fields),  # part of record_fields
            "`LedgerWriter.record_fields` (line + one write(2))": lambda: ledger.record_fields(fields),
            "(before) `SentRequest(...)`, no longer built per request": lambda: SentRequest(**fields),
            "(before) json encoder on the same fields": lambda: encoder.encode(fields),
            "(before) `SentRequest.to_json`": sample.to_json,
        }
        return {name: timeit.timeit(fn, number=n) / n * 1e6 for name, fn in parts.items()}


def _differences(minuends: list[float], subtrahends: list[float]) -> list[float]:
    return [a - b for a, b in zip(minuends, subtrahends, strict=False)]


def run(config: BenchConfig) -> Section:
    seconds = config.count(4, 2)  # four locustfiles x 5 rounds: make bench stays within 15 minutes
    section = Section(
        "Load-generator efficiency (our locustfile vs a plain FastHttpUser)",
        method=(
            f"One Locust process (headless, {USERS} users spawned at once, no think time, {seconds} s) against a "
            "no-op HTTP server (`bench/noop_server.py`: asyncio, keep-alive; it stays far from saturation, see its "
            "CPU below). The server answers like the bundled app when healthy: each route's expected status (422 "
            "for the invalid handle, 500 for the fault route, read from the drill locustfile's `ROUTES`; 200 "
            "otherwise) and the two response headers the ledger reads (`traceresponse`, `X-Tracedrill-Process`). "
            "So our locustfile records no failure, as against a healthy app; until this revision the server "
            "answered 200 to everything and 2 in 15 of our requests were Locust failures, which measured Locust's "
            "failure path rather than our locustfile. `ours` is the drill's locustfile (`loadtests/locustfile.py`: "
            "new request id, traceparent and X-Amzn-Trace-Id per request, status check, one sent-ledger line per "
            "request, seven weighted routes) with `wait_time = constant(0)` (`bench/locustfiles/ours.py`); `plain` "
            "is a bare FastHttpUser doing `client.get('/api/health')` (`bench/locustfiles/plain.py`; it gets the "
            "same answers, headers included). Two more locustfiles "
            "attribute the difference: `plain + the three correlation headers` sends fixed correlation headers and "
            "nothing else (`plain_headers.py`), and `our locustfile, Locust's stock cookie jar` puts back the jar "
            "ours replaces (`ours_stock_jar.py`). Each round runs the four in a rotating order. req/s is Locust's "
            "aggregated figure from its final stats; the ratio is ours/plain per round. Locust CPU µs/req is the "
            "Locust process's CPU time per request from test start until it starts stopping "
            "(`bench/locustfiles/cpu_meter.py`; start-up and report writing left out, unlike earlier results, "
            "which counted about 0.7 s of start-up); CPU use is that CPU time per second of the same span."
        ),
    )
    work = config.work_dir / "loadgen"
    work.mkdir(parents=True, exist_ok=True)
    runs: dict[str, list[LocustRun]] = {v.key: [] for v in VARIANTS}
    server = NoOpServer()
    server_cpu, server_requests = 0.0, 0
    try:
        for run_no in range(config.runs):
            shift = run_no % len(VARIANTS)
            for variant in VARIANTS[shift:] + VARIANTS[:shift]:
                before = server.cpu_s()
                result = run_locust(variant.locustfile, server.url, seconds, work)
                server_cpu += server.cpu_s() - before
                server_requests += result.requests
                runs[variant.key].append(result)
                log(f"loadgen: {variant.key} {result.rps:.0f} req/s, {result.cpu_us:.0f} µs CPU/req")
    finally:
        server.close()

    def rps(v: Variant) -> list[float]:
        return [r.rps for r in runs[v.key]]

    def cpu(v: Variant) -> list[float]:
        return [r.cpu_us for r in runs[v.key]]

    calls = config.count(20_000, 200)
    parts = bookkeeping_us(calls)
    section.tables.append(
        f"| per-request bookkeeping of our locustfile (one timeit of {calls:,} calls each, no network) "
        "| µs per call |\n|---|---:|\n" + "\n".join(f"| {name} | {fmt(us)} |" for name, us in parts.items())
    )
    section.record(PLAIN.label, "req/s", rps(PLAIN))
    section.record(OURS.label, "req/s", rps(OURS))
    ratio = section.record(f"{OURS.label} / {PLAIN.label}", "ratio", ratio_samples(rps(OURS), rps(PLAIN)))
    # The same ratio from CPU per request (plain's over ours): what req/s would give if each run had a core
    # to itself; steadier than req/s on a shared machine.
    by_cpu = "by Locust CPU per request"
    cpu_ratio = section.record(f"{OURS.label} / {PLAIN.label}, {by_cpu}", "ratio", ratio_samples(cpu(PLAIN), cpu(OURS)))
    stock_ratio = section.record(
        f"{STOCK_JAR.label} / {PLAIN.label}, {by_cpu}", "ratio", ratio_samples(cpu(PLAIN), cpu(STOCK_JAR))
    )
    for variant in VARIANTS:
        section.record(f"{variant.label}: Locust CPU", "µs/req", cpu(variant))
    for variant in (PLAIN, OURS):
        section.record(f"{variant.label}: Locust CPU use", "CPU s/s", [r.cpu_use for r in runs[variant.key]])
    section.record(f"{OURS.label}: Locust failures", "requests", [r.failures for r in runs[OURS.key]])
    # Differences within a round (its runs are minutes apart at most), so slow changes of the machine's load
    # cancel out; their spread shows how far to trust them.
    pairs = (
        (OURS, PLAIN, ""),
        (HEADERS, PLAIN, " (three more request headers)"),
        (STOCK_JAR, OURS, " (what the lazy jar saves)"),
    )
    extra, header_cost, jar_saving = (
        section.record(f"Locust CPU, {a.key} - {b.key}{why}", "µs/req", _differences(cpu(a), cpu(b)))
        for a, b, why in pairs
    )

    own = sum(parts[name] for name in parts if not name.startswith("(before)") and name != LINE_ONLY)
    goal = "met" if min(ratio.median, cpu_ratio.median) >= 0.90 else "not met"
    more = "more" if extra.median >= 0 else "less"
    section.findings.append(
        f"Our locustfile reaches {fmt(ratio.median, 'ratio')} of a plain FastHttpUser's req/s and "
        f"{fmt(cpu_ratio.median, 'ratio')} by Locust CPU per request (the 0.90 goal: {goal}); it costs "
        f"{fmt(abs(extra.median))} µs {more} Locust CPU per request (median {fmt(median_of(cpu(OURS)))} vs "
        f"{fmt(median_of(cpu(PLAIN)))}). Where Locust's CPU use is below 1 CPU s/s, other processes had part of "
        "its core: CPU per request is then the steadier figure, and the spread of the per-round differences "
        "above shows how steady it was."
    )
    section.findings.append(
        f"Where that goes, from CPU time (medians of per-round differences, so only as good as their spread "
        f"above): three more request headers in Locust and geventhttpclient, {fmt(header_cost.median)} µs; our own "
        f"per-request code, {fmt(own)} µs (timeit table); the lazy cookie jar gives back {fmt(jar_saving.median)} "
        f"µs; with Locust's stock jar the ratio by CPU per request is {fmt(stock_ratio.median, 'ratio')}."
    )
    section.findings.append(
        f"The no-op server used {fmt(server_cpu / max(server_requests, 1) * 1e6)} µs CPU per request, a fraction "
        "of Locust's: it was never what limited a run."
    )
    return section


def main() -> int:
    from bench.report import print_section

    quick = "--quick" in sys.argv
    print_section(run(BenchConfig(runs=2 if quick else 5, quick=quick)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
