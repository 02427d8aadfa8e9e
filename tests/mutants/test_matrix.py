"""The mutation matrix: every fault profile fails on the check that should catch it; `correct` passes.

One session-scoped run of :func:`tracedrill.mutants.run_matrix` on one shared local stack (the code
`tracedrill mutants` runs); the tests then look at each profile's outcome and its summary.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from target_app.faults import CORRECT, PROFILES
from tracedrill.drill import EXIT_FAIL
from tracedrill.mutants import MUTANTS, MatrixOptions, Outcome, matrix_stack, run_matrix, score

pytestmark = pytest.mark.e2e

FAULTS = [p for p in MUTANTS if p != CORRECT and not MUTANTS[p].rescued_by]
RESCUED = [p for p in MUTANTS if MUTANTS[p].rescued_by]


@pytest.fixture(scope="session")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Outcome]]:
    reports = tmp_path_factory.mktemp("mutants")
    options = MatrixOptions(reports_dir=reports)
    with matrix_stack(reports / "local-backends", options.profiles) as stack:
        outcomes = run_matrix(options, stack)
    yield {o.profile: o for o in outcomes}


def _explain(outcome: Outcome) -> str:
    failed = "\n".join(f"  {c['status']} {c['backend']}: {c['name']} - {c['detail'][:300]}" for c in outcome.failed)
    return f"{outcome.profile}: exit {outcome.exit_code} {outcome.error}; see {outcome.run_dir}\n{failed}"


def _check(outcome: Outcome, backend: str, fragment: str) -> dict[str, Any]:
    return next(c for c in outcome.summary["checks"] if c["backend"] == backend and fragment in c["name"])


def _answered(outcome: Outcome, route: str | None = None) -> int:
    """Answered requests (of one route) in the drill's ledger, counted from the run directory."""
    from verifiers.model import read_ledger

    assert outcome.run_dir is not None
    return sum(1 for s in read_ledger(outcome.run_dir) if s.status is not None and route in (None, s.name))


def test_every_fault_profile_has_a_place_in_the_matrix() -> None:
    assert set(MUTANTS) == set(PROFILES)


@pytest.mark.parametrize("profile", FAULTS)
def test_a_fault_profile_fails_on_the_check_that_should_catch_it(matrix: dict[str, Outcome], profile: str) -> None:
    outcome = matrix[profile]
    assert outcome.exit_code == EXIT_FAIL and outcome.verdict == "fail", _explain(outcome)
    assert outcome.caught_by is not None, _explain(outcome)
    assert outcome.state == "caught"


def test_correct_passes_every_check(matrix: dict[str, Outcome]) -> None:
    outcome = matrix[CORRECT]
    assert outcome.passed and not outcome.failed, _explain(outcome)
    backends = outcome.summary["backends"]
    assert all(backends[b]["missing"] == 0 for b in ("honeycomb", "cloudwatch_logs", "rollbar"))


@pytest.mark.parametrize("profile", RESCUED)
def test_a_mistake_the_sdk_rescues_loses_nothing(matrix: dict[str, Outcome], profile: str) -> None:
    """fork-unsafe-otel: with the pinned opentelemetry-sdk every span of every worker still arrives."""
    outcome = matrix[profile]
    assert outcome.state == "rescued", _explain(outcome)
    honeycomb = outcome.summary["backends"]["honeycomb"]
    assert honeycomb["expected"] == honeycomb["found"] > 0 and honeycomb["missing"] == 0


def test_the_score_counts_caught_profiles_and_leaves_out_rescued_ones(matrix: dict[str, Outcome]) -> None:
    counted = len(MUTANTS) - len(RESCUED)
    assert score(list(matrix.values())) == f"mutation score: {counted}/{counted}"


# ---- the details a person acts on ----------------------------------------------------------


def test_missing_log_lines_are_counted_exactly(matrix: dict[str, Outcome]) -> None:
    no_handler = matrix["no-cloudwatch-handler"]
    access = _check(no_handler, "cloudwatch_logs", "'access line'")
    assert f"{_answered(no_handler)} 'access line' lines missing" in access["detail"]
    assert "added to the logger" in access["detail"]
    assert no_handler.summary["backends"]["cloudwatch_logs"]["found"] == 0

    logger_none = matrix["logger-none"]
    hello = _check(logger_none, "cloudwatch_logs", "'hello line'")
    assert f"{_answered(logger_none, 'home')} 'hello line' lines missing" in hello["detail"]
    assert "logger=None" in hello["detail"]
    assert _check(logger_none, "cloudwatch_logs", "'access line'")["status"] == "pass"


def test_duplicated_lines_are_counted_and_explained(matrix: dict[str, Outcome]) -> None:
    outcome = matrix["duplicate-log-handler"]
    access = _check(outcome, "cloudwatch_logs", "'access line'")
    assert f"{_answered(outcome)} 'access line' lines too many" in access["detail"]
    assert "two handlers on the same logger" in access["detail"]


def test_zero_spans_point_at_the_exporter_endpoint(matrix: dict[str, Outcome]) -> None:
    outcome = matrix["otlp-endpoint-no-path"]
    server = _check(outcome, "honeycomb", "exactly one server span")
    assert server["detail"].startswith(f"{_answered(outcome)} of {_answered(outcome)} requests failed")
    assert "endpoint= passed in code" in server["detail"] and "/v1/traces" in server["detail"]
    assert outcome.summary["backends"]["honeycomb"]["found"] == 0


def test_dropped_spans_are_counted_and_attributed_to_the_processes_that_lost_them(matrix: dict[str, Outcome]) -> None:
    outcome = matrix["bsp-queue-overflow"]
    honeycomb = outcome.summary["backends"]["honeycomb"]
    assert 0 < honeycomb["missing"] < honeycomb["expected"]  # dropped under load, not a dead exporter
    failed = [c for c in outcome.failed if c["backend"] == "honeycomb"]
    assert any("Queue full, dropping Span" in c["detail"] for c in failed)
    assert any("Failed per app process:" in c["detail"] for c in failed)


def test_attribute_and_subsegment_mistakes_name_the_likely_cause(matrix: dict[str, Outcome]) -> None:
    assert "set after the span ended" in str(matrix["attr-after-end"].caught_by)
    assert "on span 'GET /api/activities/home' instead" in str(matrix["attr-wrong-span"].caught_by)
    assert "extra end_subsegment()" in str(matrix["subsegment-double-end"].caught_by)
    assert "rollbar.init()" in str(matrix["rollbar-never-init"].caught_by)
    assert "daemon's TCP side" in str(matrix["xray-no-sampling-proxy"].caught_by)
