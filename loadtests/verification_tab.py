"""The Verification tab in Locust's web UI, and VERIFY entries in Locust's statistics.

`tracedrill ui` loads this file next to the locustfile (``-f locustfile.py,verification_tab.py``) on
the Locust process that serves the web UI. It verifies nothing itself: the harness process does
(the verifiers, boto3 and the SDKs stay out of gevent) and serves its progress on a loopback API
named by ``$TRACEDRILL_HARNESS_URL``. This plugin, through Locust's own extension points only:

- adds the tab (``web_ui.template_args["extended_tabs"]``), two routes on Locust's Flask app that
  relay to the harness, and the tab's script (served from ``webui/``, tagged onto Locust's page);
- asks the harness to verify when a test stops (``test_stop``) and on the tab's "Verify now";
- records every finished round as VERIFY requests (``events.request``), one per backend and one per
  check, failed when the check failed or timed out, so they reach Locust's statistics, its CSV and
  HTML reports and its exit code. When Locust quits right after a test (``--autostart --autoquit``)
  the stop waits for the round, so the reports written on quitting include it.
"""

from __future__ import annotations

import json
import logging
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import gevent
from flask import Blueprint, Response, jsonify, request
from locust import events
from locust.env import Environment
from locust.runners import WorkerRunner
from locust.stats import CSV_STATS_INTERVAL_SEC
from locust.web import WebUI

from loadtests.verify_stats import REQUEST_TYPE, inject_before_body_end, verify_entries

HARNESS_URL_ENV = "TRACEDRILL_HARNESS_URL"
TAB = {"title": "Verification", "key": "verification"}
STATIC_DIR = Path(__file__).resolve().parent / "webui"
SCRIPT_TAGS = (
    '<link rel="stylesheet" href="./tracedrill/static/verification.css">'
    '<script src="./tracedrill/static/verification.js" defer></script>'
)
POLL_S = 1.0
HARNESS_TIMEOUT_S = 5.0

log = logging.getLogger("tracedrill.verification_tab")
# No proxies: an http_proxy in the environment must not intercept loopback calls.
_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class HarnessError(Exception):
    pass


class Harness:
    """The harness's loopback API (``tracedrill/ui_api.py``)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def status(self) -> dict[str, Any]:
        return self._call(urllib.request.Request(f"{self.url}/status"))

    def verify(self, reason: str) -> dict[str, Any]:
        body = json.dumps({"reason": reason}).encode()
        return self._call(
            urllib.request.Request(
                f"{self.url}/verify", data=body, method="POST", headers={"Content-Type": "application/json"}
            )
        )

    def _call(self, req: urllib.request.Request) -> dict[str, Any]:
        try:
            with _DIRECT.open(req, timeout=HARNESS_TIMEOUT_S) as response:
                return dict(json.loads(response.read()))
        except urllib.error.HTTPError as exc:
            raise HarnessError(f"the harness answered HTTP {exc.code}: {exc.read()[:300]!r}") from exc
        except (OSError, ValueError) as exc:
            raise HarnessError(f"the harness at {self.url} is unreachable: {exc}") from exc


class VerificationTab:
    def __init__(self, environment: Environment, harness: Harness) -> None:
        self.environment = environment
        self.harness = harness
        self.requested = 0  # the newest round asked for
        self.reported = 0  # the newest round recorded as VERIFY entries

    # ---- web UI ---------------------------------------------------------------------------------

    def install(self, web_ui: WebUI) -> None:
        web_ui.template_args["extended_tabs"] = [*web_ui.template_args.get("extended_tabs", []), TAB]
        options = self.environment.parsed_options
        blueprint = Blueprint(
            "tracedrill",
            __name__,
            static_folder=str(STATIC_DIR),
            static_url_path="/tracedrill/static",
            url_prefix=(getattr(options, "web_base_path", None) or None),
        )

        @blueprint.route("/tracedrill/verification")
        @web_ui.auth_required_if_enabled
        def verification() -> Response:
            try:
                return jsonify(self.harness.status())
            except HarnessError as exc:
                return jsonify({"phase": "unreachable", "error": str(exc)})

        @blueprint.route("/tracedrill/verify", methods=["POST"])
        @web_ui.auth_required_if_enabled
        def verify_now() -> Response | tuple[Response, int]:
            try:
                answer = self.ask("verify-now")
            except HarnessError as exc:
                return jsonify({"error": str(exc)}), 502
            return jsonify(answer), 202

        app = web_ui.app
        assert app is not None  # Locust creates the Flask app with the WebUI
        app.register_blueprint(blueprint)

        @app.after_request
        def add_tab_script(response: Response) -> Response:
            # Locust's page is React; the tab's content comes from our script, tagged onto that page only.
            if request.endpoint == "locust.index" and response.mimetype == "text/html":
                response.set_data(inject_before_body_end(response.get_data(as_text=True), SCRIPT_TAGS))
            return response

    # ---- verification rounds --------------------------------------------------------------------

    def ask(self, reason: str) -> dict[str, Any]:
        answer = self.harness.verify(reason)
        self.requested = max(self.requested, int(answer.get("round", 0)))
        return answer

    def on_test_stop(self, **_: Any) -> None:
        try:
            self.ask("test-stop")
        except HarnessError as exc:
            log.error("cannot start verification: %s", exc)
            return
        if _quits_after_test(self.environment):
            log.info("verifying before Locust quits (round %s)", self.requested)
            self.wait_reported()

    def on_quitting(self, **_: Any) -> None:
        if self.requested > self.reported:
            log.info("waiting for verification round %s before quitting", self.requested)
            self.wait_reported()
        if self.reported:
            # Locust rewrites its CSV files every CSV_STATS_INTERVAL_SEC: let it write the latest entries once more.
            gevent.sleep(CSV_STATS_INTERVAL_SEC * 1.5)

    def wait_reported(self) -> None:
        """Until the requested round is recorded (the reporter greenlet does it), or its deadline passes."""
        limit = time.monotonic() + self._round_limit_s()
        while self.reported < self.requested and time.monotonic() < limit:
            gevent.sleep(POLL_S / 2)
            self.report_once()

    def reporter(self) -> None:
        while True:
            self.report_once()
            gevent.sleep(POLL_S)

    def report_once(self) -> None:
        try:
            status = self.harness.status()
        except HarnessError as exc:
            log.debug("status: %s", exc)
            return
        number = int(status.get("round", 0))
        if number <= self.reported or status.get("phase") not in ("done", "error"):
            return
        self.reported = number
        self.requested = max(self.requested, number)
        for entry in verify_entries(status):
            self.environment.events.request.fire(
                request_type=REQUEST_TYPE,
                name=entry.name,
                response_time=entry.response_time_ms,
                response_length=0,
                response=None,
                context={},
                exception=VerificationFailed(entry.failure) if entry.failure else None,
                start_time=status.get("started_at"),
                url=None,
            )
        log.info("verification round %s: %s", number, status.get("verdict") or status.get("error"))

    def _round_limit_s(self) -> float:
        try:
            deadline = float(self.harness.status()["settings"]["deadline_s"])
        except (HarnessError, KeyError, TypeError, ValueError):
            deadline = 120.0
        return deadline + 120.0  # polling ends by the deadline; the reports take a little longer


class VerificationFailed(Exception):
    """A VERIFY entry's failure: the check's state and detail, shown in Locust's Failures tab."""


def _quits_after_test(environment: Environment) -> bool:
    options = environment.parsed_options
    if options is None:
        return False
    return bool(options.headless or (options.autostart and options.autoquit != -1))


@events.init.add_listener
def _install(environment: Environment, web_ui: WebUI | None = None, **_: Any) -> None:
    url = os.environ.get(HARNESS_URL_ENV)
    if not url or isinstance(environment.runner, WorkerRunner):
        return  # not under `tracedrill ui`, or a worker (the master records the entries)
    tab = VerificationTab(environment, Harness(url))
    if web_ui is not None:
        tab.install(web_ui)
    environment.events.test_stop.add_listener(tab.on_test_stop)
    environment.events.quitting.add_listener(tab.on_quitting)
    gevent.spawn(tab.reporter)
