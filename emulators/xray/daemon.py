"""A stand-in for the AWS X-Ray daemon: UDP segment relay plus TCP sampling proxy on one port.

UDP: every datagram is ``{"format":"json","version":1}`` + newline + one segment document (what
the SDKs' UDP emitters send). A dedicated thread only moves datagrams from a large socket
buffer into memory, so a burst is not dropped while batches are being uploaded. A second thread
checks the header and the JSON (a bad header, bad JSON or a document over 64 KB is *rejected*,
counted and logged at debug), then batches documents: a batch (at most 50, like the real
daemon) goes out when full or when its oldest document has waited ``flush_interval`` seconds.
Sender threads upload batches with boto3 ``put_trace_segments`` to ``xray_endpoint`` (``None``
= the real X-Ray endpoint of ``region``); UnprocessedTraceSegments count as rejected.

TCP: the signing proxy of :mod:`emulators.xray.daemon_proxy` (the SDK's sampling poller).

Credentials: the explicit ``credentials`` argument, else the environment's (botocore chain);
when there are none and a custom endpoint is set (the local stack), the local stack's
non-secret credentials, since the emulator only checks that a signature is present.

Run on its own: ``python -m emulators.xray.daemon --help``.
"""

from __future__ import annotations

import argparse
import errno
import logging
import os
import queue
import signal
import socket
import threading
import time
from collections import Counter
from typing import Any

import boto3
from botocore.config import Config
from botocore.credentials import Credentials

from emulators._json import strict_loads
from emulators._server import ServedApp, serve
from emulators.xray.daemon_proxy import SigningProxy
from tracedrill import local

log = logging.getLogger("tracedrill.emulators.xray.daemon")

MAX_BATCH_SIZE = 50
MAX_SEGMENT_BYTES = 64 * 1024
RECEIVE_BUFFER_BYTES = 16 * 1024 * 1024
_MAX_DATAGRAM = 65536
_BIND_ATTEMPTS = 20
_STOP = object()


class XRayDaemon:
    def __init__(
        self,
        host: str = local.LOCAL_HOST,
        port: int = 2000,
        xray_endpoint: str | None = None,
        region: str = local.LOCAL_AWS_REGION,
        *,
        flush_interval: float = 1.0,
        batch_size: int = MAX_BATCH_SIZE,
        max_segment_bytes: int = MAX_SEGMENT_BYTES,
        receive_buffer_bytes: int = RECEIVE_BUFFER_BYTES,
        sender_threads: int = 2,
        credentials: Credentials | None = None,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"batch_size must be 1-{MAX_BATCH_SIZE}")
        self.host = host
        self.port = port
        self.xray_endpoint = xray_endpoint
        self.region = region
        self.flush_interval = flush_interval
        self.batch_size = batch_size
        self.max_segment_bytes = max_segment_bytes
        self.receive_buffer_bytes = receive_buffer_bytes
        self.sender_threads = sender_threads
        self._explicit_credentials = credentials
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()
        self._inbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._outbox: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._udp: socket.socket | None = None
        self._tcp: ServedApp | None = None
        self._proxy: SigningProxy | None = None
        self._bound_port: int | None = None

    # ------------------------------------------------------------ lifecycle

    @property
    def address(self) -> str:
        """``host:port`` the SDK should use (AWS_XRAY_DAEMON_ADDRESS); UDP and TCP share the port."""
        if self._bound_port is None:
            raise RuntimeError("the X-Ray daemon is not started")
        return f"{self.host}:{self._bound_port}"

    def start(self) -> None:
        if self._udp is not None:
            return
        session = self._session()
        client = session.client(
            "xray",
            endpoint_url=self.xray_endpoint,
            config=Config(
                retries={"max_attempts": 3, "mode": "standard"},
                connect_timeout=3,
                read_timeout=30,
                max_pool_connections=self.sender_threads + 1,
            ),
        )
        self._proxy = SigningProxy(client.meta.endpoint_url, self.region, session.get_credentials)
        self._udp, self._tcp = self._bind(self._proxy)
        self._bound_port = self._udp.getsockname()[1]
        self._stopping.clear()
        self._threads = [
            threading.Thread(target=self._receive, name="xray-daemon-receive", daemon=True),
            threading.Thread(target=self._batch, name="xray-daemon-batch", daemon=True),
        ] + [
            threading.Thread(target=self._send, args=(client,), name=f"xray-daemon-send-{i}", daemon=True)
            for i in range(self.sender_threads)
        ]
        for thread in self._threads:
            thread.start()
        log.info(
            "X-Ray daemon listening on %s (UDP and TCP), relaying to %s",
            self.address,
            self.xray_endpoint or client.meta.endpoint_url,
        )

    def stop(self, timeout: float = 30.0) -> None:
        """Stop receiving, upload everything already received, then close the sockets."""
        if self._udp is None:
            return
        self._stopping.set()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        if self._tcp is not None:
            self._tcp.stop()
        if self._proxy is not None:
            with self._lock:
                self._counts["proxied"] = self._proxy.proxied
                self._counts["proxy_errors"] = self._proxy.errors
            self._proxy.close()
        self._udp.close()
        self._udp = self._tcp = self._proxy = None
        self._threads = []

    def stats(self) -> dict[str, int]:
        """received = forwarded + rejected + failed + pending; rejected splits into the *_reasons below."""
        with self._lock:
            counts = dict(self._counts)
        out = {
            key: counts.get(key, 0)
            for key in (
                "received",
                "forwarded",
                "rejected",
                "failed",
                "batches",
                "invalid_header",
                "invalid_json",
                "oversize",
                "unprocessed",
            )
        }
        out["pending"] = out["received"] - out["forwarded"] - out["rejected"] - out["failed"]
        out["proxied"] = self._proxy.proxied if self._proxy else counts.get("proxied", 0)
        out["proxy_errors"] = self._proxy.errors if self._proxy else counts.get("proxy_errors", 0)
        return out

    def __enter__(self) -> XRayDaemon:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------ setup

    def _session(self) -> boto3.session.Session:
        """Where uploads and signatures get their credentials (refreshable ones stay refreshable)."""
        credentials = self._explicit_credentials
        if credentials is None:
            session = boto3.session.Session(region_name=self.region)
            if session.get_credentials() is not None:
                return session
            if self.xray_endpoint is None:
                log.warning("no AWS credentials found: uploads and sampling requests to X-Ray will fail")
                return session
            log.info("no AWS credentials in the environment; signing with the local stack's non-secret ones")
            credentials = Credentials(local.LOCAL_AWS_ACCESS_KEY_ID, local.LOCAL_AWS_SECRET_ACCESS_KEY)
        frozen = credentials.get_frozen_credentials()
        return boto3.session.Session(
            aws_access_key_id=frozen.access_key,
            aws_secret_access_key=frozen.secret_key,
            aws_session_token=frozen.token,
            region_name=self.region,
        )

    def _bind(self, proxy: SigningProxy) -> tuple[socket.socket, ServedApp]:
        """UDP first, then TCP on the same port; with port 0 retry when TCP finds the port taken."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        for _ in range(_BIND_ATTEMPTS):
            udp = socket.socket(family, socket.SOCK_DGRAM)
            self._enlarge_buffer(udp)
            try:
                udp.bind((self.host, self.port))
            except OSError as exc:
                udp.close()
                raise OSError(
                    exc.errno, f"X-Ray daemon cannot bind UDP {self.host}:{self.port}: {exc.strerror}"
                ) from exc
            port = udp.getsockname()[1]
            try:
                return udp, _serve_tcp(self.host, port, family, proxy)
            except OSError as exc:
                udp.close()
                if self.port != 0 or exc.errno != errno.EADDRINUSE:
                    raise OSError(
                        exc.errno, f"X-Ray daemon cannot bind TCP {self.host}:{port}: {exc.strerror}"
                    ) from exc
        raise OSError(errno.EADDRINUSE, f"no port on {self.host} was free for both UDP and TCP")

    def _enlarge_buffer(self, udp: socket.socket) -> None:
        # SO_RCVBUFFORCE passes net.core.rmem_max when privileged; otherwise the kernel caps SO_RCVBUF.
        for option in (getattr(socket, "SO_RCVBUFFORCE", None), socket.SO_RCVBUF):
            if option is None:
                continue
            try:
                udp.setsockopt(socket.SOL_SOCKET, option, self.receive_buffer_bytes)
                break
            except OSError:
                continue
        log.debug("X-Ray daemon UDP receive buffer: %d bytes", udp.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF))

    # ------------------------------------------------------------ threads

    def _receive(self) -> None:
        udp = self._udp
        assert udp is not None
        udp.settimeout(0.2)
        while not self._stopping.is_set():
            try:
                datagram = udp.recv(_MAX_DATAGRAM)
            except TimeoutError:
                continue
            except OSError:
                break
            self._count("received")
            self._inbox.put(datagram)
        udp.setblocking(False)  # drain what the kernel still holds before stopping
        while True:
            try:
                datagram = udp.recv(_MAX_DATAGRAM)
            except OSError:
                break
            self._count("received")
            self._inbox.put(datagram)
        self._inbox.put(_STOP)

    def _batch(self) -> None:
        pending: list[str] = []
        oldest = 0.0
        while True:
            timeout = max(0.0, oldest + self.flush_interval - time.monotonic()) if pending else None
            try:
                item = self._inbox.get(timeout=timeout)
            except queue.Empty:
                pending = self._flush(pending)
                continue
            if item is _STOP:
                self._flush(pending)
                break
            document = self._parse(item)
            if document is None:
                continue
            if not pending:
                oldest = time.monotonic()
            pending.append(document)
            if len(pending) >= self.batch_size or time.monotonic() - oldest >= self.flush_interval:
                pending = self._flush(pending)
        for _ in range(self.sender_threads):
            self._outbox.put(_STOP)

    def _parse(self, datagram: bytes) -> str | None:
        header, newline, payload = datagram.partition(b"\n")
        try:
            fields = strict_loads(header) if newline else None
        except ValueError:
            fields = None
        if not isinstance(fields, dict) or fields.get("format") != "json" or fields.get("version") != 1:
            self._reject("invalid_header", "Invalid header: %r", header[:100])
            return None
        if len(payload) > self.max_segment_bytes:
            self._reject("oversize", "segment of %d bytes exceeds %d", len(payload), self.max_segment_bytes)
            return None
        try:
            text = payload.decode("utf-8")
            if not isinstance(strict_loads(text), dict):
                raise ValueError("not a JSON object")
        except ValueError as exc:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
            self._reject("invalid_json", "segment is not a JSON object: %s", exc)
            return None
        return text

    def _reject(self, reason: str, message: str, *args: Any) -> None:
        log.debug("X-Ray daemon rejected a datagram: " + message, *args)
        with self._lock:
            self._counts["rejected"] += 1
            self._counts[reason] += 1

    def _flush(self, pending: list[str]) -> list[str]:
        if pending:
            self._outbox.put(pending)
        return []

    def _send(self, client: Any) -> None:
        while True:
            batch = self._outbox.get()
            if batch is _STOP:
                return
            try:
                answer = client.put_trace_segments(TraceSegmentDocuments=batch)
            except Exception as exc:  # any failure of one batch must not stop the relay
                log.warning("PutTraceSegments failed for %d segments: %s", len(batch), exc)
                with self._lock:
                    self._counts["failed"] += len(batch)
                    self._counts["batches"] += 1
                continue
            unprocessed = answer.get("UnprocessedTraceSegments") or []
            for item in unprocessed:
                log.debug(
                    "X-Ray rejected segment %s: %s %s", item.get("Id"), item.get("ErrorCode"), item.get("Message")
                )
            with self._lock:
                self._counts["batches"] += 1
                self._counts["forwarded"] += len(batch) - len(unprocessed)
                self._counts["rejected"] += len(unprocessed)
                self._counts["unprocessed"] += len(unprocessed)

    def _count(self, key: str) -> None:
        with self._lock:
            self._counts[key] += 1


def _serve_tcp(host: str, port: int, family: socket.AddressFamily, app: SigningProxy) -> ServedApp:
    return serve("xray-daemon", app, host=host, port=port, family=family)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m emulators.xray.daemon",
        description="X-Ray daemon stand-in: receives segments on UDP and relays them to the X-Ray API in "
        "batches of 50; proxies the SDK's sampling calls (GetSamplingRules, SamplingTargets) from "
        "the same TCP port, signed with SigV4. Stops cleanly (flushing) on Ctrl-C or SIGTERM.",
    )
    parser.add_argument("--host", default=local.LOCAL_HOST, help="address to bind (default %(default)s)")
    parser.add_argument(
        "--port",
        type=int,
        default=2000,
        help="UDP and TCP port, like AWS_XRAY_DAEMON_ADDRESS (default %(default)s; 0 = any free port)",
    )
    parser.add_argument("-b", "--bind", metavar="HOST:PORT", help="host and port in one, like the real daemon's -b")
    parser.add_argument(
        "--xray-endpoint",
        "-e",
        default=None,
        help="X-Ray API URL, e.g. the local emulator http://127.0.0.1:4567 "
        "(default: the real X-Ray endpoint of --region)",
    )
    parser.add_argument(
        "--region",
        "-n",
        default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or local.LOCAL_AWS_REGION,
        help="AWS region (default: AWS_REGION / AWS_DEFAULT_REGION, else %(default)s)",
    )
    parser.add_argument(
        "--flush-interval",
        type=float,
        default=1.0,
        help="seconds a received segment may wait for its batch to fill (default %(default)s)",
    )
    parser.add_argument(
        "--log-level",
        "-l",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="log level (default %(default)s)",
    )
    args = parser.parse_args(argv)
    host, port = args.host, args.port
    if args.bind:
        host, _, port_text = args.bind.rpartition(":")
        try:
            port = int(port_text)
        except ValueError:
            parser.error(f"--bind takes HOST:PORT, not {args.bind!r}")
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    daemon = XRayDaemon(
        host=host or local.LOCAL_HOST,
        port=port,
        xray_endpoint=args.xray_endpoint,
        region=args.region,
        flush_interval=args.flush_interval,
    )
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    daemon.start()
    stop.wait()
    daemon.stop()
    log.info("X-Ray daemon stopped: %s", daemon.stats())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
