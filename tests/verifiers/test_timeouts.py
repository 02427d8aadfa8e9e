"""A backend that accepts connections and never answers fails a poll within a bounded time, on every
backend, so polling gives up at --deadline instead of hanging."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest

from tests.verifiers import EXP, HOME, ledger, window
from verifiers.base import ReadError, make_verifiers
from verifiers.connections import BOTO_TOTAL_ATTEMPTS, Connections, boto_config
from verifiers.polling import WaitSettings, poll_backend

TIMEOUT_S = 0.4


@pytest.fixture(scope="module")
def silent_url() -> Iterator[str]:
    """A loopback port that accepts every connection and never sends a byte."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.2)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            held.append(conn)  # kept open, never answered

    thread = threading.Thread(target=accept, name="silent-backend", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        thread.join(timeout=2)
        listener.close()
        for conn in held:
            conn.close()


def _connections(url: str) -> Connections:
    return Connections(
        honeycomb_api_key="k",
        rollbar_read_token="t",
        aws_region="us-east-1",
        aws_access_key_id="AKIDTEST",
        aws_secret_access_key="s3cret",
        honeycomb_api_url=url,
        xray_endpoint_url=url,
        logs_endpoint_url=url,
        rollbar_api_url=url + "/api/1/",
        connect_timeout_s=TIMEOUT_S,
        read_timeout_s=TIMEOUT_S,
    )


@pytest.mark.parametrize("backend", ["honeycomb", "xray", "cloudwatch_logs", "rollbar"])
def test_a_silent_backend_fails_the_poll_within_a_bounded_time(silent_url, backend):
    (verifier,) = make_verifiers(_connections(silent_url), EXP, backends=[backend])
    started = time.monotonic()
    with pytest.raises(ReadError) as err:
        verifier.poll(window(ledger(HOME)))
    took = time.monotonic() - started
    assert err.value.kind == "unreachable", err.value
    # boto3 retries a timeout (3 attempts and a jittered backoff under 1 + 2 s); HTTP tries once
    bound = BOTO_TOTAL_ATTEMPTS * TIMEOUT_S + 3.5 if backend in ("xray", "cloudwatch_logs") else 2 * TIMEOUT_S + 0.5
    assert took < bound, f"{backend} took {took:.1f} s"
    assert "s3cret" not in str(err.value)


def test_polling_a_silent_backend_ends_at_the_deadline(silent_url):
    (verifier,) = make_verifiers(_connections(silent_url), EXP, backends=["rollbar"])
    progress: list[str] = []
    started = time.monotonic()
    result = poll_backend(
        "rollbar",
        lambda: verifier.poll(window(ledger(HOME))),
        verifier.item_count,
        verifier.seen_request_ids,
        WaitSettings(settle_s=1, deadline_s=1.5, interval_s=0.1),
        lambda backend, message: progress.append(message),
    )
    took = time.monotonic() - started
    assert result.observation is None and result.failed_polls >= 1
    assert result.wait is not None and result.wait.ended_by == "deadline"
    assert took < 1.5 + TIMEOUT_S + 1.0
    assert "poll failed" in progress[0] and "timed out" in (result.error or "").lower()


def test_the_defaults_bound_every_call():
    config = boto_config()
    assert config.connect_timeout == 5.0 and config.read_timeout == 15.0
    assert config.retries == {"mode": "standard", "total_max_attempts": BOTO_TOTAL_ATTEMPTS}
    api = Connections().http_api("https://api.honeycomb.io", {})
    assert api._timeout == (5.0, 15.0)  # requests waits forever without one
