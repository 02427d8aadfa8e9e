"""Added CPU per request, split by SDK, measured in-process with Flask's test client.

Each (app, instrumentation set) runs in a fresh child process, so the SDKs' process-wide state
(X-Ray's global recorder, pyrollbar's settings, OTel's patches) never leaks between variants. The
child counts its own process CPU time (all threads: the request path *and* the SDKs' export
threads, flushed at the end of each run) per request, and the wall time of the request loop alone.
The local stack runs in this (parent) process, so the child's CPU holds no emulator work.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from bench.common import PROJECT_ROOT, BenchConfig, Section, fmt, log, median_of, ratio_samples
from emulators.stack import LocalStack, StackConfig, app_environment
from tracedrill import local

SDKS = ("otel", "xray", "cloudwatch", "rollbar")
VARIANTS = ("ours", "stock")
ROUTES: dict[str, str] = {
    "home": "/api/activities/home",
    "user_activities": "/api/activities/@andrewbrown",
    "rollbar_test": "/rollbar/test",
    "fault": "/api/fault",
}
# Where each SDK does its per-route work (on every route it also traces/logs the request itself).
ROUTE_FOCUS = {"otel": "home", "xray": "user_activities", "cloudwatch": "home", "rollbar": "fault"}


def _configs(quick: bool = False) -> list[tuple[str, tuple[str, ...]]]:
    if quick:
        return [("none", ()), ("all", SDKS)]
    return [("none", ()), *[(sdk, (sdk,)) for sdk in SDKS], ("all", SDKS)]


def run(config: BenchConfig) -> Section:
    section = Section(
        "Added CPU per request by SDK (in-process, Flask test client)",
        method=(
            "Each app variant runs in its own child process with only the named instrumentation on: `ours` is "
            "the target app (`target_app.app.create_app`, switches via `TRACEDRILL_DISABLE`), `stock` is the "
            "same routes instrumented exactly as each SDK documents it (`bench/stock_app.py`: FlaskInstrumentor "
            "+ BatchSpanProcessor/OTLP exporter + one custom span; XRayMiddleware + two subsegments; a watchtower "
            "handler with the same two log lines; `rollbar.init(handler='thread')`, pyrollbar's default, + "
            "`got_request_exception`; ours sends through pyrollbar's `thread_pool` handler, 2 send threads). "
            "Every request carries the drill's headers plus `Sampled=1` in `X-Amzn-Trace-Id`, so X-Ray records "
            "every request (the cost of a sampled request). All 12 children (2 variants x {off, each SDK alone, "
            "all on}) stay up and are measured in turn, batch by batch, so slow drift of this shared 2-core VM "
            "hits every variant alike. A batch is a time-boxed loop of test-client requests to one route, then "
            "every sink is flushed; *CPU* is the child's whole process CPU time (request path and the SDKs' "
            "export threads) over the loop and the flush, per request; *wall* is the loop's time per request. "
            "The local stack (the sinks) runs in the parent, so no emulator work is counted. Added = the "
            "variant minus the same app with everything off, paired batch by batch. The overhead figure is "
            "ours-added / stock-added."
        ),
    )
    stack_dir = config.work_dir / "sdk-cost-stack"
    seconds = config.pick(0.25, 0.03)
    routes = ["home"] if config.quick else list(ROUTES)
    results: dict[tuple[str, str], dict[str, dict[str, list[float]]]] = {
        (v, name): {route: {"cpu_us": [], "wall_us": []} for route in routes}
        for v in VARIANTS
        for name, _ in _configs(config.quick)
    }
    with LocalStack(StackConfig(data_dir=stack_dir, ports=local.LocalPorts.ephemeral())) as stack:
        env = {**os.environ, **app_environment(stack.endpoints)}
        children = {
            (v, name): _Child(v, enabled, env, config.work_dir / "sdk-cost-logs")
            for v in VARIANTS
            for name, enabled in _configs(config.quick)
        }
        try:
            for child in children.values():
                child.ready()
            for route in routes:  # warm-up batch: imports, caches, connections
                for child in children.values():
                    child.measure(route, seconds / 2)
            for run_no in range(config.runs):
                log(f"sdk cost: run {run_no + 1}/{config.runs}")
                for route in routes:
                    for key, child in children.items():
                        cpu_us, wall_us = child.measure(route, seconds)
                        results[key][route]["cpu_us"].append(cpu_us)
                        results[key][route]["wall_us"].append(wall_us)
        finally:
            for child in children.values():
                child.close()
    _figures(section, results)
    return section


class _Child:
    """One app variant in its own process, measuring a batch whenever asked (one JSON line each way)."""

    def __init__(self, variant: str, enabled: Sequence[str], env: Mapping[str, str], log_dir: Path) -> None:
        self.label = f"{variant} with {','.join(enabled) or 'nothing'}"
        log_dir.mkdir(parents=True, exist_ok=True)
        # Flask logs each fault's traceback to stderr, as under gunicorn: real work, kept out of the console.
        with (log_dir / f"{variant}-{'-'.join(enabled) or 'none'}.log").open("w") as stderr:
            self._proc = subprocess.Popen(
                [sys.executable, "-m", "bench.sdk_cost", "--child", variant, "--enable", ",".join(enabled)],
                cwd=PROJECT_ROOT,
                env=dict(env),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=stderr,
                text=True,
                bufsize=1,
            )

    def _ask(self, command: dict[str, Any]) -> dict[str, Any]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        self._proc.stdin.write(json.dumps(command) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"sdk cost child ({self.label}) exited with code {self._proc.wait()}")
        answer: dict[str, Any] = json.loads(line)
        return answer

    def ready(self) -> None:
        self._ask({"route": None})

    def measure(self, route: str, seconds: float) -> tuple[float, float]:
        answer = self._ask({"route": route, "seconds": seconds})
        return float(answer["cpu_us"]), float(answer["wall_us"])

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(30)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(5)


def _figures(section: Section, results: Mapping[tuple[str, str], Any]) -> None:
    routes = list(results[("ours", "none")])

    def cpu(variant: str, name: str, route: str) -> list[float]:
        return list(results[(variant, name)][route]["cpu_us"])

    def added(variant: str, name: str, route: str) -> list[float]:
        return [a - b for a, b in zip(cpu(variant, name, route), cpu(variant, "none", route), strict=False)]

    rows = [
        "| route | SDK | stock: added CPU µs/req | ours: added CPU µs/req | ours/stock (ratio of these medians) | "
        "ours wall µs/req (all off → on) |",
        "|---|---|---:|---:|---:|---:|",
    ]
    measured = [name for name, _ in _configs() if ("ours", name) in results]
    for route in routes:
        for name in measured[1:]:
            stock, ours = added("stock", name, route), added("ours", name, route)
            wall_off = median_of(results[("ours", "none")][route]["wall_us"])
            wall_on = median_of(results[("ours", name)][route]["wall_us"])
            # A ratio of two differences within this VM's noise (tens of µs) means nothing.
            noise = min(abs(median_of(stock)), abs(median_of(ours))) < 50
            ratio = float("nan") if noise else median_of(ours) / median_of(stock)
            rows.append(
                f"| {route} | {name} | {fmt(median_of(stock))} | {fmt(median_of(ours))} | {fmt(ratio, 'ratio')} "
                f"| {fmt(wall_off)} → {fmt(wall_on)} |"
            )
    section.tables.append("\n".join(rows))
    for variant in VARIANTS:
        for route in routes:
            section.figure(f"{variant}: {route}, everything off", "CPU µs/req").samples = cpu(variant, "none", route)
    for sdk in [s for s in SDKS if s in measured]:
        route = ROUTE_FOCUS[sdk] if ROUTE_FOCUS[sdk] in routes else routes[0]
        for variant in VARIANTS:
            section.figure(f"{variant}: added by {sdk} on {route}", "CPU µs/req").samples = added(variant, sdk, route)
    for route in routes:
        stock, ours = added("stock", "all", route), added("ours", "all", route)
        section.figure(f"stock: added by all four on {route}", "CPU µs/req").samples = stock
        section.figure(f"ours: added by all four on {route}", "CPU µs/req").samples = ours
        all_four = section.figure(f"ours/stock added CPU, all four, {route}", "ratio")
        all_four.samples = ratio_samples(ours, stock)
        # Judged by the ratio of the medians shown (per-round ratios of noisy differences swing widely).
        over = median_of(ours) / median_of(stock) - 1
        section.findings.append(
            f"{route}: our target adds {fmt(median_of(ours))} µs CPU per request with all four SDKs, the stock "
            f"SDKs {fmt(median_of(stock))} µs: {abs(over):.0%} {'over' if over > 0 else 'under'} the floor"
            + (" — over the 10 % budget" if over > 0.10 else " (within the 10 % budget)")
            + f"; per-round ratios {fmt(all_four.median, 'ratio')} ({fmt(all_four.low, 'ratio')}–"
            f"{fmt(all_four.high, 'ratio')})"
        )


# ---- the child -----------------------------------------------------------------------------------


def _build(variant: str, enabled: Sequence[str]) -> tuple[Any, Callable[[], None]]:
    if variant == "stock":
        from bench.stock_app import create_stock_app

        return create_stock_app(enabled, os.environ)
    from target_app.app import create_app
    from target_app.settings import Settings
    from target_app.telemetry import current_telemetry

    disabled = ",".join(s for s in SDKS if s not in enabled)
    app = create_app(Settings.from_env({**os.environ, "TRACEDRILL_DISABLE": disabled}))

    def flush() -> None:
        from target_app.telemetry import rollbar_setup

        with app.app_context():
            telemetry = current_telemetry()
        if telemetry.tracer_provider is not None:
            telemetry.tracer_provider.force_flush()
        if telemetry.log_handler is not None:
            telemetry.log_handler.flush()
        if telemetry.rollbar_enabled and not rollbar_setup.wait_for_pending(60):
            raise RuntimeError("rollbar items still sending after 60 s")  # their CPU must count

    return app, flush


def _headers() -> dict[str, str]:
    from loadtests.ids import new_request_ids

    headers = new_request_ids().headers()
    headers["X-Amzn-Trace-Id"] += ";Sampled=1"
    return headers


def _measure(client: Any, path: str, seconds: float, flush: Callable[[], None]) -> tuple[float, float]:
    """(CPU µs per request including the flush, wall µs per request of the loop)."""
    gc.collect()
    cpu_start, wall_start = time.process_time(), time.perf_counter()
    deadline = wall_start + seconds
    n = 0
    while n < 20 or time.perf_counter() < deadline:
        client.get(path, headers=_headers())
        n += 1
    wall = time.perf_counter() - wall_start
    flush()
    cpu = time.process_time() - cpu_start
    return cpu / n * 1e6, wall / n * 1e6


def child_main(variant: str, enabled: Sequence[str]) -> None:
    """Build the app, then answer one batch per command line until stdin closes."""
    import logging

    logging.disable(logging.WARNING)  # the SDKs' own warnings are not what we time
    app, flush = _build(variant, enabled)
    client = app.test_client()
    for line in sys.stdin:
        command = json.loads(line)
        if command.get("route") is None:
            answer: dict[str, Any] = {"ready": True}
        else:
            cpu_us, wall_us = _measure(client, ROUTES[command["route"]], float(command["seconds"]), flush)
            answer = {"cpu_us": cpu_us, "wall_us": wall_us}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--child", choices=VARIANTS)
    parser.add_argument("--enable", default="")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.child:
        child_main(args.child, [s for s in args.enable.split(",") if s])
        return 0
    from bench.report import print_section

    print_section(run(BenchConfig(runs=2 if args.quick else args.runs, quick=args.quick)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
