"""Run Locust headless in its own process (it monkey-patches sockets and threads with gevent)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from tracedrill.console import Console

DEFAULT_LOCUSTFILE = Path(__file__).resolve().parent.parent / "loadtests" / "locustfile.py"
RUN_DIR_ENV = "TRACEDRILL_RUN_DIR"  # read by loadtests/locustfile.py: where the sent-ledger goes

_TIMESPAN = re.compile(r"^(?:(?P<h>\d+)h)?(?:(?P<m>\d+)m)?(?:(?P<s>\d+)s?)?$")


def parse_timespan(text: str) -> int:
    """Seconds in a Locust-style timespan ("20s", "1m30s", "2h", "45"); ValueError names the problem."""
    match = _TIMESPAN.match(text.strip())
    if not text.strip() or match is None:
        raise ValueError(f"run time {text!r} is not a timespan like 20s, 1m30s or 2h")
    seconds = int(match["h"] or 0) * 3600 + int(match["m"] or 0) * 60 + int(match["s"] or 0)
    if seconds <= 0:
        raise ValueError(f"run time {text!r} must be longer than 0 seconds")
    return seconds


@dataclass(frozen=True)
class LoadPlan:
    users: int = 10
    spawn_rate: float = 10.0
    run_time: str = "20s"
    locustfile: Path = DEFAULT_LOCUSTFILE
    extra_args: Sequence[str] = field(default_factory=tuple)  # passed through to Locust verbatim

    def validate(self) -> None:
        if self.users < 1:
            raise ValueError(f"--users must be at least 1, got {self.users}")
        if self.spawn_rate <= 0:
            raise ValueError(f"--spawn-rate must be greater than 0, got {self.spawn_rate}")
        parse_timespan(self.run_time)
        if not self.locustfile.is_file():
            raise ValueError(f"--locustfile {self.locustfile} does not exist")


def locust_command(plan: LoadPlan, host: str, run_dir: Path) -> list[str]:
    return [
        sys.executable, "-m", "locust",
        "-f", str(plan.locustfile),
        "--headless",
        "--users", str(plan.users),
        "--spawn-rate", str(plan.spawn_rate),
        "--run-time", plan.run_time,
        "--host", host,
        "--html", str(run_dir / "locust.html"),
        "--csv", str(run_dir / "locust"),
        "--stop-timeout", "5",
        # Unexpected statuses are the verifiers' business; a non-zero exit here means Locust itself failed.
        "--exit-code-on-error", "0",
        *plan.extra_args,
    ]  # fmt: skip


def run_locust(plan: LoadPlan, host: str, run_dir: Path, console: Console, env: Mapping[str, str] | None = None) -> int:
    """Run the plan to completion, echoing Locust's own progress and keeping it in locust.log."""
    child_env = {**(env if env is not None else os.environ), RUN_DIR_ENV: str(run_dir)}
    command = locust_command(plan, host, run_dir)
    with (
        (run_dir / "locust.log").open("w", encoding="utf-8") as log,
        subprocess.Popen(
            command, env=child_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
        ) as proc,
    ):
        assert proc.stdout is not None
        for line in proc.stdout:
            log.write(line)
            console.out("  locust | " + line.rstrip("\n"))
        return proc.wait()
