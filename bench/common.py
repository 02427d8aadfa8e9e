"""What every benchmark shares: settings, figures (median of N runs with min and max), the machine."""

from __future__ import annotations

import os
import platform
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import psutil

PROJECT_ROOT = Path(__file__).resolve().parent.parent
MIN_RUNS = 5  # the issue asks for the median of at least 5 runs

# Versions that decide the figures; a package that is not installed is reported as such.
PACKAGES = (
    "flask",
    "werkzeug",
    "gunicorn",
    "opentelemetry-sdk",
    "opentelemetry-instrumentation-flask",
    "opentelemetry-exporter-otlp-proto-http",
    "aws-xray-sdk",
    "watchtower",
    "rollbar",
    "boto3",
    "locust",
    "geventhttpclient",
    "psutil",
    "moto",
)


@dataclass(frozen=True)
class BenchConfig:
    """``quick``: tiny sizes and few runs, for the smoke test; the figures then mean nothing."""

    runs: int = MIN_RUNS
    quick: bool = False
    work_dir: Path = PROJECT_ROOT / "bench" / ".work"

    def pick(self, full: float, quick: float) -> float:
        return quick if self.quick else full

    def count(self, full: int, quick: int) -> int:
        return quick if self.quick else full


@dataclass
class Figure:
    """One measured quantity: every run's value; the report shows median, min and max."""

    name: str
    unit: str
    samples: list[float] = field(default_factory=list)
    note: str = ""
    higher_is_better: bool | None = None

    def add(self, value: float) -> None:
        self.samples.append(float(value))

    @property
    def median(self) -> float:
        return statistics.median(self.samples) if self.samples else float("nan")

    @property
    def low(self) -> float:
        return min(self.samples) if self.samples else float("nan")

    @property
    def high(self) -> float:
        return max(self.samples) if self.samples else float("nan")


@dataclass
class Section:
    """One benchmark's part of results.md: what was measured and how, the figures, and what they mean."""

    title: str
    method: str
    figures: list[Figure] = field(default_factory=list)
    tables: list[str] = field(default_factory=list)  # extra markdown (e.g. a per-route breakdown)
    findings: list[str] = field(default_factory=list)  # conclusions, limits, anything over a target
    seconds: float = 0.0
    load: str = ""  # the machine's load average before -> after, shown with the section

    def figure(self, name: str, unit: str, note: str = "") -> Figure:
        for existing in self.figures:
            if existing.name == name:
                return existing
        created = Figure(name, unit, note=note)
        self.figures.append(created)
        return created

    def record(self, name: str, unit: str, samples: Sequence[float]) -> Figure:
        """The figure ``name`` holding exactly these samples (one per run)."""
        figure = self.figure(name, unit)
        figure.samples = [float(value) for value in samples]
        return figure


def fmt(value: float, unit: str = "") -> str:
    """Compact numbers: three significant digits below 1000, thousands separators above."""
    if value != value:  # NaN
        return "n/a"
    if unit == "ratio":
        return f"{value:.3f}"
    magnitude = abs(value)
    if magnitude >= 1000:
        text = f"{value:,.0f}"
    elif magnitude >= 100:
        text = f"{value:.0f}"
    elif magnitude >= 10:
        text = f"{value:.1f}"
    else:
        text = f"{value:.2f}"
    return text


def figures_table(figures: Sequence[Figure]) -> str:
    rows = ["| figure | median | min | max | unit | runs |", "|---|---:|---:|---:|---|---:|"]
    for f in figures:
        name = f"{f.name} ({f.note})" if f.note else f.name
        rows.append(
            f"| {name} | {fmt(f.median, f.unit)} | {fmt(f.low, f.unit)} | {fmt(f.high, f.unit)} | {f.unit} "
            f"| {len(f.samples)} |"
        )
    return "\n".join(rows)


def median_of(values: Sequence[float]) -> float:
    return statistics.median(values) if values else float("nan")


def ratio_samples(numerators: Sequence[float], denominators: Sequence[float]) -> list[float]:
    """Per-run ratios of paired runs (run i of A over run i of B): their spread is the ratio's spread."""
    return [a / b for a, b in zip(numerators, denominators, strict=False) if b]


def machine() -> list[tuple[str, str]]:
    mem = psutil.virtual_memory().total
    model = _cpu_model()
    return [
        ("cores", f"{os.cpu_count()} logical, {psutil.cpu_count(logical=False)} physical ({model})"),
        ("memory", f"{mem / 2**30:.1f} GiB"),
        ("system", f"{platform.system()} {platform.release()} ({platform.machine()})"),
        ("Python", f"{platform.python_implementation()} {platform.python_version()}"),
        ("packages", ", ".join(f"{name} {_version(name)}" for name in PACKAGES)),
    ]


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "(not installed)"


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8").splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def have_module(name: str) -> bool:
    try:
        __import__(name)
    except ImportError:
        return False
    return True


@contextmanager
def stopwatch() -> Iterator[Callable[[], float]]:
    """``with stopwatch() as elapsed: ...``; ``elapsed()`` is the seconds so far (frozen at exit)."""
    started = time.perf_counter()
    ended: list[float] = []
    yield lambda: (ended[0] if ended else time.perf_counter()) - started
    ended.append(time.perf_counter())


def log(message: str) -> None:
    """Progress on stderr: results.md is the result, this is for the person waiting."""
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()
