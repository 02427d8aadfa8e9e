"""The sent-ledger: one JSON line per request, appended while the test runs (never held in memory).

Each Locust process writes its own ``sent-<worker>.jsonl`` so workers never contend for a file;
``verifiers.model.read_ledger`` reads them all back.
"""

from __future__ import annotations

import json
import re
import threading
from pathlib import Path
from types import TracebackType

from verifiers.model import SentRequest

LEDGER_GLOB = "sent*.jsonl"
# The same text as SentRequest.to_json, whose dataclasses.asdict deep-copies every field: that alone
# cost a Locust process about a tenth of its request rate (bench/results.md, load-generator section).
_encode = json.JSONEncoder(separators=(",", ":")).encode


def ledger_path(run_dir: Path, worker: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", worker)
    return run_dir / f"sent-{safe}.jsonl"


class LedgerWriter:
    """Append-only, line-buffered: a crash loses at most the line being written."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._lock = threading.Lock()
        self._file = path.open("a", encoding="utf-8", buffering=1)
        self.count = 0

    def record(self, sent: SentRequest) -> None:
        line = _encode(vars(sent)) + "\n"  # vars(): the fields in order, all plain JSON values
        with self._lock:
            self._file.write(line)
            self.count += 1

    def close(self) -> None:
        with self._lock:
            if not self._file.closed:
                self._file.flush()
                self._file.close()

    def __enter__(self) -> LedgerWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
