"""What the service under test should emit, per route: the expectations file (TOML).

The verifiers are generic; everything specific to one app lives in its expectations file. The
bundled Cruddur target's file is ``verifiers/expectations/cruddur.toml`` (read it as an example).
Another Flask app needs only another file: ``tracedrill run --expect my-app.toml``.

Format
======

A request in the sent-ledger is matched to the first ``[[routes]]`` entry whose ``method`` (optional,
any when left out) equals its method and whose ``path`` regex matches its path (``re.search``, so
anchor with ``^...$``). Requests that match no route still get everything outside ``[[routes]]``
(server span, segment, log lines) and are expected to produce no Rollbar occurrence. Requests that
got no response (status None in the ledger) are never expected to produce anything.

::

    [service]
    name = "backend-flask"              # OTel service.name and X-Ray segment name (required)
    honeycomb_dataset = "backend-flask" # optional; default: the service name as Honeycomb slugs it
    log_group = "cruddur"               # CloudWatch Logs group (required)
    rollbar_environment = "local"       # Rollbar environment (required)

    [honeycomb]
    request_id_attribute = "app.request_id"  # the column carrying the request id (required)
    error_statuses = ["5xx"]                 # the server span has error=true for exactly these
    [honeycomb.server_span]                  # the one span.kind=server span per request
    name = '^{method} /'                     # optional regex its name must match
    attributes = { "http.status_code" = "= {status}" }
    [honeycomb.every_span]                   # every span of the request's trace
    attributes = { "app.request_id" = "= {request_id}" }

    [xray]
    request_id_annotation = "request_id"     # the segment annotation with the request id (required)
    fault_statuses = ["5xx"]                 # segment fault=true for exactly these
    error_statuses = ["4xx"]                 # segment error=true for exactly these
    [xray.segment]
    annotations = { request_id = "= {request_id}" }
    metadata = {}

    [logs]
    request_id_regex = 'request_id=(?P<request_id>[0-9A-Za-z._:-]+)'  # finds the request id in any line
    filter_pattern = '"request_id="'   # optional FilterLogEvents pattern that narrows the read
    [[logs.lines]]                     # lines every request writes
    name = "access line"
    pattern = '^\\[.+\\] \\S+ {method} \\S+ {path}\\?\\S* {status} request_id={request_id}$'
    count = 1                          # exactly this many per request (default 1)

    [rollbar]
    request_id_path = "custom.request_id"   # where in an occurrence's data the request id is

    [[routes]]
    name = "home"
    method = "GET"
    path = '^/api/activities/home$'

      [[routes.honeycomb.spans]]       # spans besides the server span
      name = "home-activities-mock-data"
      parent = "server"                # "server" or the name of another span listed before it
      attributes = { "app.now" = "exists", "app.result_length" = "> 0" }

      [[routes.xray.subsegments]]
      name = "user-activities"
      parent = "segment"               # "segment" or the name of another subsegment listed before it
      annotations = { user_handle = "exists" }
      metadata = { "cruddur.query" = "exists" }  # namespace.key[.nested...] path

      [[routes.logs.lines]]            # lines only this route writes
      name = "hello line"
      pattern = '^Hello Cloudwatch! from /api/activities/home request_id={request_id}$'

      [[routes.rollbar.occurrences]]
      level = "error"                  # critical | error | warning | info | debug
      exception_class = "RuntimeError" # an exception occurrence of this class, or:
      # message = '^Hello'             # a message occurrence whose text matches this regex
      count = 1                        # per request (default 1)
      one_item = true                  # all of this route's occurrences grouped into one Rollbar item

Every span, subsegment, line and occurrence entry takes ``statuses = [200]`` or ``["2xx", 404]``
to apply only to requests answered with one of those statuses (default: any status).

Nothing unexpected: every span in a sent trace, every subsegment in a sampled trace, every log line
and every Rollbar occurrence carrying a sent request id must be one the expectations list for that
request's route and status; anything else fails a "nothing unexpected" check and counts as extra.
Telemetry a library emits on its own (e.g. the requests instrumentation's client spans) is allowed
by name with ``allow_unlisted``, a list of regexes (placeholders allowed), in the backend's section
(any route) or in a route's::

    [honeycomb]
    allow_unlisted = ['^HTTP (GET|POST)$']  # span names allowed besides the server span and listed spans
    [xray]
    allow_unlisted = ['^api\\.example\\.com$']  # segment and subsegment names allowed besides the listed ones
    [logs]
    allow_unlisted = ['^retrying .* request_id={request_id}$']  # lines allowed besides the listed lines
    [[routes]]
    ...
      [routes.honeycomb]
      allow_unlisted = ['^SELECT ']     # this route only (also [routes.xray], [routes.logs])

The bundled Cruddur file allows nothing unlisted.

Conditions (attributes, annotations, metadata) are strings: ``"exists"``, ``"absent"``,
``"= v"``, ``"!= v"``, ``"> n"``, ``">= n"``, ``"< n"``, ``"<= n"`` or ``"~ regex"``; a bare
number or boolean means ``=``. Numbers compare exactly as numbers (``= 200`` matches 200, 200.0 and
"200", never " 200 "; big integers never match a neighbour through float rounding). A placeholder
compares as exact text: ``= {request_id}`` matches only that id, written the same way.

Placeholders, filled from the request's ledger line: ``{request_id}``, ``{trace_id}``,
``{parent_span_id}``, ``{method}``, ``{path}``, ``{status}``, ``{name}`` (the route name the load
generator used). In regexes they match the literal value.

Mistakes are reported with the key path and what is wrong, e.g.
``cruddur.toml: routes[0].honeycomb.spans[0]: unknown key 'atributes' - did you mean 'attributes'?``
"""

from __future__ import annotations

import difflib
import functools
import math
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from verifiers.model import SentRequest

DEFAULT_EXPECTATIONS = Path(__file__).resolve().with_name("expectations") / "cruddur.toml"

PLACEHOLDERS = ("request_id", "trace_id", "parent_span_id", "method", "path", "status", "name")
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")
# Shapes each placeholder's value takes at check time (inserted with re.escape, as fill() does).
_SAMPLE_VALUES = {
    "request_id": ("0af9", "x"),
    "trace_id": ("0af9",),
    "parent_span_id": ("0af9", ""),
    "method": ("GET", "DELETE"),
    "path": ("/api/a-b/1", "/"),
    "status": ("200", ""),
    "name": ("a-b", "user_activities"),
}
_OPS = ("exists", "absent", ">=", "<=", "!=", "=", ">", "<", "~")
LEVELS = ("critical", "error", "warning", "info", "debug")
MISSING: Any = object()  # a condition's value when the attribute is not there at all


class ExpectationsError(ValueError):
    """The expectations file is invalid; the message names the file, the key and what is wrong."""


def placeholder_values(request: SentRequest) -> dict[str, str]:
    return {
        "request_id": request.request_id,
        "trace_id": request.trace_id,
        "parent_span_id": request.parent_span_id,
        "method": request.method,
        "path": request.path.split("?", 1)[0],
        "status": "" if request.status is None else str(request.status),
        "name": request.name,
    }


# One placeholder's value for a request (as placeholder_values gives it), without building the whole dict.
_VALUE_OF: dict[str, Callable[[SentRequest], str]] = {
    "request_id": lambda r: r.request_id,
    "trace_id": lambda r: r.trace_id,
    "parent_span_id": lambda r: r.parent_span_id,
    "method": lambda r: r.method,
    "path": lambda r: r.path.split("?", 1)[0],
    "status": lambda r: "" if r.status is None else str(r.status),
    "name": lambda r: r.name,
}


def fill(template: str, request: SentRequest, *, escape: bool = False) -> str:
    if "{" not in template:
        return template  # nothing to fill (the common case for a condition's operand)
    if escape:
        return _PLACEHOLDER.sub(lambda m: re.escape(_VALUE_OF[m[1]](request)), template)
    return _PLACEHOLDER.sub(lambda m: _VALUE_OF[m[1]](request), template)


# Regex syntax whose meaning a capture group in place of a literal could change (lookarounds, atomic groups,
# conditionals, comments, backreferences, numeric escapes that could take a value's digits, possessive
# quantifiers, verbose mode): templates using any of it are filled and compiled per request. Over-broad on
# purpose: a false hit only costs speed.
# A quantified group ("(...)+") is not generic either: its group keeps only the last repetition's value.
_NOT_GENERIC = re.compile(r"\\[0-9xuUNg]|\(\?[=!<>(#]|\(\?P=|[*+?}]\+|\(\?[a-zA-Z-]*x|\)[*+?{]")
_IN_COUNT = re.compile(r"\{[\d,]*$")  # a "{" (and digits) before a placeholder: maybe a repetition count
_GROUP = "_tdph"  # prefix of the generic regex's own group names


@dataclass(frozen=True)
class RegexTemplate:
    """A regex whose ``{placeholders}`` stand for a request's values, matched as literal text.

    ``search(request, text)`` answers exactly what ``re.search(fill(template, request, escape=True), text)``
    would, without compiling a regex per request: one *generic* regex, compiled once, has a capture group
    matching anything in place of each placeholder. A text the generic regex does not match cannot match
    the filled one (each literal is one of the strings the group matches), and a match whose groups hold
    exactly the request's values is a match of the filled regex (the literals match where the groups did).
    Only a generic match with other group values (a wrong value, or an alignment the lazy groups chose
    differently) is decided by the filled regex itself.
    """

    template: str

    def exact(self, request: SentRequest) -> re.Pattern[str]:
        """The template filled for ``request`` and compiled."""
        return re.compile(fill(self.template, request, escape=True))

    def search(self, request: SentRequest, text: str) -> bool:
        generic = self._generic
        if generic is None:
            return self.exact(request).search(text) is not None
        pattern, groups, values = generic
        m = pattern.search(text)
        if m is None:
            return False
        if not groups or m.group(*groups) == (values[0](request) if len(values) == 1 else _values(values, request)):
            return True
        return self.exact(request).search(text) is not None

    @functools.cached_property
    def _generic(self) -> tuple[re.Pattern[str], tuple[str, ...], tuple[Callable[[SentRequest], str], ...]] | None:
        """(the generic regex, its placeholder groups, each group's value for a request), or None when the
        template must be filled."""
        if not _PLACEHOLDER.search(self.template):
            return re.compile(self.template), (), ()
        if _NOT_GENERIC.search(self.template):
            return None
        parts: list[str] = []
        groups: list[str] = []
        values: list[Callable[[SentRequest], str]] = []
        end = 0
        for m in _PLACEHOLDER.finditer(self.template):
            if m[1] not in _VALUE_OF or not _stands_alone(self.template, m.start(), m.end()):
                return None
            group = f"{_GROUP}{len(groups)}"
            parts += [self.template[end : m.start()], f"(?P<{group}>(?s:.*?))"]
            groups.append(group)
            values.append(_VALUE_OF[m[1]])
            end = m.end()
        parts.append(self.template[end:])
        try:
            return re.compile("".join(parts)), tuple(groups), tuple(values)
        except re.error:
            return None  # e.g. a placeholder inside a group name: only the filled regex says what it means


def _values(values: tuple[Callable[[SentRequest], str], ...], request: SentRequest) -> tuple[str, ...]:
    return tuple([value(request) for value in values])


def _stands_alone(template: str, start: int, end: int) -> bool:
    """Whether the placeholder at ``template[start:end]`` is a whole regex item: not escaped, not inside a
    character class or a repetition count, and not itself repeated (``{method}+`` repeats only the last
    character of the filled literal, but the whole group of the generic regex)."""
    i, in_class = 0, False
    while i < start:
        ch = template[i]
        if ch == "\\":
            i += 2  # the escaped character is literal, whatever it is
            continue
        if in_class:
            in_class = ch != "]"
        elif ch == "[":
            in_class = True
            i += 1
            if template[i : i + 1] == "^":
                i += 1
            if template[i : i + 1] == "]":  # a ']' first in a class is literal
                i += 1
            continue
        i += 1
    if i > start or in_class or _IN_COUNT.search(template, 0, start):
        return False
    following = template[end : end + 1]
    if following in ("*", "+", "?"):
        return False
    return following != "{" or _PLACEHOLDER.match(template, end) is not None


# ---- the model -----------------------------------------------------------------------------


@dataclass(frozen=True)
class StatusSet:
    """HTTP statuses an expectation applies to: exact codes and ``Nxx`` classes; empty means any."""

    patterns: tuple[str, ...] = ()

    def __contains__(self, status: object) -> bool:
        if not isinstance(status, int):
            return False
        if not self.patterns:
            return True
        codes, classes = self._sets
        text = str(status)
        return text in codes or text[0] in classes

    @functools.cached_property
    def _sets(self) -> tuple[frozenset[str], frozenset[str]]:
        """(exact codes, first digits of the ``Nxx`` classes): asked for every request."""
        classes = frozenset(p[0] for p in self.patterns if p.endswith("xx"))
        return frozenset(self.patterns), classes

    def describe(self) -> str:
        return "/".join(self.patterns) if self.patterns else "any status"


@dataclass(frozen=True)
class Condition:
    """``key op operand``: what one attribute, annotation or metadata value must be."""

    key: str
    op: str
    operand: str = ""  # a template: placeholders are filled per request

    def describe(self) -> str:
        return f"{self.key} {self.op}" + (f" {self.operand}" if self.operand else "")

    def check(self, value: Any, request: SentRequest) -> str | None:
        """None when ``value`` satisfies the condition, else what is wrong (for a check's detail)."""
        present = value is not MISSING and value is not None
        if self.op == "exists":
            return None if present else f"{self.key} missing"
        if self.op == "absent":
            return None if not present else f"{self.key} present ({value!r})"
        if not present:
            return f"{self.key} missing"
        whole = self._whole_placeholder
        if whole is None:
            want = fill(self.operand, request, escape=self.op == "~")  # in a regex, a placeholder is literal
        else:  # the common "= {request_id}": the value itself, without a substitution per request
            want = _VALUE_OF[whole](request)
            want = re.escape(want) if self.op == "~" else want
        ok = _compare(value, self.op, want, templated=self._templated)
        return None if ok else f"{self.key} is {value!r}, wanted {self.op} {want}"

    @functools.cached_property
    def _templated(self) -> bool:
        return _PLACEHOLDER.search(self.operand) is not None

    @functools.cached_property
    def _whole_placeholder(self) -> str | None:
        """The placeholder that is the whole operand (``{request_id}``), if it is one we know."""
        m = _PLACEHOLDER.fullmatch(self.operand)
        return m[1] if m and m[1] in _VALUE_OF else None


# Numeric text as written, whole: no padding, no "nan"/"inf", no digit separators.
_NUMERIC = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")


def _number(value: Any) -> Decimal | None:
    """``value`` as an exact number, or None. Exact so that ids too big for a float never collide
    (1234567890123456789 and ...788 are one float); a float counts as its shortest repr (0.1 is 0.1)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return Decimal(value)
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, str) and _NUMERIC.fullmatch(value):
        return Decimal(value)
    return None


def _text(value: Any) -> str:
    """A value as the text a filled placeholder is compared with: 200 and 200.0 read "200", True reads "true"."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return str(int(value))
    return str(value)


def _equal(value: Any, want: str, templated: bool) -> bool:
    if templated:  # a filled placeholder ({request_id}, {status}) is an exact value: compare the text
        return _text(value) == want
    if want.startswith('"') and want.endswith('"') and len(want) >= 2:
        return isinstance(value, str) and value == want[1:-1]
    if isinstance(value, bool) or want in ("true", "false"):
        return str(value).lower() == want
    a, b = _number(value), _number(want)
    if a is not None and b is not None:
        return a == b
    return str(value) == want


def _compare(value: Any, op: str, want: str, templated: bool = False) -> bool:
    if op == "=":
        return _equal(value, want, templated)
    if op == "!=":
        return not _equal(value, want, templated)
    if op == "~":
        return re.search(want, str(value)) is not None
    a, b = _number(value), _number(want)
    if a is None or b is None:
        return False
    return {">": a > b, ">=": a >= b, "<": a < b, "<=": a <= b}[op]


@dataclass(frozen=True)
class SpanExpectation:
    name: str
    parent: str  # "server" or an earlier span's name
    attributes: tuple[Condition, ...]
    statuses: StatusSet


@dataclass(frozen=True)
class SubsegmentExpectation:
    name: str
    parent: str  # "segment" or an earlier subsegment's name
    annotations: tuple[Condition, ...]
    metadata: tuple[Condition, ...]
    statuses: StatusSet


@dataclass(frozen=True)
class LineExpectation:
    name: str
    pattern: str  # regex template with placeholders
    count: int
    statuses: StatusSet

    def regex_for(self, request: SentRequest) -> re.Pattern[str]:
        return regex_template(self.pattern).exact(request)

    def matches(self, request: SentRequest, text: str) -> bool:
        """Whether ``text`` matches the pattern filled for ``request`` (``regex_for(request).search(text)``),
        without compiling a regex per request."""
        return self._template.search(request, text)

    @functools.cached_property
    def _template(self) -> RegexTemplate:
        return regex_template(self.pattern)

    def fields(self) -> list[str]:
        """The request fields the pattern pins down, besides the request id (for check names)."""
        return [m for m in _PLACEHOLDER.findall(self.pattern) if m != "request_id"]


@dataclass(frozen=True)
class OccurrenceExpectation:
    level: str
    exception_class: str | None
    message: str | None  # regex the message text must match
    count: int
    one_item: bool
    statuses: StatusSet

    def describe(self) -> str:
        what = f"{self.exception_class} exception" if self.exception_class else "message"
        return f"{self.level} {what}"


@dataclass(frozen=True)
class Route:
    name: str
    method: str | None
    path: re.Pattern[str]
    spans: tuple[SpanExpectation, ...] = ()
    subsegments: tuple[SubsegmentExpectation, ...] = ()
    lines: tuple[LineExpectation, ...] = ()
    occurrences: tuple[OccurrenceExpectation, ...] = ()
    # allow_unlisted of the route's [routes.honeycomb], [routes.xray] and [routes.logs] tables
    unlisted_spans: tuple[str, ...] = ()
    unlisted_subsegments: tuple[str, ...] = ()
    unlisted_lines: tuple[str, ...] = ()

    def matches(self, request: SentRequest) -> bool:
        if self.method is not None and self.method != request.method.upper():
            return False
        return self.path.search(request.path.split("?", 1)[0]) is not None


@dataclass(frozen=True)
class ServiceNames:
    name: str
    honeycomb_dataset: str
    log_group: str
    rollbar_environment: str


@dataclass(frozen=True)
class HoneycombExpectations:
    request_id_attribute: str
    error_statuses: StatusSet
    server_name: str | None  # regex template
    server_attributes: tuple[Condition, ...]
    every_span_attributes: tuple[Condition, ...]
    allow_unlisted: tuple[str, ...] = ()  # span name regexes allowed in any trace beyond the listed spans


@dataclass(frozen=True)
class XRayExpectations:
    request_id_annotation: str
    fault_statuses: StatusSet
    error_statuses: StatusSet
    segment_annotations: tuple[Condition, ...]
    segment_metadata: tuple[Condition, ...]
    allow_unlisted: tuple[str, ...] = ()  # segment/subsegment name regexes allowed beyond the listed ones


@dataclass(frozen=True)
class LogsExpectations:
    request_id_regex: re.Pattern[str]
    filter_pattern: str | None
    lines: tuple[LineExpectation, ...]
    allow_unlisted: tuple[str, ...] = ()  # line regex templates allowed beyond the listed lines


@dataclass(frozen=True)
class RollbarExpectations:
    request_id_path: str


@dataclass(frozen=True)
class Expectations:
    source: str
    service: ServiceNames
    honeycomb: HoneycombExpectations
    xray: XRayExpectations
    logs: LogsExpectations
    rollbar: RollbarExpectations
    routes: tuple[Route, ...]

    # What each (method, path, status) expects, worked out once: the verifiers ask for every request, often
    # several times. Not part of the value (compare=False); bounded, since paths may carry ids.
    _expected: dict[tuple[str, str, int | None], RequestExpectations] = field(
        default_factory=dict, init=False, repr=False, compare=False
    )

    def expected(self, request: SentRequest) -> RequestExpectations:
        """The route and everything it expects of ``request`` (for its method, path and status), worked out once."""
        path = request.path
        key = (request.method, path.split("?", 1)[0] if "?" in path else path, request.status)
        found = self._expected.get(key)
        if found is None:
            if len(self._expected) >= _MAX_EXPECTED:
                self._expected.clear()
            found = self._expected[key] = RequestExpectations.of(self, request)
        return found

    def route_for(self, request: SentRequest) -> Route | None:
        return self.expected(request).route

    def route_name(self, request: SentRequest) -> str:
        return self.expected(request).route_name

    def spans_for(self, request: SentRequest) -> list[SpanExpectation]:
        return list(self.expected(request).spans)

    def subsegments_for(self, request: SentRequest) -> list[SubsegmentExpectation]:
        return list(self.expected(request).subsegments)

    def lines_for(self, request: SentRequest) -> list[LineExpectation]:
        return list(self.expected(request).lines)

    def occurrences_for(self, request: SentRequest) -> list[OccurrenceExpectation]:
        return list(self.expected(request).occurrences)

    def allows_unlisted(self, backend: Literal["honeycomb", "xray", "logs"], request: SentRequest, text: str) -> bool:
        """Whether ``text`` (a span or subsegment name, a log line) that the expectations do not list for
        ``request`` matches an ``allow_unlisted`` regex of the backend's section or of the request's route."""
        route = self.route_for(request)
        if backend == "honeycomb":
            patterns = self.honeycomb.allow_unlisted + (route.unlisted_spans if route else ())
        elif backend == "xray":
            patterns = self.xray.allow_unlisted + (route.unlisted_subsegments if route else ())
        else:
            patterns = self.logs.allow_unlisted + (route.unlisted_lines if route else ())
        return any(regex_template(p).search(request, text) for p in patterns)

    def honeycomb_columns(self) -> list[str]:
        """Every attribute column the Honeycomb checks read (the query breaks down on them)."""
        keys = [self.honeycomb.request_id_attribute]
        keys += [c.key for c in self.honeycomb.server_attributes + self.honeycomb.every_span_attributes]
        keys += [c.key for r in self.routes for s in r.spans for c in s.attributes]
        return list(dict.fromkeys(keys))


_MAX_EXPECTED = 100_000  # (method, path, status) entries kept by Expectations.expected


@dataclass(frozen=True)
class RequestExpectations:
    """What the expectations say about requests with one method, path and status."""

    route: Route | None
    spans: tuple[SpanExpectation, ...]
    subsegments: tuple[SubsegmentExpectation, ...]
    lines: tuple[LineExpectation, ...]
    occurrences: tuple[OccurrenceExpectation, ...]

    @property
    def route_name(self) -> str:
        return self.route.name if self.route else "(no route)"

    @classmethod
    def of(cls, exp: Expectations, request: SentRequest) -> RequestExpectations:
        status = request.status
        route = next((r for r in exp.routes if r.matches(request)), None)
        lines = exp.logs.lines + (route.lines if route else ())
        return cls(
            route,
            tuple(s for s in route.spans if status in s.statuses) if route else (),
            tuple(s for s in route.subsegments if status in s.statuses) if route else (),
            tuple(line for line in lines if status in line.statuses),
            tuple(o for o in route.occurrences if status in o.statuses) if route else (),
        )


@functools.cache
def regex_template(template: str) -> RegexTemplate:
    """The :class:`RegexTemplate` of ``template``, one per distinct template (its generic regex is compiled once)."""
    return RegexTemplate(template)


# ---- loading -------------------------------------------------------------------------------


def load_expectations(path: Path | str | None = None) -> Expectations:
    """Load and validate an expectations file (None: the bundled Cruddur file)."""
    path = Path(path) if path is not None else DEFAULT_EXPECTATIONS
    text = path.read_text(encoding="utf-8")  # FileNotFoundError propagates: the caller names the flag
    return parse_expectations(text, source=path.name)


def parse_expectations(text: str, source: str = "<expectations>") -> Expectations:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ExpectationsError(f"{source}: not valid TOML: {exc}") from exc
    return _Parser(source).expectations(data)


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source

    def error(self, where: str, problem: str) -> ExpectationsError:
        return ExpectationsError(f"{self.source}: {where}: {problem}" if where else f"{self.source}: {problem}")

    # -- generic table access --

    def table(
        self, parent: Mapping[str, Any], key: str, where: str, allowed: tuple[str, ...], required: bool = False
    ) -> dict[str, Any]:
        here = f"{where}.{key}" if where else key
        if key not in parent:
            if required:
                raise self.error(where, f"missing table [{here}]")
            return {}
        value = parent[key]
        if not isinstance(value, dict):
            raise self.error(here, f"must be a table, not {type(value).__name__}")
        self.known_keys(value, here, allowed)
        return value

    def known_keys(self, table: Mapping[str, Any], where: str, allowed: tuple[str, ...]) -> None:
        for key in table:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f" - did you mean '{close[0]}'?" if close else f" (allowed: {', '.join(allowed)})"
                raise self.error(where, f"unknown key '{key}'{hint}")

    def tables(self, parent: Mapping[str, Any], key: str, where: str) -> list[tuple[str, dict[str, Any]]]:
        here = f"{where}.{key}" if where else key
        value = parent.get(key, [])
        if not isinstance(value, list) or not all(isinstance(v, dict) for v in value):
            raise self.error(here, "must be an array of tables ([[...]] entries)")
        return [(f"{here}[{i}]", v) for i, v in enumerate(value)]

    def string(
        self, table: Mapping[str, Any], key: str, where: str, default: str | None = None, required: bool = False
    ) -> str:
        if key not in table:
            if required or default is None:
                raise self.error(where, f"missing required key '{key}'")
            return default
        value = table[key]
        if not isinstance(value, str) or not value:
            raise self.error(f"{where}.{key}", f"must be a non-empty string, not {value!r}")
        return value

    def optional_string(self, table: Mapping[str, Any], key: str, where: str) -> str | None:
        return self.string(table, key, where) if key in table else None

    def count(self, table: Mapping[str, Any], where: str) -> int:
        value = table.get("count", 1)
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.error(f"{where}.count", f"must be a whole number >= 1, not {value!r}")
        return value

    def regex(self, pattern: str, where: str) -> re.Pattern[str]:
        self.placeholders(pattern, where)

        def filled(name: str = "", value: str = "x") -> str:
            text = re.escape(value)  # as fill() inserts it at check time
            return _PLACEHOLDER.sub(
                lambda m: (text if m[1] == name else "x") if m[1] in PLACEHOLDERS else m[0], pattern
            )

        try:
            # Compile with placeholders filled by a neutral value, as they will be at check time.
            compiled = re.compile(filled())
        except re.error as exc:
            raise self.error(where, f"invalid regex {pattern!r}: {exc}") from exc
        # Values a placeholder takes at check time may break what "x" did not (a character range like
        # [a-{method}], a group name like (?P<{name}>...)): try each placeholder with a few of its shapes.
        for name in set(_PLACEHOLDER.findall(pattern)):
            for value in _SAMPLE_VALUES[name]:
                try:
                    re.compile(filled(name, value))
                except re.error as exc:
                    raise self.error(
                        where, f"regex {pattern!r} breaks once {{{name}}} is filled with a value like {value!r}: {exc}"
                    ) from exc
        return compiled

    def patterns(self, table: Mapping[str, Any], where: str) -> tuple[str, ...]:
        """The table's ``allow_unlisted``: a list of regexes (placeholders allowed)."""
        value = table.get("allow_unlisted", [])
        here = f"{where}.allow_unlisted"
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            raise self.error(here, f"must be a list of regexes like ['^HTTP GET$'], not {value!r}")
        for i, pattern in enumerate(value):
            self.regex(pattern, f"{here}[{i}]")
        return tuple(value)

    def placeholders(self, text: str, where: str) -> None:
        for name in _PLACEHOLDER.findall(text):
            if name not in PLACEHOLDERS:
                raise self.error(
                    where, f"unknown placeholder {{{name}}} (known: {', '.join('{' + p + '}' for p in PLACEHOLDERS)})"
                )

    def statuses(self, table: Mapping[str, Any], key: str, where: str) -> StatusSet:
        value = table.get(key, [])
        here = f"{where}.{key}"
        if not isinstance(value, list):
            raise self.error(here, f'must be a list like [200] or ["5xx"], not {value!r}')
        patterns = []
        for item in value:
            text = str(item) if isinstance(item, int) and not isinstance(item, bool) else item
            if not isinstance(text, str) or not re.fullmatch(r"[1-5](\d\d|xx)", text):
                raise self.error(here, f'{item!r} is not a status: use a code like 200 or a class like "5xx"')
            patterns.append(text)
        return StatusSet(tuple(patterns))

    def conditions(self, table: Mapping[str, Any], key: str, where: str) -> tuple[Condition, ...]:
        value = table.get(key, {})
        here = f"{where}.{key}"
        if not isinstance(value, dict):
            raise self.error(here, 'must be a table of name = condition, e.g. { "app.now" = "exists" }')
        return tuple(self.condition(name, raw, f"{here}.{name}") for name, raw in value.items())

    def condition(self, key: str, raw: Any, where: str) -> Condition:
        if isinstance(raw, bool):
            return Condition(key, "=", "true" if raw else "false")
        if isinstance(raw, int | float):
            return Condition(key, "=", str(raw))
        if not isinstance(raw, str):
            raise self.error(where, f'must be a condition string like "exists" or "> 0", not {raw!r}')
        text = raw.strip()
        for op in _OPS:
            if text == op and op in ("exists", "absent"):
                return Condition(key, op)
            if op not in ("exists", "absent") and text.startswith(op):
                operand = text[len(op) :].strip()
                if not operand:
                    break
                self.placeholders(operand, where)
                if op in (">", ">=", "<", "<=") and _number(operand) is None and not _PLACEHOLDER.search(operand):
                    raise self.error(where, f"{raw!r}: {op} needs a number")
                if op == "~":
                    self.regex(operand, where)
                return Condition(key, op, operand)
        raise self.error(
            where, f"{raw!r} is not a condition: use exists, absent, = v, != v, > n, >= n, < n, <= n or ~ regex"
        )

    # -- sections --

    def expectations(self, data: dict[str, Any]) -> Expectations:
        self.known_keys(data, "", ("service", "honeycomb", "xray", "logs", "rollbar", "routes"))
        return Expectations(
            source=self.source,
            service=self.service(data),
            honeycomb=self.honeycomb(data),
            xray=self.xray(data),
            logs=self.logs(data),
            rollbar=self.rollbar(data),
            routes=self.routes(data),
        )

    def service(self, data: dict[str, Any]) -> ServiceNames:
        t = self.table(
            data, "service", "", ("name", "honeycomb_dataset", "log_group", "rollbar_environment"), required=True
        )
        name = self.string(t, "name", "service", required=True)
        return ServiceNames(
            name=name,
            honeycomb_dataset=self.string(t, "honeycomb_dataset", "service", default=honeycomb_slug(name)),
            log_group=self.string(t, "log_group", "service", required=True),
            rollbar_environment=self.string(t, "rollbar_environment", "service", required=True),
        )

    def honeycomb(self, data: dict[str, Any]) -> HoneycombExpectations:
        t = self.table(
            data,
            "honeycomb",
            "",
            ("request_id_attribute", "error_statuses", "server_span", "every_span", "allow_unlisted"),
            required=True,
        )
        server = self.table(t, "server_span", "honeycomb", ("name", "attributes"))
        every = self.table(t, "every_span", "honeycomb", ("attributes",))
        name = self.optional_string(server, "name", "honeycomb.server_span")
        if name is not None:
            self.regex(name, "honeycomb.server_span.name")
        return HoneycombExpectations(
            request_id_attribute=self.string(t, "request_id_attribute", "honeycomb", required=True),
            error_statuses=self.statuses(t, "error_statuses", "honeycomb"),
            server_name=name,
            server_attributes=self.conditions(server, "attributes", "honeycomb.server_span"),
            every_span_attributes=self.conditions(every, "attributes", "honeycomb.every_span"),
            allow_unlisted=self.patterns(t, "honeycomb"),
        )

    def xray(self, data: dict[str, Any]) -> XRayExpectations:
        t = self.table(
            data,
            "xray",
            "",
            ("request_id_annotation", "fault_statuses", "error_statuses", "segment", "allow_unlisted"),
            required=True,
        )
        segment = self.table(t, "segment", "xray", ("annotations", "metadata"))
        return XRayExpectations(
            request_id_annotation=self.string(t, "request_id_annotation", "xray", required=True),
            fault_statuses=self.statuses(t, "fault_statuses", "xray"),
            error_statuses=self.statuses(t, "error_statuses", "xray"),
            segment_annotations=self.conditions(segment, "annotations", "xray.segment"),
            segment_metadata=self.conditions(segment, "metadata", "xray.segment"),
            allow_unlisted=self.patterns(t, "xray"),
        )

    def logs(self, data: dict[str, Any]) -> LogsExpectations:
        t = self.table(
            data, "logs", "", ("request_id_regex", "filter_pattern", "lines", "allow_unlisted"), required=True
        )
        raw = self.string(t, "request_id_regex", "logs", required=True)
        try:
            regex = re.compile(raw)
        except re.error as exc:
            raise self.error("logs.request_id_regex", f"invalid regex: {exc}") from exc
        if "request_id" not in regex.groupindex:
            raise self.error("logs.request_id_regex", "needs a named group (?P<request_id>...)")
        return LogsExpectations(
            request_id_regex=regex,
            filter_pattern=self.optional_string(t, "filter_pattern", "logs"),
            lines=tuple(self.line(w, v) for w, v in self.tables(t, "lines", "logs")),
            allow_unlisted=self.patterns(t, "logs"),
        )

    def rollbar(self, data: dict[str, Any]) -> RollbarExpectations:
        t = self.table(data, "rollbar", "", ("request_id_path",), required=True)
        return RollbarExpectations(request_id_path=self.string(t, "request_id_path", "rollbar", required=True))

    def routes(self, data: dict[str, Any]) -> tuple[Route, ...]:
        routes = []
        names: set[str] = set()
        for where, t in self.tables(data, "routes", ""):
            self.known_keys(t, where, ("name", "method", "path", "honeycomb", "xray", "logs", "rollbar"))
            name = self.string(t, "name", where, required=True)
            if name in names:
                raise self.error(f"{where}.name", f"route name {name!r} is used twice")
            names.add(name)
            where = f'{where} ("{name}")'
            method = self.optional_string(t, "method", where)
            path = self.string(t, "path", where, required=True)
            hc = self.table(t, "honeycomb", where, ("spans", "allow_unlisted"))
            xr = self.table(t, "xray", where, ("subsegments", "allow_unlisted"))
            lg = self.table(t, "logs", where, ("lines", "allow_unlisted"))
            rb = self.table(t, "rollbar", where, ("occurrences",))
            routes.append(
                Route(
                    name=name,
                    method=method.upper() if method else None,
                    path=self.regex(path, f"{where}.path"),
                    spans=self.spans(hc, f"{where}.honeycomb"),
                    subsegments=self.subsegments(xr, f"{where}.xray"),
                    lines=tuple(self.line(w, v) for w, v in self.tables(lg, "lines", f"{where}.logs")),
                    occurrences=tuple(
                        self.occurrence(w, v) for w, v in self.tables(rb, "occurrences", f"{where}.rollbar")
                    ),
                    unlisted_spans=self.patterns(hc, f"{where}.honeycomb"),
                    unlisted_subsegments=self.patterns(xr, f"{where}.xray"),
                    unlisted_lines=self.patterns(lg, f"{where}.logs"),
                )
            )
        return tuple(routes)

    def spans(self, table: dict[str, Any], where: str) -> tuple[SpanExpectation, ...]:
        spans: list[SpanExpectation] = []
        for w, t in self.tables(table, "spans", where):
            self.known_keys(t, w, ("name", "parent", "attributes", "statuses"))
            name = self.string(t, "name", w, required=True)
            parent = self.string(t, "parent", w, default="server")
            self.parent_known(parent, "server", [s.name for s in spans], name, w)
            spans.append(
                SpanExpectation(name, parent, self.conditions(t, "attributes", w), self.statuses(t, "statuses", w))
            )
        return tuple(spans)

    def subsegments(self, table: dict[str, Any], where: str) -> tuple[SubsegmentExpectation, ...]:
        subs: list[SubsegmentExpectation] = []
        for w, t in self.tables(table, "subsegments", where):
            self.known_keys(t, w, ("name", "parent", "annotations", "metadata", "statuses"))
            name = self.string(t, "name", w, required=True)
            parent = self.string(t, "parent", w, default="segment")
            self.parent_known(parent, "segment", [s.name for s in subs], name, w)
            subs.append(
                SubsegmentExpectation(
                    name,
                    parent,
                    self.conditions(t, "annotations", w),
                    self.conditions(t, "metadata", w),
                    self.statuses(t, "statuses", w),
                )
            )
        return tuple(subs)

    def parent_known(self, parent: str, root: str, earlier: list[str], name: str, where: str) -> None:
        if name in earlier:
            raise self.error(f"{where}.name", f"{name!r} is listed twice in this route")
        if parent != root and parent not in earlier:
            raise self.error(
                f"{where}.parent",
                f'{parent!r} is neither "{root}" nor a name listed before this entry ({", ".join(earlier) or "none"})',
            )

    def line(self, where: str, t: dict[str, Any]) -> LineExpectation:
        self.known_keys(t, where, ("name", "pattern", "count", "statuses"))
        pattern = self.string(t, "pattern", where, required=True)
        if "{request_id}" not in pattern:
            raise self.error(f"{where}.pattern", "must contain {request_id}: a line is tied to its request by it")
        self.regex(pattern, f"{where}.pattern")
        return LineExpectation(
            self.string(t, "name", where, required=True),
            pattern,
            self.count(t, where),
            self.statuses(t, "statuses", where),
        )

    def occurrence(self, where: str, t: dict[str, Any]) -> OccurrenceExpectation:
        self.known_keys(t, where, ("level", "exception_class", "message", "count", "one_item", "statuses"))
        level = self.string(t, "level", where, required=True)
        if level not in LEVELS:
            close = difflib.get_close_matches(level, LEVELS, n=1)
            hint = f" - did you mean '{close[0]}'?" if close else ""
            raise self.error(f"{where}.level", f"{level!r} is not a Rollbar level ({', '.join(LEVELS)}){hint}")
        exc_class = self.optional_string(t, "exception_class", where)
        message = self.optional_string(t, "message", where)
        if (exc_class is None) == (message is None):
            raise self.error(
                where,
                "give exactly one of exception_class (an exception occurrence) or message "
                "(a message occurrence, as a regex)",
            )
        if message is not None:
            self.regex(message, f"{where}.message")
        one_item = t.get("one_item", False)
        if not isinstance(one_item, bool):
            raise self.error(f"{where}.one_item", f"must be true or false, not {one_item!r}")
        return OccurrenceExpectation(
            level, exc_class, message, self.count(t, where), one_item, self.statuses(t, "statuses", where)
        )


def honeycomb_slug(name: str) -> str:
    """The dataset slug Honeycomb derives from a service name: lower case, runs of other characters -> '-'."""
    return re.sub(r"[^a-z0-9_.]+", "-", name.strip().lower()).strip("-") or name
