"""Turn a run's checks into pytest items, so JUnit XML and pytest-html report them like tests.

``pytest -p verifiers.pytest_plugin reports/<run>/summary.json`` collects one item per check,
grouped by backend: pass passes, fail and timed-out fail with the detail, unverifiable is
skipped with its reason (never reported as passed).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from html import escape
from pathlib import Path
from typing import Any

import pytest

SUMMARY_NAME = "summary.json"


class CheckFailed(AssertionError):
    """A verification check that did not pass."""


def pytest_collect_file(parent: pytest.Collector, file_path: Path) -> pytest.Collector | None:
    if file_path.name == SUMMARY_NAME:
        return SummaryFile.from_parent(parent, path=file_path)
    return None


class SummaryFile(pytest.File):
    def collect(self) -> Iterator[pytest.Item | pytest.Collector]:
        summary = json.loads(self.path.read_text(encoding="utf-8"))
        backends: dict[str, list[dict[str, Any]]] = {}
        for check in summary["checks"]:
            backends.setdefault(check["backend"], []).append(check)
        for backend, checks in backends.items():
            yield BackendGroup.from_parent(self, name=backend, checks=checks)


class BackendGroup(pytest.Collector):
    def __init__(self, *, checks: list[dict[str, Any]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.checks = checks

    def collect(self) -> Iterator[pytest.Item]:
        for check in self.checks:
            yield CheckItem.from_parent(self, name=check["name"], check=check)


class CheckItem(pytest.Item):
    def __init__(self, *, check: dict[str, Any], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.check = check

    def runtest(self) -> None:
        status, detail = self.check["status"], self.check["detail"]
        # The detail of a passing check matters too ("125 traces found, 38 % sampled"): in the HTML log and
        # as a JUnit property, not only for failures.
        self.add_report_section("call", "detail", detail)
        self.user_properties.append(("detail", detail))
        if status == "unverifiable":
            pytest.skip(f"unverifiable: {detail}")
        if status != "pass":
            raise CheckFailed(f"{status}: {detail}")

    def repr_failure(self, excinfo: pytest.ExceptionInfo[BaseException], style: Any = None) -> str:
        if isinstance(excinfo.value, CheckFailed):
            return str(excinfo.value)
        return str(super().repr_failure(excinfo))

    def reportinfo(self) -> tuple[Path, int, str]:
        return self.path, 0, f"{self.check['backend']}: {self.name}"


def run_table_html(data: dict[str, Any]) -> str:
    """The run at a glance: verdict, what was sent, and per backend expected/found/missing/extra/status."""
    sent = data.get("sent") or {"total": 0, "by_route": {}, "no_response": 0}
    rows = "".join(
        f"<tr><td>{escape(name)}</td><td>{_cell(b['expected'])}</td><td>{b['found']}</td>"
        f"<td>{_cell(b['missing'])}</td><td>{b['extra']}</td><td>{escape(b['status'])}</td>"
        f"<td>{_waited(b.get('wait'))}</td><td>{escape(b.get('note') or '')}</td></tr>"
        for name, b in (data.get("backends") or {}).items()
    )
    routes = ", ".join(f"{escape(k)} {v}" for k, v in sent["by_route"].items())
    return (
        f"<h2>Run {escape(str(data.get('run_id', '?')))}: {escape(str(data.get('verdict', '?')).upper())}</h2>"
        f"<p>Target {escape(str(data.get('target', '')))}; {sent['total']} requests sent ({routes}); "
        f"{sent['no_response']} without a response.</p>"
        "<table><tr><th>backend</th><th>expected</th><th>found</th><th>missing</th><th>extra</th><th>status</th>"
        f"<th>waiting</th><th>note</th></tr>{rows}</table>"
    )


def _cell(value: int | None) -> str:
    return "-" if value is None else str(value)


def _waited(wait: dict[str, Any] | None) -> str:
    return f"{escape(wait['ended_by'])} after {wait['seconds']:.0f} s" if wait else "-"


def _summary_data(config: pytest.Config) -> dict[str, Any] | None:
    for arg in config.args:
        path = config.invocation_params.dir / str(arg).split("::")[0]
        if path.name == SUMMARY_NAME and path.is_file():
            return dict(json.loads(path.read_text(encoding="utf-8")))
    return None


@pytest.hookimpl(optionalhook=True)
def pytest_html_report_title(report: Any) -> None:
    data = _summary_data(report.config)
    report.title = (
        f"tracedrill run {data.get('run_id', '?')}: {str(data.get('verdict', '?')).upper()}"
        if data
        else "tracedrill verification"
    )


@pytest.hookimpl(optionalhook=True)
def pytest_html_results_summary(prefix: list[str], summary: list[str], postfix: list[str], session: Any) -> None:
    """Sections of summary.json that are not checks (the free-tier budget, sampling) go under the summary."""
    from verifiers.budget.render import html_section
    from verifiers.sampling.chart import sampling_html

    data = _summary_data(session.config)
    if data is None:
        return
    prefix.append(run_table_html(data))
    if data.get("budget"):
        postfix.append(html_section(data["budget"]))
    if data.get("sampling"):
        postfix.append(sampling_html(data["sampling"]))
