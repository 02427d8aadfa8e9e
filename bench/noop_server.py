"""A no-op HTTP/1.1 server (asyncio, keep-alive): every GET answers 200 "ok".

Fast enough that a Locust process, not the server, is what runs out of CPU, so two locustfiles
can be compared by the req/s each gets out of one Locust process. Prints its port, then serves
until stdin closes. ``python -m bench.noop_server``
"""

from __future__ import annotations

import asyncio
import sys

RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 2\r\n\r\nok"


class NoOp(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        # Requests without bodies: each header block ends with a blank line.
        count = self.buffer.count(b"\r\n\r\n")
        if count:
            self.buffer = self.buffer[self.buffer.rfind(b"\r\n\r\n") + 4 :]
            self.transport.write(RESPONSE * count)


async def serve() -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(NoOp, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    sys.stdout.write(f"{port}\n")
    sys.stdout.flush()
    await loop.run_in_executor(None, sys.stdin.read)  # returns when the parent closes stdin
    server.close()


if __name__ == "__main__":
    asyncio.run(serve())
