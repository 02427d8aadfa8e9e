"""Emulator ingest throughput (OTLP spans, X-Ray relay datagrams, PutLogEvents, Rollbar items), moto beside ours."""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench import preload, synthetic
from bench.backends import MotoProcess, StackProcess, aws_client
from bench.common import BenchConfig, Figure, Section, fmt, have_module, log, median_of
from emulators.xray.daemon import XRayDaemon
from tracedrill import local

RATE = 1000.0  # the synthetic run's request rate; only timestamps depend on it


class _Sizes:
    def __init__(self, config: BenchConfig) -> None:
        self.otlp_batches = config.count(40, 2)  # x 512 spans
        self.segments = config.count(5_000, 100)
        self.datagrams = config.count(5_000, 100)
        self.log_batches = config.count(20, 2)  # x 1,000 events
        self.rollbar_items = config.count(1_000, 20)


def run(config: BenchConfig) -> Section:
    sizes = _Sizes(config)
    moto = have_module("moto.server")
    section = Section(
        "Emulator ingest throughput" + (", with moto side by side" if moto else ""),
        method=(
            "Each backend runs in its own process (`tracedrill stack up`; moto's `python -m moto.server`); one "
            "client thread in the benchmark process sends pre-built payloads back to back through the public "
            "ingest API and the rate is items / elapsed time, every answer checked. OTLP: "
            f"{sizes.otlp_batches} `ExportTraceServiceRequest`s of 512 spans (protobuf, POST /v1/traces). "
            f"PutTraceSegments: {sizes.segments:,} segment documents in calls of 50 (boto3). X-Ray relay: "
            f"{sizes.datagrams:,} daemon datagrams (header + segment) sent over UDP as fast as one loop can to "
            "our daemon (`emulators/xray/daemon.py`, run in the benchmark process so its counters can be read), "
            "which batches them to PutTraceSegments of the named upstream; the rate runs until the last one is "
            "accepted upstream, and loss = sent - accepted. PutLogEvents: "
            f"{sizes.log_batches} calls of 1,000 events. Rollbar: {sizes.rollbar_items:,} items, one POST "
            "/api/1/item/ each (as pyrollbar sends them). moto serves PutTraceSegments and PutLogEvents only "
            "(no OTLP, no Rollbar)"
            + (
                f"; it was installed in the benchmark's environment only (`pip install -e '.[bench]'`), moto "
                f"{_moto_version()}"
                if moto
                else "; moto is not installed here, so there are no moto figures"
            )
            + "."
        ),
    )
    work = config.work_dir / "ingest"
    with StackProcess(work / "stack") as stack:
        ours = {
            "otlp": stack.endpoints["honeycomb"],
            "xray": stack.endpoints["xray_api"],
            "logs": stack.endpoints["cloudwatch_logs"],
            "rollbar": stack.endpoints["rollbar"],
        }
        _measure_all(section, "ours", ours, sizes, config)
    if moto:
        with MotoProcess(work / "moto.log") as server:
            _measure_all(section, "moto", {"xray": server.url, "logs": server.url}, sizes, config)
        for name in ("PutTraceSegments", "X-Ray relay (zero loss)", "PutLogEvents"):
            a, b = section.figure(f"ours: {name}", ""), section.figure(f"moto: {name}", "")
            ratio = section.figure(f"ours/moto: {name}", "ratio")
            ratio.samples = [x / y for x, y in zip(a.samples, b.samples, strict=False) if y]
    _findings(section, moto)
    return section


def _findings(section: Section, moto: bool) -> None:
    lost = [v for f in section.figures if f.name.endswith("datagrams lost") for v in f.samples]
    section.findings.append(
        "The X-Ray relay lost no datagram in any run."
        if not any(lost)
        else f"The X-Ray relay lost datagrams in some runs (at most {max(lost):.0f}): the sender outran the daemon."
    )
    if moto:
        for name in ("PutTraceSegments", "X-Ray relay (zero loss)", "PutLogEvents"):
            ratio = median_of(section.figure(f"ours/moto: {name}", "ratio").samples)
            section.findings.append(f"{name}: our emulator takes {fmt(ratio, 'ratio')} of moto's rate.")


def _moto_version() -> str:
    from importlib.metadata import version

    return version("moto")


def _rate(section: Section, label: str, name: str, unit: str) -> Figure:
    return section.figure(f"{label}: {name}", unit)


def _measure_all(
    section: Section,
    label: str,
    endpoints: dict[str, str],
    sizes: _Sizes,
    config: BenchConfig,
) -> None:
    now = time.time()
    runs: list[tuple[str, str, Callable[[int], float]]] = []
    if "otlp" in endpoints:
        runs.append(("OTLP spans (protobuf, 512 a batch)", "spans/s", lambda i: _otlp(endpoints["otlp"], sizes)))
    xray = aws_client("xray", endpoints["xray"])
    logs = aws_client("logs", endpoints["logs"])
    preload.ensure_stream(logs, "ingest")
    runs += [
        ("PutTraceSegments", "segments/s", lambda i: _segments(xray, sizes, now, i)),
        (
            "X-Ray relay (zero loss)",
            "datagrams/s",
            lambda i: _relay(section, label, endpoints["xray"], sizes, now, i),
        ),
        ("PutLogEvents", "events/s", lambda i: _logs(logs, sizes, now, i)),
    ]
    if "rollbar" in endpoints:
        runs.append(("Rollbar items (POST item/)", "items/s", lambda i: _rollbar(endpoints["rollbar"], sizes)))
    for run_no in range(config.runs):
        for name, unit, measure in runs:
            value = measure(run_no)
            _rate(section, label, name, unit).add(value)
        log(f"ingest {label}: run {run_no + 1}/{config.runs} done")


def _otlp(endpoint: str, sizes: _Sizes) -> float:
    # 1.4 spans a request in the locustfile's mix (a custom span on 6 of 15): enough requests for the batches.
    fresh = synthetic.ledger(int(sizes.otlp_batches * 512 / 1.4) + 32, time.time() - 60, RATE)
    batches = list(synthetic.otlp_batches(fresh))[: sizes.otlp_batches]
    spans = min(sum(2 if r.name == "home" else 1 for r in fresh), sizes.otlp_batches * 512)
    http = preload.session()
    started = time.perf_counter()
    preload.post_otlp(http, endpoint, batches)
    return spans / (time.perf_counter() - started)


def _segment_docs(now: float, run_no: int, count: int) -> list[str]:
    import json

    fresh = synthetic.ledger(count, now - 60 + run_no, RATE)
    return [json.dumps(synthetic.segment(r), separators=(",", ":")) for r in fresh]


def _segments(client: Any, sizes: _Sizes, now: float, run_no: int) -> float:
    docs = _segment_docs(now, run_no, sizes.segments)
    started = time.perf_counter()
    if preload.put_segments(client, docs):
        raise RuntimeError("PutTraceSegments left segments unprocessed")
    return len(docs) / (time.perf_counter() - started)


def _relay(section: Section, label: str, endpoint: str, sizes: _Sizes, now: float, run_no: int) -> float:
    datagrams = [synthetic.daemon_datagram(d) for d in _segment_docs(now + 1, run_no, sizes.datagrams)]
    daemon = XRayDaemon(host=local.LOCAL_HOST, port=0, xray_endpoint=endpoint, region=local.LOCAL_AWS_REGION)
    daemon.start()
    try:
        host, port = daemon.address.rsplit(":", 1)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            started = time.perf_counter()
            for datagram in datagrams:
                udp.sendto(datagram, (host, int(port)))
            deadline = time.monotonic() + 120
            while True:
                stats = daemon.stats()
                if stats["forwarded"] + stats["rejected"] + stats["failed"] >= len(datagrams):
                    break
                # Everything received went out and nothing more came for 5 s: the rest never arrived.
                if stats["pending"] == 0 and time.monotonic() > deadline - 115 or time.monotonic() > deadline:
                    break
                time.sleep(0.01)
            elapsed = time.perf_counter() - started
    finally:
        daemon.stop()
    section.figure(f"{label}: X-Ray relay datagrams lost", "datagrams").add(len(datagrams) - stats["forwarded"])
    return stats["forwarded"] / elapsed


def _logs(client: Any, sizes: _Sizes, now: float, run_no: int) -> float:
    fresh = synthetic.ledger(sizes.log_batches * 1000, now - 600 + run_no * 60, RATE)
    events = synthetic.log_events(fresh)
    batches = list(synthetic.log_batches(events, size=1000))[: sizes.log_batches]
    count = sum(len(b) for b in batches)
    stream = f"ingest-{run_no}-{time.time_ns()}"
    preload.ensure_stream(client, stream)
    started = time.perf_counter()
    if preload.put_logs(client, stream, batches):
        raise RuntimeError("PutLogEvents rejected events")
    return count / (time.perf_counter() - started)


def _rollbar(endpoint: str, sizes: _Sizes) -> float:
    fresh = synthetic.ledger(sizes.rollbar_items * 8, time.time() - 60, RATE)
    payloads = synthetic.rollbar_payloads(fresh, local.LOCAL_ROLLBAR_POST_TOKEN, "bench")[: sizes.rollbar_items]
    started = time.perf_counter()
    preload.post_rollbar(endpoint, payloads)
    return len(payloads) / (time.perf_counter() - started)


def main() -> int:
    from bench.report import print_section

    quick = "--quick" in sys.argv
    print_section(run(BenchConfig(runs=2 if quick else 5, quick=quick, work_dir=Path("bench/.work"))))
    return 0


if __name__ == "__main__":
    sys.exit(main())
