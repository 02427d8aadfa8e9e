"""Reading restJson1 request members: timestamps, lists and counts, with InvalidRequestException on misuse."""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from emulators.xray.errors import invalid_request


def timestamp(body: dict[str, Any], field: str) -> float:
    """A required timestamp in epoch seconds; botocore sends numbers for rest-json, others may send ISO 8601."""
    value = body.get(field)
    if value is None:
        raise invalid_request(f"{field} is required")
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        try:
            return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
        except ValueError:
            pass
    raise invalid_request(f"{field} must be a timestamp (epoch seconds or ISO 8601), not {value!r}")


def string_list(body: dict[str, Any], field: str, min_items: int = 0, max_items: int | None = None) -> list[str]:
    value = body.get(field)
    if value is None:
        if min_items:
            raise invalid_request(f"{field} is required")
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise invalid_request(f"{field} must be a list of strings")
    if len(value) < min_items or (max_items is not None and len(value) > max_items):
        bound = f"{min_items} to {max_items}" if max_items is not None else f"at least {min_items}"
        raise invalid_request(f"{field} must hold {bound} items; got {len(value)}")
    return value


def count(doc: dict[str, Any], field: str, where: str, required: bool = True) -> int:
    value = doc.get(field)
    if value is None and not required:
        return 0
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise invalid_request(f"{where}: {field} must be a non-negative integer")
    return value
