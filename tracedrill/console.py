"""Progress lines for people watching a run: short, timestamped, never a secret."""

from __future__ import annotations

import os
import sys
import threading
import time
from typing import TextIO


class Console:
    def __init__(self, stream: TextIO | None = None, quiet: bool = False) -> None:
        self._stream = stream or sys.stdout
        self._quiet = quiet
        self._lock = threading.Lock()
        self._started = time.monotonic()
        self._reader_gone = False

    def step(self, message: str) -> None:
        """A progress line, prefixed with seconds since the run started."""
        if not self._quiet:
            self._write(f"[{time.monotonic() - self._started:6.1f}s] {message}\n")

    def out(self, text: str) -> None:
        """Output that is the result itself (tables, verdicts): printed even when quiet."""
        self._write(text if text.endswith("\n") else text + "\n")

    def _write(self, text: str) -> None:
        with self._lock:
            if self._reader_gone:
                return
            try:
                self._stream.write(text)
                self._stream.flush()
            except BrokenPipeError:
                # The reader left (`tracedrill stack up | head`): the work goes on without its output, and
                # the exit code still tells the verdict. Python's own flush at exit must not fail either.
                self._reader_gone = True
                _silence(self._stream)


def _silence(stream: TextIO) -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except (OSError, ValueError):  # no file descriptor behind the stream (a StringIO in tests)
        pass
