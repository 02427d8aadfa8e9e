"""What a Honeycomb team looks like to the emulator: its keys, their permissions, its plan."""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from tracedrill.local import LOCAL_HONEYCOMB_KEY

PLANS = ("enterprise", "free")


@dataclass(frozen=True)
class ApiKeyAccess:
    """The permissions ``GET /1/auth`` reports under ``api_key_access``."""

    events: bool = False
    markers: bool = False
    queries: bool = False
    columns: bool = False
    boards: bool = False
    create_datasets: bool = False
    recipients: bool = False
    slos: bool = False
    triggers: bool = False

    @classmethod
    def everything(cls) -> ApiKeyAccess:
        return cls(**{f.name: True for f in fields(cls)})

    def to_wire(self) -> dict[str, bool]:
        # The wire name is camelCase (terraform-provider-honeycombio client/auth.go, OpenAPI Auth schema).
        body = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "create_datasets"}
        body["createDatasets"] = self.create_datasets
        return body


@dataclass(frozen=True)
class HoneycombSettings:
    """``api_keys`` maps each accepted key to its permissions; ``plan`` is "enterprise" or "free".

    ``query_results_per_minute`` is Honeycomb's Create Query Result limit (10/min per key);
    0 disables it. ``clock`` is "now" for the service (tests pin it).
    """

    api_keys: Mapping[str, ApiKeyAccess]
    plan: str = "enterprise"
    environment_name: str = "local"
    environment_slug: str = "local"
    team_name: str = "tracedrill"
    team_slug: str = "tracedrill"
    query_results_per_minute: int = 10
    ui_url: str = "https://ui.honeycomb.io"
    clock: Callable[[], float] = field(default=time.time, compare=False)

    def __post_init__(self) -> None:
        if self.plan not in PLANS:
            raise ValueError(f"unknown Honeycomb plan {self.plan!r}: valid plans are {', '.join(PLANS)}")
        if self.query_results_per_minute < 0:
            raise ValueError("query_results_per_minute must be >= 0 (0 disables the limit)")

    @classmethod
    def local(cls, plan: str = "enterprise", **overrides: Any) -> HoneycombSettings:
        """The embedded stack's team: the local (non-secret) key with every permission."""
        return cls(api_keys={LOCAL_HONEYCOMB_KEY: ApiKeyAccess.everything()}, plan=plan, **overrides)

    def access(self, key: str | None) -> ApiKeyAccess | None:
        return self.api_keys.get(key) if key else None


def key_id(key: str) -> str:
    """A stable, non-reversible id for a key (``/1/auth`` shows an id, never the key)."""
    return "hcxik_" + hashlib.sha256(key.encode()).hexdigest()[:26]
