"""X-Ray filter expressions (GetTraceSummaries ``FilterExpression``): parser and evaluator.

Syntax from the developer guide ("Use filter expressions"):

- booleans ``ok error fault throttle partial inferred`` — bare, negated with ``!``, or ``= true|false``;
- numbers ``responsetime duration http.status`` with ``= != < <= > >=``;
- strings ``http.url http.method http.useragent http.clientip user availabilityzone instance.id
  resource.arn`` with ``= != CONTAINS BEGINSWITH ENDSWITH``; values in double quotes; a bare
  string keyword means "is set" (``user CONTAINS ""`` too);
- ``annotation.key`` / ``annotation[key]``: bare = is set (a boolean annotation counts with its
  value), or compared with the operators of the literal's type; not allowed inside
  ``service()``/``edge()`` braces;
- ``service(name | id(name:, type:, account.id:)) { filter }`` (``service()`` = any node; the
  braces are optional) with ``ok error fault throttle partial root inferred responsetime
  duration http.* user name type``; ``edge(a, b) { filter }`` likewise for a call between nodes;
- ``rootcause.{fault|error|responsetime}.{service|entity|exception} { filter }`` with ``name type
  inferred remote coverage message first last index`` (``index`` counts from 0); as printed in
  the guide, a bare word is accepted as a string value there (``name = traces``);
- ``AND`` / ``OR`` (any case; AND binds tighter), terms side by side mean AND, ``!``, parentheses.

Keywords match case-insensitively; annotation keys and values are case-sensitive. Anything this
module cannot answer faithfully (``group.name``/``group.arn``: there are no groups here;
``rootcause.json``) is rejected with :class:`FilterExpressionError`, never guessed.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Protocol

BOOL, NUMBER, STRING = "boolean", "number", "string"
_STRING_OPS = ("=", "!=", "contains", "beginswith", "endswith")
_NUMBER_OPS = ("=", "!=", "<", "<=", ">", ">=")
_BOOL_OPS = ("=", "!=")
_FLAGS = ("ok", "error", "fault", "throttle", "partial")
_HTTP = ("http.url", "http.method", "http.useragent", "http.clientip")
_TIMES = ("responsetime", "duration", "http.status")


def _table(bools: tuple[str, ...], numbers: tuple[str, ...], strings: tuple[str, ...]) -> dict[str, str]:
    return {**dict.fromkeys(bools, BOOL), **dict.fromkeys(numbers, NUMBER), **dict.fromkeys(strings, STRING)}


_KEYWORDS: dict[str, dict[str, str]] = {
    "trace": _table((*_FLAGS, "inferred"), _TIMES, (*_HTTP, "user", "availabilityzone", "instance.id", "resource.arn")),
    "service": _table((*_FLAGS, "root", "inferred"), _TIMES, (*_HTTP, "user", "name", "type")),
    "edge": _table(_FLAGS, _TIMES, (*_HTTP, "user")),
    "rootcause.service": _table(("inferred", "first", "last"), ("index",), ("name", "type")),
    "rootcause.entity": _table(("remote", "first", "last"), ("index",), ("name",)),
    "rootcause.responsetime.entity": _table(("remote", "first", "last"), ("index", "coverage"), ("name",)),
    "rootcause.exception": _table(("first", "last"), ("index",), ("name", "message")),
}
_ROOTCAUSE = re.compile(r"rootcause\.(fault|error|responsetime)\.(service|entity|exception)")


class FilterExpressionError(ValueError):
    """The expression is not valid; the message names the problem and where it is."""


class Expression(Protocol):
    def matches(self, ctx: Context) -> bool: ...


@dataclass(frozen=True)
class Context:
    """``facts`` is a trace's indexed facts; ``values`` the keyword values of the current scope."""

    facts: Mapping[str, Any]
    values: Mapping[str, Any]


def compile_filter(expression: str | None) -> Callable[[Mapping[str, Any]], bool]:
    """Parse once; the result tells whether a trace's facts match. Empty matches everything."""
    if expression is None or not expression.strip():
        return lambda facts: True
    parsed = _compile(expression)
    return lambda facts: parsed.matches(Context(facts, facts["trace"]))


@lru_cache(maxsize=256)
def _compile(expression: str) -> Expression:
    return _Parser(expression).parse()


# ---------------------------------------------------------------- evaluation


@dataclass(frozen=True)
class _And:
    items: tuple[Expression, ...]

    def matches(self, ctx: Context) -> bool:
        return all(item.matches(ctx) for item in self.items)


@dataclass(frozen=True)
class _Or:
    items: tuple[Expression, ...]

    def matches(self, ctx: Context) -> bool:
        return any(item.matches(ctx) for item in self.items)


@dataclass(frozen=True)
class _Not:
    item: Expression

    def matches(self, ctx: Context) -> bool:
        return not self.item.matches(ctx)


@dataclass(frozen=True)
class _Compare:
    keyword: str
    kind: str
    op: str | None
    value: Any

    def matches(self, ctx: Context) -> bool:
        raw = ctx.values.get(self.keyword)
        values = [v for v in (raw if isinstance(raw, list) else [raw]) if v is not None]
        if self.kind == BOOL:
            actual = bool(values and values[0] is True)
            return actual if self.op is None else _apply(self.op, actual, self.value)
        if self.op is None:
            return bool(values)
        return any(_apply(self.op, v, self.value) for v in values)


@dataclass(frozen=True)
class _Annotation:
    key: str
    op: str | None
    value: Any

    def matches(self, ctx: Context) -> bool:
        values = ctx.facts.get("annotations", {}).get(self.key, [])
        if self.op is None:
            return any(v is not False for v in values)
        return any(_same_type(v, self.value) and _apply(self.op, v, self.value) for v in values)


@dataclass(frozen=True)
class _NodeId:
    name: str | None = None
    type: str | None = None
    account: str | None = None

    def matches(self, node: Mapping[str, Any]) -> bool:
        return (
            (self.name is None or node.get("name") == self.name)
            and (self.type is None or node.get("type") == self.type)
            and (self.account is None or node.get("account") == self.account)
        )


@dataclass(frozen=True)
class _Service:
    node: _NodeId
    body: Expression | None

    def matches(self, ctx: Context) -> bool:
        for node in ctx.facts.get("nodes", []):
            if self.node.matches(node) and _any_entity(self.body, ctx, node["entities"]):
                return True
        return False


@dataclass(frozen=True)
class _Edge:
    source: _NodeId
    destination: _NodeId
    body: Expression | None

    def matches(self, ctx: Context) -> bool:
        for edge in ctx.facts.get("edges", []):
            if (
                self.source.matches(edge["source"])
                and self.destination.matches(edge["destination"])
                and _any_entity(self.body, ctx, edge["entities"])
            ):
                return True
        return False


@dataclass(frozen=True)
class _RootCause:
    category: str
    kind: str
    body: Expression | None

    def matches(self, ctx: Context) -> bool:
        for cause in ctx.facts.get("rootcause", {}).get(self.category, []):
            if _any_entity(self.body, ctx, _enumerate(_rootcause_items(cause, self.kind))):
                return True
        return False


def _any_entity(body: Expression | None, ctx: Context, entities: list[Mapping[str, Any]]) -> bool:
    if body is None:
        return bool(entities)
    return any(body.matches(Context(ctx.facts, entity)) for entity in entities)


def _rootcause_items(cause: Mapping[str, Any], kind: str) -> list[dict[str, Any]]:
    services = cause.get("Services", [])
    if kind == "service":
        return [{"name": s.get("Name"), "type": s.get("Type"), "inferred": bool(s.get("Inferred"))} for s in services]
    entities = [e for s in services for e in s.get("EntityPath", [])]
    if kind == "entity":
        return [
            {"name": e.get("Name"), "remote": bool(e.get("Remote")), "coverage": e.get("Coverage")} for e in entities
        ]
    return [{"name": x.get("Name"), "message": x.get("Message")} for e in entities for x in e.get("Exceptions", [])]


def _enumerate(items: list[dict[str, Any]]) -> list[Mapping[str, Any]]:
    last = len(items) - 1
    return [{**item, "index": i, "first": i == 0, "last": i == last} for i, item in enumerate(items)]


def _same_type(actual: Any, wanted: Any) -> bool:
    if isinstance(wanted, bool) or isinstance(actual, bool):
        return isinstance(wanted, bool) and isinstance(actual, bool)
    if isinstance(wanted, str):
        return isinstance(actual, str)
    return isinstance(actual, int | float)


def _apply(op: str, actual: Any, wanted: Any) -> bool:
    if isinstance(wanted, str) and not isinstance(actual, str):
        return False
    if (
        isinstance(wanted, int | float)
        and not isinstance(wanted, bool)
        and (isinstance(actual, bool) or not isinstance(actual, int | float))
    ):
        return False
    if op == "=":
        return bool(actual == wanted)
    if op == "!=":
        return bool(actual != wanted)
    if op == "contains":
        return wanted in actual
    if op == "beginswith":
        return bool(actual.startswith(wanted))
    if op == "endswith":
        return bool(actual.endswith(wanted))
    if op == "<":
        return bool(actual < wanted)
    if op == "<=":
        return bool(actual <= wanted)
    if op == ">":
        return bool(actual > wanted)
    return bool(actual >= wanted)


# ---------------------------------------------------------------- parsing

_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<string>"(?:[^"\\]|\\.)*")
      | (?P<number>-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
      | (?P<word>[A-Za-z_][A-Za-z0-9_.]*)
      | (?P<op>!=|<=|>=|=|<|>|!)
      | (?P<punct>[(){}\[\],:])""",
    re.VERBOSE,
)


@dataclass(frozen=True)
class _Token:
    kind: str  # string | number | word | op | punct | end
    text: str
    pos: int
    value: Any = None

    def is_word(self, *words: str) -> bool:
        return self.kind == "word" and self.text.lower() in words


def _tokenize(text: str) -> list[_Token]:
    tokens: list[_Token] = []
    pos = 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            if text[pos] == '"':
                raise FilterExpressionError(f"unterminated string starting at position {pos}")
            if text[pos] == "#":
                raise FilterExpressionError(
                    f"#[...] JSON literals (rootcause.json) are not supported by this emulator (position {pos})"
                )
            raise FilterExpressionError(
                f"unexpected character {text[pos]!r} at position {pos} (string values must be in double quotes)"
            )
        kind = match.lastgroup or ""
        chunk = match.group()
        if kind == "string":
            try:
                tokens.append(_Token("string", chunk, pos, json.loads(chunk)))
            except json.JSONDecodeError as exc:
                raise FilterExpressionError(f"invalid string {chunk} at position {pos}") from exc
        elif kind == "number":
            tokens.append(_Token("number", chunk, pos, float(chunk)))
        elif kind != "space":
            tokens.append(_Token(kind, chunk, pos))
        pos = match.end()
    tokens.append(_Token("end", "", len(text)))
    return tokens


# Deeper nesting (!, parentheses, braces) is rejected: a recursive parser would otherwise run out of stack
# and answer 500 instead of InvalidRequestException.
MAX_NESTING = 100


class _Parser:
    def __init__(self, text: str) -> None:
        self.tokens = _tokenize(text)
        self.at = 0
        self.depth = 0

    # -- helpers
    @property
    def peek(self) -> _Token:
        return self.tokens[self.at]

    def take(self) -> _Token:
        token = self.tokens[self.at]
        if token.kind != "end":
            self.at += 1
        return token

    def expect(self, text: str) -> _Token:
        token = self.take()
        if token.text != text:
            raise self.error(f"expected {text!r}", token)
        return token

    def error(self, message: str, token: _Token | None = None) -> FilterExpressionError:
        token = token or self.peek
        where = "at the end" if token.kind == "end" else f"at position {token.pos} ({token.text!r})"
        return FilterExpressionError(f"{message} {where}")

    # -- grammar
    def parse(self) -> Expression:
        expression = self.parse_or("trace")
        if self.peek.kind != "end":
            raise self.error("unexpected token")
        return expression

    def parse_or(self, scope: str) -> Expression:
        items = [self.parse_and(scope)]
        while self.peek.is_word("or"):
            self.take()
            items.append(self.parse_and(scope))
        return items[0] if len(items) == 1 else _Or(tuple(items))

    def parse_and(self, scope: str) -> Expression:
        items = [self.parse_unary(scope)]
        while True:
            if self.peek.is_word("and"):
                self.take()
            elif not self._starts_term():
                break
            items.append(self.parse_unary(scope))
        return items[0] if len(items) == 1 else _And(tuple(items))

    def _starts_term(self) -> bool:
        token = self.peek
        return (token.kind == "word" and not token.is_word("and", "or")) or token.text in ("!", "(")

    def nest(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise self.error(f"the expression nests deeper than {MAX_NESTING} levels")

    def parse_unary(self, scope: str) -> Expression:
        if self.peek.text == "!":
            self.take()
            self.nest()
            negated = _Not(self.parse_unary(scope))
            self.depth -= 1
            return negated
        if self.peek.text == "(":
            self.take()
            self.nest()
            inner = self.parse_or(scope)
            self.expect(")")
            self.depth -= 1
            return inner
        return self.parse_term(scope)

    def parse_term(self, scope: str) -> Expression:
        token = self.take()
        if token.kind != "word":
            raise self.error("expected a keyword", token)
        word = token.text.lower()
        if word in ("service", "edge"):
            if scope != "trace":
                raise self.error(f"{word}() cannot be used inside braces", token)
            return self.parse_service() if word == "service" else self.parse_edge()
        if word.startswith("rootcause.") or word == "json":
            if scope != "trace":
                raise self.error(f"{word} cannot be used inside braces", token)
            return self.parse_rootcause(token)
        if word in ("group.name", "group.arn"):
            raise self.error(f"{word} refers to a group; this emulator has no groups (group not found)", token)
        if word == "annotation" or word.startswith("annotation."):
            if scope != "trace":
                raise self.error("annotation keys cannot be used inside service(), edge() or rootcause braces", token)
            return self.parse_annotation(token)
        table = _KEYWORDS[self._table_name(scope)]
        kind = table.get(word)
        if kind is None:
            raise self.error(f"unknown keyword {token.text!r} in {self._scope_label(scope)}", token)
        op, value = self.parse_comparison(kind, token, bare_words=scope.startswith("rootcause."))
        return _Compare(word, kind, op, value)

    def parse_comparison(self, kind: str, keyword: _Token, bare_words: bool) -> tuple[str | None, Any]:
        op = self._operator()
        if op is None:
            return None, None
        literal = self.take()
        value = self._literal(literal, bare_words and kind == STRING)
        allowed = {BOOL: _BOOL_OPS, NUMBER: _NUMBER_OPS, STRING: _STRING_OPS}[kind]
        if op not in allowed:
            raise self.error(f"operator {op.upper()} is not valid for {kind} keyword {keyword.text!r}", keyword)
        if kind == BOOL and isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        wanted = {BOOL: bool, NUMBER: float, STRING: str}[kind]
        if not isinstance(value, wanted) or (kind == NUMBER and isinstance(value, bool)):
            raise self.error(f"{keyword.text!r} is a {kind} keyword and needs a {kind} value", literal)
        return op, value

    def _operator(self) -> str | None:
        token = self.peek
        if token.kind == "op" and token.text != "!":
            self.take()
            return token.text
        if token.is_word("contains", "beginswith", "endswith"):
            self.take()
            return token.text.lower()
        return None

    def _literal(self, token: _Token, bare_words: bool) -> Any:
        if token.kind in ("string", "number"):
            return token.value
        if token.is_word("true", "false"):
            return token.text.lower() == "true"
        if token.kind == "word" and bare_words:
            return token.text
        if token.kind == "word":
            raise self.error("string values must be in double quotes", token)
        raise self.error("expected a value", token)

    def parse_annotation(self, token: _Token) -> Expression:
        if token.text.lower() == "annotation":
            self.expect("[")
            key_token = self.take()
            if key_token.kind not in ("word", "string", "number"):
                raise self.error("expected an annotation key", key_token)
            key = str(key_token.value) if key_token.kind == "string" else key_token.text
            self.expect("]")
        else:
            key = token.text[len("annotation.") :]
            if not re.fullmatch(r"[A-Za-z0-9_]+", key):
                raise self.error(f"invalid annotation key {key!r}", token)
        op = self._operator()
        if op is None:
            return _Annotation(key, None, None)
        literal = self.take()
        value = self._literal(literal, bare_words=False)
        kind = BOOL if isinstance(value, bool) else STRING if isinstance(value, str) else NUMBER
        allowed = {BOOL: _BOOL_OPS, NUMBER: _NUMBER_OPS, STRING: _STRING_OPS}[kind]
        if op not in allowed:
            raise self.error(f"operator {op.upper()} is not valid with a {kind} value", literal)
        return _Annotation(key, op, value)

    def parse_service(self) -> Expression:
        self.expect("(")
        node = _NodeId() if self.peek.text == ")" else self.parse_node_id()
        self.expect(")")
        return _Service(node, self.parse_body("service"))

    def parse_edge(self) -> Expression:
        self.expect("(")
        source = self.parse_node_id()
        self.expect(",")
        destination = self.parse_node_id()
        self.expect(")")
        return _Edge(source, destination, self.parse_body("edge"))

    def parse_rootcause(self, token: _Token) -> Expression:
        match = _ROOTCAUSE.fullmatch(token.text.lower())
        if token.text.lower() in ("rootcause.json", "json"):
            raise self.error("rootcause.json is not supported by this emulator", token)
        if match is None:
            raise self.error("expected rootcause.{fault|error|responsetime}.{service|entity|exception}", token)
        category, kind = match.groups()
        if category == "responsetime" and kind == "exception":
            raise self.error("response time root causes have no exceptions", token)
        return _RootCause(category, kind, self.parse_body(f"rootcause.{category}.{kind}"))

    def parse_body(self, scope: str) -> Expression | None:
        if self.peek.text != "{":
            return None
        self.take()
        self.nest()
        body = self.parse_or(scope)
        self.expect("}")
        self.depth -= 1
        return body

    def parse_node_id(self) -> _NodeId:
        token = self.take()
        if token.kind == "string":
            return _NodeId(name=token.value)
        if not token.is_word("id"):
            raise self.error("expected a quoted service name or id(...)", token)
        self.expect("(")
        fields: dict[str, str] = {}
        while True:
            name = self.take()
            if not name.is_word("name", "type", "account.id"):
                raise self.error("id() takes name:, type: and account.id:", name)
            self.expect(":")
            value = self.take()
            if value.kind != "string":
                raise self.error("id() values must be in double quotes", value)
            fields[name.text.lower()] = value.value
            if self.peek.text != ",":
                break
            self.take()
        self.expect(")")
        return _NodeId(name=fields.get("name"), type=fields.get("type"), account=fields.get("account.id"))

    @staticmethod
    def _table_name(scope: str) -> str:
        # rootcause.<category>.<kind> shares the keywords of its kind, except response-time entities.
        return scope if scope in _KEYWORDS else "rootcause." + scope.rsplit(".", 1)[1]

    @staticmethod
    def _scope_label(scope: str) -> str:
        return "a trace filter" if scope == "trace" else f"{scope} braces"
