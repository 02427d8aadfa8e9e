"""JSON as the real services read it: strict, with no NaN or Infinity.

Python's json module accepts the bare words NaN, Infinity and -Infinity; the services' parsers (Go's
encoding/json, Jackson) reject them as invalid JSON, and a value read here would come back out of a
query result or a trace as JSON that no client can parse.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["strict_loads"]


def _reject_constant(word: str) -> Any:
    raise ValueError(f"{word} is not a JSON value: write the number, a string or null instead")


def strict_loads(text: str | bytes, **options: Any) -> Any:
    """``json.loads`` that also rejects NaN and ±Infinity; every failure is a ValueError."""
    return json.loads(text, parse_constant=_reject_constant, **options)
