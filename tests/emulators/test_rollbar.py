"""The Rollbar emulator against the real pyrollbar client and its public read API over HTTP."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import sys
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import pytest
import requests
import rollbar

from emulators._server import ServedApp, serve
from emulators.rollbar import grouping
from emulators.rollbar.api import MAX_PAYLOAD_BYTES, RollbarSettings, create_app
from emulators.rollbar.store import RollbarStore
from tracedrill import local

POST_TOKEN = local.LOCAL_ROLLBAR_POST_TOKEN
READ_TOKEN = local.LOCAL_ROLLBAR_READ_TOKEN


@dataclass
class Emulator:
    url: str
    store: RollbarStore
    served: ServedApp

    @property
    def api(self) -> str:
        return f"{self.url}/api/1/"

    def get(self, path: str, token: str | None = READ_TOKEN, **params: Any) -> requests.Response:
        headers = {"X-Rollbar-Access-Token": token} if token else {}
        return requests.get(self.api + path, params=params, headers=headers, timeout=5)

    def result(self, path: str, **params: Any) -> Any:
        response = self.get(path, **params)
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["err"] == 0
        return body["result"]

    def items(self, **params: Any) -> list[dict[str, Any]]:
        return list(self.result("items/", **params)["items"])

    def instances(self, item_id: int, **params: Any) -> list[dict[str, Any]]:
        return list(self.result(f"item/{item_id}/instances", **params)["instances"])

    def post_item(self, payload: Any, token: str | None = POST_TOKEN, **kwargs: Any) -> requests.Response:
        headers = {"X-Rollbar-Access-Token": token} if token else {}
        headers.update(kwargs.pop("headers", {}))
        return requests.post(self.api + "item/", json=payload, headers=headers, timeout=5, **kwargs)


def message_payload(text: str, environment: str = "test", **data: Any) -> dict[str, Any]:
    return {"data": {"environment": environment, "body": {"message": {"body": text}}, **data}}


def start(path: Path, settings: RollbarSettings | None = None) -> Emulator:
    store = RollbarStore(path)
    served = serve("rollbar", create_app(store, settings or RollbarSettings.local()))
    return Emulator(served.url, store, served)


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[Emulator]:
    emu = start(tmp_path / "rollbar.sqlite3")
    yield emu
    emu.served.stop()


@pytest.fixture
def pyrollbar() -> Iterator[Callable[..., Any]]:
    """Initialise the real pyrollbar; it ignores a second init(), so its flag is reset around each test."""

    def init(endpoint: str, environment: str = "test", token: str = POST_TOKEN) -> Any:
        rollbar._initialized = False
        rollbar.init(
            token, environment, endpoint=endpoint, handler="blocking", timeout=5, allow_logging_basic_config=False
        )
        return rollbar

    yield init
    rollbar._initialized = False


def fail_checkout(order: int) -> None:
    raise ValueError(f"checkout failed for order {order}")


def missing_key() -> None:
    raise KeyError("cart")


def fail_with_cause() -> None:
    try:
        missing_key()
    except KeyError as exc:
        raise RuntimeError("could not load cart") from exc


def report(client: Any, func: Callable[..., None], *args: Any, **kwargs: Any) -> str:
    try:
        func(*args)
    except Exception:
        uuid_sent: str = client.report_exc_info(sys.exc_info(), **kwargs)
        return uuid_sent
    raise AssertionError(f"{func.__name__} did not raise")


# --- the real client end to end ----------------------------------------------------------------


def test_same_exception_twice_is_one_item_with_two_occurrences(emulator: Emulator, pyrollbar: Any) -> None:
    client = pyrollbar(emulator.api)
    uuids = [report(client, fail_checkout, order) for order in (1, 2)]

    [item] = emulator.items()
    assert item["title"] == "ValueError: checkout failed for order 1"  # the first occurrence names the item
    assert (item["total_occurrences"], item["level"], item["status"]) == (2, "error", "active")
    assert item["environment"] == "test" and item["counter"] == 1 and item["id"] != item["counter"]

    instances = emulator.instances(item["id"])
    assert [instance["data"]["uuid"] for instance in instances] == uuids[::-1]  # newest first
    assert item["last_occurrence_id"] == instances[0]["id"]
    assert item["first_occurrence_id"] == instances[1]["id"]

    occurrence = emulator.result(f"instance/{instances[0]['id']}")
    assert occurrence["item_id"] == item["id"] and occurrence["id"] == instances[0]["id"]
    trace = occurrence["data"]["body"]["trace"]
    assert trace["exception"] == {"class": "ValueError", "message": "checkout failed for order 2"}
    assert [frame["method"] for frame in trace["frames"]][-1] == "fail_checkout"
    assert occurrence["data"]["notifier"]["name"] == "pyrollbar"

    by_counter = emulator.get("item_by_counter/1", token=None, access_token=READ_TOKEN)
    assert by_counter.history[0].status_code == 301
    assert by_counter.json()["result"]["id"] == item["id"]


def test_a_different_exception_is_another_item(emulator: Emulator, pyrollbar: Any) -> None:
    client = pyrollbar(emulator.api)
    report(client, fail_checkout, 1)
    report(client, missing_key)
    chained_uuid = report(client, fail_with_cause)

    items = {item["title"]: item for item in emulator.items()}
    assert set(items) == {
        "ValueError: checkout failed for order 1",
        "KeyError: 'cart'",
        "RuntimeError: could not load cart",
    }
    assert all(item["total_occurrences"] == 1 for item in items.values())
    assert len({item["hash"] for item in items.values()}) == 3
    # A chained exception arrives as trace_chain and is titled after the exception raised last.
    [chained] = emulator.instances(items["RuntimeError: could not load cart"]["id"])
    assert chained["data"]["uuid"] == chained_uuid
    assert [t["exception"]["class"] for t in chained["data"]["body"]["trace_chain"]] == ["RuntimeError", "KeyError"]


def test_messages_group_by_text_with_data_stripped(emulator: Emulator, pyrollbar: Any) -> None:
    client = pyrollbar(emulator.api)
    first = client.report_message("checkout slow for order 1234", "warning", extra_data={"request_id": "req-1"})
    second = client.report_message("checkout slow for order 98765", "warning", extra_data={"request_id": "req-2"})
    client.report_message("payment gateway timeout", "warning", extra_data={"request_id": "req-3"})

    items = {item["title"]: item for item in emulator.items()}
    assert set(items) == {"checkout slow for order 1234", "payment gateway timeout"}
    slow = items["checkout slow for order 1234"]
    assert (slow["total_occurrences"], slow["level"]) == (2, "warning")
    instances = emulator.instances(slow["id"])
    assert [i["data"]["uuid"] for i in instances] == [second, first]
    assert [i["data"]["custom"]["request_id"] for i in instances] == ["req-2", "req-1"]
    assert instances[0]["data"]["body"]["message"] == {"body": "checkout slow for order 98765", "request_id": "req-2"}


def test_the_same_error_in_two_environments_is_two_items(emulator: Emulator, pyrollbar: Any) -> None:
    report(pyrollbar(emulator.api, environment="staging"), fail_checkout, 1)
    report(pyrollbar(emulator.api, environment="production"), fail_checkout, 1)

    assert sorted(item["environment"] for item in emulator.items()) == ["production", "staging"]
    [staging] = emulator.items(environment="staging")
    assert staging["environment"] == "staging" and staging["total_occurrences"] == 1


def test_endpoint_without_trailing_slash_never_reaches_the_item_route(
    emulator: Emulator, pyrollbar: Any, caplog: pytest.LogCaptureFixture
) -> None:
    bad_endpoint = f"{emulator.url}/api/1"  # no trailing "/": urljoin replaces "1" with "item/"
    assert urljoin(bad_endpoint, "item/") == f"{emulator.url}/api/item/"
    client = pyrollbar(bad_endpoint)
    with caplog.at_level(logging.WARNING, logger="rollbar"):
        client.report_message("lost to the missing slash", "error")

    assert emulator.store.counts() == (0, 0)
    assert emulator.result("items/")["total_count"] == 0
    assert any("unexpected status code from Rollbar api: 404" in record.getMessage() for record in caplog.records)
    wrong_path = requests.post(
        f"{emulator.url}/api/item/",
        json=message_payload("x"),
        headers={"X-Rollbar-Access-Token": POST_TOKEN},
        timeout=5,
    )
    assert (wrong_path.status_code, wrong_path.json()) == (404, {"err": 1, "message": "not found"})


def test_over_the_rate_limit_pyrollbar_sees_429_and_nothing_more_is_stored(
    tmp_path: Path, pyrollbar: Any, caplog: pytest.LogCaptureFixture
) -> None:
    emu = start(tmp_path / "rollbar.sqlite3", RollbarSettings.local(items_per_minute=2))
    try:
        client = pyrollbar(emu.api)
        with caplog.at_level(logging.WARNING, logger="rollbar"):
            for order in range(3):
                client.report_message(f"rate limited message {order}", "info")
        assert emu.store.counts() == (2, 2)  # single digits are not stripped: two items
        assert any("over rate limit" in record.getMessage() for record in caplog.records)
        refused = emu.post_item(message_payload("still limited"))
        assert (refused.status_code, refused.json()["err"]) == (429, 1)
    finally:
        emu.served.stop()


def test_pyrollbar_answers_413_with_a_failsafe_that_is_stored(tmp_path: Path, pyrollbar: Any) -> None:
    emu = start(tmp_path / "rollbar.sqlite3", RollbarSettings.local(max_payload_bytes=8 * 1024))
    try:
        client = pyrollbar(emu.api)
        big_uuid = client.report_message("huge report", "error", extra_data={"blob": "x" * 20_000})
        [item] = emu.items()
        assert item["title"].startswith("Failsafe from pyrollbar: payload too large")
        [failsafe] = emu.instances(item["id"])
        assert failsafe["data"]["custom"]["orig_uuid"] == big_uuid
    finally:
        emu.served.stop()


# --- the ingest endpoint directly -------------------------------------------------------------


def test_ingest_answers_like_rollbar(emulator: Emulator) -> None:
    response = emulator.post_item(message_payload("hello", uuid="11111111-2222-3333-4444-555555555555"))
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("application/json")
    assert response.json() == {"err": 0, "result": {"id": None, "uuid": "11111111-2222-3333-4444-555555555555"}}

    generated = emulator.post_item({"access_token": POST_TOKEN, **message_payload("no uuid sent")}, token=None)
    generated_uuid = generated.json()["result"]["uuid"]
    assert str(uuid.UUID(generated_uuid)) == generated_uuid
    item = next(i for i in emulator.items() if i["title"] == "no uuid sent")
    assert item["level"] == "info"  # messages default to info
    assert emulator.instances(item["id"])[0]["data"]["uuid"] == generated_uuid


def test_bare_nan_is_not_json_and_stores_nothing(emulator: Emulator) -> None:
    # pyrollbar writes NaN as the string "<NaN>"; a bare NaN (Python's json.dumps default) is invalid JSON.
    body = json.dumps(message_payload("not a number", custom={"ratio": math.nan}))
    answer = emulator.post_item(None, data=body, headers={"Content-Type": "application/json"})
    assert answer.status_code == 400 and "NaN" in answer.json()["message"]
    assert emulator.items() == []


def test_a_repeated_uuid_is_accepted_but_stored_once(emulator: Emulator) -> None:
    payload = message_payload("sent twice", uuid="dup-uuid-0001")
    answers = [emulator.post_item(payload) for _ in range(2)]
    assert [a.json() for a in answers] == [{"err": 0, "result": {"id": None, "uuid": "dup-uuid-0001"}}] * 2
    [item] = emulator.items()
    assert item["total_occurrences"] == 1 and len(emulator.instances(item["id"])) == 1


def test_form_encoded_payload_is_accepted(emulator: Emulator) -> None:
    payload = json.dumps({"access_token": POST_TOKEN, **message_payload("form encoded")})
    response = requests.post(emulator.api + "item/", data={"payload": payload}, timeout=5)
    assert response.status_code == 200, response.text
    assert [item["title"] for item in emulator.items()] == ["form encoded"]


def test_custom_fingerprint_and_title_override_grouping(emulator: Emulator) -> None:
    for text in ("db timeout on shard a", "db timeout on shard b"):
        assert emulator.post_item(message_payload(text, fingerprint="db-timeout")).status_code == 200
    long_fingerprint = "f" * 41
    assert emulator.post_item(message_payload("other", fingerprint=long_fingerprint, title="Custom")).status_code == 200
    items = {item["title"]: item for item in emulator.items()}
    assert items["db timeout on shard a"]["total_occurrences"] == 2
    assert items["db timeout on shard a"]["hash"] == "db-timeout"
    assert items["Custom"]["hash"] == hashlib.sha1(long_fingerprint.encode()).hexdigest()


GOOD_TRACE = {
    "frames": [{"filename": "app.py", "lineno": 3, "method": "view"}],
    "exception": {"class": "ValueError", "message": "bad"},
}
REJECTED = {
    "garbage body": (b"{this is not json", {}, 400),
    "empty body": (b"", {}, 400),
    "data missing": (b'{"access_token": "x"}', {}, 422),
    "body missing": (b'{"data": {"environment": "test"}}', {}, 422),
    "environment missing": (b'{"data": {"body": {"message": {"body": "m"}}}}', {}, 422),
    "two bodies": (
        b'{"data": {"environment": "t", "body": {"message": {"body": "m"}, "crash_report": {"raw": "r"}}}}',
        {},
        422,
    ),
    "trace without exception class": (
        b'{"data": {"environment": "t", "body": {"trace": {"frames": [], "exception": {}}}}}',
        {},
        422,
    ),
    "unknown level": (b'{"data": {"environment": "t", "level": "fatal", "body": {"message": {"body": "m"}}}}', {}, 422),
    "unknown token": (b'{"data": {}}', {"X-Rollbar-Access-Token": "not-a-real-token"}, 403),
    "no token": (b'{"data": {}}', {"X-Rollbar-Access-Token": ""}, 401),
    "read-only token": (b'{"data": {}}', {"X-Rollbar-Access-Token": READ_TOKEN}, 403),
    "oversize": (b'{"pad": "' + b"x" * MAX_PAYLOAD_BYTES + b'"}', {}, 413),
}


@pytest.mark.parametrize("case", list(REJECTED))
def test_rejected_posts_leave_stored_data_intact(emulator: Emulator, case: str) -> None:
    seeded = emulator.post_item({"data": {"environment": "test", "body": {"trace": GOOD_TRACE}}})
    assert seeded.status_code == 200
    [before] = emulator.items()

    body, headers, status = REJECTED[case]
    headers = {"X-Rollbar-Access-Token": POST_TOKEN, "Content-Type": "application/json", **headers}
    if not headers["X-Rollbar-Access-Token"]:
        del headers["X-Rollbar-Access-Token"]
    response = requests.post(emulator.api + "item/", data=body, headers=headers, timeout=10)

    assert response.status_code == status, response.text
    answer = response.json()
    assert answer["err"] == 1 and answer["message"]
    assert "not-a-real-token" not in answer["message"]  # tokens are never echoed back
    if case == "read-only token":
        assert answer["message"].startswith("insufficient privileges: post_server_item scope is required")
    assert emulator.store.counts() == (1, 1)
    assert emulator.items() == [before]


def test_a_post_client_item_token_may_only_post_client_side_items(tmp_path: Path) -> None:
    settings = RollbarSettings(tokens={"client-token": {"post_client_item"}, "reader": {"read"}})
    emu = start(tmp_path / "rollbar.sqlite3", settings)
    try:
        browser = emu.post_item(message_payload("from a browser", platform="browser"), token="client-token")
        server = emu.post_item(message_payload("from a server", platform="linux"), token="client-token")
        assert browser.status_code == 200
        assert server.status_code == 403 and "post_server_item scope is required" in server.json()["message"]
        assert [item["title"] for item in emu.items(token="reader")] == ["from a browser"]
    finally:
        emu.served.stop()


def test_concurrent_posts_of_one_error_fold_into_one_item(emulator: Emulator) -> None:
    # Bounded: 8 threads x 10 posts, the threaded server's write path must not race on item creation.
    def post_batch(worker: int) -> list[int]:
        return [
            emulator.post_item(message_payload("all workers busy", uuid=f"w{worker}-{n}")).status_code
            for n in range(10)
        ]

    with ThreadPoolExecutor(max_workers=8) as pool:
        statuses = [status for batch in pool.map(post_batch, range(8)) for status in batch]
    assert statuses == [200] * 80
    [item] = emulator.items()
    assert item["total_occurrences"] == 80
    assert emulator.store.counts() == (1, 80)


# --- the read API ------------------------------------------------------------------------------


def test_read_api_tokens_scopes_and_unknown_ids(emulator: Emulator) -> None:
    assert emulator.post_item(message_payload("seed")).status_code == 200
    [item] = emulator.items()

    assert emulator.get("items/", token=None).status_code == 401
    assert emulator.get("items/", token="not-a-real-token").status_code == 403
    denied = emulator.get(f"item/{item['id']}", token=POST_TOKEN)
    assert denied.status_code == 403
    assert denied.json() == {
        "err": 1,
        "message": "insufficient privileges: read scope is required but the access token only has post_server_item.",
    }
    via_query = emulator.get(f"item/{item['id']}", token=None, access_token=READ_TOKEN)
    assert via_query.json()["result"] == item

    for path in (
        f"item/{item['id'] + 1}",
        "item_by_counter/99",
        "instance/1",
        f"item/{item['id'] + 1}/instances",
        "no/such/route",
    ):
        missing = emulator.get(path)
        assert (missing.status_code, missing.json()) == (404, {"err": 1, "message": "not found"}), path


def test_items_pagination_and_filters(emulator: Emulator) -> None:
    for n in range(105):
        level = "critical" if n % 50 == 0 else "error"
        payload = message_payload(f"distinct message {chr(65 + n % 26)}{chr(65 + n // 26)}", level=level)
        assert emulator.post_item(payload).status_code == 200

    first, second, third = (emulator.result("items/", page=page) for page in (1, 2, 3))
    assert [len(page["items"]) for page in (first, second, third)] == [100, 5, 0]
    assert {page["total_count"] for page in (first, second, third)} == {105}
    assert (first["page"], second["page"]) == (1, 2)
    ids = [item["id"] for page in (first, second) for item in page["items"]]
    assert len(set(ids)) == 105

    critical = emulator.result("items/", level="critical")
    assert critical["total_count"] == 3 and {i["level"] for i in critical["items"]} == {"critical"}
    assert emulator.result("items/", status="resolved")["total_count"] == 0
    assert emulator.result("items/", status="active", level=["critical", "error"])["total_count"] == 105
    assert emulator.get("items/", level="fatal").status_code == 422
    assert emulator.get("items/", page="0").status_code == 422
    unsupported = emulator.get("items/", query="checkout")
    assert unsupported.status_code == 422 and "not supported" in unsupported.json()["message"]


def test_instances_pagination(emulator: Emulator) -> None:
    sent = [f"occ-{n:03d}" for n in range(25)]
    for occurrence_uuid in sent:
        assert emulator.post_item(message_payload("the same message", uuid=occurrence_uuid)).status_code == 200
    [item] = emulator.items()
    assert item["total_occurrences"] == 25

    page1, page2 = emulator.instances(item["id"]), emulator.instances(item["id"], page=2)
    assert (len(page1), len(page2)) == (20, 5)  # Rollbar's 20 per page
    assert [i["data"]["uuid"] for i in page1 + page2] == sent[::-1]
    by_cursor = emulator.instances(item["id"], limit=10, last_id=page1[9]["id"])
    assert [i["id"] for i in by_cursor] == [i["id"] for i in (page1 + page2)[10:20]]
    project_wide = emulator.result("instances/")["instances"]
    assert [i["id"] for i in project_wide] == [i["id"] for i in page1]


def test_everything_survives_a_store_reopen(tmp_path: Path, pyrollbar: Any) -> None:
    path = tmp_path / "rollbar.sqlite3"
    first = start(path)
    sent_uuid = report(pyrollbar(first.api), fail_checkout, 7)
    [item_before] = first.items()
    [instance_before] = first.instances(item_before["id"])
    first.served.stop()

    second = start(path)
    try:
        assert second.items() == [item_before]
        assert second.result(f"instance/{instance_before['id']}") == instance_before
        assert instance_before["data"]["uuid"] == sent_uuid
        report(pyrollbar(second.api), fail_checkout, 8)
        client = pyrollbar(second.api)
        client.report_message("new after reopen", "info")
        items = {item["title"]: item for item in second.items()}
        assert items["ValueError: checkout failed for order 7"]["total_occurrences"] == 2
        assert items["new after reopen"]["counter"] == 2
    finally:
        second.served.stop()


# --- settings and fingerprints ----------------------------------------------------------------


def test_settings() -> None:
    settings = RollbarSettings.local()
    assert settings.tokens == {POST_TOKEN: frozenset({"post_server_item"}), READ_TOKEN: frozenset({"read"})}
    assert settings.max_payload_bytes == 128 * 1024 and settings.items_per_minute == 0
    with pytest.raises(ValueError, match="unknown scope") as raised:
        RollbarSettings(tokens={"secret-value": {"admin"}})
    assert "secret-value" not in str(raised.value)


def test_fingerprint_ignores_line_numbers_and_messages_but_not_methods() -> None:
    def trace_data(lineno: int, method: str, message: str, cls: str = "ValueError") -> dict[str, Any]:
        frames = [{"filename": "/srv/app/views.py", "lineno": lineno, "method": method}]
        return {
            "body": {"trace": {"frames": frames, "exception": {"class": cls, "message": message}}},
            "server": {"root": "/srv/app"},
        }

    base = grouping.fingerprint(trace_data(10, "checkout", "order 1"))
    assert grouping.fingerprint(trace_data(99, "checkout", "order 2")) == base
    assert grouping.fingerprint(trace_data(10, "render", "order 1")) != base
    assert grouping.fingerprint(trace_data(10, "checkout", "order 1", cls="KeyError")) != base
    assert grouping.fingerprint(trace_data(10, "handler_12345", "x")) == grouping.fingerprint(
        trace_data(10, "handler_678", "x")
    )


def test_message_data_stripping() -> None:
    assert grouping.strip_data(
        "took 12.5s at 2024-05-01T10:00:00Z for user 4242 (id 0xdeadbeef)"
    ) == grouping.strip_data("took 3.75s at 2025-12-31T23:59:59Z for user 17 (id 0x00c0ffee)")
    assert grouping.strip_data("cache added") == "cache added"  # hex-looking words survive
    assert grouping.strip_data("retry 1 of 3") == "retry 1 of 3"  # single digits are kept
