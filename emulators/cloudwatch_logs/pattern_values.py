"""Values on the right of a condition (``= "x"``, ``> 10e3``, ``= Event*``, ``= %regex%``) and how they compare.

Documented rules followed here:
- ``*`` is a wildcard only at the start or end of a string value (``Ev*ent`` means the text ``Ev*ent``);
  a value that is only ``*`` (quoted or not) matches any present, non-null scalar.
- numbers may carry a sign, decimals and an exponent (``10e3``, ``+1000``, ``55.5``).
- ``<``, ``>``, ``<=``, ``>=`` need a number.
- regex (``%...%``) is searched, not anchored, and may only use the documented characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from enum import Enum

from emulators.cloudwatch_logs.pattern_lexer import Cursor

Scalar = str | int | Decimal | bool | None

OPERATORS = ("<=", ">=", "!=", "=", "<", ">")
NUMERIC_ONLY = frozenset({"<", ">", "<=", ">="})
_NUMBER = re.compile(r"[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
# Characters an unquoted value may hold; anything else has to be double-quoted (per the syntax docs).
_BARE_VALUE_CHARS = frozenset("_-.*:/+")
# The documented regex alphabet: alphanumerics, these symbols and these operators (no parentheses, no
# spaces, no multi-byte characters).
_REGEX_SYMBOLS = frozenset("_#=@/;,-:")
_REGEX_OPERATORS = frozenset("^$?[]{}|\\*+.")


class Kind(Enum):
    STRING = "string"
    NUMBER = "number"
    REGEX = "regex"
    ANY = "any"


def read_operator(cursor: Cursor) -> str:
    cursor.skip_ws()
    for op in OPERATORS:
        if cursor.consume(op):
            if op == "=" and cursor.peek() == "=":
                raise cursor.error("'==' is not an operator; use '='")
            return op
    raise cursor.error("expected a comparison operator (=, !=, <, >, <=, >=)")


def compile_regex(body: str, cursor: Cursor) -> re.Pattern[str]:
    """Checks ``body`` against the documented regex alphabet and compiles it."""
    for char in body:
        if ord(char) > 127:
            raise cursor.error(f"multi-byte character {char!r} is not supported in a regex")
        if char in "()":
            raise cursor.error("the ( and ) operators are not supported in a regex")
        if not (char.isalnum() or char in _REGEX_SYMBOLS or char in _REGEX_OPERATORS):
            raise cursor.error(f"character {char!r} is not supported in a regex")
    if not body:
        raise cursor.error("empty regular expression")
    try:
        return re.compile(body, re.ASCII)  # \d, \w, \s mean ASCII classes, as in the documented alphabet
    except re.error as exc:
        raise cursor.error(f"invalid regular expression %{body}%: {exc}") from exc


@dataclass(frozen=True)
class Literal:
    """A parsed value; ``text`` is the value as written (quotes removed)."""

    kind: Kind
    text: str
    number: Decimal | None = None
    regex: re.Pattern[str] | None = None
    leading_star: bool = False
    trailing_star: bool = False

    @property
    def is_regex(self) -> bool:
        return self.kind is Kind.REGEX

    def compare(self, op: str, value: Scalar, numeric_strings: bool = False) -> bool:
        """Whether ``value op self`` holds. ``value`` is a scalar that is present in the event.

        ``numeric_strings``: a string field may be compared as a number (space-delimited fields are text).
        JSON booleans compare as the text ``true``/``false``; null never compares.
        """
        if value is None:
            return False
        if op in NUMERIC_ONLY:
            number = _as_number(value, numeric_strings)
            return number is not None and self.number is not None and _numeric(op, number, self.number)
        equal = self._equals(value, numeric_strings)
        if self.kind is Kind.ANY:
            return equal if op == "=" else False
        return equal if op == "=" else not equal

    def _equals(self, value: str | int | Decimal, numeric_strings: bool) -> bool:
        if self.kind is Kind.ANY:
            return True
        text = _text(value)
        if self.kind is Kind.REGEX:
            assert self.regex is not None
            return self.regex.search(text) is not None
        if self.kind is Kind.NUMBER:
            number = _as_number(value, numeric_strings or not isinstance(value, str))
            if number is not None and self.number is not None:
                return number == self.number
            return text == self.text
        return _wildcard_equals(self, text)


def read_literal(cursor: Cursor, stop: str) -> Literal:
    """Reads the value after an operator; ``stop`` lists the characters that end an unquoted value."""
    cursor.skip_ws()
    char = cursor.peek()
    if char == "":
        raise cursor.error("expected a value after the operator")
    if char == "%":
        body = cursor.read_regex()
        return Literal(Kind.REGEX, body, regex=compile_regex(body, cursor))
    if char == '"':
        return _string_literal(cursor.read_quoted())
    start = cursor.pos
    raw = cursor.read_while(lambda c: not c.isspace() and c not in stop)
    if not raw:
        raise cursor.error("expected a value after the operator")
    for bad in raw:
        if not (bad.isascii() and bad.isalnum()) and bad not in _BARE_VALUE_CHARS:
            cursor.pos = start
            raise cursor.error(f"value {raw!r} contains {bad!r}; values with such characters must be double-quoted")
    if _NUMBER.fullmatch(raw):
        return Literal(Kind.NUMBER, raw, number=Decimal(raw))
    return _string_literal(raw)


def _string_literal(text: str) -> Literal:
    if text.strip() == "*":
        return Literal(Kind.ANY, text)
    leading = text.startswith("*")
    trailing = len(text) > 1 and text.endswith("*")
    return Literal(Kind.STRING, text, leading_star=leading, trailing_star=trailing)


def _wildcard_equals(literal: Literal, text: str) -> bool:
    core = literal.text[1 if literal.leading_star else 0 : len(literal.text) - (1 if literal.trailing_star else 0)]
    if literal.leading_star and literal.trailing_star:
        return core in text
    if literal.leading_star:
        return text.endswith(core)
    if literal.trailing_star:
        return text.startswith(core)
    return text == core


def _as_number(value: str | int | Decimal, numeric_strings: bool) -> Decimal | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, int):
        return Decimal(value)
    if numeric_strings and _NUMBER.fullmatch(value):
        try:
            return Decimal(value)
        except InvalidOperation:
            return None
    return None


def _text(value: str | int | Decimal) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def _numeric(op: str, left: Decimal, right: Decimal) -> bool:
    if op == "<":
        return left < right
    if op == ">":
        return left > right
    if op == "<=":
        return left <= right
    return left >= right


def require_number(literal: Literal, op: str, cursor: Cursor) -> None:
    if op in NUMERIC_ONLY and literal.kind is not Kind.NUMBER:
        raise cursor.error(f"operator {op!r} needs a number, not {literal.text!r}")


__all__ = ["Literal", "Kind", "read_literal", "read_operator", "compile_regex", "require_number"]
