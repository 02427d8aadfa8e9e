"""What instrumentation costs per request: the same app with it on and off, same server, same load.

Two instances of the app run side by side (one instrumented, one not). Phase by phase, route by
route, the closed-loop generator (:mod:`tracedrill.closedloop`) loads one instance at its maximum
rate while the other idles, alternating on/off so drift on the machine hits both alike. For each
phase: answered requests per second, and the CPU time the instance's processes (gunicorn master and
workers, including the SDKs' background export threads) used, per request.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

from target_app.server import PROJECT_ROOT

SETTLE_AFTER_PHASE_S = 0.3  # lets the SDKs' queued work of a phase land in that phase's CPU time
WARMUP_S = 0.5


@dataclass(frozen=True)
class RouteLoad:
    name: str
    path: str


# The bundled target's routes (the locustfile's, which cannot be imported outside Locust's gevent process).
BUNDLED_ROUTES: tuple[RouteLoad, ...] = (
    RouteLoad("home", "/api/activities/home"),
    RouteLoad("user_activities", "/api/activities/@andrewbrown"),
    RouteLoad("user_activities_invalid", "/api/activities/@not-a-handle"),
    RouteLoad("notifications", "/api/activities/notifications"),
    RouteLoad("health", "/api/health"),
    RouteLoad("rollbar_test", "/rollbar/test"),
    RouteLoad("fault", "/api/fault"),
)


@dataclass(frozen=True)
class Instance:
    """One running app: where to send load and (optionally) the process whose CPU to count."""

    label: str  # "on" or "off"
    url: str
    pid: int | None = None  # with its children (gunicorn workers); None: CPU is not measured


@dataclass(frozen=True)
class Phase:
    route: str
    label: str
    requests: int
    errors: int
    seconds: float
    server_cpu_s: float | None
    client_cpu_s: float
    statuses: Mapping[str, int]

    @property
    def rps(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0

    @property
    def cpu_us_per_request(self) -> float | None:
        if self.server_cpu_s is None or not self.requests:
            return None
        return self.server_cpu_s / self.requests * 1e6


@dataclass
class RouteFigures:
    """All rounds of one route: per-round values of the on and off instance, paired by round."""

    route: str
    on: list[Phase] = field(default_factory=list)
    off: list[Phase] = field(default_factory=list)

    def rps_ratios(self) -> list[float]:
        return [a.rps / b.rps for a, b in zip(self.on, self.off, strict=False) if b.rps]

    def cpu(self, label: str) -> list[float]:
        phases = self.on if label == "on" else self.off
        return [v for p in phases if (v := p.cpu_us_per_request) is not None]

    def added_cpu_us(self) -> list[float]:
        return [a - b for a, b in zip(self.cpu("on"), self.cpu("off"), strict=False)]

    def rps(self, label: str) -> list[float]:
        return [p.rps for p in (self.on if label == "on" else self.off)]

    def errors(self) -> int:
        return sum(p.errors for p in self.on + self.off)


def median(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


class LoadGenerator:
    """The closed-loop generator process; ``phase()`` runs one measured phase and returns its counts."""

    def __init__(self) -> None:
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "tracedrill.closedloop"],
            cwd=PROJECT_ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            bufsize=1,
        )

    def run(self, url: str, path: str, seconds: float, concurrency: int) -> dict[str, Any]:
        assert self._proc.stdin is not None and self._proc.stdout is not None
        command = {"url": url, "path": path, "seconds": seconds, "concurrency": concurrency}
        self._proc.stdin.write(json.dumps(command) + "\n")
        self._proc.stdin.flush()
        line = self._proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the load generator exited (code {self._proc.poll()})")
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise ValueError(answer["error"])
        return answer

    def close(self) -> None:
        if self._proc.stdin is not None:
            self._proc.stdin.close()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            self._proc.kill()
            self._proc.wait(5)


@contextmanager
def load_generator() -> Iterator[LoadGenerator]:
    generator = LoadGenerator()
    try:
        yield generator
    finally:
        generator.close()


def process_cpu_s(pid: int) -> float:
    """CPU seconds (user + system) of ``pid`` and all its live descendants."""
    try:
        root = psutil.Process(pid)
        processes = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for proc in processes:
        try:
            times = proc.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def measure_phase(
    generator: LoadGenerator,
    instance: Instance,
    route: RouteLoad,
    seconds: float,
    concurrency: int,
    warmup_s: float = WARMUP_S,
) -> Phase:
    generator.run(instance.url, route.path, warmup_s, concurrency)  # connections open, caches warm
    cpu_before = process_cpu_s(instance.pid) if instance.pid else None
    answer = generator.run(instance.url, route.path, seconds, concurrency)
    time.sleep(SETTLE_AFTER_PHASE_S)
    cpu = process_cpu_s(instance.pid) - cpu_before if instance.pid and cpu_before is not None else None
    return Phase(
        route=route.name,
        label=instance.label,
        requests=int(answer["requests"]),
        errors=int(answer["errors"]),
        seconds=float(answer["seconds"]),
        server_cpu_s=cpu,
        client_cpu_s=float(answer["cpu_s"]),
        statuses=dict(answer["statuses"]),
    )


def compare(
    on: Instance,
    off: Instance,
    routes: Sequence[RouteLoad],
    *,
    rounds: int,
    seconds: float,
    concurrency: int,
    warmup_s: float = WARMUP_S,
    progress: Callable[[str], None] = lambda _: None,
) -> list[RouteFigures]:
    """Alternate on/off for every route, ``rounds`` times; the order flips each round to cancel drift."""
    figures = {r.name: RouteFigures(r.name) for r in routes}
    with load_generator() as generator:
        for round_no in range(rounds):
            pair = (on, off) if round_no % 2 == 0 else (off, on)
            for route in routes:
                for instance in pair:
                    phase = measure_phase(generator, instance, route, seconds, concurrency, warmup_s)
                    (figures[route.name].on if instance.label == "on" else figures[route.name].off).append(phase)
                progress(_progress_line(round_no, rounds, figures[route.name]))
    return list(figures.values())


def _progress_line(round_no: int, rounds: int, figures: RouteFigures) -> str:
    on, off = figures.on[-1], figures.off[-1]
    return (
        f"round {round_no + 1}/{rounds} {figures.route}: {off.rps:.0f} req/s off, {on.rps:.0f} req/s on "
        f"({on.rps / off.rps if off.rps else float('nan'):.2f})"
    )


def target_env(base: Mapping[str, str], instrumented: bool) -> dict[str, str]:
    env = dict(base)
    if instrumented:
        env.pop("TRACEDRILL_DISABLE", None)
    else:
        env["TRACEDRILL_DISABLE"] = "otel,xray,cloudwatch,rollbar"
    return env


def table(figures: Sequence[RouteFigures]) -> list[list[str]]:
    """Rows for people: route, req/s off and on, ratio, CPU µs per request off/on/added."""
    rows = [["route", "req/s off", "req/s on", "on/off", "CPU µs/req off", "CPU µs/req on", "added µs/req"]]
    for f in figures:
        cpu_off, cpu_on = f.cpu("off"), f.cpu("on")
        rows.append(
            [
                f.route,
                f"{median(f.rps('off')):.0f}",
                f"{median(f.rps('on')):.0f}",
                f"{median(f.rps_ratios()):.3f}",
                f"{median(cpu_off):.0f}" if cpu_off else "-",
                f"{median(cpu_on):.0f}" if cpu_on else "-",
                f"{median(f.added_cpu_us()):.0f}" if cpu_on and cpu_off else "-",
            ]
        )
    return rows


def render(rows: Sequence[Sequence[str]]) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for n, row in enumerate(rows):
        cells = [
            cell.ljust(w) if i == 0 else cell.rjust(w) for i, (cell, w) in enumerate(zip(row, widths, strict=True))
        ]
        lines.append("  ".join(cells))
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def to_json(figures: Sequence[RouteFigures]) -> dict[str, Any]:
    def phase(p: Phase) -> dict[str, Any]:
        return {
            "requests": p.requests,
            "errors": p.errors,
            "seconds": round(p.seconds, 4),
            "rps": round(p.rps, 1),
            "cpu_us_per_request": None if p.cpu_us_per_request is None else round(p.cpu_us_per_request, 1),
            "statuses": dict(p.statuses),
        }

    return {
        f.route: {
            "rps_ratio_median": median(f.rps_ratios()),
            "added_cpu_us_median": median(f.added_cpu_us()) if f.added_cpu_us() else None,
            "on": [phase(p) for p in f.on],
            "off": [phase(p) for p in f.off],
        }
        for f in figures
    }


def write_json(path: Path, figures: Sequence[RouteFigures]) -> None:
    path.write_text(json.dumps(to_json(figures), indent=2) + "\n", encoding="utf-8")
