"""What a locustfile will send, read from its source text: importing it would import Locust, which
monkey-patches the whole process with gevent (the harness must never do that).

Understood, anywhere in the file:

- ``Route("home", "/api/activities/home", 6, 200)`` calls (name, path, weight, expected status; the
  bundled locustfile's form, keywords ``name=``, ``path=``, ``weight=``, ``expected_status=`` too);
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
    status: int  # the status the route answers when the app is healthy (decides status-specific expectations)


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
    rate: float | None = None
    wait = ""
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and _call_name(node) == "Route":
            route = _route(node)
            if route is not None:
                routes.append(route)
        elif isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "wait_time" for t in node.targets
        ):
            if isinstance(node.value, ast.Call) and rate is None:
                rate = _rate(node.value)
                wait = ast.unparse(node.value)
    return LocustfileTraffic(tuple(routes), rate, wait)
