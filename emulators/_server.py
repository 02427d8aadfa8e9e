"""Serve a WSGI app on a loopback port from a background thread."""

from __future__ import annotations

import logging
import socket
import threading
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server


class QuietHandler(WSGIRequestHandler):
    """Werkzeug logs every request to stderr; an emulator under load must not."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        return

    def log(self, type: str, message: str, *args: Any) -> None:
        if type == "error":
            logging.getLogger("tracedrill.emulators").error(message, *args)


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
        self.server.server_close()
        self.thread.join(timeout=5)


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
        server = make_server(host, port, app, threaded=True, request_handler=QuietHandler, fd=listener.fileno())
    finally:
        listener.close()  # the server holds its own duplicate of the descriptor
    # A short poll interval so stop() returns promptly (the default 0.5 s adds up across tests).
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, name=f"emulator-{name}", daemon=True
    )
    thread.start()
    return ServedApp(name=name, server=server, thread=thread)
