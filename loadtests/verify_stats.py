"""What a finished verification round becomes in Locust's statistics, and how the tab's script gets on the page.

Pure functions (no Locust import), used by ``loadtests/verification_tab.py`` inside Locust's process.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from verifiers.model import is_vacuous

REQUEST_TYPE = "VERIFY"
ALWAYS_FAILING = frozenset({"fail", "timed-out"})


@dataclass(frozen=True)
class VerifyEntry:
    """One VERIFY row: ``name`` is a backend, or ``backend: check``; ``failure`` None means success."""

    name: str
    response_time_ms: float
    failure: str | None


def verify_entries(status: Mapping[str, Any]) -> list[VerifyEntry]:
    """The entries of one finished round (the harness's ``/status``): one per backend, one per check.

    A check counts as a failure when it failed or timed out, and when it could not be decided if the
    run did not pass ``--allow-unverifiable``, so Locust's exit code agrees with the verdict.
    """
    if status.get("phase") == "error":
        return [VerifyEntry("verification", _elapsed_ms(status), f"error: {status.get('error') or 'unknown'}")]
    if status.get("phase") != "done":
        return []
    failing = set(ALWAYS_FAILING)
    if (status.get("settings") or {}).get("fail_on_unverifiable"):
        failing.add("unverifiable")
    entries = []
    for row in status.get("backends", []):
        backend, state = row["backend"], row["state"]
        counts = ", ".join(
            f"{k} {'-' if row.get(k) is None else row[k]}" for k in ("expected", "found", "missing", "extra")
        )
        entries.append(VerifyEntry(backend, _elapsed_ms(status), f"{state}: {counts}" if state in failing else None))
    for check in status.get("checks", []):
        state, detail = check["state"], check.get("detail", "")
        vacuous = is_vacuous(state, detail)  # decided nothing either way
        failure = f"{state}: {detail}" if state in failing and not vacuous else None
        entries.append(VerifyEntry(f"{check['backend']}: {check['name']}", _elapsed_ms(status), failure))
    return entries


def _elapsed_ms(status: Mapping[str, Any]) -> float:
    """How long the round took: what a VERIFY entry's response time means."""
    started, finished = status.get("started_at"), status.get("finished_at")
    if started is None or finished is None:
        return 0.0
    return max(0.0, (float(finished) - float(started)) * 1000.0)


def inject_before_body_end(html: str, snippet: str) -> str:
    """``snippet`` just before ``</body>`` (appended when the page has none)."""
    index = html.lower().rfind("</body>")
    return html + snippet if index < 0 else html[:index] + snippet + html[index:]
