"""JSON filter patterns: ``{ $.a.b = "x" && ($.n > 5 || $.list[0] IS NULL) }``.

Documented rules followed here:
- the event must be a JSON object; other events never match.
- a selector that points at an object or array never matches, not even with ``!=``; nor does a missing one
  (use ``NOT EXISTS``). ``IS NULL`` is true only for an explicit null.
- ``IS TRUE``/``IS FALSE``/``IS NULL``/``NOT EXISTS`` are the only keyword tests (``IS NOT``, ``EXISTS``
  are not supported).
- at most one wildcard (``[*]`` / ``.*``) per selector, three wildcard selectors and two regexes per pattern.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from emulators._json import strict_loads
from emulators.cloudwatch_logs.pattern_conditions import Condition, parse_condition
from emulators.cloudwatch_logs.pattern_lexer import Cursor
from emulators.cloudwatch_logs.pattern_values import Literal, read_literal, read_operator, require_number

MAX_WILDCARD_SELECTORS = 3
MAX_REGEXES = 2
_VALUE_STOP = "&|)}"
_WILDCARD = object()


def _name_char(char: str) -> bool:
    return char.isalnum() or char in "_-"


@dataclass(frozen=True)
class Selector:
    """``$.a[0].b`` as a list of steps: a property name, an array index, or the wildcard."""

    text: str
    steps: tuple[object, ...]

    @property
    def wildcards(self) -> int:
        return sum(1 for step in self.steps if step is _WILDCARD)

    def resolve(self, root: Any) -> list[Any]:
        nodes = [root]
        for step in self.steps:
            nodes = [child for node in nodes for child in _children(node, step)]
            if not nodes:
                break
        return nodes


def _children(node: Any, step: object) -> list[Any]:
    if step is _WILDCARD:
        if isinstance(node, dict):
            return list(node.values())
        return list(node) if isinstance(node, list) else []
    if isinstance(step, int):
        return [node[step]] if isinstance(node, list) and step < len(node) else []
    return [node[step]] if isinstance(node, dict) and step in node else []


def read_selector(cursor: Cursor) -> Selector:
    cursor.skip_ws()
    start = cursor.pos
    if not cursor.consume("$"):
        raise cursor.error("expected a property selector starting with '$' (for example $.level)")
    steps: list[object] = []
    while cursor.peek() in (".", "["):
        if cursor.consume("."):
            if cursor.peek() == "[":
                continue
            if cursor.consume("*"):
                steps.append(_WILDCARD)
                continue
            name = cursor.read_while(_name_char)
            if not name:
                raise cursor.error("expected a property name after '.' (quote other names as ['name'])")
            steps.append(name)
        else:
            steps.append(_read_bracket(cursor))
    if not steps:
        raise cursor.error("a selector must name a property, as in $.name")
    selector = Selector(cursor.text[start : cursor.pos], tuple(steps))
    if selector.wildcards > 1:
        raise cursor.error(f"selector {selector.text} has more than one wildcard; only one is allowed per selector")
    return selector


def _read_bracket(cursor: Cursor) -> object:
    cursor.next()
    step: object
    if cursor.peek() in ("'", '"'):
        quote = cursor.next()
        step = cursor.read_while(lambda c: c != quote)
        if not cursor.consume(quote):
            raise cursor.error("unterminated quoted property name in a selector")
    elif cursor.consume("*"):
        step = _WILDCARD
    else:
        digits = cursor.read_while(str.isdigit)
        if not digits:
            raise cursor.error("expected an array index, '*' or a quoted name inside '[ ]'")
        step = int(digits)
    if not cursor.consume("]"):
        raise cursor.error("expected ']' to close the selector's '['")
    return step


@dataclass(frozen=True)
class _Compare:
    selector: Selector
    op: str
    literal: Literal

    def test(self, root: Any) -> bool:
        return any(_is_scalar(node) and self.literal.compare(self.op, node) for node in self.selector.resolve(root))


@dataclass(frozen=True)
class _Keyword:
    selector: Selector
    keyword: str

    def test(self, root: Any) -> bool:
        nodes = self.selector.resolve(root)
        if self.keyword == "NOT EXISTS":
            return not nodes
        if self.keyword == "IS NULL":
            return any(node is None for node in nodes)
        wanted = self.keyword == "IS TRUE"
        return any(isinstance(node, bool) and node is wanted for node in nodes)


def _is_scalar(node: Any) -> bool:
    return isinstance(node, str | int | Decimal)  # bool is an int; null, objects and arrays never compare


class JsonPattern:
    """A compiled JSON pattern; ``matches`` never raises on odd events."""

    def __init__(self, text: str) -> None:
        self._selectors: list[Selector] = []
        self._regexes = 0
        cursor = Cursor(text)
        cursor.expect("{", "'{'")
        cursor.skip_ws()
        if cursor.peek() == "}":
            raise cursor.error('empty JSON pattern; write at least one condition such as { $.level = "ERROR" }')
        self._condition: Condition[Any] = parse_condition(cursor, self._read_atom)
        cursor.expect("}", "'&&', '||' or the closing '}'")
        cursor.expect_end()
        if sum(1 for s in self._selectors if s.wildcards) > MAX_WILDCARD_SELECTORS:
            raise cursor.error(f"more than {MAX_WILDCARD_SELECTORS} wildcard selectors in one pattern")
        if self._regexes > MAX_REGEXES:
            raise cursor.error(f"more than {MAX_REGEXES} regular expressions in one pattern")

    def _read_atom(self, cursor: Cursor) -> Condition[Any]:
        selector = read_selector(cursor)
        self._selectors.append(selector)
        cursor.skip_ws()
        if cursor.peek().isalpha():
            return _Keyword(selector, _read_keyword(cursor))
        op = read_operator(cursor)
        literal = read_literal(cursor, _VALUE_STOP)
        require_number(literal, op, cursor)
        self._regexes += literal.is_regex
        return _Compare(selector, op, literal)

    def matches(self, message: str) -> bool:
        if not message.lstrip().startswith("{"):
            return False
        try:
            root = strict_loads(message, parse_float=Decimal)
        except (ValueError, RecursionError):
            return False
        return isinstance(root, dict) and self._condition.test(root)


def _read_keyword(cursor: Cursor) -> str:
    first = cursor.read_while(str.isalpha).upper()
    cursor.skip_ws()
    second = cursor.read_while(str.isalpha).upper()
    if first == "IS" and second in ("NULL", "TRUE", "FALSE"):
        return f"IS {second}"
    if first == "NOT" and second == "EXISTS":
        return "NOT EXISTS"
    if first == "IS" and second == "NOT":
        raise cursor.error("IS NOT is not supported; use != or NOT EXISTS")
    if first == "EXISTS":
        raise cursor.error("EXISTS is not supported; only NOT EXISTS is")
    found = f"{first} {second}".strip()
    raise cursor.error(f"unknown test {found!r}; expected IS NULL, IS TRUE, IS FALSE or NOT EXISTS")
