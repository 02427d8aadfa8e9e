"""Fixtures for the whole suite."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from verifiers.budget.ledger import DATA_DIR_ENV


@pytest.fixture(autouse=True, scope="session")
def _private_budget_ledger(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Drills under test record into a throwaway budget ledger, never the user's (nor trip its guard).
    Set in os.environ so the `tracedrill` subprocesses the e2e tests start inherit it."""
    before = os.environ.get(DATA_DIR_ENV)
    os.environ[DATA_DIR_ENV] = str(tmp_path_factory.mktemp("tracedrill-data"))
    yield
    if before is None:
        os.environ.pop(DATA_DIR_ENV, None)
    else:
        os.environ[DATA_DIR_ENV] = before
