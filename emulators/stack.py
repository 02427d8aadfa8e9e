"""The embedded local stack: every emulator on loopback, durable under one data directory."""

from __future__ import annotations

import json
import shutil
import socket
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from urllib.parse import urlsplit

from emulators._server import ServedApp, serve
from emulators.cloudwatch_logs.api import create_app as create_logs_app
from emulators.cloudwatch_logs.store import LogsStore
from emulators.honeycomb.api import HoneycombSettings
from emulators.honeycomb.api import create_app as create_honeycomb_app
from emulators.honeycomb.store import HoneycombStore
from emulators.rollbar.api import RollbarSettings
from emulators.rollbar.api import create_app as create_rollbar_app
from emulators.rollbar.store import RollbarStore
from emulators.xray.api import XRaySettings
from emulators.xray.api import create_app as create_xray_app
from emulators.xray.daemon import XRayDaemon
from emulators.xray.store import XRayStore
from tracedrill import local

DEFAULT_SAMPLING_RULES = Path(__file__).resolve().parent.parent / "target_app" / "xray-sampling-rules.json"


@dataclass
class StackConfig:
    data_dir: Path
    host: str = local.LOCAL_HOST
    ports: local.LocalPorts = field(default_factory=local.LocalPorts)
    honeycomb_plan: str = "enterprise"  # or "free": the Query Data API answers as on a plan without it
    sampling_rules: Path = DEFAULT_SAMPLING_RULES
    # Honeycomb's Create Query Result limit (10 a minute); 0 turns it off, for a private test stack only.
    honeycomb_query_results_per_minute: int = 10


def daemon_host(host: str) -> str:
    """Where the X-Ray daemon binds. The X-Ray SDK reads AWS_XRAY_DAEMON_ADDRESS by splitting on ':' and
    sends over an IPv4 socket, so a stack on an IPv6 address (``::1``) keeps its daemon on IPv4 loopback."""
    return local.LOCAL_HOST if ":" in host else host


@dataclass(frozen=True)
class StackEndpoints:
    honeycomb: str
    xray_api: str
    cloudwatch_logs: str
    rollbar: str
    xray_daemon: str  # host:port, UDP and TCP


class LocalStack:
    """Start with ``start()`` (or as a context manager); ``endpoints`` then tells where each lives."""

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self._served: list[ServedApp] = []
        self._daemon: XRayDaemon | None = None
        self._endpoints: StackEndpoints | None = None

    def __enter__(self) -> LocalStack:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def endpoints(self) -> StackEndpoints:
        if self._endpoints is None:
            raise RuntimeError("the local stack is not started")
        return self._endpoints

    def start(self) -> StackEndpoints:
        cfg = self.config
        data = cfg.data_dir
        created = _first_missing(data)  # the outermost directory this start creates, if any
        data.mkdir(parents=True, exist_ok=True)
        try:
            keep_served_rules(cfg.sampling_rules, data)
            honeycomb = self._serve(
                "honeycomb",
                create_honeycomb_app(
                    HoneycombStore(data / "honeycomb.sqlite3"),
                    HoneycombSettings.local(
                        plan=cfg.honeycomb_plan, query_results_per_minute=cfg.honeycomb_query_results_per_minute
                    ),
                ),
                cfg.ports.honeycomb,
            )
            xray = self._serve(
                "xray",
                create_xray_app(XRayStore(data / "xray.sqlite3"), XRaySettings(sampling_rules_file=cfg.sampling_rules)),
                cfg.ports.xray_api,
            )
            logs = self._serve(
                "cloudwatch_logs", create_logs_app(LogsStore(data / "logs.sqlite3")), cfg.ports.cloudwatch_logs
            )
            rollbar = self._serve(
                "rollbar",
                create_rollbar_app(RollbarStore(data / "rollbar.sqlite3"), RollbarSettings.local()),
                cfg.ports.rollbar,
            )
            self._daemon = XRayDaemon(
                host=daemon_host(cfg.host),
                port=cfg.ports.xray_daemon,
                xray_endpoint=xray.url,
                region=local.LOCAL_AWS_REGION,
            )
            try:
                self._daemon.start()
            except OSError as exc:
                raise _naming("the X-Ray daemon", daemon_host(cfg.host), cfg.ports.xray_daemon, exc) from exc
        except BaseException:
            self.stop()
            if created is not None:  # a stack that never started leaves no half-made data directory behind
                shutil.rmtree(created, ignore_errors=True)
            raise
        self._endpoints = StackEndpoints(
            honeycomb=honeycomb.url,
            xray_api=xray.url,
            cloudwatch_logs=logs.url,
            rollbar=rollbar.url,
            xray_daemon=self._daemon.address,
        )
        return self._endpoints

    def _serve(self, name: str, app: object, port: int) -> ServedApp:
        try:
            served = serve(name, app, host=self.config.host, port=port)
        except OSError as exc:
            raise _naming(f"the {name} emulator", self.config.host, port, exc) from exc
        self._served.append(served)
        return served

    def stop(self) -> None:
        if self._daemon is not None:
            self._daemon.stop()
            self._daemon = None
        while self._served:
            self._served.pop().stop()
        self._endpoints = None

    def daemon_stats(self) -> dict[str, int]:
        return self._daemon.stats() if self._daemon else {}


SERVED_RULES_FILE = "xray-sampling-rules.json"  # a copy of the rules the stack serves, kept with its data


def keep_served_rules(rules: Path, data_dir: Path) -> None:
    """Keep the served sampling rules with the data, so reopening the data later serves the same rules."""
    copy = data_dir / SERVED_RULES_FILE
    if rules.resolve() != copy.resolve():
        copy.write_bytes(rules.read_bytes())


def served_rules(data_dir: Path) -> Path | None:
    """The sampling rules a stack on ``data_dir`` served (None: none was started there yet)."""
    copy = data_dir / SERVED_RULES_FILE
    return copy if copy.is_file() else None


DEFAULT_DATA_DIR = Path(".tracedrill/stack")  # `tracedrill stack up` and `run --backends stack` agree on it
ENDPOINTS_FILE = "endpoints.json"  # in the data directory while `tracedrill stack up` runs


def write_endpoints(data_dir: Path, endpoints: StackEndpoints) -> Path:
    """Tell other tracedrill commands (``run --backends stack``) where this running stack listens."""
    path = data_dir / ENDPOINTS_FILE
    path.write_text(json.dumps(asdict(endpoints), indent=2) + "\n", encoding="utf-8")
    return path


def _first_missing(path: Path) -> Path | None:
    """The outermost of ``path`` and its parents that does not exist yet (None: ``path`` exists)."""
    missing = None
    for candidate in (path, *path.parents):
        if candidate.exists():
            break
        missing = candidate
    return missing


def _naming(what: str, host: str, port: int, exc: OSError) -> OSError:
    """``exc`` saying which server and address it was about (errno kept: callers tell "in use" apart)."""
    return OSError(exc.errno, f"{exc.strerror or exc} ({what} on {host}:{port})")


def silent_endpoint(endpoints: StackEndpoints, timeout_s: float = 2.0) -> tuple[str, str] | None:
    """(url, error) of the first HTTP endpoint nothing accepts a connection on; None when all do. A stack
    killed without its cleanup (SIGKILL) leaves endpoints.json behind with nobody listening."""
    for url in (endpoints.honeycomb, endpoints.xray_api, endpoints.cloudwatch_logs, endpoints.rollbar):
        parts = urlsplit(url)
        try:
            socket.create_connection((parts.hostname or "", parts.port or 80), timeout=timeout_s).close()
        except OSError as exc:
            return url, exc.strerror or str(exc)
    return None


def read_endpoints(data_dir: Path) -> StackEndpoints:
    """The endpoints a running ``tracedrill stack up`` wrote; FileNotFoundError when none runs there,
    ValueError (saying what is wrong) when the file is not what it writes."""
    path = data_dir / ENDPOINTS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return StackEndpoints(**{f.name: str(data[f.name]) for f in fields(StackEndpoints)})
    except FileNotFoundError:
        raise
    except (OSError, ValueError, KeyError, TypeError) as exc:  # a directory, cut JSON, a key missing
        raise ValueError(f"{path} is not what `tracedrill stack up` writes ({type(exc).__name__}: {exc})") from None


def app_environment(endpoints: StackEndpoints) -> dict[str, str]:
    """The environment a user's app needs to send all four kinds of telemetry to the stack.

    Real variable names only: the same app pointed at the SaaS services changes values, not code.
    """
    return {
        "OTEL_SERVICE_NAME": local.DEFAULT_SERVICE_NAME,
        "OTEL_EXPORTER_OTLP_ENDPOINT": endpoints.honeycomb,
        "OTEL_EXPORTER_OTLP_HEADERS": f"x-honeycomb-team={local.LOCAL_HONEYCOMB_KEY}",
        "AWS_XRAY_DAEMON_ADDRESS": endpoints.xray_daemon,
        "AWS_XRAY_TRACING_NAME": local.DEFAULT_SERVICE_NAME,
        "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": endpoints.cloudwatch_logs,
        "AWS_ENDPOINT_URL_XRAY": endpoints.xray_api,
        "AWS_DEFAULT_REGION": local.LOCAL_AWS_REGION,
        "AWS_ACCESS_KEY_ID": local.LOCAL_AWS_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": local.LOCAL_AWS_SECRET_ACCESS_KEY,
        "CLOUDWATCH_LOG_GROUP": local.DEFAULT_LOG_GROUP,
        "ROLLBAR_ACCESS_TOKEN": local.LOCAL_ROLLBAR_POST_TOKEN,
        "ROLLBAR_ENDPOINT": f"{endpoints.rollbar}/api/1/",
        "ROLLBAR_ENVIRONMENT": local.DEFAULT_ROLLBAR_ENVIRONMENT,
    }


def verifier_environment(endpoints: StackEndpoints) -> dict[str, str]:
    """What the verifiers read to query the stack through the public read APIs."""
    return {
        "HONEYCOMB_API_ENDPOINT": endpoints.honeycomb,
        "HONEYCOMB_API_KEY": local.LOCAL_HONEYCOMB_KEY,
        "AWS_ENDPOINT_URL_XRAY": endpoints.xray_api,
        "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS": endpoints.cloudwatch_logs,
        "AWS_DEFAULT_REGION": local.LOCAL_AWS_REGION,
        "AWS_ACCESS_KEY_ID": local.LOCAL_AWS_ACCESS_KEY_ID,
        "AWS_SECRET_ACCESS_KEY": local.LOCAL_AWS_SECRET_ACCESS_KEY,
        "ROLLBAR_API_ENDPOINT": f"{endpoints.rollbar}/api/1/",
        "ROLLBAR_READ_ACCESS_TOKEN": local.LOCAL_ROLLBAR_READ_TOKEN,
    }
