"""The emulators' HTTP server keeps connections alive (as the real services do) whenever the next request
on the connection can be read safely, and closes them otherwise or when it stops."""

from __future__ import annotations

import http.client
import json
import logging
import socket
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import pytest
from werkzeug.wrappers import Request, Response

import emulators._server as server_module
from emulators._server import ServedApp, serve

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


def app(environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
    """/echo answers the body it read; /ignore never reads it; /fail raises; /nodelay tells whether the
    server's socket sends small writes at once."""
    request = Request(environ)
    body: dict[str, Any]
    if request.path == "/fail":
        raise RuntimeError("the app failed")
    if request.path == "/nodelay":
        sock = environ["werkzeug.socket"]
        body = {"nodelay": bool(sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))}
    elif request.path == "/ignore":
        body = {"ignored": True}
    else:
        body = {"echo": request.get_data(as_text=True)}
    return Response(json.dumps(body), content_type="application/json")(environ, start_response)


@pytest.fixture
def served() -> Iterator[ServedApp]:
    running = serve("keepalive-test", app)
    try:
        yield running
    finally:
        running.stop()


def connect(served: ServedApp) -> http.client.HTTPConnection:
    return http.client.HTTPConnection("127.0.0.1", served.port, timeout=10)


def ask(
    conn: http.client.HTTPConnection, method: str, path: str, body: bytes | None = None, **headers: str
) -> tuple[http.client.HTTPResponse, Any]:
    conn.request(method, path, body=body, headers=headers)
    response = conn.getresponse()
    return response, json.loads(response.read())


def test_one_connection_serves_many_requests(served: ServedApp) -> None:
    conn = connect(served)
    _, first = ask(conn, "POST", "/echo", b"one")
    sock = conn.sock
    for i in range(5):
        response, answer = ask(conn, "POST", "/echo", f"body {i}".encode())
        assert response.status == 200 and answer == {"echo": f"body {i}"}
        assert response.getheader("Connection") is None
    assert first == {"echo": "one"} and sock is not None and conn.sock is sock  # never reconnected
    _, nodelay = ask(conn, "GET", "/nodelay")
    assert nodelay == {"nodelay": True}  # else Nagle holds each response's body back ~40 ms
    conn.close()


@pytest.mark.parametrize("in_one_packet", [True, False], ids=["buffered-with-headers", "still-in-socket"])
def test_a_body_the_app_never_read_does_not_leak_into_the_next_request(served: ServedApp, in_one_packet: bool) -> None:
    """The unread body (here: text that reads like requests) is skipped whether the server already holds it
    in its read buffer (sent with the headers) or it still waits in the socket."""
    body = b"GET /echo HTTP/1.1\r\nHost: x\r\n\r\n" * 50
    head = f"POST /ignore HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        if in_one_packet:
            sock.sendall(head + body)
        else:
            sock.sendall(head)
            sock.sendall(body)
        reader = sock.makefile("rb")
        assert read_json_response(reader) == {"ignored": True}
        time.sleep(0.05)  # past werkzeug's own 10 ms wait for leftovers: the server must have skipped them
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nnext")
        assert read_json_response(reader) == {"echo": "next"}


def read_json_response(reader: Any) -> Any:
    """One response off a kept-alive connection: status line, headers, then Content-Length bytes."""
    assert reader.readline().startswith(b"HTTP/1.1 200")
    length = None
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode().partition(":")
        if name.lower() == "content-length":
            length = int(value)
    assert length is not None
    return json.loads(reader.read(length))


def closed_by_server(conn: http.client.HTTPConnection, response: http.client.HTTPResponse) -> bool:
    return response.getheader("Connection") == "close" and conn.sock is None  # http.client closes on it


def test_the_client_may_ask_to_close(served: ServedApp) -> None:
    conn = connect(served)
    response, answer = ask(conn, "POST", "/echo", b"x", Connection="close")
    assert answer == {"echo": "x"} and closed_by_server(conn, response)


def test_an_http_1_0_client_gets_its_connection_closed(served: ServedApp) -> None:
    # HTTP/1.0 keeps a connection only when the answer says "Connection: keep-alive"; ours never does, so
    # the client reads to the end of the stream, which must come.
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
        sock.sendall(b"GET /echo HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.") and answer.endswith(b'{"echo": ""}')


@pytest.mark.parametrize("path", ["/echo", "/ignore"])
def test_a_body_cut_short_gets_an_answer_and_a_close_without_a_logged_error(
    served: ServedApp, path: str, caplog: pytest.LogCaptureFixture
) -> None:
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
        sock.sendall(f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\nabcdef".encode())
        sock.shutdown(socket.SHUT_WR)  # the client stops sending 994 bytes short
        answer = b""
        while chunk := sock.recv(65536):  # ends: the server closes the connection
            answer += chunk
    if path == "/echo":  # the app read the body: told what went wrong
        assert answer.startswith(b"HTTP/1.1 400") and answer.endswith(b"before its Content-Length\n")
    else:  # the app never read it: its answer stands
        assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b'{"ignored": true}')
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_conflicting_content_lengths_are_refused_and_close(served: ServedApp) -> None:
    # Which length holds is unknowable, so neither the body nor the next request can be found safely.
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 40\r\n\r\nab")
        answer = b""
        while chunk := sock.recv(65536):  # ends: the server closes the connection
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400") and b"conflicting Content-Length" in answer


@pytest.mark.parametrize("length", ["0_7", "+7", "7.0", "\u0667"])  # int() reads each of these as 7
def test_a_content_length_that_is_not_digits_is_refused(served: ServedApp, length: str) -> None:
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
        sock.sendall(f"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\nabcdefg".encode())
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 400"), answer[:80]


def test_a_repeated_equal_content_length_is_one_length(served: ServedApp) -> None:
    with socket.create_connection(("127.0.0.1", served.port), timeout=5) as sock:
        sock.sendall(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nab")
        assert read_json_response(sock.makefile("rb")) == {"echo": "ab"}


def test_a_chunked_body_closes_the_connection(served: ServedApp) -> None:
    conn = connect(served)
    conn.request("POST", "/echo", body=iter([b"ab", b"cd"]), encode_chunked=True)
    response = conn.getresponse()
    assert json.loads(response.read()) == {"echo": "abcd"} and closed_by_server(conn, response)


def test_a_body_too_big_to_drain_closes_the_connection(served: ServedApp, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(server_module, "MAX_DRAIN_BYTES", 10)
    conn = connect(served)
    response, answer = ask(conn, "POST", "/echo", b"x" * 11)
    assert answer == {"echo": "x" * 11} and closed_by_server(conn, response)


def test_a_failing_app_answers_500_and_closes(served: ServedApp) -> None:
    conn = connect(served)
    conn.request("POST", "/fail", body=b"x")
    response = conn.getresponse()
    response.read()
    assert response.status == 500
    assert conn.sock is not None
    conn.sock.settimeout(2)
    assert conn.sock.recv(1) == b""  # closed: after a failure the server does not trust the connection


def test_stopping_closes_kept_alive_connections() -> None:
    running = serve("keepalive-stop", app)
    conn = connect(running)
    ask(conn, "GET", "/echo")
    assert conn.sock is not None
    conn.sock.settimeout(5)
    running.stop()
    assert conn.sock.recv(1) == b""  # the server closed its end: a stopped emulator answers nothing more
