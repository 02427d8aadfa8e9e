"""The harness's loopback API that the Verification tab's Locust plugin talks to.

``GET /status``  the verification board's snapshot (JSON)
``POST /verify`` body ``{"reason": "test-stop" | "verify-now"}``: start a verification round, or queue
                 one when a round is running; answers ``{"round": N, "queued": bool}`` (202)

Served on 127.0.0.1 only; it carries no secret (the board never holds one).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from typing import Any, Protocol

from werkzeug.wrappers import Request, Response

from emulators._wsgi import json_response
from tracedrill.verification_board import VerificationBoard

REASONS = ("test-stop", "verify-now")


class Rounds(Protocol):
    def request(self, reason: str) -> dict[str, Any]: ...


def create_app(board: VerificationBoard, rounds: Rounds) -> Callable[[dict[str, Any], Any], Iterable[bytes]]:
    def app(environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        request = Request(environ)
        response = _route(request, board, rounds)
        response.headers["Cache-Control"] = "no-store"
        return response(environ, start_response)

    return app


def _route(request: Request, board: VerificationBoard, rounds: Rounds) -> Response:
    if request.path == "/status":
        if request.method != "GET":
            return json_response({"error": "use GET"}, 405)
        return json_response(board.snapshot())
    if request.path == "/verify":
        if request.method != "POST":
            return json_response({"error": "use POST"}, 405)
        try:
            body = json.loads(request.get_data(cache=False) or b"{}")
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return json_response({"error": f"body is not valid JSON: {exc}"}, 400)
        reason = body.get("reason", "verify-now") if isinstance(body, dict) else None
        if reason not in REASONS:
            return json_response({"error": f"reason must be one of {', '.join(REASONS)}"}, 400)
        return json_response(rounds.request(reason), 202)
    return json_response({"error": f"no such route: {request.path}"}, 404)
