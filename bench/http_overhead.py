"""Instrumentation overhead under HTTP load: the target under gunicorn, all four SDKs on versus all off."""

from __future__ import annotations

import os
import sys
import threading

from bench.common import BenchConfig, Section, fmt, log, median_of
from emulators.stack import LocalStack, StackConfig, app_environment
from target_app.server import TargetProcess, start_target
from tracedrill import local, overhead

WORKERS, THREADS, CONCURRENCY = 2, 4, 8


def run(config: BenchConfig) -> Section:
    seconds = config.pick(0.8, 0.2)
    section = Section(
        "Instrumentation overhead under HTTP load (gunicorn, all four SDKs on vs off)",
        method=(
            f"Two instances of the target app run at once under the same gunicorn settings ({WORKERS} gthread "
            f"workers x {THREADS} threads), one with every instrumentation on and one with "
            "`TRACEDRILL_DISABLE=otel,xray,cloudwatch,rollbar`, both sending to one local stack. The closed-loop "
            f"generator of `tracedrill overhead` (`tracedrill/closedloop.py`: geventhttpclient, Locust "
            f"FastHttpUser's client, {CONCURRENCY} connections, no think time, the drill's correlation headers, "
            "X-Ray sampling as configured: 5/s + 10 %) loads one instance at a time, route by route, "
            f"{seconds:.1f} s per phase after a 0.5 s warm-up, alternating on/off (the order flips every round). "
            "req/s is answered requests per second (the maximum this 2-core machine sustains with the generator "
            "on the same cores); CPU µs/req is the user+system CPU time of the instance's gunicorn processes "
            "(psutil, master and workers, including the SDKs' export threads) during the phase, per request. "
            "The ratio is on/off per round. Same session, same server, same generator."
        ),
    )
    with LocalStack(StackConfig(data_dir=config.work_dir / "overhead-stack", ports=local.LocalPorts.ephemeral())) as st:
        env = {**os.environ, **app_environment(st.endpoints)}
        logs = config.work_dir / "overhead-logs"
        targets = []
        try:
            for label, instrumented in (("on", True), ("off", False)):
                env_for = overhead.target_env(env, instrumented)
                targets.append(start_target(env_for, 0, WORKERS, threads=THREADS, log_path=logs / f"{label}.log"))
            on, off = targets
            figures = overhead.compare(
                overhead.Instance("on", on.url, on.pid),
                overhead.Instance("off", off.url, off.pid),
                overhead.BUNDLED_ROUTES[:1] if config.quick else overhead.BUNDLED_ROUTES,
                rounds=config.runs,
                seconds=seconds,
                concurrency=CONCURRENCY,
                warmup_s=config.pick(overhead.WARMUP_S, 0.1),
                progress=lambda line: log(f"overhead: {line}"),
            )
        finally:
            _stop_all(targets)
    for f in figures:
        section.figure(f"{f.route}: req/s on/off", "ratio").samples = f.rps_ratios()
    for f in figures:
        section.figure(f"{f.route}: added CPU per request (on - off)", "CPU µs/req").samples = f.added_cpu_us()
    rows = ["| " + " | ".join(row) + " |" for row in overhead.table(figures)]
    rows.insert(1, "|---|---:|---:|---:|---:|---:|---:|")
    section.tables.append("\n".join(rows))
    errors = sum(f.errors() for f in figures)
    all_ratios = [r for f in figures for r in f.rps_ratios()]
    section.findings.append(
        f"Across routes the instrumented app serves {fmt(median_of(all_ratios), 'ratio')} of the uninstrumented "
        f"app's maximum req/s (median of all route-rounds); connection errors: {errors}."
    )
    section.findings.append(
        "Most of the added CPU is the stock SDKs' own (see the in-process split below): pyrollbar builds and "
        "posts one HTTP request per item, which dominates `rollbar_test` and `fault`."
    )
    return section


def _stop_all(targets: list[TargetProcess]) -> None:
    """Both at once: each waits for its graceful SDK flush."""
    threads = [threading.Thread(target=t.stop) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def main() -> int:
    from bench.report import print_section

    quick = "--quick" in sys.argv
    print_section(run(BenchConfig(runs=2 if quick else 5, quick=quick)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
