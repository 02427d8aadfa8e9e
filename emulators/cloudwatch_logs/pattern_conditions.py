"""``&&`` / ``||`` / parentheses over conditions, with the documented precedence ``()`` > ``&&`` > ``||``.

JSON patterns and space-delimited field conditions share this; each supplies how to read one condition.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Generic, Protocol, TypeVar

from emulators.cloudwatch_logs.pattern_lexer import Cursor

T = TypeVar("T")
T_contra = TypeVar("T_contra", contravariant=True)


class Condition(Protocol[T_contra]):
    def test(self, subject: T_contra) -> bool: ...


@dataclass(frozen=True)
class AllOf(Generic[T]):
    parts: Sequence[Condition[T]]

    def test(self, subject: T) -> bool:
        return all(part.test(subject) for part in self.parts)


@dataclass(frozen=True)
class AnyOf(Generic[T]):
    parts: Sequence[Condition[T]]

    def test(self, subject: T) -> bool:
        return any(part.test(subject) for part in self.parts)


AtomReader = Callable[[Cursor], Condition[T]]


def parse_condition(cursor: Cursor, read_atom: AtomReader[T]) -> Condition[T]:
    """Reads ``a && (b || c) ...`` up to the first character that cannot continue the expression."""
    parts = [_parse_and(cursor, read_atom)]
    while _consume_op(cursor, "||"):
        parts.append(_parse_and(cursor, read_atom))
    return parts[0] if len(parts) == 1 else AnyOf(parts)


def _parse_and(cursor: Cursor, read_atom: AtomReader[T]) -> Condition[T]:
    parts = [_parse_unary(cursor, read_atom)]
    while _consume_op(cursor, "&&"):
        parts.append(_parse_unary(cursor, read_atom))
    return parts[0] if len(parts) == 1 else AllOf(parts)


def _parse_unary(cursor: Cursor, read_atom: AtomReader[T]) -> Condition[T]:
    cursor.skip_ws()
    if cursor.consume("("):
        inner = parse_condition(cursor, read_atom)
        cursor.expect(")", "')' to close '('")
        return inner
    if cursor.at_end():
        raise cursor.error("expected a condition but the pattern ended")
    return read_atom(cursor)


def _consume_op(cursor: Cursor, op: str) -> bool:
    cursor.skip_ws()
    if cursor.consume(op):
        return True
    if cursor.peek() in ("&", "|") and not (cursor.looking_at("&&") or cursor.looking_at("||")):
        raise cursor.error(f"expected '&&' or '||' but found {cursor.text[cursor.pos : cursor.pos + 2]!r}")
    return False
