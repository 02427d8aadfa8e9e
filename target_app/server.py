"""Run the target app under gunicorn as a child process (for the harness and tests).

``start_target`` returns once ``GET /api/health`` answers; ``TargetProcess.stop`` sends SIGTERM and
waits for gunicorn's graceful shutdown, during which each worker's ``worker_exit`` hook flushes its
telemetry, and only kills after a timeout.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from tracedrill import local

GUNICORN_CONF = Path(__file__).resolve().parent / "gunicorn_conf.py"
PROJECT_ROOT = Path(__file__).resolve().parent.parent
APP_SPEC = "target_app.app:create_app()"
HEALTH_PATH = "/api/health"
_LISTENING_RE = re.compile(r"Listening at: http://[^\s:]+:(\d+)")
# Variables of the caller's own process that would silently reconfigure gunicorn.
_NOT_INHERITED = ("GUNICORN_CMD_ARGS", "WEB_CONCURRENCY")


class TargetStartError(RuntimeError):
    """The app did not come up; the message carries the tail of its log."""


@dataclass
class TargetProcess:
    process: subprocess.Popen[bytes]
    host: str
    port: int
    log_path: Path
    graceful_timeout: float
    log_offset: int = 0  # where this run's output starts in a reused log file
    _returncode: int | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def pid(self) -> int:
        return self.process.pid

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, timeout: float | None = None) -> int:
        """SIGTERM, wait for the graceful exit (telemetry flush), then SIGKILL the group. Idempotent."""
        if self._returncode is not None:
            return self._returncode
        wait_s = timeout if timeout is not None else self.graceful_timeout + 10
        if self.running():
            self.process.send_signal(signal.SIGTERM)
        try:
            self._returncode = self.process.wait(wait_s)
        except subprocess.TimeoutExpired:
            # The child leads its own process group (start_new_session): this reaches its workers too.
            os.killpg(self.process.pid, signal.SIGKILL)
            self._returncode = self.process.wait(5)
        return self._returncode

    def log_tail(self, lines: int = 40) -> str:
        return log_tail(self.log_path, lines)

    def __enter__(self) -> TargetProcess:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def start_target(
    env: Mapping[str, str],
    port: int,
    workers: int = 2,
    *,
    log_path: Path | str | None = None,
    host: str = local.LOCAL_HOST,
    threads: int = 4,
    graceful_timeout: int = 20,
    startup_timeout: float = 30.0,
    probe: Callable[[str], bool] | None = None,
) -> TargetProcess:
    """Start gunicorn with ``env`` on top of this process's environment.

    ``probe(url)`` answers whether ``GET url`` (the health route) succeeded; the harness passes one
    that tags the probe like any load request, so its telemetry is accounted for, not an extra.

    ``port=0`` lets the OS pick a free port (read back from gunicorn's "Listening at" line).
    stdout and stderr go to ``log_path`` (a new temporary file when None).
    """
    path = Path(log_path) if log_path is not None else _temp_log_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    offset = path.stat().st_size if path.exists() else 0
    child_env = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}
    child_env.update(env)
    rules = child_env.get("TRACEDRILL_XRAY_LOCAL_RULES")
    if rules:  # the child runs in the project root: keep a caller-relative path pointing at the same file
        child_env["TRACEDRILL_XRAY_LOCAL_RULES"] = str(Path(rules).expanduser().resolve())
    child_env.update(
        {
            "TRACEDRILL_APP_BIND": f"{host}:{port}",
            "TRACEDRILL_APP_WORKERS": str(workers),
            "TRACEDRILL_APP_THREADS": str(threads),
            "TRACEDRILL_APP_GRACEFUL_TIMEOUT": str(graceful_timeout),
            "PYTHONUNBUFFERED": "1",
        }
    )
    command = [sys.executable, "-m", "gunicorn", "-c", str(GUNICORN_CONF), APP_SPEC]
    with path.open("ab") as log_file:
        process = subprocess.Popen(
            command,
            cwd=PROJECT_ROOT,
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # a Ctrl-C meant for the harness must not skip the graceful flush
        )
    target = TargetProcess(process, host, port, path, float(graceful_timeout), log_offset=offset)
    try:
        _wait_until_healthy(target, startup_timeout, probe or _healthy)
    except BaseException:
        target.stop(timeout=5)
        raise
    return target


def _temp_log_path() -> Path:
    fd, name = tempfile.mkstemp(prefix="tracedrill-target-", suffix=".log")
    os.close(fd)
    return Path(name)


def _wait_until_healthy(target: TargetProcess, timeout: float, probe: Callable[[str], bool]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not target.running():
            raise TargetStartError(
                f"the target app exited with code {target.process.returncode} while starting; "
                f"log {target.log_path}:\n{target.log_tail()}"
            )
        if target.port == 0:
            target.port = _listening_port(target.log_path, target.log_offset) or 0
        if target.port and probe(target.url + HEALTH_PATH):
            return
        time.sleep(0.1)
    raise TargetStartError(
        f"the target app did not answer GET {HEALTH_PATH} on {target.host}:{target.port or '?'} within "
        f"{timeout:.0f} s; log {target.log_path}:\n{target.log_tail()}"
    )


# No proxies: an http_proxy in the caller's environment must not intercept a loopback health check.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _healthy(url: str) -> bool:
    try:
        with _DIRECT.open(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _listening_port(log_path: Path, offset: int) -> int | None:
    with log_path.open("rb") as fh:
        fh.seek(offset)
        match = _LISTENING_RE.search(fh.read().decode("utf-8", errors="replace"))
    return int(match.group(1)) if match else None


def log_tail(path: Path, lines: int = 40) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        return f"(log unreadable: {exc})"
    return "\n".join(text.splitlines()[-lines:])
