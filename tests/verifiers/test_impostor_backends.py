"""An endpoint that answers HTTP 200 with something no such service sends (an HTML page, a JSON null or
list: a proxy's login page, a wrong URL) is a read error naming the endpoint variable to check, on every
backend; never an empty answer that would blame the app for "missing" telemetry, nor a crash."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from emulators._server import serve
from tests.verifiers import EXP, HOME, ledger, window
from tests.verifiers.test_timeouts import _connections
from verifiers.base import ReadError, make_verifiers
from verifiers.model import Backend

BODIES = {
    "html": ("text/html", b"<html><body>Please sign in</body></html>"),
    "null": ("application/json", b"null"),
    "list": ("application/json", b"[1, 2, 3]"),
    "empty": ("application/json", b""),
}
VARIABLES = {
    "honeycomb": "HONEYCOMB_API_ENDPOINT",
    "xray": "AWS_ENDPOINT_URL_XRAY",
    "cloudwatch_logs": "AWS_ENDPOINT_URL_CLOUDWATCH_LOGS",
    "rollbar": "ROLLBAR_API_ENDPOINT",
}


def impostor(content_type: str, body: bytes) -> Callable[..., Any]:
    def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> list[bytes]:
        start_response("200 OK", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
        return [body]

    return app


@pytest.fixture(params=sorted(BODIES))
def impostor_url(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    running = serve("impostor", impostor(*BODIES[request.param]))
    try:
        yield running.url, request.param
    finally:
        running.stop()


@pytest.mark.parametrize("backend", sorted(VARIABLES))
def test_an_answer_no_such_service_sends_is_a_read_error_naming_the_endpoint(impostor_url, backend):
    url, kind = impostor_url
    (verifier,) = make_verifiers(_connections(url), EXP, backends=[backend])
    with pytest.raises(ReadError) as err:
        verifier.poll(window(ledger(HOME)))
    message = str(err.value)
    assert err.value.kind == "error" and VARIABLES[backend] in message, message
    assert "answered HTTP 200" in message and "s3cret" not in message


@pytest.mark.parametrize("backend", ["honeycomb", "rollbar"])
@pytest.mark.parametrize("body", [b"{}", b'{"status": "ok"}'])
def test_an_object_without_the_services_fields_is_not_an_empty_answer(backend: Backend, body: bytes) -> None:
    # Honeycomb and Rollbar always answer with their own fields (Rollbar: err and result); X-Ray and
    # CloudWatch Logs may leave an empty list out, so an object there is read as what it says.
    running = serve("impostor", impostor("application/json", body))
    try:
        (verifier,) = make_verifiers(_connections(running.url), EXP, backends=[backend])
        with pytest.raises(ReadError) as err:
            verifier.poll(window(ledger(HOME)))
    finally:
        running.stop()
    assert "a JSON object without the service's fields" in str(err.value) and VARIABLES[backend] in str(err.value)
