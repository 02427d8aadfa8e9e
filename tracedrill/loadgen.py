"""Run Locust in its own processes (it monkey-patches sockets and threads with gevent).

Headless for `tracedrill run`, with its web UI and the Verification tab for `tracedrill ui`; one
process, or a master and N worker processes on loopback (Locust's own distributed mode).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from tracedrill.console import Console
from tracedrill.local import LOCAL_HOST

_LOADTESTS = Path(__file__).resolve().parent.parent / "loadtests"
DEFAULT_LOCUSTFILE = _LOADTESTS / "locustfile.py"
VERIFICATION_TAB = _LOADTESTS / "verification_tab.py"  # loaded next to the locustfile on the web UI's master
RUN_DIR_ENV = "TRACEDRILL_RUN_DIR"  # read by loadtests/locustfile.py: where the sent-ledger goes
HARNESS_URL_ENV = "TRACEDRILL_HARNESS_URL"  # read by loadtests/verification_tab.py: the harness's loopback API
STOP_TIMEOUT_S = 5  # Locust's --stop-timeout: users finish the request in flight, so it reaches the ledger
# After the master exits, its workers still stop their users and close their ledgers.
WORKER_EXIT_GRACE_S = STOP_TIMEOUT_S + 25

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
    run_time: str | None = "20s"  # None: until stopped (the web UI)
    locustfile: Path = DEFAULT_LOCUSTFILE
    extra_args: Sequence[str] = field(default_factory=tuple)  # passed through to Locust verbatim
    processes: int = 1  # above 1: a Locust master and this many worker processes

    def validate(self) -> None:
        if self.users < 1:
            raise ValueError(f"--users must be at least 1, got {self.users}")
        if self.spawn_rate <= 0:
            raise ValueError(f"--spawn-rate must be greater than 0, got {self.spawn_rate}")
        if self.run_time is not None:
            parse_timespan(self.run_time)
        if not self.locustfile.is_file():
            raise ValueError(f"--locustfile {self.locustfile} does not exist")
        if self.processes < 1:
            raise ValueError(f"--processes must be at least 1, got {self.processes}")


@dataclass(frozen=True)
class WebUi:
    """Run Locust with its web UI, the Verification tab talking to the harness at ``harness_url``."""

    harness_url: str
    host: str = LOCAL_HOST  # nothing listens beyond loopback unless asked (--web-host after `--`)


def locust_command(
    plan: LoadPlan, host: str, run_dir: Path, web: WebUi | None = None, master_port: int | None = None
) -> list[str]:
    """The (master) Locust command: headless, or with the web UI; with ``master_port``, waiting for workers."""
    locustfiles = str(plan.locustfile) if web is None else f"{plan.locustfile},{VERIFICATION_TAB}"
    command = [
        sys.executable, "-m", "locust",
        "-f", locustfiles,
        "--users", str(plan.users),
        "--spawn-rate", str(plan.spawn_rate),
        "--host", host,
        "--html", str(run_dir / "locust.html"),
        "--csv", str(run_dir / "locust"),
        "--stop-timeout", str(STOP_TIMEOUT_S),
    ]  # fmt: skip
    if plan.run_time is not None:
        command += ["--run-time", plan.run_time]
    if web is None:
        # Unexpected statuses are the verifiers' business; a non-zero exit here means Locust itself failed.
        command += ["--headless", "--exit-code-on-error", "0"]
    elif "--web-host" not in plan.extra_args:
        command += ["--web-host", web.host]
    if master_port is not None:
        command += [
            "--master", "--master-bind-host", LOCAL_HOST, "--master-bind-port", str(master_port),
            "--expect-workers", str(plan.processes), "--expect-workers-max-wait", "60",
        ]  # fmt: skip
    return [*command, *plan.extra_args]


def worker_command(plan: LoadPlan, master_port: int) -> list[str]:
    """One worker: it runs the users and writes its own sent-ledger file into the run directory."""
    return [
        sys.executable, "-m", "locust", "-f", str(plan.locustfile),
        "--worker", "--master-host", LOCAL_HOST, "--master-port", str(master_port),
    ]  # fmt: skip


def run_locust(
    plan: LoadPlan,
    host: str,
    run_dir: Path,
    console: Console,
    env: Mapping[str, str] | None = None,
    web: WebUi | None = None,
) -> int:
    """Run the plan to completion, echoing Locust's own progress and keeping it in locust.log.

    With ``plan.processes`` above 1, a master and that many workers (their output in
    locust-worker-N.log); this returns only after every worker has exited, so every ledger is complete.
    Returns the master's exit code.
    """
    child_env = {**(env if env is not None else os.environ), RUN_DIR_ENV: str(run_dir)}
    if web is not None:
        child_env[HARNESS_URL_ENV] = web.harness_url
    master_port = _free_port() if plan.processes > 1 else None
    with contextlib.ExitStack() as stack:
        log = stack.enter_context((run_dir / "locust.log").open("w", encoding="utf-8"))
        master = stack.enter_context(_process(locust_command(plan, host, run_dir, web, master_port), child_env))
        workers = []
        if master_port is not None:
            for n in range(1, plan.processes + 1):
                worker_log = stack.enter_context((run_dir / f"locust-worker-{n}.log").open("w", encoding="utf-8"))
                workers.append(stack.enter_context(_process(worker_command(plan, master_port), child_env, worker_log)))
        _echo(master, log, console)
        code = master.wait()
        for n, worker in enumerate(workers, start=1):
            try:
                worker_code = worker.wait(WORKER_EXIT_GRACE_S)
            except subprocess.TimeoutExpired:
                worker_code = None
            if worker_code != 0:
                console.out(f"Locust worker {n} ended with {worker_code}; see {run_dir / f'locust-worker-{n}.log'}")
        return code


@contextlib.contextmanager
def _process(
    command: list[str], env: Mapping[str, str], output: IO[str] | None = None
) -> Iterator[subprocess.Popen[str]]:
    """A child whose output is piped (``output`` None) or written to a file; stopped if still running on exit."""
    proc = subprocess.Popen(
        command,
        env=env,
        stdout=subprocess.PIPE if output is None else output,
        stderr=subprocess.STDOUT,
        text=True,
        bufsize=1,
    )
    try:
        yield proc
    finally:
        _stop(proc)


def _stop(proc: subprocess.Popen[str]) -> None:
    """SIGINT lets Locust write its reports and close the ledger; SIGTERM (when SIGINT is ignored, as in a
    background job) still closes the ledger; kill only if neither ends it."""
    for sig in (signal.SIGINT, signal.SIGTERM):
        if proc.poll() is not None:
            break
        proc.send_signal(sig)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(WORKER_EXIT_GRACE_S / 2)
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    if proc.stdout is not None:
        proc.stdout.close()


def _echo(proc: subprocess.Popen[str], log: IO[str], console: Console) -> None:
    """Copy the master's output to the console and locust.log until it exits. The first Ctrl-C (which the
    terminal sends Locust too) waits for Locust to write its reports; a second one stops at once."""
    assert proc.stdout is not None
    interrupted = False
    echo = _StatsFilter()
    while True:
        try:
            for line in proc.stdout:
                log.write(line)
                if echo.wants(line):
                    console.out("  locust | " + line.rstrip("\n"))
            return
        except KeyboardInterrupt:
            if interrupted:
                raise
            interrupted = True
            console.out("interrupted: waiting for Locust to write its reports (Ctrl-C again to stop at once)")


class _StatsFilter:
    """While load runs, Locust reprints its whole stats table every two seconds; the console gets Locust's
    log lines and each table's Aggregated line (progress), then everything from the shutdown on (the final
    tables). locust.log keeps every line."""

    def __init__(self) -> None:
        self.stopping = False

    def wants(self, line: str) -> bool:
        if line.startswith("["):
            self.stopping = self.stopping or "shutting down" in line.lower()
            return True
        return self.stopping or line.lstrip().startswith("Aggregated")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCAL_HOST, 0))
        return int(sock.getsockname()[1])
