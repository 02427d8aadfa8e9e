"""summary.json and the console table: both rendered from the same BackendReports."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from verifiers.model import BackendReport, SentRequest, worst


def verdict(reports: Sequence[BackendReport], fail_on_unverifiable: bool = False) -> str:
    """``pass`` unless a check failed or timed out (or, when asked, could not be decided)."""
    status = worst(c.status for r in reports for c in r.checks)
    if status in ("fail", "timed-out") or (fail_on_unverifiable and status == "unverifiable"):
        return "fail"
    return "pass"


def build_summary(
    run_id: str,
    sent: Sequence[SentRequest],
    reports: Sequence[BackendReport],
    fail_on_unverifiable: bool = False,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    by_route = Counter(s.name for s in sent)
    no_response = sum(1 for s in sent if s.status is None)
    summary: dict[str, Any] = {
        "run_id": run_id,
        "verdict": verdict(reports, fail_on_unverifiable),
        "sent": {"total": len(sent), "by_route": dict(sorted(by_route.items())), "no_response": no_response},
        "backends": {
            r.backend: {
                "expected": r.expected,
                "found": r.found,
                "missing": r.missing,
                "extra": r.extra,
                "status": r.status,
                "wait": asdict(r.wait) if r.wait else None,
                "note": r.note,
            }
            for r in reports
        },
        "checks": [asdict(c) for r in reports for c in r.checks],
    }
    summary.update(extra or {})
    return summary


def write_summary(path: Path, summary: dict[str, Any]) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(summary, indent=2, sort_keys=False) + "\n", encoding="utf-8")
    tmp.replace(path)


def _cell(value: int | None) -> str:
    return "-" if value is None else str(value)


def console_table(reports: Sequence[BackendReport]) -> str:
    """The compact per-backend table that ends every run."""
    header = ("backend", "expected", "found", "missing", "extra", "status", "waited")
    rows = [header]
    for r in reports:
        waited = f"{r.wait.ended_by} {r.wait.seconds:.0f}s" if r.wait else "-"
        rows.append((r.backend, _cell(r.expected), str(r.found), _cell(r.missing), str(r.extra), r.status, waited))
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def failing_checks(reports: Sequence[BackendReport]) -> list[str]:
    return [
        f"{c.status.upper()} {c.backend}: {c.name} — {c.detail}"
        for r in reports
        for c in r.checks
        if c.status != "pass"
    ]
