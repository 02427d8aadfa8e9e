"""summary.json and the console table: both rendered from the same BackendReports."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

from verifiers.model import PROBE_ROUTE_NAME, BackendReport, CheckResult, SentRequest, is_vacuous, worst


def verdict(reports: Sequence[BackendReport], fail_on_unverifiable: bool = True) -> str:
    """``pass`` unless a check failed or timed out, or (unless allowed) could not be decided.

    An unverifiable check with nothing to look at (e.g. the run sent no request of its route) decided
    nothing either way and does not fail the run; one that could not decide what it had (a plan without
    the query API, a cut-off result) does. A run in which no check passed at all proved nothing, so it fails.
    """
    checks = [c for r in reports for c in r.checks]
    statuses = [c.status for c in checks]
    undecided = [c for c in checks if c.status == "unverifiable" and not c.vacuous]
    if worst(statuses) in ("fail", "timed-out") or (fail_on_unverifiable and undecided):
        return "fail"
    return "pass" if "pass" in statuses else "fail"


def load_check(sent: Sequence[SentRequest]) -> CheckResult:
    """A request without a response has telemetry nobody can check: a dead or overloaded target fails the run.

    The harness's own readiness probes are exempt: a slow start is not the service under test failing.
    """
    load = [s for s in sent if s.name != PROBE_ROUTE_NAME]
    unanswered = [s for s in load if s.status is None]
    name = "every request got a response from the target"
    if not load:
        return CheckResult("load", name, "fail", "no request was sent")
    if unanswered:
        examples = ", ".join(s.request_id for s in unanswered[:5])
        return CheckResult(
            "load", name, "fail",
            f"{len(unanswered)} of {len(load)} requests got no response (e.g. {examples}): "
            "their telemetry cannot be checked; is the target up and reachable?",
        )  # fmt: skip
    probes = len(sent) - len(load)
    also = f" (the sent-ledger also holds {probes} readiness probe{'s' if probes != 1 else ''})" if probes else ""
    return CheckResult("load", name, "pass", f"all {len(load)} requests answered{also}")


def build_summary(
    run_id: str,
    sent: Sequence[SentRequest],
    reports: Sequence[BackendReport],
    fail_on_unverifiable: bool = True,
    extra: dict[str, Any] | None = None,
) -> dict[str, Any]:
    by_route = Counter(s.name for s in sent)
    no_response = sum(1 for s in sent if s.status is None)
    answered = load_check(sent)
    summary: dict[str, Any] = {
        "run_id": run_id,
        "verdict": "fail" if answered.status == "fail" else verdict(reports, fail_on_unverifiable),
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
        "checks": [asdict(answered), *(asdict(c) for r in reports for c in r.checks)],
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
    # A dash is a count nobody can expect; say why where the reader sees it, not only in report.html.
    default = "the expected count cannot be decided (report.html says why)"
    lines += [f"{r.backend}: '-' because {r.note or default}" for r in reports if r.expected is None]
    return "\n".join(lines)


def failing_checks(summary: dict[str, Any]) -> list[str]:
    """A line per check that did not pass, from summary.json's ``checks`` (the load check included); checks
    of one backend that did not pass for the same reason (a plan without the query API: every per-span
    check) share one line. Ends with how to accept undecided checks when only they failed the run."""
    groups: dict[tuple[str, str, str], list[str]] = {}
    for c in summary["checks"]:
        if c["status"] != "pass":
            groups.setdefault((c["status"], c["backend"], c["detail"]), []).append(c["name"])
    lines = []
    for (status, backend, detail), names in groups.items():
        shown = (
            names[0]
            if len(names) == 1
            else f"{len(names)} checks ({names[0]}; {names[1]}{'; …' if len(names) > 2 else ''})"
        )
        lines.append(f"{status.upper()} {backend}: {shown} — {detail}")
    undecided = [
        c for c in summary["checks"] if c["status"] == "unverifiable" and not is_vacuous(c["status"], c["detail"])
    ]
    decided_bad = any(c["status"] in ("fail", "timed-out") for c in summary["checks"])
    # no backend check passed: the run proved nothing, and accepting undecided checks would not pass it either
    passed = any(c["status"] == "pass" for c in summary["checks"] if c["backend"] != "load")
    if summary.get("verdict") == "fail" and undecided and passed and not decided_bad:
        lines.append(
            f"(the run failed only on {len(undecided)} check(s) that could not be decided; "
            "--allow-unverifiable accepts them and still reports them)"
        )
    return lines
