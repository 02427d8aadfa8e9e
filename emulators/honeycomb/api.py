"""The Honeycomb emulator's WSGI app: OTLP ingest plus the V1 read and Query Data APIs.

Routes: ``POST /v1/traces``; ``GET /1/auth``; ``GET /1/datasets[/{slug}]``;
``GET /1/columns/{slug}[?key_name=]``; ``POST /1/queries/{slug}``, ``GET /1/queries/{slug}/{id}``;
``POST /1/query_results/{slug}``, ``GET /1/query_results/{slug}/{id}`` (``__all__`` = every dataset).

Plan "free": Honeycomb documents the Query Data API as Enterprise-only but not what a team
without it gets back. The emulator answers the two query_results routes with 403 and a message
saying so. Creating a query spec (``/1/queries``) is the Queries API, which boards and triggers
use on every plan, so it keeps working, as do auth, datasets and columns.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from werkzeug.exceptions import MethodNotAllowed, NotFound
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from emulators._wsgi import PayloadError, json_response, parse_json, read_body
from emulators.honeycomb.ingest import handle_traces
from emulators.honeycomb.prefilter import sql_prefilters
from emulators.honeycomb.query import (
    MAX_LIMIT,
    QueryError,
    RunOptions,
    check_column_types,
    reads_columns,
    referenced_columns,
    resolve_window,
    run_query,
    unsupported_reason,
    validate_spec,
)
from emulators.honeycomb.ratelimit import RateLimiter
from emulators.honeycomb.responses import problem, unauthorized
from emulators.honeycomb.settings import ApiKeyAccess, HoneycombSettings, key_id
from emulators.honeycomb.store import ALL_DATASETS, ColumnInfo, DatasetInfo, HoneycombStore, new_id

__all__ = ["ApiKeyAccess", "HoneycombSettings", "create_app"]

# docs.honeycomb.io/api/errors: "The request body exceeds the maximum allowed size of 100,000 bytes."
MAX_API_BODY_BYTES = 100_000
QUERY_DATA_NEEDS_ENTERPRISE = (
    "The Query Data API is available as part of the Honeycomb Enterprise plan; this team is on the free plan."
)

WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]

_URLS = Map([
    Rule("/v1/traces", endpoint="traces", methods=["POST"]),
    Rule("/1/auth", endpoint="auth", methods=["GET"]),
    Rule("/1/datasets", endpoint="datasets", methods=["GET"]),
    Rule("/1/datasets/<slug>", endpoint="dataset", methods=["GET"]),
    Rule("/1/columns/<slug>", endpoint="columns", methods=["GET"]),
    Rule("/1/queries/<slug>", endpoint="create_query", methods=["POST"]),
    Rule("/1/queries/<slug>/<query_id>", endpoint="get_query", methods=["GET"]),
    Rule("/1/query_results/<slug>", endpoint="create_result", methods=["POST"]),
    Rule("/1/query_results/<slug>/<result_id>", endpoint="get_result", methods=["GET"]),
])  # fmt: skip


def create_app(store: HoneycombStore, settings: HoneycombSettings) -> WsgiApp:
    return HoneycombApi(store, settings)


def _iso(epoch: float | None) -> str | None:
    if epoch is None:
        return None
    return datetime.fromtimestamp(epoch, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Denied(Exception):
    def __init__(self, response: Response) -> None:
        self.response = response


class HoneycombApi:
    def __init__(self, store: HoneycombStore, settings: HoneycombSettings) -> None:
        self.store = store
        self.settings = settings
        self.limiter = RateLimiter(settings.query_results_per_minute, settings.clock)

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        response = self.dispatch(Request(environ))
        return response(environ, start_response)

    def dispatch(self, request: Request) -> Response:
        try:
            endpoint, args = _URLS.bind_to_environ(request.environ).match()
        except NotFound:
            return problem(404, f"no route for {request.path}")
        except MethodNotAllowed:
            return problem(405, f"{request.method} is not allowed on {request.path}")
        if endpoint == "traces":
            return handle_traces(request, self.store, self.settings)
        access = self.settings.access(request.headers.get("X-Honeycomb-Team"))
        if access is None:
            return unauthorized()
        handler: Callable[..., Response] = getattr(self, f"_{endpoint}")
        try:
            return handler(request, access, **args)
        except _Denied as denied:
            return denied.response
        except QueryError as exc:
            return problem(exc.status, exc.message, invalid_fields=exc.fields)
        except PayloadError as exc:
            return problem(exc.status, str(exc))

    # --- guards ---------------------------------------------------------------------------------

    @staticmethod
    def _require(access: ApiKeyAccess, *permissions: str) -> None:
        missing = [p for p in permissions if not getattr(access, p)]
        if missing:
            raise _Denied(problem(403, f"this API key lacks the {', '.join(missing)} permission"))

    def _require_query_data(self) -> None:
        if self.settings.plan != "enterprise":
            raise _Denied(problem(403, QUERY_DATA_NEEDS_ENTERPRISE))

    def _dataset_or_404(self, slug: str, allow_all: bool) -> DatasetInfo | None:
        if allow_all and slug == ALL_DATASETS:
            return None
        dataset = self.store.get_dataset(slug)
        if dataset is None:
            raise _Denied(problem(404, "Dataset not found"))
        return dataset

    def _json_body(self, request: Request) -> Any:
        if request.mimetype != "application/json":
            raise _Denied(problem(415, "the Content-Type must be application/json"))
        return parse_json(read_body(request, MAX_API_BODY_BYTES))

    def _links(self, slug: str, result_id: str) -> dict[str, str]:
        s = self.settings
        url = f"{s.ui_url}/{s.team_slug}/environments/{s.environment_slug}/datasets/{slug}/result/{result_id}"
        return {"query_url": url, "graph_image_url": f"{url}/snapshot"}

    # --- auth, datasets, columns ----------------------------------------------------------------

    def _auth(self, request: Request, access: ApiKeyAccess) -> Response:
        key = request.headers["X-Honeycomb-Team"]
        s = self.settings
        return json_response(
            {
                "id": key_id(key),
                "type": "configuration",
                "api_key_access": access.to_wire(),
                "environment": {"name": s.environment_name, "slug": s.environment_slug},
                "team": {"name": s.team_name, "slug": s.team_slug},
            }
        )

    @staticmethod
    def _dataset_json(d: DatasetInfo) -> dict[str, Any]:
        return {
            "name": d.name,
            "slug": d.slug,
            "description": "",
            "expand_json_depth": 0,
            "created_at": _iso(d.created_at),
            "last_written_at": _iso(d.last_written_at),
            "regular_columns_count": d.columns_count,
        }

    def _datasets(self, request: Request, access: ApiKeyAccess) -> Response:
        self._require(access, "create_datasets")
        return json_response([self._dataset_json(d) for d in self.store.list_datasets()])

    def _dataset(self, request: Request, access: ApiKeyAccess, slug: str) -> Response:
        self._require(access, "create_datasets")
        dataset = self._dataset_or_404(slug, allow_all=False)
        assert dataset is not None
        return json_response(self._dataset_json(dataset))

    @staticmethod
    def _column_json(c: ColumnInfo) -> dict[str, Any]:
        return {
            "id": c.id,
            "key_name": c.key_name,
            "hidden": c.hidden,
            "description": "",
            "type": c.type,
            "last_written": _iso(c.last_written),
            "created_at": _iso(c.created_at),
            "updated_at": _iso(c.updated_at),
        }

    def _columns(self, request: Request, access: ApiKeyAccess, slug: str) -> Response:
        self._require(access, "columns")
        self._dataset_or_404(slug, allow_all=True)
        columns = self.store.list_columns(slug)
        key_name = request.args.get("key_name")
        if key_name is None:
            return json_response([self._column_json(c) for c in columns])
        column = next((c for c in columns if c.key_name == key_name), None)
        if column is None:
            return problem(404, "Column not found")
        return json_response(self._column_json(column))

    # --- queries --------------------------------------------------------------------------------

    def _create_query(self, request: Request, access: ApiKeyAccess, slug: str) -> Response:
        self._require(access, "columns")
        self._dataset_or_404(slug, allow_all=True)
        spec = validate_spec(self._json_body(request))
        spec.pop("id", None)
        known = {c.key_name for c in self.store.list_columns(slug)}
        unknown = sorted(referenced_columns(spec) - known)
        if unknown:
            # Honeycomb refuses a query naming columns the dataset has never had with 422 Validation
            # Failed (honeycombio/honeycomb-mcp issue #24: AVG/breakdown on missing columns -> 422).
            raise QueryError(f"unknown column(s) in dataset {slug}: {', '.join(unknown)}", 422, unknown)
        query_id = new_id()
        self.store.save_query(query_id, slug, spec, self.settings.clock())
        return json_response({**spec, "id": query_id})

    def _get_query(self, request: Request, access: ApiKeyAccess, slug: str, query_id: str) -> Response:
        self._require(access, "columns")
        stored = self.store.get_query(query_id)
        if stored is None or stored.dataset != slug:
            return problem(404, "Query not found")
        return json_response({**stored.spec, "id": stored.id})

    def _create_result(self, request: Request, access: ApiKeyAccess, slug: str) -> Response:
        self._require_query_data()
        self._require(access, "columns", "queries")
        decision = self.limiter.hit(request.headers["X-Honeycomb-Team"])
        if not decision.allowed:
            per_minute = self.limiter.per_minute
            return problem(429, f"This endpoint allows {per_minute} requests per minute.", decision.headers)
        dataset = self._dataset_or_404(slug, allow_all=True)
        body = self._json_body(request)
        if not isinstance(body, dict) or not isinstance(body.get("query_id"), str):
            raise QueryError("query_id: a query result needs the id of a query")
        stored = self.store.get_query(body["query_id"])
        if stored is None or stored.dataset != slug:
            return problem(404, "Query not found")
        options = self._run_options(body)
        spec = stored.spec
        now = self.settings.clock()
        window = resolve_window(spec, now)
        check_column_types(spec, {c.key_name: c.type for c in self.store.list_columns(slug)})
        reason = unsupported_reason(spec)
        if reason:
            raise QueryError(reason, status=501)
        slugs = [d.slug for d in self.store.list_datasets()] if dataset is None else [dataset.slug]
        rows = self.store.iter_events(slugs, window.start, window.end, sql_prefilters(spec), reads_columns(spec))
        result_id = new_id()
        query = {**spec, "id": stored.id}
        links = self._links(slug, result_id)
        data = run_query(spec, rows, window, options)
        self.store.save_query_result(
            result_id,
            slug,
            stored.id,
            now,
            {"id": result_id, "complete": True, "query": query, "data": data, "links": links},
        )
        headers = {**decision.headers, "Location": f"{request.host_url}1/query_results/{slug}/{result_id}"}
        # Like the real service, creation only reports the result as started; polling returns the data.
        return json_response(
            {"id": result_id, "complete": False, "query": query, "links": links}, status=201, headers=headers
        )

    @staticmethod
    def _run_options(body: dict[str, Any]) -> RunOptions:
        for name in ("disable_series", "disable_total_by_aggregate", "disable_other_by_aggregate"):
            if name in body and not isinstance(body[name], bool):
                raise QueryError(f"{name}: must be a boolean")
        limit = body.get("limit")
        if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT):
            raise QueryError(f"limit: must be an integer between 1 and {MAX_LIMIT}, got {limit!r}")
        return RunOptions(
            disable_series=body.get("disable_series", False),
            limit=limit,
            total_by_aggregate=not body.get("disable_total_by_aggregate", True),
            other_by_aggregate=not body.get("disable_other_by_aggregate", True),
        )

    def _get_result(self, request: Request, access: ApiKeyAccess, slug: str, result_id: str) -> Response:
        self._require_query_data()
        self._require(access, "columns", "queries")
        found = self.store.get_query_result_json(result_id)
        if found is None or found[0] != slug:
            return problem(404, "Query result not found")
        # Stored as json.dumps wrote it: the same bytes json_response would send (results run to megabytes).
        return Response(found[1], content_type="application/json")
