"""What a locustfile will send, read from its source text: importing it would import Locust, which
monkey-patches the whole process with gevent (the harness must never do that).

Understood, anywhere in the file:

- ``Route("home", "/api/activities/home", 6, 200)`` calls (name, path, weight, expected status; the
  bundled locustfile's form, keywords ``name=``, ``path=``, ``weight=``, ``expected_status=`` too);
- without such calls, ``@task`` / ``@task(weight)`` methods: the method's name, the first string in its
  body that starts with ``/`` (the path: ``self.client.get("/orders")``, ``self._send("GET", "/orders")``),
  the first HTTP method name written in it (default GET); the status is unknown;
- ``wait_time = between(a, b)``, ``constant(s)``, ``constant_pacing(s)`` or ``constant_throughput(n)``
  in a user class: how many requests one user sends a second, at most (response time ignored).

Anything else is reported as unknown, and the forecast falls back to history or a stated assumption.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class PlannedRoute:
    name: str
    path: str
    weight: float
    # the status the route answers when the app is healthy (decides status-specific expectations);
    # None: not written in the locustfile (the forecast then takes the costliest the expectations list)
    status: int | None
    method: str = "GET"


@dataclass(frozen=True)
class LocustfileTraffic:
    routes: tuple[PlannedRoute, ...]  # empty: not readable from the source
    requests_per_user_s: float | None  # None: no wait_time found
    wait_time: str  # as written, for messages ("between(0.2, 1.0)")


def _number(node: ast.AST) -> float | None:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float) and not isinstance(node.value, bool):
        return float(node.value)
    return None


def _text(node: ast.AST) -> str | None:
    return node.value if isinstance(node, ast.Constant) and isinstance(node.value, str) else None


def _call_name(node: ast.Call) -> str:
    func = node.func
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def _route(node: ast.Call) -> PlannedRoute | None:
    values: dict[str, ast.AST] = dict(zip(("name", "path", "weight", "expected_status"), node.args, strict=False))
    values.update({k.arg: k.value for k in node.keywords if k.arg})
    name = _text(values["name"]) if "name" in values else None
    path = _text(values["path"]) if "path" in values else None
    weight = _number(values["weight"]) if "weight" in values else None
    status = _number(values["expected_status"]) if "expected_status" in values else 200.0
    if name is None or path is None or weight is None or weight <= 0 or status is None:
        return None
    return PlannedRoute(name, path, weight, int(status))


_HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")


def _task_weight(function: ast.FunctionDef | ast.AsyncFunctionDef) -> float | None:
    """The weight of a ``@task`` or ``@task(n)`` method; None when it is no task."""
    for decorator in function.decorator_list:
        if isinstance(decorator, ast.Name) and decorator.id == "task":
            return 1.0
        if isinstance(decorator, ast.Call) and _call_name(decorator) == "task":
            weight = _number(decorator.args[0]) if decorator.args else 1.0
            return weight if weight is not None and weight > 0 else None
    return None


def _task_route(function: ast.FunctionDef | ast.AsyncFunctionDef, weight: float) -> PlannedRoute | None:
    texts = [t for node in ast.walk(function) if (t := _text(node)) is not None]
    path = next((t for t in texts if t.startswith("/")), None)
    if path is None:
        return None
    method = next((t for t in texts if t in _HTTP_METHODS), "GET")
    return PlannedRoute(function.name, path, weight, None, method)


def _rate(node: ast.Call) -> float | None:
    """Requests a second one user sends at most, for a wait_time call."""
    args = [_number(a) for a in node.args]
    kind = _call_name(node)
    if kind == "between" and len(args) == 2 and args[0] is not None and args[1] is not None:
        mean = (args[0] + args[1]) / 2
    elif kind in ("constant", "constant_pacing") and len(args) == 1 and args[0] is not None:
        mean = args[0]
    elif kind == "constant_throughput" and len(args) == 1 and args[0] is not None:
        return args[0]
    else:
        return None
    # No wait at all: the rate is bounded by response times only; say so rather than divide by zero.
    return 1.0 / mean if mean > 0 else None


def read_locustfile(path: Path) -> LocustfileTraffic:
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except (OSError, SyntaxError, ValueError):
        return LocustfileTraffic((), None, "")
    routes: list[PlannedRoute] = []
    tasks: list[PlannedRoute] = []
    rate: float | None = None
    wait = ""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _call_name(node) == "Route":
            route = _route(node)
            if route is not None:
                routes.append(route)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and (weight := _task_weight(node)):
            if (task_route := _task_route(node, weight)) is not None:
                tasks.append(task_route)
        elif isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "wait_time" for t in node.targets
        ):
            if isinstance(node.value, ast.Call) and rate is None:
                rate = _rate(node.value)
                wait = ast.unparse(node.value)
    return LocustfileTraffic(tuple(routes or tasks), rate, wait)
