"""A closed-loop HTTP load generator in its own gevent process: ``python -m tracedrill.closedloop``.

``tracedrill overhead`` needs the most requests a server can answer, with nothing between requests
and as little client work as possible. It drives this process one phase at a time over stdin/stdout
(one JSON object per line each way), so the parent can read the server's CPU time exactly around
each phase. The HTTP client is geventhttpclient, the one Locust's FastHttpUser uses; every request
carries the same correlation headers a drill sends (new ids each time).

Command: ``{"url": "http://127.0.0.1:5000", "path": "/api/health", "seconds": 2, "concurrency": 8}``
Answer:  ``{"requests": 1234, "errors": 0, "seconds": 2.0, "statuses": {"200": 1234}, "cpu_s": 0.9}``
"""

from __future__ import annotations

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402 - after monkey-patching, like every gevent program
import resource  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from collections import Counter  # noqa: E402
from typing import Any  # noqa: E402

import gevent  # noqa: E402
from geventhttpclient import HTTPClient  # noqa: E402

from loadtests.ids import new_request_ids  # noqa: E402

MAX_CONCURRENCY = 256
MAX_SECONDS = 600.0


def run_phase(url: str, path: str, seconds: float, concurrency: int) -> dict[str, Any]:
    """``concurrency`` users, each sending its next request as soon as the last one answered."""
    client = HTTPClient.from_url(url, concurrency=concurrency, connection_timeout=5.0, network_timeout=10.0)
    statuses: Counter[str] = Counter()
    errors = 0
    deadline = time.perf_counter() + seconds

    def user() -> None:
        nonlocal errors
        while time.perf_counter() < deadline:
            try:
                response = client.get(path, headers=new_request_ids().headers())
                response.read()
                statuses[str(response.status_code)] += 1
            except (OSError, gevent.Timeout):
                errors += 1

    cpu_before = _cpu_s()
    started = time.perf_counter()
    gevent.joinall([gevent.spawn(user) for _ in range(concurrency)])
    elapsed = time.perf_counter() - started
    cpu = _cpu_s() - cpu_before
    client.close()
    return {
        "requests": sum(statuses.values()),
        "errors": errors,
        "seconds": elapsed,
        "statuses": dict(statuses),
        "cpu_s": cpu,
    }


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _command(line: str) -> dict[str, Any]:
    command = json.loads(line)
    url, path = str(command["url"]), str(command["path"])
    seconds, concurrency = float(command["seconds"]), int(command["concurrency"])
    if not url.startswith(("http://127.", "http://localhost", "http://[::1]")):
        raise ValueError(f"refusing to send load to {url}: loopback addresses only")
    if not (0 < seconds <= MAX_SECONDS and 1 <= concurrency <= MAX_CONCURRENCY):
        raise ValueError(f"seconds must be in (0, {MAX_SECONDS}] and concurrency in 1..{MAX_CONCURRENCY}")
    return run_phase(url, path, seconds, concurrency)


def main() -> int:
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            answer = _command(line)
        except (KeyError, ValueError) as exc:
            answer = {"error": str(exc)}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
