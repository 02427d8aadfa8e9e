"""The CloudWatch Logs emulator through its public API only: the real watchtower handler and boto3 write,
boto3 (and raw awsJson1.1 HTTP for malformed requests) reads back."""

from __future__ import annotations

import json
import logging
import math
import os
import platform
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
import requests
import watchtower
from botocore.config import Config
from botocore.exceptions import ClientError

from emulators._server import ServedApp, serve
from emulators.cloudwatch_logs.api import LogsSettings, create_app
from emulators.cloudwatch_logs.filter_pattern import FilterPatternError, compile_filter_pattern
from emulators.cloudwatch_logs.store import LogsStore
from tracedrill import local

DAY_MS = 86_400_000
HOUR_MS = 3_600_000
MB = 1_048_576


def now_ms() -> int:
    return int(time.time() * 1000)


def make_client(url: str, region: str = local.LOCAL_AWS_REGION, **config: Any) -> Any:
    return boto3.client(
        "logs",
        endpoint_url=url,
        region_name=region,
        aws_access_key_id=local.LOCAL_AWS_ACCESS_KEY_ID,
        aws_secret_access_key=local.LOCAL_AWS_SECRET_ACCESS_KEY,
        config=Config(**config) if config else None,
    )


def error_code(info: pytest.ExceptionInfo[ClientError]) -> str:
    return str(info.value.response["Error"]["Code"])


class Emulator:
    """One emulator on a free loopback port over a SQLite file; ``restart`` reopens the same file."""

    def __init__(self, path: Path, settings: LogsSettings) -> None:
        self.path = path
        self.settings = settings
        self.served: ServedApp = serve("cloudwatch_logs", create_app(LogsStore(path), settings))
        self.client = make_client(self.url)

    @property
    def url(self) -> str:
        return self.served.url

    def restart(self) -> None:
        self.served.stop()
        self.served = serve("cloudwatch_logs", create_app(LogsStore(self.path), self.settings))
        self.client = make_client(self.url)


@pytest.fixture
def start_emulator(tmp_path: Path) -> Iterator[Callable[..., Emulator]]:
    started: list[Emulator] = []

    def start(**settings: Any) -> Emulator:
        settings.setdefault("filter_log_events_per_second", 0)  # throttling has its own test
        emulator = Emulator(tmp_path / f"logs-{len(started)}.sqlite3", LogsSettings(**settings))
        started.append(emulator)
        return emulator

    yield start
    for emulator in started:
        emulator.served.stop()


@pytest.fixture
def emulator(start_emulator: Callable[..., Emulator]) -> Emulator:
    return start_emulator()


@pytest.fixture
def logs(emulator: Emulator) -> Any:
    return emulator.client


def make_stream(client: Any, group: str = "cruddur", stream: str = "s1") -> None:
    try:
        client.create_log_group(logGroupName=group)
    except client.exceptions.ResourceAlreadyExistsException:
        pass
    client.create_log_stream(logGroupName=group, logStreamName=stream)


def all_filtered(client: Any, **kwargs: Any) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    for page in client.get_paginator("filter_log_events").paginate(**kwargs):
        events.extend(page["events"])
    return events


# -- watchtower (the real handler the target app uses) --------------------------------------------------------


def watchtower_logger(client: Any, name: str) -> tuple[logging.Logger, watchtower.CloudWatchLogHandler]:
    handler = watchtower.CloudWatchLogHandler(
        log_group_name="cruddur", boto3_client=client, create_log_stream=True, send_interval=60
    )
    logger = logging.getLogger(name)
    logger.propagate = False
    logger.setLevel(logging.INFO)
    logger.addHandler(handler)
    return logger, handler


def test_watchtower_lines_arrive_in_the_lazily_created_stream_on_flush(logs: Any) -> None:
    name = f"app-{uuid.uuid4().hex[:6]}"
    logger, handler = watchtower_logger(logs, name)
    try:
        assert [g["logGroupName"] for g in logs.describe_log_groups()["logGroups"]] == ["cruddur"]
        lines = [f"GET /api/activities/home 200 request_id=req-{i:04d}" for i in range(300)]
        for line in lines:
            logger.info(line)
        # Nothing is sent before the batch is due: the stream does not exist yet.
        assert logs.describe_log_streams(logGroupName="cruddur")["logStreams"] == []

        handler.flush()

        streams = logs.describe_log_streams(logGroupName="cruddur")["logStreams"]
        expected_stream = f"{platform.node()}/{sys.argv[0].replace(':', '')}/{name}/{os.getpid()}"
        assert [s["logStreamName"] for s in streams] == [expected_stream]
        got = logs.get_log_events(logGroupName="cruddur", logStreamName=expected_stream, startFromHead=True)
        assert [e["message"] for e in got["events"]] == lines
        assert [e["message"] for e in all_filtered(logs, logGroupName="cruddur")] == lines
        one = all_filtered(logs, logGroupName="cruddur", filterPattern='"request_id=req-0042"')
        assert [e["message"] for e in one] == [lines[42]]
        assert streams[0]["firstEventTimestamp"] <= streams[0]["lastEventTimestamp"] <= streams[0]["lastIngestionTime"]
    finally:
        handler.close()


def test_watchtower_flush_twice_then_close_delivers_everything_once(logs: Any) -> None:
    logger, handler = watchtower_logger(logs, f"app-{uuid.uuid4().hex[:6]}")
    sent = []
    for round_number in range(3):
        for i in range(50):
            line = f"round={round_number} line={i}"
            sent.append(line)
            logger.warning(line)
        if round_number < 2:
            handler.flush()
            assert len(all_filtered(logs, logGroupName="cruddur")) == len(sent)
    handler.close()
    assert [e["message"] for e in all_filtered(logs, logGroupName="cruddur")] == sent

    with pytest.warns(watchtower.WatchtowerWarning, match="after logging system shutdown"):
        logger.warning("too late")
    assert len(all_filtered(logs, logGroupName="cruddur")) == len(sent)


def test_watchtower_structured_messages_are_found_by_json_patterns(logs: Any) -> None:
    logger, handler = watchtower_logger(logs, f"app-{uuid.uuid4().hex[:6]}")
    for i in range(20):
        logger.info({"request_id": f"r{i}", "status": 500 if i % 5 == 0 else 200, "latency_ms": i * 10})
    handler.close()
    errors = all_filtered(logs, logGroupName="cruddur", filterPattern="{ $.status >= 500 && $.latency_ms > 0 }")
    assert [json.loads(e["message"])["request_id"] for e in errors] == ["r5", "r10", "r15"]


# -- PutLogEvents limits -------------------------------------------------------------------------------------


def test_put_log_events_batch_size_counts_utf8_bytes_plus_26_per_event(logs: Any) -> None:
    make_stream(logs)
    ts = now_ms()
    half = MB // 2 - 26
    exact = [{"timestamp": ts, "message": "a" * half}, {"timestamp": ts, "message": "b" * half}]
    assert "nextSequenceToken" in logs.put_log_events(logGroupName="cruddur", logStreamName="s1", logEvents=exact)

    # 'é' is 2 bytes in UTF-8: 300,000 characters are 600,026 bytes per event, 1,200,052 in all.
    too_big = [{"timestamp": ts, "message": "é" * 300_000}, {"timestamp": ts, "message": "é" * 300_000}]
    with pytest.raises(ClientError) as info:
        logs.put_log_events(logGroupName="cruddur", logStreamName="s1", logEvents=too_big)
    assert error_code(info) == "InvalidParameterException"
    assert "1200052 bytes exceeds limit of 1048576" in info.value.response["Error"]["Message"]
    one_over = [exact[0], {"timestamp": ts, "message": "b" * (half + 1)}]
    with pytest.raises(ClientError):
        logs.put_log_events(logGroupName="cruddur", logStreamName="s1", logEvents=one_over)
    stored = logs.get_log_events(logGroupName="cruddur", logStreamName="s1", startFromHead=True)["events"]
    assert [len(e["message"]) for e in stored] == [half, half]


def test_put_log_events_rejects_an_event_over_1_mb(logs: Any) -> None:
    make_stream(logs)
    with pytest.raises(ClientError) as info:
        logs.put_log_events(
            logGroupName="cruddur", logStreamName="s1", logEvents=[{"timestamp": now_ms(), "message": "x" * MB}]
        )
    assert error_code(info) == "InvalidParameterException"
    assert "Log event too large" in info.value.response["Error"]["Message"]
    largest = [{"timestamp": now_ms(), "message": "x" * (MB - 26)}]
    logs.put_log_events(logGroupName="cruddur", logStreamName="s1", logEvents=largest)


def test_put_log_events_rejects_more_than_10000_events_server_side(emulator: Emulator) -> None:
    unchecked = make_client(emulator.url, parameter_validation=False)
    make_stream(unchecked)
    ts = now_ms()
    events = [{"timestamp": ts, "message": f"m{i}"} for i in range(10_001)]
    with pytest.raises(ClientError) as info:
        unchecked.put_log_events(logGroupName="cruddur", logStreamName="s1", logEvents=events)
    assert error_code(info) == "InvalidParameterException"
    assert (
        "'logEvents' failed to satisfy constraint: Member must have length less than or equal to 10000"
        in (info.value.response["Error"]["Message"])
    )
    unchecked.put_log_events(logGroupName="cruddur", logStreamName="s1", logEvents=events[:10_000])
    assert len(all_filtered(unchecked, logGroupName="cruddur")) == 10_000


def test_put_log_events_order_and_span_rules(logs: Any) -> None:
    make_stream(logs)
    ts = now_ms() - 2 * DAY_MS
    with pytest.raises(ClientError) as info:
        logs.put_log_events(
            logGroupName="cruddur",
            logStreamName="s1",
            logEvents=[{"timestamp": ts + 5, "message": "later"}, {"timestamp": ts, "message": "earlier"}],
        )
    assert "chronological order" in info.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as info:
        logs.put_log_events(
            logGroupName="cruddur",
            logStreamName="s1",
            logEvents=[{"timestamp": ts, "message": "a"}, {"timestamp": ts + DAY_MS + 1, "message": "b"}],
        )
    assert error_code(info) == "InvalidParameterException"
    assert "24 hours" in info.value.response["Error"]["Message"]
    exactly_a_day = [{"timestamp": ts, "message": "a"}, {"timestamp": ts + DAY_MS, "message": "b"}]
    logs.put_log_events(logGroupName="cruddur", logStreamName="s1", logEvents=exactly_a_day)
    assert [e["message"] for e in all_filtered(logs, logGroupName="cruddur")] == ["a", "b"]


def test_too_old_expired_and_too_new_events_are_rejected_individually(logs: Any) -> None:
    make_stream(logs)
    logs.put_retention_policy(logGroupName="cruddur", retentionInDays=1)
    now = now_ms()
    batch = [
        {"timestamp": now - 15 * DAY_MS, "message": "older than 14 days"},
        {"timestamp": now - 14 * DAY_MS - 60_000, "message": "also too old"},
        {"timestamp": now - 3 * DAY_MS, "message": "past the 1-day retention"},
        {"timestamp": now - 1000, "message": "fine 1"},
        {"timestamp": now + HOUR_MS, "message": "fine 2 (one hour ahead)"},
        {"timestamp": now + 3 * HOUR_MS, "message": "three hours ahead"},
    ]
    response = logs.put_log_events(logGroupName="cruddur", logStreamName="s1", logEvents=batch)
    assert response["rejectedLogEventsInfo"] == {
        "tooOldLogEventEndIndex": 2,
        "expiredLogEventEndIndex": 3,
        "tooNewLogEventStartIndex": 5,
    }
    stored = logs.get_log_events(logGroupName="cruddur", logStreamName="s1", startFromHead=True)["events"]
    assert [e["message"] for e in stored] == ["fine 1", "fine 2 (one hour ahead)"]
    assert all(now - 5000 <= e["ingestionTime"] <= now_ms() for e in stored)


def test_put_log_events_needs_group_and_stream_and_ignores_sequence_token(logs: Any) -> None:
    event = [{"timestamp": now_ms(), "message": "hello"}]
    with pytest.raises(logs.exceptions.ResourceNotFoundException, match="log group does not exist"):
        logs.put_log_events(logGroupName="nope", logStreamName="s1", logEvents=event)
    logs.create_log_group(logGroupName="cruddur")
    with pytest.raises(logs.exceptions.ResourceNotFoundException, match="log stream does not exist"):
        logs.put_log_events(logGroupName="cruddur", logStreamName="s1", logEvents=event)
    logs.create_log_stream(logGroupName="cruddur", logStreamName="s1")
    first = logs.put_log_events(logGroupName="cruddur", logStreamName="s1", logEvents=event)
    second = logs.put_log_events(logGroupName="cruddur", logStreamName="s1", logEvents=event, sequenceToken="bogus")
    assert first["nextSequenceToken"] != second["nextSequenceToken"]
    assert "rejectedLogEventsInfo" not in first
    assert len(all_filtered(logs, logGroupName="cruddur")) == 2


def test_concurrent_writers_to_one_stream_lose_nothing(logs: Any) -> None:
    make_stream(logs)

    def writer(worker: int) -> None:
        for batch in range(10):
            events = [{"timestamp": now_ms(), "message": f"w{worker} b{batch} e{i}"} for i in range(20)]
            logs.put_log_events(logGroupName="cruddur", logStreamName="s1", logEvents=events)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    messages = [e["message"] for e in all_filtered(logs, logGroupName="cruddur")]
    assert len(messages) == len(set(messages)) == 4 * 10 * 20


# -- GetLogEvents --------------------------------------------------------------------------------------------


def test_get_log_events_tokens_page_both_ways_and_stop_with_the_same_token(logs: Any) -> None:
    make_stream(logs)
    base = now_ms() - 10_000
    logs.put_log_events(
        logGroupName="cruddur",
        logStreamName="s1",
        logEvents=[{"timestamp": base + i, "message": f"e{i}"} for i in range(25)],
    )
    # Default (startFromHead false): the newest page, oldest first within it.
    newest = logs.get_log_events(logGroupName="cruddur", logStreamName="s1", limit=10)
    assert [e["message"] for e in newest["events"]] == [f"e{i}" for i in range(15, 25)]
    older = logs.get_log_events(
        logGroupName="cruddur", logStreamName="s1", limit=10, nextToken=newest["nextBackwardToken"]
    )
    assert [e["message"] for e in older["events"]] == [f"e{i}" for i in range(5, 15)]

    seen: list[str] = []
    token = None
    while True:
        kwargs: dict[str, str] = {"nextToken": token} if token else {}
        page = logs.get_log_events(logGroupName="cruddur", logStreamName="s1", startFromHead=True, limit=7, **kwargs)
        seen.extend(e["message"] for e in page["events"])
        if page["nextForwardToken"] == token:
            assert page["events"] == []
            break
        token = page["nextForwardToken"]
    assert seen == [f"e{i}" for i in range(25)]
    assert token is not None and token.startswith("f/")


def test_get_log_events_time_range_is_start_inclusive_end_exclusive(logs: Any) -> None:
    make_stream(logs)
    base = now_ms() - 10_000
    logs.put_log_events(
        logGroupName="cruddur",
        logStreamName="s1",
        logEvents=[{"timestamp": base + i * 100, "message": f"e{i}"} for i in range(10)],
    )
    page = logs.get_log_events(
        logGroupName="cruddur", logStreamName="s1", startTime=base + 200, endTime=base + 500, startFromHead=True
    )
    assert [e["message"] for e in page["events"]] == ["e2", "e3", "e4"]
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.get_log_events(logGroupName="cruddur", logStreamName="missing")
    with pytest.raises(ClientError) as info:
        logs.get_log_events(logGroupName="cruddur", logStreamName="s1", nextToken="not-a-token")
    assert error_code(info) == "InvalidParameterException"


# -- FilterLogEvents -----------------------------------------------------------------------------------------


def put_spread(client: Any, count: int, streams: int = 3, message: Callable[[int], str] = str) -> list[str]:
    """``count`` events, timestamps 1 ms apart, dealt round-robin over ``streams`` streams."""
    client.create_log_group(logGroupName="cruddur")
    for s in range(streams):
        client.create_log_stream(logGroupName="cruddur", logStreamName=f"web-{s}")
    base = now_ms() - 60 * 60_000
    for s in range(streams):
        batch: list[dict[str, Any]] = []
        size = 0
        for i in range(s, count, streams):
            text = message(i)
            event = {"timestamp": base + i, "message": text}
            cost = len(text.encode()) + 26
            if len(batch) == 10_000 or size + cost > MB:
                client.put_log_events(logGroupName="cruddur", logStreamName=f"web-{s}", logEvents=batch)
                batch, size = [], 0
            batch.append(event)
            size += cost
        client.put_log_events(logGroupName="cruddur", logStreamName=f"web-{s}", logEvents=batch)
    return [message(i) for i in range(count)]


def test_filter_log_events_pages_with_next_token_across_streams(logs: Any) -> None:
    sent = put_spread(logs, 2_500, message=lambda i: f"request_id=r{i:05d} GET /api")
    pages = list(
        logs.get_paginator("filter_log_events").paginate(logGroupName="cruddur", PaginationConfig={"PageSize": 300})
    )
    assert all(len(p["events"]) <= 300 for p in pages)
    assert all("nextToken" in p for p in pages[:-1]) and "nextToken" not in pages[-1]
    events = [e for p in pages for e in p["events"]]
    assert [e["message"] for e in events] == sent
    assert len({e["eventId"] for e in events}) == len(sent)
    assert {e["logStreamName"] for e in events} == {"web-0", "web-1", "web-2"}


def test_filter_log_events_pages_hold_at_most_10000_events(logs: Any) -> None:
    sent = put_spread(logs, 25_000, message=lambda i: f"event {i}")
    pages = list(logs.get_paginator("filter_log_events").paginate(logGroupName="cruddur"))
    assert [len(p["events"]) for p in pages] == [10_000, 10_000, 5_000]
    assert [e["message"] for p in pages for e in p["events"]] == sent


def test_filter_log_events_pages_hold_at_most_1_mb(logs: Any) -> None:
    sent = put_spread(logs, 30, streams=1, message=lambda i: f"{i:03d}" + "x" * 99_997)
    pages = list(logs.get_paginator("filter_log_events").paginate(logGroupName="cruddur"))
    sizes = [sum(len(e["message"].encode()) + 26 for e in p["events"]) for p in pages]
    assert all(size <= MB for size in sizes)
    assert [len(p["events"]) for p in pages] == [10, 10, 10]
    assert [e["message"] for p in pages for e in p["events"]] == sent


def test_filter_log_events_may_return_empty_pages_with_a_next_token(start_emulator: Callable[..., Emulator]) -> None:
    client = start_emulator(filter_scan_events=100).client
    put_spread(client, 1_000, streams=1, message=lambda i: "needle" if i == 999 else f"hay {i}")
    first = client.filter_log_events(logGroupName="cruddur", filterPattern="needle")
    assert first["events"] == [] and "nextToken" in first
    assert [e["message"] for e in all_filtered(client, logGroupName="cruddur", filterPattern="needle")] == ["needle"]


def test_filter_log_events_time_bounds_are_inclusive_and_in_ms(logs: Any) -> None:
    make_stream(logs)
    base = now_ms() - 10_000
    logs.put_log_events(
        logGroupName="cruddur",
        logStreamName="s1",
        logEvents=[{"timestamp": base + i * 1000, "message": f"e{i}"} for i in range(10)],
    )
    events = all_filtered(logs, logGroupName="cruddur", startTime=base + 2000, endTime=base + 5000)
    assert [e["message"] for e in events] == ["e2", "e3", "e4", "e5"]
    newest_first = logs.filter_log_events(logGroupName="cruddur", startTime=base, startFromHead=False, limit=3)
    assert [e["message"] for e in newest_first["events"]] == ["e9", "e8", "e7"]


def test_filter_log_events_stream_selection_and_identifier(logs: Any) -> None:
    put_spread(logs, 30, streams=3, message=lambda i: f"m{i}")
    logs.create_log_stream(logGroupName="cruddur", logStreamName="worker-0")
    logs.put_log_events(
        logGroupName="cruddur", logStreamName="worker-0", logEvents=[{"timestamp": now_ms(), "message": "w"}]
    )
    named = all_filtered(logs, logGroupName="cruddur", logStreamNames=["web-1"])
    assert {e["logStreamName"] for e in named} == {"web-1"} and len(named) == 10
    prefixed = all_filtered(logs, logGroupName="cruddur", logStreamNamePrefix="web-")
    assert len(prefixed) == 30
    arn = logs.describe_log_groups()["logGroups"][0]["logGroupArn"]
    assert len(all_filtered(logs, logGroupIdentifier=arn)) == 31
    with pytest.raises(ClientError) as info:
        logs.filter_log_events(logGroupName="cruddur", logStreamNames=["web-1"], logStreamNamePrefix="web")
    assert error_code(info) == "InvalidParameterException"
    with pytest.raises(ClientError) as info:
        logs.filter_log_events(logGroupName="cruddur", logGroupIdentifier=arn)
    assert error_code(info) == "InvalidParameterException"
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.filter_log_events(logGroupName="missing")


def test_filter_log_events_quoted_phrase_and_json_patterns(logs: Any) -> None:
    make_stream(logs)
    lines = [
        "INFO request_id=abc-1 GET /api/activities/home 200",
        "ERROR request_id=abc-2 POST /api/activities 500 Internal Server Error",
        json.dumps({"level": "ERROR", "request_id": "abc-3", "http": {"status": 503}, "tags": ["db", "retry"]}),
        json.dumps({"level": "INFO", "request_id": "abc-4", "http": {"status": 200}, "tags": []}),
        "Internal Server",
        '{"level": "ERROR", "request_id": "abc-5", "ratio": NaN}',  # not JSON: NaN is no JSON value
    ]
    logs.put_log_events(
        logGroupName="cruddur",
        logStreamName="s1",
        logEvents=[{"timestamp": now_ms() - 100 + i, "message": m} for i, m in enumerate(lines)],
    )

    def found(pattern: str) -> list[int]:
        return [lines.index(e["message"]) for e in all_filtered(logs, logGroupName="cruddur", filterPattern=pattern)]

    assert found('"Internal Server Error"') == [1]
    assert found('"Internal Server"') == [1, 4]
    assert found("Internal Server") == [1, 4]
    assert found("request_id -ERROR") == [0, 3]
    assert found('{ $.level = "ERROR" && $.http.status >= 500 }') == [2]
    assert found('{ $.tags[1] = "retry" || $.request_id = "abc-4" }') == [2, 3]
    assert found("{ $.http.status = 5* }") == [2]
    assert found("{ $.http != 1 }") == []  # an object never matches, not even with !=
    assert found("{ $.missing NOT EXISTS }") == [2, 3]
    assert found('{ $.request_id = "abc-5" }') == [] and found("abc-5") == [5]


def test_invalid_filter_pattern_is_rejected_with_the_problem_named(logs: Any) -> None:
    make_stream(logs)
    with pytest.raises(ClientError) as info:
        logs.filter_log_events(logGroupName="cruddur", filterPattern='{ $.level = "ERROR" ')
    assert error_code(info) == "InvalidParameterException"
    assert "closing '}'" in info.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as info:
        logs.filter_log_events(logGroupName="cruddur", filterPattern="{ $.latency > fast }")
    assert "needs a number" in info.value.response["Error"]["Message"]


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("[a, b", "expected ',' or ']'"),
        ("[]", "at least one field"),
        ("{ level = 1 }", "starting with '$'"),
        ("{ $.a = x@y }", "must be double-quoted"),
        ("{ $.a == 1 }", "'=='"),
        ("[a=1, a]", "declared twice"),
        ("[a, b = 1 && c = 2]", "does not declare"),
        ("%a b%", "not supported in a regex"),
        ("ERROR -", "must be followed by a term"),
        ('ERROR "unterminated', "unterminated"),
    ],
)
def test_filter_pattern_errors_name_the_problem(pattern: str, problem: str) -> None:
    with pytest.raises(FilterPatternError, match=r"^Invalid filter pattern: .*") as info:
        compile_filter_pattern(pattern)
    assert problem in str(info.value)


def test_filter_log_events_is_throttled_at_5_per_second(start_emulator: Callable[..., Emulator]) -> None:
    emulator = start_emulator(filter_log_events_per_second=5.0)
    make_stream(emulator.client)
    no_retries = make_client(emulator.url, retries={"total_max_attempts": 1})
    outcomes: list[str] = []
    barrier = threading.Barrier(12)

    def call() -> None:
        barrier.wait()
        try:
            no_retries.filter_log_events(logGroupName="cruddur")
            outcomes.append("ok")
        except ClientError as exc:
            assert exc.response["ResponseMetadata"]["HTTPStatusCode"] == 400
            outcomes.append(exc.response["Error"]["Code"])

    started = time.monotonic()
    threads = [threading.Thread(target=call) for _ in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    assert set(outcomes) == {"ok", "ThrottlingException"}
    # A full bucket of 5, refilled at 5 per second while the burst lasted.
    assert 5 <= outcomes.count("ok") <= 5 + math.ceil(elapsed * 5)
    # Another region has its own quota; other operations are not limited by it.
    west = make_client(emulator.url, region="eu-west-1", retries={"total_max_attempts": 1})
    with pytest.raises(west.exceptions.ResourceNotFoundException):  # answered, not throttled
        west.filter_log_events(logGroupName="cruddur")
    no_retries.describe_log_groups()
    time.sleep(0.5)
    no_retries.filter_log_events(logGroupName="cruddur")


# -- groups and streams --------------------------------------------------------------------------------------


def test_log_groups_describe_with_prefix_and_pagination(logs: Any) -> None:
    names = ["/ecs/cruddur-a", "/ecs/cruddur-b", "/ecs/cruddur-c", "/other", "cruddur"]
    for name in reversed(names):
        logs.create_log_group(logGroupName=name)
    with pytest.raises(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName="cruddur")
    pages = list(logs.get_paginator("describe_log_groups").paginate(PaginationConfig={"PageSize": 2}))
    assert [len(p["logGroups"]) for p in pages] == [2, 2, 1]
    assert [g["logGroupName"] for p in pages for g in p["logGroups"]] == names
    prefixed = logs.describe_log_groups(logGroupNamePrefix="/ecs/")["logGroups"]
    assert [g["logGroupName"] for g in prefixed] == names[:3]
    group = prefixed[0]
    assert group["arn"] == f"arn:aws:logs:us-east-1:000000000000:log-group:{names[0]}:*"
    assert group["logGroupArn"] == group["arn"][:-2] and group["storedBytes"] == 0
    assert "retentionInDays" not in group

    logs.put_retention_policy(logGroupName="cruddur", retentionInDays=14)
    assert logs.describe_log_groups(logGroupNamePrefix="cruddur")["logGroups"][0]["retentionInDays"] == 14
    with pytest.raises(ClientError) as info:
        logs.put_retention_policy(logGroupName="cruddur", retentionInDays=2)
    assert error_code(info) == "InvalidParameterException"
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.put_retention_policy(logGroupName="missing", retentionInDays=1)


def test_log_streams_describe_order_prefix_pagination_and_times(logs: Any) -> None:
    logs.create_log_group(logGroupName="cruddur")
    base = now_ms() - 60_000
    for i, name in enumerate(["b", "a", "c", "d"]):
        logs.create_log_stream(logGroupName="cruddur", logStreamName=name)
        if name != "d":
            events = [{"timestamp": base + i * 10, "message": "x"}, {"timestamp": base + i * 10 + 5, "message": "y"}]
            logs.put_log_events(logGroupName="cruddur", logStreamName=name, logEvents=events)
    with pytest.raises(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_stream(logGroupName="cruddur", logStreamName="a")
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.create_log_stream(logGroupName="missing", logStreamName="a")

    by_name = logs.describe_log_streams(logGroupName="cruddur")["logStreams"]
    assert [s["logStreamName"] for s in by_name] == ["a", "b", "c", "d"]
    a = by_name[0]
    assert (a["firstEventTimestamp"], a["lastEventTimestamp"]) == (base + 10, base + 15)
    assert a["lastIngestionTime"] >= a["creationTime"] and a["storedBytes"] == 0
    assert "firstEventTimestamp" not in by_name[3]
    latest = logs.describe_log_streams(logGroupName="cruddur", orderBy="LastEventTime", descending=True)
    assert [s["logStreamName"] for s in latest["logStreams"]] == ["c", "a", "b", "d"]
    pages = list(
        logs.get_paginator("describe_log_streams").paginate(logGroupName="cruddur", PaginationConfig={"PageSize": 3})
    )
    assert [[s["logStreamName"] for s in p["logStreams"]] for p in pages] == [["a", "b", "c"], ["d"]]
    assert [
        s["logStreamName"]
        for s in logs.describe_log_streams(logGroupName="cruddur", logStreamNamePrefix="c")["logStreams"]
    ] == ["c"]
    with pytest.raises(ClientError) as info:
        logs.describe_log_streams(logGroupName="cruddur", orderBy="LastEventTime", logStreamNamePrefix="a")
    assert error_code(info) == "InvalidParameterException"


def test_delete_log_group_removes_its_streams_and_events(logs: Any) -> None:
    make_stream(logs)
    logs.put_log_events(logGroupName="cruddur", logStreamName="s1", logEvents=[{"timestamp": now_ms(), "message": "x"}])
    logs.delete_log_group(logGroupName="cruddur")
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.delete_log_group(logGroupName="cruddur")
    with pytest.raises(logs.exceptions.ResourceNotFoundException):
        logs.filter_log_events(logGroupName="cruddur")
    make_stream(logs)
    assert all_filtered(logs, logGroupName="cruddur") == []


def test_log_groups_are_per_region(emulator: Emulator) -> None:
    make_stream(emulator.client)
    west = make_client(emulator.url, region="us-west-2")
    assert west.describe_log_groups()["logGroups"] == []
    with pytest.raises(west.exceptions.ResourceNotFoundException):
        west.filter_log_events(logGroupName="cruddur")


# -- malformed requests --------------------------------------------------------------------------------------


def raw_post(url: str, target: str, body: bytes, signed: bool = True) -> requests.Response:
    headers = {"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target, "X-Amz-Date": "20260101T000000Z"}
    if signed:
        headers["Authorization"] = (
            "AWS4-HMAC-SHA256 Credential=tracedrill-local/20260101/us-east-1/logs/aws4_request, "
            "SignedHeaders=content-type;host;x-amz-date;x-amz-target, Signature=" + "0" * 64
        )
    return requests.post(url + "/", data=body, headers=headers, timeout=10)


@pytest.mark.parametrize(
    ("target", "body", "signed", "code"),
    [
        ("Logs_20140328.DescribeLogGroups", b"{}", False, "MissingAuthenticationTokenException"),
        ("Logs_20140328.PutLogEvents", b"{not json", True, "SerializationException"),
        ("Logs_20140328.PutLogEvents", b"[1, 2]", True, "SerializationException"),
        ("Logs_20140328.NoSuchOperation", b"{}", True, "UnknownOperationException"),
        ("Logs_20140328.StartQuery", b"{}", True, "UnknownOperationException"),
        ("Kinesis_20131202.ListStreams", b"{}", True, "UnknownOperationException"),
        ("Logs_20140328.CreateLogGroup", b'{"logGroupName": 5}', True, "SerializationException"),
        (
            "Logs_20140328.GetLogEvents",
            b'{"logGroupName": "cruddur", "logStreamName": "s1", "limit": "9"}',
            True,
            "SerializationException",
        ),
        ("Logs_20140328.PutLogEvents", b'{"logGroupName": "cruddur"}', True, "InvalidParameterException"),
        ("Logs_20140328.CreateLogGroup", b'{"logGroupName": "bad name!"}', True, "InvalidParameterException"),
    ],
)
def test_malformed_requests_get_aws_errors_and_leave_data_intact(
    emulator: Emulator, target: str, body: bytes, signed: bool, code: str
) -> None:
    make_stream(emulator.client)
    emulator.client.put_log_events(
        logGroupName="cruddur", logStreamName="s1", logEvents=[{"timestamp": now_ms(), "message": "keep me"}]
    )
    response = raw_post(emulator.url, target, body, signed)
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/x-amz-json-1.1"
    assert response.json()["__type"] == code
    assert response.json()["message"]
    assert [e["message"] for e in all_filtered(emulator.client, logGroupName="cruddur")] == ["keep me"]
    assert [g["logGroupName"] for g in emulator.client.describe_log_groups()["logGroups"]] == ["cruddur"]


def test_missing_and_mistyped_parameters_through_boto3(emulator: Emulator) -> None:
    unchecked = make_client(emulator.url, parameter_validation=False)
    make_stream(unchecked)
    with pytest.raises(ClientError) as info:
        unchecked.put_log_events(logGroupName="cruddur")
    message = info.value.response["Error"]["Message"]
    assert error_code(info) == "InvalidParameterException"
    assert message.startswith("2 validation errors detected: ")
    assert "Value null at 'logStreamName' failed to satisfy constraint: Member must not be null" in message
    assert "'logEvents'" in message
    with pytest.raises(ClientError) as info:
        unchecked.put_log_events(
            logGroupName="cruddur", logStreamName="s1", logEvents=[{"timestamp": "soon", "message": "m"}]
        )
    assert error_code(info) == "SerializationException"
    with pytest.raises(ClientError) as info:
        unchecked.put_log_events(
            logGroupName="cruddur", logStreamName="s1", logEvents=[{"timestamp": 1, "message": ""}]
        )
    assert "'logEvents.1.member.message'" in info.value.response["Error"]["Message"]
    with pytest.raises(ClientError) as info:
        unchecked.start_query(logGroupName="cruddur", startTime=0, endTime=1, queryString="fields @message")
    assert error_code(info) == "UnknownOperationException"
    assert all_filtered(unchecked, logGroupName="cruddur") == []


# -- durability ----------------------------------------------------------------------------------------------


def test_everything_accepted_survives_a_restart(emulator: Emulator) -> None:
    client = emulator.client
    make_stream(client)
    client.put_retention_policy(logGroupName="cruddur", retentionInDays=30)
    sent = [f"line {i}" for i in range(100)]
    base = now_ms() - 1000
    client.put_log_events(
        logGroupName="cruddur",
        logStreamName="s1",
        logEvents=[{"timestamp": base + i, "message": m} for i, m in enumerate(sent)],
    )
    before = client.describe_log_streams(logGroupName="cruddur")["logStreams"]
    first_page = client.filter_log_events(logGroupName="cruddur", limit=40)

    emulator.restart()

    client = emulator.client
    assert client.describe_log_groups()["logGroups"][0]["retentionInDays"] == 30
    assert client.describe_log_streams(logGroupName="cruddur")["logStreams"] == before
    assert [e["message"] for e in all_filtered(client, logGroupName="cruddur")] == sent
    rest = all_filtered(client, logGroupName="cruddur", nextToken=first_page["nextToken"])
    assert [e["message"] for e in first_page["events"] + rest] == sent
    got = client.get_log_events(logGroupName="cruddur", logStreamName="s1", startFromHead=True)
    assert [e["message"] for e in got["events"]] == sent
