"""Send a synthetic run's telemetry to a backend through the public ingest APIs (also timed as ingest)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import requests

from bench import synthetic
from bench.backends import aws_client
from tracedrill import local
from verifiers.model import SentRequest

LOG_GROUP = local.DEFAULT_LOG_GROUP


def session() -> requests.Session:
    s = requests.Session()
    s.trust_env = False
    return s


def post_otlp(http: requests.Session, endpoint: str, batches: Sequence[bytes]) -> None:
    headers = {"Content-Type": "application/x-protobuf", "x-honeycomb-team": local.LOCAL_HONEYCOMB_KEY}
    for body in batches:
        answer = http.post(f"{endpoint}/v1/traces", data=body, headers=headers, timeout=120)
        if answer.status_code != 200:
            raise RuntimeError(f"OTLP ingest answered {answer.status_code}: {answer.text[:200]}")


def put_segments(client: Any, documents: Sequence[str], batch: int = 50) -> int:
    unprocessed = 0
    for i in range(0, len(documents), batch):
        answer = client.put_trace_segments(TraceSegmentDocuments=list(documents[i : i + batch]))
        unprocessed += len(answer.get("UnprocessedTraceSegments") or [])
    return unprocessed


def ensure_stream(client: Any, stream: str) -> None:
    for call, kwargs in (
        (client.create_log_group, {"logGroupName": LOG_GROUP}),
        (client.create_log_stream, {"logGroupName": LOG_GROUP, "logStreamName": stream}),
    ):
        try:
            call(**kwargs)
        except client.exceptions.ResourceAlreadyExistsException:
            pass


def put_logs(client: Any, stream: str, batches: Sequence[list[dict[str, object]]]) -> int:
    rejected = 0
    for events in batches:
        answer = client.put_log_events(logGroupName=LOG_GROUP, logStreamName=stream, logEvents=events)
        rejected += len(answer.get("rejectedLogEventsInfo") or {})
    return rejected


def post_rollbar(endpoint: str, payloads: Sequence[bytes], threads: int = 1) -> None:
    """POST item/ once per payload, like pyrollbar; ``threads`` senders at once."""
    local_state = threading.local()

    def send(body: bytes) -> None:
        http = getattr(local_state, "http", None)
        if http is None:
            http = local_state.http = session()
        answer = http.post(
            f"{endpoint}/api/1/item/",
            data=body,
            headers={"Content-Type": "application/json", "X-Rollbar-Access-Token": local.LOCAL_ROLLBAR_POST_TOKEN},
            timeout=60,
        )
        if answer.status_code != 200:
            raise RuntimeError(f"Rollbar ingest answered {answer.status_code}: {answer.text[:200]}")

    if threads == 1:
        for body in payloads:
            send(body)
        return
    with ThreadPoolExecutor(threads) as pool:
        for _ in pool.map(send, payloads):
            pass


def preload(endpoints: dict[str, str], sent: Sequence[SentRequest], progress: Callable[[str], None]) -> None:
    """Everything the target would have sent for ``sent``, to all four backends, in parallel per backend."""

    def honeycomb() -> None:
        post_otlp(session(), endpoints["honeycomb"], list(synthetic.otlp_batches(sent)))

    def xray() -> None:
        unprocessed = put_segments(aws_client("xray", endpoints["xray_api"]), synthetic.segment_documents(sent))
        if unprocessed:
            raise RuntimeError(f"X-Ray left {unprocessed} segments unprocessed")

    def logs() -> None:
        client = aws_client("logs", endpoints["cloudwatch_logs"])
        ensure_stream(client, "bench")
        if put_logs(client, "bench", list(synthetic.log_batches(synthetic.log_events(sent)))):
            raise RuntimeError("PutLogEvents rejected events")

    def rollbar() -> None:
        payloads = synthetic.rollbar_payloads(sent, local.LOCAL_ROLLBAR_POST_TOKEN, local.DEFAULT_ROLLBAR_ENVIRONMENT)
        post_rollbar(endpoints["rollbar"], payloads, threads=4)

    jobs = {"honeycomb": honeycomb, "xray": xray, "cloudwatch_logs": logs, "rollbar": rollbar}
    with ThreadPoolExecutor(len(jobs)) as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        for name, future in futures.items():
            future.result()
            progress(f"preloaded {name}")
