"""Loaded beside a benchmark locustfile (``-f theirs.py,cpu_meter.py``): the Locust process's CPU time and
request count over the load itself, from test start until the test starts stopping, so start-up,
shutdown and report writing are left out. Written as JSON to ``$BENCH_CPU_METER``."""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

from locust import events
from locust.env import Environment

METER_ENV = "BENCH_CPU_METER"
_start: dict[str, float] = {}


def _now(environment: Environment) -> dict[str, float]:
    return {
        "cpu_s": time.process_time(),
        "wall_s": time.monotonic(),
        "requests": float(environment.stats.total.num_requests),
    }


@events.test_start.add_listener
def _on_start(environment: Environment, **_: Any) -> None:
    _start.update(_now(environment))


@events.test_stopping.add_listener
def _on_stopping(environment: Environment, **_: Any) -> None:
    path = os.environ.get(METER_ENV)
    if path and _start:
        end = _now(environment)
        Path(path).write_text(json.dumps({key: end[key] - _start[key] for key in end}), encoding="utf-8")
