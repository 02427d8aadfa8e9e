"""AWS X-Ray: recorder, sampler, the Flask middleware and subsegments that always end.

Nothing is patched (no ``patch_all``): the only entities are the request segment and the
subsegments the routes open themselves, so a verifier can expect an exact tree. Outgoing
``requests``/botocore calls are NOT traced by X-Ray.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Protocol

from aws_xray_sdk.core import AWSXRayRecorder, xray_recorder
from aws_xray_sdk.core.emitters.udp_emitter import UDPEmitter
from aws_xray_sdk.core.exceptions.exceptions import InvalidSamplingManifestError
from aws_xray_sdk.core.sampling.local.sampler import LocalSampler
from aws_xray_sdk.core.sampling.sampler import DefaultSampler
from aws_xray_sdk.core.utils import stacktrace
from aws_xray_sdk.ext.flask.middleware import XRayMiddleware
from flask import Flask, Response

from target_app import faults
from target_app.correlation import current_request_id
from target_app.settings import Settings, SettingsError

REQUEST_ID_ANNOTATION = "request_id"
DAEMON_ADDRESS_ENV = "AWS_XRAY_DAEMON_ADDRESS"
# Names the process that served the request: each process has its own sampler (reservoir, borrowing,
# quota), so the sampling check needs the load per process (loadtests/ids.py reads it).
PROCESS_HEADER = "X-Tracedrill-Process"


class EntityLike(Protocol):
    def put_annotation(self, key: str, value: Any) -> None: ...

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None: ...


class _NoEntity:
    """Stands in when X-Ray is off or there is no segment, so route code needs no branches."""

    def put_annotation(self, key: str, value: Any) -> None:
        return None

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        return None


NO_ENTITY = _NoEntity()


def load_local_rules(path: Path) -> dict[str, Any]:
    try:
        rules = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise SettingsError(f"X-Ray local sampling rules: cannot read {path}: {exc.strerror}") from None
    except json.JSONDecodeError as exc:
        raise SettingsError(f"X-Ray local sampling rules: {path} is not JSON ({exc})") from None
    if not isinstance(rules, dict):
        raise SettingsError(f"X-Ray local sampling rules: {path} must hold a JSON object")
    return rules


def build_sampler(settings: Settings) -> DefaultSampler | LocalSampler:
    """Centralized: rules and quotas polled from the daemon's TCP side (local default as fallback).

    Local: only the v2 rules file, per-process reservoirs, no daemon calls.
    """
    if settings.xray_sampling == "centralized":
        return DefaultSampler()
    rules = load_local_rules(settings.xray_local_rules)
    try:
        return LocalSampler(rules)
    except (InvalidSamplingManifestError, KeyError, TypeError, ValueError) as exc:
        raise SettingsError(f"X-Ray local sampling rules in {settings.xray_local_rules} are invalid: {exc}") from None


def configure_recorder(
    settings: Settings,
    recorder: AWSXRayRecorder | None = None,
    emitter: UDPEmitter | None = None,
) -> AWSXRayRecorder:
    """Configure (by default) the SDK's global recorder; tests pass a fresh one and a capturing emitter."""
    target = recorder if recorder is not None else xray_recorder
    if settings.fault == "xray-no-sampling-proxy":
        # FAULT xray-no-sampling-proxy: deployed with only the daemon's UDP port reachable. The SDK reads this
        # variable itself (it wins over daemon_address=), so the fault is in the variable, as in a deployment.
        os.environ[DAEMON_ADDRESS_ENV] = faults.daemon_address_without_tcp(settings.xray_daemon_address)
    target.configure(
        service=settings.xray_tracing_name,
        daemon_address=settings.xray_daemon_address,
        context_missing="LOG_ERROR",
        sampling=True,
        sampler=build_sampler(settings),
        emitter=emitter,
        plugins=(),
    )
    return target


def instrument_flask(app: Flask, recorder: AWSXRayRecorder) -> None:
    """One segment per request; an incoming ``X-Amzn-Trace-Id: Root=...`` without ``Sampled=`` keeps
    its trace id and the recorder's sampler decides (the SDK middleware already behaves so)."""
    XRayMiddleware(app, recorder)

    # Registered after the middleware's own before_request, so the segment already exists.
    def annotate_request_id() -> None:
        segment = recorder.current_segment()
        request_id = current_request_id()
        if segment is not None and request_id is not None:
            segment.put_annotation(REQUEST_ID_ANNOTATION, request_id)

    app.before_request(annotate_request_id)
    process = f"{socket.gethostname()}:{os.getpid()}"  # built in the worker, after fork

    def name_process(response: Response) -> Response:
        response.headers[PROCESS_HEADER] = process
        return response

    app.after_request(name_process)


def current_entity(recorder: AWSXRayRecorder | None) -> EntityLike:
    """The entity ``xray_recorder.put_annotation``/``put_metadata`` write to: the innermost open one."""
    entity = recorder.get_trace_entity() if recorder is not None else None  # None outside a segment (LOG_ERROR)
    return NO_ENTITY if entity is None else entity


@contextmanager
def subsegment(recorder: AWSXRayRecorder | None, name: str) -> Iterator[EntityLike]:
    """Begin a subsegment and end it exactly once, recording an exception that escapes the block."""
    if recorder is None:
        yield NO_ENTITY
        return
    entity = recorder.begin_subsegment(name)  # None when there is no segment (context_missing=LOG_ERROR)
    if entity is None:
        yield NO_ENTITY
        return
    try:
        yield entity
    except Exception as exc:
        entity.add_exception(exc, stacktrace.get_stacktrace(limit=recorder.max_trace_back))
        raise
    finally:
        recorder.end_subsegment()
