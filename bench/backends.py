"""Backends for the benchmarks, each in its own process: our local stack (`tracedrill stack up`) and moto.

The server never shares a process (or a GIL) with the client that measures it.
"""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import boto3
from botocore.config import Config

from bench.common import PROJECT_ROOT
from tracedrill import local

_PORT_FLAGS = ("--honeycomb-port", "--xray-api-port", "--cloudwatch-logs-port", "--rollbar-port", "--xray-daemon-port")


class _Process:
    proc: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


class StackProcess(_Process):
    """`tracedrill stack up` on free ports; ``endpoints`` is its endpoints.json.

    ``query_limit=False`` starts the same stack without the Honeycomb emulator's 10-query-results-a-minute
    limit (this module's ``main``): for measuring the work of reads, whose pacing is then reported apart.
    """

    def __init__(self, data_dir: Path, *, query_limit: bool = True) -> None:
        data_dir.mkdir(parents=True, exist_ok=True)
        (data_dir / "endpoints.json").unlink(missing_ok=True)
        if query_limit:
            command = [sys.executable, "-m", "tracedrill.cli", "stack", "up", "--data-dir", str(data_dir)]
            for flag in _PORT_FLAGS:
                command += [flag, "0"]
        else:
            command = [sys.executable, "-m", "bench.backends", str(data_dir)]
        self._log = (data_dir / "stack.log").open("wb")
        self.proc = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        path = data_dir / "endpoints.json"
        while not path.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the local stack did not start; see {data_dir / 'stack.log'}")
            time.sleep(0.1)
        time.sleep(0.1)  # written in one go, but let the writer finish
        self.endpoints: dict[str, str] = json.loads(path.read_text(encoding="utf-8"))

    def __enter__(self) -> StackProcess:
        return self

    def stop(self) -> None:
        super().stop()
        self._log.close()


class MotoProcess(_Process):
    """moto's server (`python -m moto.server`) on a free loopback port."""

    def __init__(self, log_path: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = log_path.open("wb")
        command = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
        self.proc = subprocess.Popen(command, cwd=PROJECT_ROOT, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"moto did not start; see {log_path}") from None
                time.sleep(0.2)

    def __enter__(self) -> MotoProcess:
        return self

    def stop(self) -> None:
        super().stop()
        self._log.close()


def aws_client(service: str, endpoint: str) -> Any:
    """A boto3 client with the local stack's (non-secret) credentials; moto accepts any."""
    session: Any = boto3.session.Session(
        aws_access_key_id=local.LOCAL_AWS_ACCESS_KEY_ID,
        aws_secret_access_key=local.LOCAL_AWS_SECRET_ACCESS_KEY,
        region_name=local.LOCAL_AWS_REGION,
    )
    return session.client(
        service,
        endpoint_url=endpoint,
        config=Config(retries={"max_attempts": 2, "mode": "standard"}, read_timeout=120, max_pool_connections=8),
    )


def main(argv: list[str] | None = None) -> int:
    """``python -m bench.backends DIR``: the local stack without the Honeycomb query-results limit."""
    from emulators.stack import LocalStack, StackConfig, write_endpoints

    data_dir = Path((argv or sys.argv[1:])[0])
    config = StackConfig(data_dir=data_dir, ports=local.LocalPorts.ephemeral(), honeycomb_query_results_per_minute=0)
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    with LocalStack(config) as stack:
        write_endpoints(data_dir, stack.endpoints)
        while not stopping:
            time.sleep(0.2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
