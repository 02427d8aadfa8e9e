"""A no-op HTTP/1.1 server (asyncio, keep-alive): every GET answers a tiny body at once.

Fast enough that a Locust process, not the server, is what runs out of CPU, so two locustfiles
can be compared by the req/s each gets out of one Locust process. It answers like the bundled
target app when healthy, so the drill's locustfile meets no failure and reads the response headers
it reads there: each path gets the ``expected_status`` of the drill locustfile's route (read from its
source: 422 for the invalid handle, 500 for the fault route; 200 for any other path), and every
answer carries a W3C ``traceresponse`` (the request's trace id when it sent a traceparent) and
``X-Tracedrill-Process``. Prints its port, then serves until stdin closes.
``python -m bench.noop_server [--always-200]`` (``--always-200``: every path answers 200, so the
drill locustfile's routes that expect 422 or 500 fail, as against a broken app).
"""

from __future__ import annotations

import asyncio
import os
import sys
from http import HTTPStatus
from pathlib import Path

from verifiers.budget.traffic import read_locustfile

DRILL_LOCUSTFILE = Path(__file__).resolve().parent.parent / "loadtests" / "locustfile.py"
_TRACEPARENT = b"\r\ntraceparent: 00-"  # how Locust's FastHttpUser sends the drill's header
_OWN_TRACE_ID = b"%032x" % 0x5F5E1000_00000000_00000000_00000001  # for requests without a traceparent
_SPAN_ID = b"00f067aa0ba902b7"  # the server span's id, as the app would answer it (nobody reads it)


def status_line(status: int) -> bytes:
    return f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\n".encode()


def statuses_by_path(locustfile: Path = DRILL_LOCUSTFILE) -> dict[bytes, bytes]:
    """The status line of every path whose healthy status is not 200."""
    routes = read_locustfile(locustfile).routes
    return {r.path.encode(): status_line(r.status) for r in routes if r.status is not None and r.status != 200}


class NoOp(asyncio.Protocol):
    def __init__(self, statuses: dict[bytes, bytes], process: bytes) -> None:
        self.statuses = statuses
        self.tail = b"X-Tracedrill-Process: " + process + b"\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"
        self.buffer = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        # Requests without bodies: each header block ends with a blank line.
        *requests, self.buffer = self.buffer.split(b"\r\n\r\n")
        if requests:
            self.transport.write(b"".join(self.answer(r) for r in requests))

    def answer(self, request: bytes) -> bytes:
        parts = request.split(b" ", 2)  # the request line is "GET /path HTTP/1.1"
        status = self.statuses.get(parts[1], OK) if len(parts) > 1 else OK
        at = request.find(_TRACEPARENT)
        trace_id = request[at + len(_TRACEPARENT) :][:32] if at >= 0 else _OWN_TRACE_ID
        return status + b"traceresponse: 00-" + trace_id + b"-" + _SPAN_ID + b"-01\r\n" + self.tail


OK = status_line(200)


async def serve(always_200: bool) -> None:
    loop = asyncio.get_running_loop()
    statuses = {} if always_200 else statuses_by_path()
    process = f"noop:{os.getpid()}".encode()
    server = await loop.create_server(lambda: NoOp(statuses, process), "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()
    await loop.run_in_executor(None, sys.stdin.read)  # returns when the parent closes stdin
    server.close()


if __name__ == "__main__":
    asyncio.run(serve(always_200="--always-200" in sys.argv[1:]))
