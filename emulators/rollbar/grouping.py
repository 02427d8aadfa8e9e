"""Rollbar's default fingerprinting and item titles.

Source: Rollbar's "Default Grouping Algorithm" guide (rollbar/docs guides/grouping-algorithm.md,
docs.rollbar.com/docs/grouping-algorithm):

- exceptions: SHA1 of the filenames and method names of *all* frames plus the exception class;
  line numbers and the exception message are left out, ``server.root`` is replaced by a constant,
  dates and SHAs are stripped from filenames, integers of 2+ digits from method names;
- messages: SHA1 of the text after "things that look like data" are stripped (timestamps,
  decimals, integers of 2+ digits, hexadecimals of 4+ digits);
- ``data.fingerprint`` overrides both: used as is up to 40 characters, else its SHA1.

Rollbar's machine-learned patterns for frequent error types cannot be reproduced offline; the
basic algorithm above is what it falls back to.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from typing import Any

MAX_FINGERPRINT_CHARS = 40
MAX_TITLE_CHARS = 255
ROOT_PLACEHOLDER = "<server.root>"

_PATH_DATE = re.compile(r"\d{4}[-_/]?\d{2}[-_/]?\d{2}")
_PATH_SHA = re.compile(r"(?<![0-9a-fA-F])[0-9a-fA-F]{40}(?![0-9a-fA-F])")
_LONG_INTEGER = re.compile(r"\d{2,}")

# Order matters: whole timestamps before their digits are eaten by the integer rule.
_MESSAGE_DATA = (
    re.compile(r"\d{4}-\d{2}-\d{2}(?:[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?)?"),
    re.compile(r"\b\d{2}:\d{2}:\d{2}(?:[.,]\d+)?\b"),
    re.compile(r"\d+\.\d+"),
    # Hex runs need a digit, otherwise English words such as "added" or "decade" would vanish.
    re.compile(r"\b(?:0x[0-9a-fA-F]{4,}|(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{4,})\b"),
    _LONG_INTEGER,
)


def _sha1(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()


def strip_data(text: str) -> str:
    """The message text with everything that looks like data removed."""
    for pattern in _MESSAGE_DATA:
        text = pattern.sub("", text)
    return text


def _frame_key(frame: Mapping[str, Any], root: str | None) -> str:
    filename = str(frame.get("filename") or "")
    if root and filename.startswith(root):
        filename = ROOT_PLACEHOLDER + filename[len(root) :]
    filename = _PATH_SHA.sub("", _PATH_DATE.sub("", filename))
    method = _LONG_INTEGER.sub("", str(frame.get("method") or ""))
    return f"{filename}:{method}"


def _trace_key(trace: Mapping[str, Any], root: str | None) -> str:
    frames = [_frame_key(frame, root) for frame in trace.get("frames") or []]
    exception = trace.get("exception") or {}
    return "\n".join([*frames, str(exception.get("class") or "")])


def fingerprint(data: Mapping[str, Any]) -> str:
    """The fingerprint Rollbar groups this occurrence ``data`` by (assumes a validated payload)."""
    custom = data.get("fingerprint")
    if isinstance(custom, str) and custom:
        return custom if len(custom) <= MAX_FINGERPRINT_CHARS else _sha1(custom)
    body: Mapping[str, Any] = data["body"]
    server = data.get("server")
    root = server.get("root") if isinstance(server, Mapping) and isinstance(server.get("root"), str) else None
    if "trace" in body:
        return _sha1(_trace_key(body["trace"], root))
    if "trace_chain" in body:
        return _sha1("\n--\n".join(_trace_key(trace, root) for trace in body["trace_chain"]))
    if "message" in body:
        return _sha1(strip_data(body["message"]["body"]))
    return _sha1(strip_data(body["crash_report"]["raw"]))


def _truncate(text: str) -> str:
    return text[:MAX_TITLE_CHARS]


def _trace_title(trace: Mapping[str, Any]) -> str:
    exception = trace.get("exception") or {}
    cls = str(exception.get("class") or "")
    message = exception.get("message")
    return f"{cls}: {message}" if message else cls


def title(data: Mapping[str, Any]) -> str:
    """The item title: ``data.title`` if sent, else "Class: message" or the message text."""
    custom = data.get("title")
    if isinstance(custom, str) and custom.strip():
        return _truncate(custom)
    body: Mapping[str, Any] = data["body"]
    if "trace" in body:
        return _truncate(_trace_title(body["trace"]))
    if "trace_chain" in body:
        # pyrollbar puts the exception that was raised last first; Rollbar titles the item after it.
        return _truncate(_trace_title(body["trace_chain"][0]))
    if "message" in body:
        return _truncate(body["message"]["body"])
    raw: str = body["crash_report"]["raw"]
    return _truncate(raw.strip().splitlines()[0] if raw.strip() else "crash report")
