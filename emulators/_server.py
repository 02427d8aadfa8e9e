"""Serve a WSGI app on a loopback port from a background thread."""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import BaseWSGIServer, WSGIRequestHandler, make_server


class _QuietHandler(WSGIRequestHandler):
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
        return int(self.server.server_port)

    @property
    def url(self) -> str:
        host = self.server.server_address[0]
        if ":" in str(host):
            host = f"[{host}]"
        return f"http://{host}:{self.port}"

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=5)


def serve(name: str, app: Any, host: str = "127.0.0.1", port: int = 0) -> ServedApp:
    """Start ``app`` on ``host:port`` (0 picks a free port) in a daemon thread."""
    server = make_server(host, port, app, threaded=True, request_handler=_QuietHandler)
    thread = threading.Thread(target=server.serve_forever, name=f"emulator-{name}", daemon=True)
    thread.start()
    return ServedApp(name=name, server=server, thread=thread)
