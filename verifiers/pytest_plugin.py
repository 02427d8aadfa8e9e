"""Turn a run's checks into pytest items, so JUnit XML and pytest-html report them like tests.

``pytest -p verifiers.pytest_plugin reports/<run>/summary.json`` collects one item per check,
grouped by backend: pass passes, fail and timed-out fail with the detail, unverifiable is
skipped with its reason (never reported as passed).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
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
