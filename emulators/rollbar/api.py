"""Rollbar API emulator: ``POST /api/1/item/`` ingest and the read API the verifiers use.

Wire facts (rollbar/docs api/items_post.md, api/items.md, api/occurrences.md, api/overview.md):
every answer is JSON, ``{"err": 0, "result": ...}`` on success and ``{"err": 1, "message": ...}``
on error; ingest answers ``{"id": null, "uuid": ...}`` (``id`` is deprecated and always null);
400 no/undecodable JSON, 401 no access token, 403 token invalid or lacking the scope,
413 over the maximum payload size, 422 well-formed JSON that breaks the item format,
429 over the token's rate limit, 404 ``{"err": 1, "message": "not found"}`` for unknown ids and
URLs. Tokens come from the ``X-Rollbar-Access-Token`` header, the body's ``access_token``
(ingest) or the ``access_token`` query parameter (reads).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, quote

from werkzeug.exceptions import HTTPException, MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from emulators._wsgi import PayloadError, json_response, parse_json, read_body
from emulators.rollbar.payload import CLIENT_PLATFORMS, LEVELS, InvalidPayload, parse_item, platform_of
from emulators.rollbar.ratelimit import ItemRateLimiter
from emulators.rollbar.store import ItemFilter, RollbarStore
from emulators.rollbar.views import instance_json, item_json
from tracedrill import local

# "Max payload size is 128kb" (rollbar/docs api/items_post.md, 413 "Request Too Large"; the API
# overview's 413 row says "The request exceeded the maximum size of 128KB"). Rollbar's own SDKs
# have since truncated to 512 KB (rollbar-gem #521) and 1 MB (rollbar-java #371, 2026), so the live
# service may accept more; raise max_payload_bytes to model that.
MAX_PAYLOAD_BYTES = 128 * 1024

SCOPES = frozenset({"post_server_item", "post_client_item", "read", "write"})
ITEMS_PER_PAGE = 100
SQL_INT_MAX = 2**63 - 1  # SQLite stores integers in 64 bits: a bigger id, page or offset is a request error
_ID = f"int(max={SQL_INT_MAX})"  # a bigger id in a path matches no route: 404, like any unknown id
INSTANCES_PER_PAGE = 20
MAX_INSTANCES_LIMIT = 100
ITEM_STATUSES = ("active", "resolved", "muted", "archived")
TOKEN_HEADER = "X-Rollbar-Access-Token"
JSON_TYPE = "application/json; charset=utf-8"


@dataclass(frozen=True)
class RollbarSettings:
    """One emulated project: its access tokens (token -> scopes) and ingest limits."""

    tokens: Mapping[str, AbstractSet[str]] = field(default_factory=dict)
    project_id: int = 1
    project_name: str = "tracedrill"
    max_payload_bytes: int = MAX_PAYLOAD_BYTES
    items_per_minute: int = 0  # 0: no rate limit; over it POST /item/ answers 429

    def __post_init__(self) -> None:
        tokens: dict[str, frozenset[str]] = {}
        for position, (token, scopes) in enumerate(self.tokens.items(), start=1):
            unknown = set(scopes) - SCOPES
            if unknown:  # name the token by position: its value is a secret
                raise ValueError(f"token #{position} has unknown scope(s) {sorted(unknown)}; valid: {sorted(SCOPES)}")
            tokens[token] = frozenset(scopes)
        object.__setattr__(self, "tokens", tokens)
        if self.max_payload_bytes <= 0:
            raise ValueError("max_payload_bytes must be positive")
        if self.items_per_minute < 0:
            raise ValueError("items_per_minute must be 0 (off) or positive")

    @classmethod
    def local(cls, *, items_per_minute: int = 0, max_payload_bytes: int = MAX_PAYLOAD_BYTES) -> RollbarSettings:
        """The embedded stack's project: the local post token may post, the local read token read."""
        return cls(
            tokens={
                local.LOCAL_ROLLBAR_POST_TOKEN: {"post_server_item"},
                local.LOCAL_ROLLBAR_READ_TOKEN: {"read"},
            },
            project_name="tracedrill-local",
            max_payload_bytes=max_payload_bytes,
            items_per_minute=items_per_minute,
        )


class RollbarError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _ok(result: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return json_response({"err": 0, "result": result}, status=status, headers=headers, content_type=JSON_TYPE)


def _error(status: int, message: str) -> Response:
    return json_response({"err": 1, "message": message}, status=status, content_type=JSON_TYPE)


def _insufficient(needed: str, scopes: Iterable[str]) -> str:
    # Same wording as the real API's 403 (seen in Mixbook/rollbar.dart#5).
    has = ", ".join(sorted(scopes))
    return f"insufficient privileges: {needed} scope is required but the access token only has {has}."


def _positive_int(args: Mapping[str, str], name: str, default: int, maximum: int = SQL_INT_MAX) -> int:
    raw = args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 1 or value > maximum:
        raise RollbarError(422, f"Invalid format. {name} must be a positive integer between 1 and {maximum}.")
    return value


def _page(args: Mapping[str, str], per_page: int) -> int:
    """The page number, so small that its offset ((page - 1) x per page) still fits SQLite's integers."""
    return _positive_int(args, "page", 1, SQL_INT_MAX // per_page)


def _choices(request: Request, name: str, allowed: Iterable[str] | None = None) -> tuple[str, ...]:
    values = tuple(value for value in request.args.getlist(name) if value)
    if allowed is not None:
        valid = tuple(allowed)
        for value in values:
            if value not in valid:
                raise RollbarError(422, f"Invalid format. {name} must be one of {', '.join(valid)}.")
    return values


class RollbarApp:
    """The WSGI app; ``create_app`` is the public way to build one."""

    def __init__(self, store: RollbarStore, settings: RollbarSettings) -> None:
        self.store = store
        self.settings = settings
        self.limiter = ItemRateLimiter(settings.items_per_minute)
        # strict_slashes=False: "/api/1/items" and "/api/1/items/" both answer, no redirect in between.
        self.url_map = Map(
            [
                Rule("/api/1/item/", endpoint="ingest", methods=["POST"]),
                Rule("/api/1/items/", endpoint="list_items", methods=["GET"]),
                Rule(f"/api/1/item/<{_ID}:item_id>", endpoint="get_item", methods=["GET"]),
                Rule(f"/api/1/item_by_counter/<{_ID}:counter>", endpoint="item_by_counter", methods=["GET"]),
                Rule(f"/api/1/item/<{_ID}:item_id>/instances/", endpoint="item_instances", methods=["GET"]),
                Rule("/api/1/instances/", endpoint="list_instances", methods=["GET"]),
                Rule(f"/api/1/instance/<{_ID}:instance_id>", endpoint="get_instance", methods=["GET"]),
                Rule("/api/1/status/ping", endpoint="ping", methods=["GET"]),
            ],
            strict_slashes=False,
        )

    def __call__(self, environ: dict[str, Any], start_response: Any) -> Iterable[bytes]:
        response = self.dispatch(Request(environ))
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        adapter = self.url_map.bind_to_environ(request.environ)
        try:
            endpoint, args = adapter.match()
            handler = getattr(self, f"_{endpoint}")
            response: Response = handler(request, **args)
            return response
        except RollbarError as exc:
            return _error(exc.status, exc.message)
        except NotFound:
            return _error(404, "not found")
        except MethodNotAllowed:
            return _error(405, "method not allowed")
        except HTTPException as exc:
            return _error(exc.code or 500, exc.description or "error")

    # --- access tokens -------------------------------------------------------------------

    def _scopes(self, token: str | None) -> frozenset[str]:
        if not token:
            raise RollbarError(401, "No access token was found in the request.")
        scopes = self.settings.tokens.get(token)
        if scopes is None:
            # The real message appends the token; left out so client logs never echo it.
            raise RollbarError(403, "access token not found")
        return frozenset(scopes)

    def _authorize_post(self, token: str | None, platform: str | None) -> str:
        """The token, if it may post an item of ``platform``."""
        scopes = self._scopes(token)
        client_side = platform in CLIENT_PLATFORMS
        if "post_server_item" in scopes or (client_side and "post_client_item" in scopes):
            return str(token)
        raise RollbarError(403, _insufficient("post_client_item" if client_side else "post_server_item", scopes))

    def _authorize_read(self, request: Request) -> None:
        scopes = self._scopes(request.headers.get(TOKEN_HEADER) or request.args.get("access_token"))
        if "read" not in scopes:
            raise RollbarError(403, _insufficient("read", scopes))

    # --- ingest --------------------------------------------------------------------------

    def _ingest(self, request: Request) -> Response:
        try:
            raw = read_body(request, self.settings.max_payload_bytes)
        except PayloadError as exc:
            raise RollbarError(exc.status, "request entity too large" if exc.status == 413 else str(exc)) from exc
        payload = self._decode_item(request, raw)
        token = request.headers.get(TOKEN_HEADER)
        if not token and isinstance(payload, Mapping) and isinstance(payload.get("access_token"), str):
            token = payload["access_token"]
        token = self._authorize_post(token, platform_of(payload))
        if not self.limiter.allow(token):
            raise RollbarError(429, "over rate limit")
        try:
            occurrence = parse_item(payload)
        except InvalidPayload as exc:
            raise RollbarError(422, str(exc)) from exc
        result = self.store.ingest(occurrence)
        return _ok({"id": None, "uuid": result.uuid})

    @staticmethod
    def _decode_item(request: Request, raw: bytes) -> Any:
        # The docs also accept the JSON form-encoded as the only parameter, "payload".
        if request.mimetype == "application/x-www-form-urlencoded":
            values = parse_qs(raw.decode("utf-8", errors="replace")).get("payload")
            raw = values[0].encode("utf-8") if values else b""
        if not raw.strip():
            raise RollbarError(400, "No JSON payload was found.")
        try:
            return parse_json(raw)
        except PayloadError as exc:
            raise RollbarError(400, f"Could not decode the JSON payload: {exc}") from exc

    # --- read API ------------------------------------------------------------------------

    def _ping(self, request: Request) -> Response:
        return Response("pong", content_type="text/plain; charset=utf-8")

    def _list_items(self, request: Request) -> Response:
        self._authorize_read(request)
        for unsupported in ("query", "assigned_user"):
            if request.args.get(unsupported):
                raise RollbarError(422, f"the {unsupported!r} parameter is not supported by this Rollbar emulator")
        where = ItemFilter(
            statuses=_choices(request, "status", ITEM_STATUSES),
            levels=_choices(request, "level", LEVELS),
            environments=_choices(request, "environment"),
            frameworks=_choices(request, "framework"),
            ids=self._ids(request.args.get("ids", "")),
        )
        page = _page(request.args, ITEMS_PER_PAGE)
        items, total = self.store.list_items(where, (page - 1) * ITEMS_PER_PAGE, ITEMS_PER_PAGE)
        project = self.settings.project_id
        return _ok({"page": page, "total_count": total, "items": [item_json(item, project) for item in items]})

    @staticmethod
    def _ids(raw: str) -> tuple[int, ...]:
        try:
            ids = tuple(int(part) for part in raw.split(",") if part.strip())
        except ValueError:
            ids = (-1,)
        if any(not 0 <= i <= SQL_INT_MAX for i in ids):
            raise RollbarError(422, "Invalid format. ids must be a comma-separated list of integers.")
        return ids

    def _get_item(self, request: Request, item_id: int) -> Response:
        self._authorize_read(request)
        item = self.store.get_item(item_id)
        if item is None:
            raise RollbarError(404, "not found")
        return _ok(item_json(item, self.settings.project_id))

    def _item_by_counter(self, request: Request, counter: int) -> Response:
        self._authorize_read(request)
        item = self.store.get_item_by_counter(counter)
        if item is None:
            raise RollbarError(404, "not found")
        path = f"/api/1/item/{item.id}"
        query_token = request.args.get("access_token")
        # Like the docs' example, the redirect carries the token on only if it came in the query string.
        uri = f"{path}?access_token={quote(query_token, safe='')}" if query_token else path
        return _ok({"itemId": item.id, "path": path, "uri": uri}, status=301, headers={"Location": uri})

    def _instances_page(self, request: Request, item_id: int | None) -> Response:
        limit = _positive_int(request.args, "limit", INSTANCES_PER_PAGE, MAX_INSTANCES_LIMIT)
        page = _page(request.args, limit)
        last_id = _positive_int(request.args, "last_id", 0) or None
        # A last_id cursor takes precedence over page (as Rollbar's MCP server documents it).
        offset = 0 if last_id is not None else (page - 1) * limit
        instances = self.store.list_instances(item_id, offset, limit, before_id=last_id)
        project = self.settings.project_id
        return _ok({"page": page, "instances": [instance_json(instance, project) for instance in instances]})

    def _item_instances(self, request: Request, item_id: int) -> Response:
        self._authorize_read(request)
        if self.store.get_item(item_id) is None:
            raise RollbarError(404, "not found")
        return self._instances_page(request, item_id)

    def _list_instances(self, request: Request) -> Response:
        self._authorize_read(request)
        return self._instances_page(request, None)

    def _get_instance(self, request: Request, instance_id: int) -> Response:
        self._authorize_read(request)
        instance = self.store.get_instance(instance_id)
        if instance is None:
            raise RollbarError(404, "not found")
        return _ok(instance_json(instance, self.settings.project_id))


def create_app(store: RollbarStore, settings: RollbarSettings) -> RollbarApp:
    """The Rollbar emulator as a WSGI app over ``store``."""
    return RollbarApp(store, settings)
