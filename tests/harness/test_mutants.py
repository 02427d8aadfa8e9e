"""The mutation matrix's bookkeeping (fast; the matrix itself runs in tests/mutants): what counts as caught,
the score, the per-profile names and sampling rules, and the flags that refuse a fault they cannot apply."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from emulators.xray.sampling import parse_rules
from target_app.faults import CORRECT, PROFILES
from tracedrill.drill import EXIT_FAIL, EXIT_PASS
from tracedrill.mutants import MUTANTS, Catch, MatrixOptions, Outcome, all_caught, profile_names, sampling_rules, score


def _check(backend: str, name: str, status: str = "fail", detail: str = "") -> dict[str, Any]:
    return {"backend": backend, "name": name, "status": status, "detail": detail}


def _outcome(profile: str, code: int, *failed: dict[str, Any]) -> Outcome:
    catches = MUTANTS[profile].catches
    caught_by = next((c for c in failed for catch in catches if catch.matches(c)), None)
    return Outcome(profile, code, "pass" if code == EXIT_PASS else "fail", failed, caught_by, None)


def test_a_catch_needs_a_failed_check_of_its_backend_with_both_fragments() -> None:
    catch = Catch("cloudwatch_logs", "'access line'", "duplicated")
    assert catch.matches(_check("cloudwatch_logs", "every request has exactly one 'access line'", detail="duplicated"))
    assert not catch.matches(_check("cloudwatch_logs", "... 'access line'", "timed-out", "duplicated"))
    assert not catch.matches(_check("cloudwatch_logs", "... 'access line'", detail="missing"))
    assert not catch.matches(_check("honeycomb", "... 'access line'", detail="duplicated"))


def test_caught_missed_and_rescued() -> None:
    access = _check("cloudwatch_logs", "every request has exactly one 'access line' log line", detail="missing: 3")
    elsewhere = _check("rollbar", "no occurrences for request ids we did not send")
    assert _outcome("no-cloudwatch-handler", EXIT_FAIL, elsewhere, access).state == "caught"
    assert _outcome("no-cloudwatch-handler", EXIT_FAIL, elsewhere).state == "missed"  # failed, but not on its check
    assert _outcome("no-cloudwatch-handler", EXIT_PASS).state == "missed"
    assert _outcome(CORRECT, EXIT_PASS).state == "caught"
    assert _outcome(CORRECT, EXIT_FAIL, elsewhere).state == "missed"
    rescued = next(p for p, m in MUTANTS.items() if m.rescued_by)
    assert _outcome(rescued, EXIT_PASS).state == "rescued"
    broken = Outcome("attr-after-end", -1, "error", (), None, None, error="UsageError: boom")
    assert broken.state == "missed" and broken.first_failing == "error: UsageError: boom"


def test_the_score_leaves_rescued_profiles_out() -> None:
    rescued = next(p for p, m in MUTANTS.items() if m.rescued_by)
    access = _check("cloudwatch_logs", "exactly one 'access line' log line", detail="missing")
    outcomes = [
        _outcome(CORRECT, EXIT_PASS),
        _outcome(rescued, EXIT_PASS),
        _outcome("no-cloudwatch-handler", 1, access),
    ]
    assert score(outcomes) == "mutation score: 2/2" and all_caught(outcomes)
    outcomes.append(_outcome("logger-none", EXIT_PASS))
    assert score(outcomes) == "mutation score: 2/3" and not all_caught(outcomes)


def test_every_profile_gets_its_own_names_and_its_own_copy_of_the_journal_rule() -> None:
    assert set(MUTANTS) == set(PROFILES)
    names = [profile_names(p) for p in MUTANTS]
    for field in ("name", "log_group", "rollbar_environment"):
        assert len({getattr(n, field) for n in names}) == len(MUTANTS), field
    document = sampling_rules(list(MUTANTS))
    rules = {r["ServiceName"]: r for r in parse_rules(document, "matrix")}  # the emulator accepts it
    for profile, mutant in MUTANTS.items():
        rule = rules[profile_names(profile).name]
        assert len(rule["RuleName"]) <= 32 and rule["ReservoirSize"] == 5
        assert rule["FixedRate"] == (mutant.xray_fixed_rate if mutant.xray_fixed_rate is not None else 0.1)


def test_matrix_options_name_unknown_profiles() -> None:
    with pytest.raises(ValueError, match="unknown profile"):
        MatrixOptions(reports_dir=Path("x"), profiles=("attr-after-ned",))


def _tracedrill(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tracedrill.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=60
    )


def test_mutants_help_says_how_it_counts(tmp_path: Path) -> None:
    proc = _tracedrill("mutants", "--help", cwd=tmp_path)
    assert proc.returncode == 0
    text = " ".join(proc.stdout.split())
    assert "mutation score: CAUGHT/TOTAL" in text and "`correct` is caught when its drill passes" in text
    assert all(name in proc.stdout for name in PROFILES)
    assert _tracedrill("mutants", "--profile", "nope", cwd=tmp_path).returncode == 2


def test_a_fault_needs_the_bundled_target(tmp_path: Path) -> None:
    proc = _tracedrill(
        "run", "--fault", "attr-after-end", "--target", "http://127.0.0.1:9", "--backends", "cloud",
        "--no-budget", "--reports-dir", str(tmp_path), cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 2
    assert "--fault attr-after-end changes the bundled target app" in proc.stdout
    unknown = _tracedrill("run", "--fault", "attr-after-ned", cwd=tmp_path)
    assert unknown.returncode == 2 and "invalid choice" in unknown.stderr
