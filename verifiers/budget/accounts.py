"""Which account a run's usage is kept under, per backend, so a local run never counts against a cloud budget.

- The embedded local stack: ``local`` for every backend.
- Honeycomb: ``honeycomb:team/<team slug>`` from ``GET /1/auth`` (the free allowance is the team's, shared
  by its environments); if the key is refused, ``honeycomb:key-<hash>``.
- X-Ray and CloudWatch Logs: ``aws:<account id>`` from STS GetCallerIdentity (the free tier is per
  account); without it ``aws:<region>:key-<hash of the access key id>``, or ``aws:<region>:profile-<name>``.
- Rollbar: ``rollbar:token-<hash of the read token>`` (a project token belongs to one project).

``[accounts]`` in the budget TOML names a cloud account explicitly. A hash is the first 12 hex digits of
SHA-256: it tells keys apart without storing or printing them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from verifiers.connections import ApiUnreachable, Connections, HttpJsonApi
from verifiers.model import BACKENDS, Backend

LOCAL_ACCOUNT = "local"
LOOKUP_TIMEOUT_S = 10.0


def fingerprint(secret: str) -> str:
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()[:12]


def honeycomb_account(connections: Connections) -> str:
    api = HttpJsonApi(
        connections.honeycomb_api_url, {"X-Honeycomb-Team": connections.honeycomb_api_key}, LOOKUP_TIMEOUT_S
    )
    try:
        answer = api.call("GET", "1/auth")
    except ApiUnreachable:
        answer = None
    finally:
        api.close()
    team = ((answer.body or {}).get("team") or {}) if answer is not None and isinstance(answer.body, dict) else {}
    if answer is not None and answer.status == 200 and team.get("slug"):
        return f"honeycomb:team/{team['slug']}"
    return f"honeycomb:key-{fingerprint(connections.honeycomb_api_key)}"


def aws_account(connections: Connections) -> str:
    try:
        from botocore.config import Config

        # The verifiers' own session (same credentials, profile and region rules); a quick, single attempt.
        session: Any = connections._boto_session()
        sts = session.client(
            "sts", config=Config(connect_timeout=5, read_timeout=LOOKUP_TIMEOUT_S, retries={"max_attempts": 1})
        )
        account = sts.get_caller_identity().get("Account")
        if account:
            return f"aws:{account}"
    except Exception:  # any failure falls back to a key-derived account, never to "no account"
        pass
    region = connections.aws_region or "no-region"
    if connections.aws_access_key_id:
        return f"aws:{region}:key-{fingerprint(connections.aws_access_key_id)}"
    return f"aws:{region}:profile-{connections.aws_profile or 'default'}"


def rollbar_account(connections: Connections) -> str:
    return f"rollbar:token-{fingerprint(connections.rollbar_read_token)}"


def resolve_accounts(
    mode: str, connections: Connections | None, explicit: Mapping[Backend, str] | None = None
) -> dict[Backend, str]:
    """The account of every backend for a run in ``mode`` ("local" or "cloud"). Explicit names apply to the
    cloud only: a local run is always ``local``."""
    explicit = dict(explicit or {})
    if mode == "local" or connections is None:
        return dict.fromkeys(BACKENDS, LOCAL_ACCOUNT)
    accounts: dict[Backend, str] = {}
    aws: str | None = None
    for backend in BACKENDS:
        if backend in explicit:
            accounts[backend] = explicit[backend]
        elif backend == "honeycomb":
            accounts[backend] = honeycomb_account(connections)
        elif backend == "rollbar":
            accounts[backend] = rollbar_account(connections)
        else:
            aws = aws or aws_account(connections)
            accounts[backend] = aws
    return accounts
