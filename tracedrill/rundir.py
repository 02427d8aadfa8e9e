"""reports/<run-id>/: where a run writes everything, with reports/latest pointing at the newest."""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from verifiers.field_types import record_from_json
from verifiers.model import not_epoch_seconds
from verifiers.sampling.config import SamplingConfig

RUN_FILE = "run.json"
BACKEND_MODES = ("local", "stack", "cloud")
HONEYCOMB_PLANS = ("enterprise", "free")


def new_run_id(now: float | None = None) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    return f"{stamp}-{secrets.token_hex(3)}"


@dataclass
class RunRecord:
    """What a later ``tracedrill verify`` needs to re-verify the run. Never holds a secret."""

    run_id: str
    backends: str  # "local" | "cloud"
    target_url: str
    started_target: bool
    service_name: str
    log_group: str
    rollbar_environment: str
    expectations: str
    honeycomb_plan: str
    load: dict[str, Any] = field(default_factory=dict)
    load_start: float = 0.0
    load_end: float = 0.0
    local_data_dir: str | None = None  # relative to the run directory
    stack_dir: str | None = None  # backends "stack": the data directory of the `tracedrill stack up` it used
    sampling: dict[str, Any] | None = None  # verifiers.sampling.config.SamplingConfig: what sampling is expected

    def _invalid_values(self) -> list[str]:
        """Values of the right type that still cannot be what `tracedrill run` wrote."""
        loads = (("load_start", self.load_start), ("load_end", self.load_end))
        problems = not_epoch_seconds((name, value) for name, value in loads if value != 0)  # 0: not recorded
        for name, value, allowed in (
            ("backends", self.backends, BACKEND_MODES),
            ("honeycomb_plan", self.honeycomb_plan, HONEYCOMB_PLANS),
        ):
            if value not in allowed:
                problems.append(f"{name}: {value!r} is not one of {', '.join(allowed)}")
        if self.sampling is not None:
            try:
                SamplingConfig.from_dict(self.sampling)
            except (TypeError, ValueError) as exc:
                problems.append(f"sampling: {exc}")
        return problems

    def save(self, run_dir: Path) -> None:
        (run_dir / RUN_FILE).write_text(json.dumps(asdict(self), indent=2) + "\n", encoding="utf-8")

    @classmethod
    def load_from(cls, run_dir: Path) -> RunRecord:
        """The run's record; RunRecordError naming the problem when run.json is missing or damaged."""
        path = run_dir / RUN_FILE
        if not path.is_file():
            raise RunRecordError(f"{run_dir} is not a run directory: {RUN_FILE} is missing")
        try:
            record = record_from_json(cls, path.read_text(encoding="utf-8"))
            if problems := record._invalid_values():
                raise ValueError("; ".join(problems))
        except (ValueError, TypeError) as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
            raise RunRecordError(
                f"{path}: not a run record ({exc}); tracedrill run writes it: repair it, or verify another run"
            ) from None
        return record


class RunRecordError(ValueError):
    """run.json is missing or not what tracedrill run wrote."""


def create_run_dir(reports_dir: Path, run_id: str) -> Path:
    run_dir = reports_dir / run_id
    run_dir.mkdir(parents=True, exist_ok=False)
    point_latest(reports_dir, run_dir)
    return run_dir


def point_latest(reports_dir: Path, run_dir: Path) -> None:
    """Swap reports/latest atomically so a reader never sees it missing."""
    latest = reports_dir / "latest"
    tmp = reports_dir / f".latest-{secrets.token_hex(4)}"
    tmp.symlink_to(run_dir.name)
    tmp.replace(latest)
