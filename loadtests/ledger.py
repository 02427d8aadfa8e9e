"""The sent-ledger: one JSON line per request, appended while the test runs (never held in memory).

Each Locust process writes its own ``sent-<worker>.jsonl`` so workers never contend for a file;
``verifiers.model.read_ledger`` reads them all back.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
from json.encoder import encode_basestring_ascii as _string  # json.dumps's own escaping of a str
from pathlib import Path
from types import TracebackType
from typing import Any

from verifiers.model import SentRequest

LEDGER_GLOB = "sent*.jsonl"
# SentRequest.to_json's text for any fields (ledger_line's fallback); to_json itself deep-copies every
# field first (dataclasses.asdict), which alone cost a Locust process a tenth of its request rate.
_encode = json.JSONEncoder(separators=(",", ":")).encode
# The fields _template writes, in SentRequest's order. Should SentRequest gain a field, every line
# takes the general encoder until the template learns it (a test says so), rather than drop it.
_TEMPLATE_FIELDS = (
    "request_id", "name", "method", "url", "path", "start", "end", "status", "trace_id", "parent_span_id",
    "xray_trace_id", "worker", "traceparent_sent", "app_sampled", "app_process",
)  # fmt: skip
TEMPLATE_CURRENT = _TEMPLATE_FIELDS == tuple(f.name for f in dataclasses.fields(SentRequest))


def ledger_line(fields: dict[str, Any]) -> str:
    """One sent-ledger line, without its newline: ``SentRequest.to_json``'s text for these fields.

    Written from a template when the values have SentRequest's types, in half the time of json's encoder,
    which escapes the same fifteen keys again on every line (bench/results.md, load-generator section).
    Anything else (a NaN, an int where a float goes, a field the template does not know) takes json's
    encoder: the same text, keys in SentRequest's order (or in the order ``fields`` has them, if they differ)."""
    if TEMPLATE_CURRENT and len(fields) == len(_TEMPLATE_FIELDS):
        try:
            return _template(fields)
        except (KeyError, TypeError, ValueError):
            pass
    if set(fields) == set(_TEMPLATE_FIELDS):  # SentRequest's key order, whatever order the dict has
        fields = {name: fields[name] for name in _TEMPLATE_FIELDS}
    return _encode(fields)


def _template(f: dict[str, Any]) -> str:
    start, end, status = f["start"], f["end"], f["status"]
    sent, sampled, process = f["traceparent_sent"], f["app_sampled"], f["app_process"]
    if not (
        type(start) is float  # json writes a finite float as repr() does
        and type(end) is float
        and math.isfinite(start)
        and math.isfinite(end)
        and (status is None or type(status) is int)
        and type(sent) is bool
        and (sampled is None or type(sampled) is bool)
    ):
        raise ValueError("not SentRequest's usual types")
    # _string raises TypeError for anything but a str.
    return (
        f'{{"request_id":{_string(f["request_id"])},"name":{_string(f["name"])},"method":{_string(f["method"])},'
        f'"url":{_string(f["url"])},"path":{_string(f["path"])},"start":{start!r},"end":{end!r},'
        f'"status":{"null" if status is None else status},"trace_id":{_string(f["trace_id"])},'
        f'"parent_span_id":{_string(f["parent_span_id"])},"xray_trace_id":{_string(f["xray_trace_id"])},'
        f'"worker":{_string(f["worker"])},"traceparent_sent":{"true" if sent else "false"},'
        f'"app_sampled":{"null" if sampled is None else "true" if sampled else "false"},'
        f'"app_process":{"null" if process is None else _string(process)}}}'
    )


def ledger_path(run_dir: Path, worker: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", worker)
    return run_dir / f"sent-{safe}.jsonl"


class LedgerWriter:
    """Append-only: each line goes to the OS in one write(2) as it is recorded, so a crash of the
    process loses nothing already recorded. The file is opened O_APPEND: lines never interleave, not
    even from threads or processes sharing the file, and no lock or buffer sits in between."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o666)
        self.count = 0  # lines recorded by this writer

    def record(self, sent: SentRequest) -> None:
        self.record_fields(vars(sent))  # vars(): the fields in order, all plain JSON values

    def record_fields(self, fields: dict[str, Any]) -> None:
        """``record`` without building a SentRequest first (the bundled locustfile's per-request path):
        ``fields`` are all of SentRequest's, by name, and the line is the one ``record`` writes for them."""
        line = (ledger_line(fields) + "\n").encode()  # ASCII: every str is escaped
        if self._fd < 0:
            raise ValueError(f"sent-ledger {self.path} is closed")
        written = os.write(self._fd, line)
        while written < len(line):  # a short write (disk nearly full, a signal): the rest follows at once
            written += os.write(self._fd, line[written:])
        self.count += 1

    def close(self) -> None:
        fd, self._fd = self._fd, -1  # never write to a closed descriptor's number: the OS reuses it
        if fd >= 0:
            os.close(fd)

    def __enter__(self) -> LedgerWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
