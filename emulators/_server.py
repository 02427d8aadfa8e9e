"""Serve a WSGI app on a loopback port from a background thread.

Connections are kept alive (HTTP/1.1), as the real services' endpoints do: werkzeug's development
server closes every connection after one response, so each request of a client (boto3, requests)
paid for a new TCP connection, a new server thread and that thread's new SQLite connection.
"""

from __future__ import annotations

import logging
import socket
import sys
import threading
from dataclasses import dataclass, field
from typing import IO, Any, cast

from werkzeug.exceptions import ClientDisconnected
from werkzeug.serving import BaseWSGIServer, ThreadedWSGIServer, WSGIRequestHandler
from werkzeug.wsgi import LimitedStream

# A request body the app left unread is read and discarded up to this size before the next request on
# the connection; a bigger one gets "Connection: close" instead (werkzeug's own handling).
MAX_DRAIN_BYTES = 10_000_000

_request_failed = threading.local()  # set by _Server.log when the app raised while this thread served it


class _Body(LimitedStream):
    """One request's body on a kept-alive connection: reads end at its Content-Length, and a read asking
    for more (werkzeug discards leftovers with read(10 MB)) allocates only what is left."""

    disconnected = False  # the client stopped sending before its Content-Length

    def read(self, size: int | None = -1) -> bytes:
        remaining = self.limit - self.tell()
        if size is None or size < 0 or size > remaining:
            size = remaining
        try:
            return super().read(size) if size > 0 else b""
        except ClientDisconnected:
            # The app sees a short body (and answers it as malformed, 400) rather than an exception and a
            # 500 with a logged traceback; the connection then closes.
            self.disconnected = True
            return b""


class QuietHandler(WSGIRequestHandler):
    """Werkzeug's handler without a log line per request (an emulator under load must not log each),
    and keeping the connection open after a response whenever the next request can be read safely."""

    def setup(self) -> None:
        super().setup()
        # werkzeug sends a response's headers and body in separate writes: on a kept-alive connection,
        # Nagle's algorithm would hold the body back until the client's (delayed) ACK, ~40 ms a request.
        self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return

    def log(self, type: str, message: str, *args: Any) -> None:
        if type == "error":
            logging.getLogger("tracedrill.emulators").error(message, *args)

    def run_wsgi(self) -> None:
        lengths = [value.strip() for value in self.headers.get_all("Content-Length", [])]
        # RFC 9112 6.3: a length that is not digits (Python's int() also takes "0_7" and "+7"), or differing
        # lengths, make the message unreadable: where it ends is unknown.
        if not all(value.isascii() and value.isdigit() for value in lengths) or len({int(v) for v in lengths}) > 1:
            self.close_connection = True
            self.send_error(400, "invalid or conflicting Content-Length headers")
            return
        body = self._body()
        if body is None:
            super().run_wsgi()
            return
        connection = self.rfile
        # werkzeug's wsgi.input is self.rfile, and after the response it discards whatever the socket
        # still holds, which on a kept-alive connection can be the next request: both see only this body.
        self.rfile = body  # type: ignore[assignment]
        self._keep_alive = True
        _request_failed.value = False
        try:
            super().run_wsgi()
            body.exhaust()  # the unread rest of this body, so that the next request starts where it should
            if body.disconnected:
                self.close_connection = True
        except (ClientDisconnected, OSError):
            self.close_connection = True
        finally:
            self.rfile = connection
            self._keep_alive = False  # http.server's own error answers (a malformed request) still close
        if _request_failed.value:
            self.close_connection = True  # the app raised: its response may be cut short

    def _body(self) -> _Body | None:
        """This request's body, limited to its Content-Length; None when the connection must close after
        the response: the client asked for it or speaks HTTP/1.0, or the body's end cannot be found cheaply
        (chunked, or a malformed or huge Content-Length)."""
        # HTTP/1.0 keeps a connection only with "Connection: keep-alive" in the answer, which we never send.
        if self.close_connection or self.request_version != "HTTP/1.1" or "Transfer-Encoding" in self.headers:
            return None
        raw = self.headers.get("Content-Length")
        try:
            length = 0 if raw is None else int(raw.strip())
        except ValueError:
            return None
        return _Body(cast(IO[bytes], self.rfile), length) if 0 <= length <= MAX_DRAIN_BYTES else None

    def send_header(self, keyword: str, value: str) -> None:
        # werkzeug sends "Connection: close" with every response; a kept-alive connection must not.
        if keyword.lower() == "connection" and value.lower() == "close" and getattr(self, "_keep_alive", False):
            return
        super().send_header(keyword, value)


class _Server(ThreadedWSGIServer):
    """Werkzeug's threaded server that also knows its open connections, so that stopping it closes the
    kept-alive ones too (a stopped emulator must not go on answering on them)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def log(self, type: str, message: str, *args: Any) -> None:
        if type == "error":
            _request_failed.value = True
        super().log(type, message, *args)

    def close_connections(self) -> None:
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            try:
                connection.shutdown(socket.SHUT_RDWR)  # its thread's next read ends, and the thread with it
            except OSError:
                pass


@dataclass
class ServedApp:
    """A running server: ``url`` is what clients use; ``stop()`` shuts it down."""

    name: str
    server: BaseWSGIServer
    thread: threading.Thread = field(repr=False)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    @property
    def url(self) -> str:
        raw = self.server.server_address[0]
        host = raw.decode() if isinstance(raw, bytes) else str(raw)
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        if isinstance(self.server, _Server):
            self.server.close_connections()
        self.server.server_close()
        self.thread.join(timeout=5)


_SHORT_BODY = b"the request body ended before its Content-Length\n"


def _answering_short_bodies(app: Any) -> Any:
    """``app`` answering 400 when the client stopped sending before its Content-Length (werkzeug raises
    ClientDisconnected in the app's read, which would otherwise be a 500 and a logged traceback)."""

    def answer(environ: dict[str, Any], start_response: Any) -> Any:
        try:
            return app(environ, start_response)
        except ClientDisconnected:
            headers = [("Content-Type", "text/plain; charset=utf-8"), ("Content-Length", str(len(_SHORT_BODY)))]
            # exc_info: replaces what the app may have set, as long as nothing was sent yet.
            start_response("400 Bad Request", headers + [("Connection", "close")], sys.exc_info())
            return [_SHORT_BODY]

    return answer


def serve(
    name: str, app: Any, host: str = "127.0.0.1", port: int = 0, family: socket.AddressFamily | None = None
) -> ServedApp:
    """Start ``app`` on ``host:port`` (0 picks a free port) in a daemon thread.

    The socket is bound here, not by werkzeug: werkzeug prints and calls ``sys.exit`` when a port is
    taken, and a busy port must be an ``OSError`` the caller can report or retry.
    """
    if family is None:
        family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listener = socket.socket(family, socket.SOCK_STREAM)
    try:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((host, port))
        listener.listen(128)
        server = _Server(host, port, _answering_short_bodies(app), QuietHandler, fd=listener.fileno())
    finally:
        listener.close()  # the server holds its own duplicate of the descriptor
    # A short poll interval so stop() returns promptly (the default 0.5 s adds up across tests).
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"emulator-{name}", daemon=True
    )
    thread.start()
    return ServedApp(name=name, server=server, thread=thread)
