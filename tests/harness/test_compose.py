"""compose.yaml is validated here, not run (no Docker engine in CI)."""

from __future__ import annotations

from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]


def test_compose_parses_and_names_every_service() -> None:
    compose = yaml.safe_load((ROOT / "compose.yaml").read_text())
    services = compose["services"]
    assert {"target", "xray-daemon", "local-stack", "locust-master", "locust-worker"} <= set(services)
    for name, service in services.items():
        assert "command" in service, name
        for mapping in service.get("ports", []):
            assert mapping.startswith("127.0.0.1:"), f"{name} publishes {mapping} beyond loopback"
    assert services["locust-worker"]["deploy"]["replicas"] >= 1
    assert "--worker" in services["locust-worker"]["command"]
    assert "--master" in services["locust-master"]["command"]
    assert (ROOT / "Dockerfile").is_file()
