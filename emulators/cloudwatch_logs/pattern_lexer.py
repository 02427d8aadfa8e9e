"""Character-level reading shared by the filter-pattern parsers (terms, JSON, space-delimited)."""

from __future__ import annotations

from collections.abc import Callable


class FilterPatternError(ValueError):
    """The pattern does not follow CloudWatch Logs' filter-pattern syntax; the message names the problem."""


class Cursor:
    """A read position in a pattern; every error it raises says where in the pattern the problem is."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0

    def peek(self, offset: int = 0) -> str:
        """The character ``offset`` ahead, or '' past the end."""
        i = self.pos + offset
        return self.text[i] if i < len(self.text) else ""

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def next(self) -> str:
        char = self.peek()
        self.pos += 1
        return char

    def skip_ws(self) -> None:
        while self.peek().isspace():
            self.pos += 1

    def looking_at(self, literal: str) -> bool:
        return self.text.startswith(literal, self.pos)

    def consume(self, literal: str) -> bool:
        if self.looking_at(literal):
            self.pos += len(literal)
            return True
        return False

    def expect(self, literal: str, what: str) -> None:
        self.skip_ws()
        if not self.consume(literal):
            found = repr(self.peek()) if not self.at_end() else "the end of the pattern"
            raise self.error(f"expected {what} but found {found}")

    def expect_end(self) -> None:
        self.skip_ws()
        if not self.at_end():
            raise self.error(f"unexpected text {self.text[self.pos : self.pos + 20]!r} after the end of the pattern")

    def read_while(self, accept: Callable[[str], bool]) -> str:
        start = self.pos
        while not self.at_end() and accept(self.peek()):
            self.pos += 1
        return self.text[start : self.pos]

    def read_quoted(self) -> str:
        """Reads ``"..."`` at the cursor (``\\"`` and ``\\\\`` are escapes) and returns the content."""
        start = self.pos
        if self.next() != '"':
            raise self.error("expected '\"'")
        out: list[str] = []
        while not self.at_end():
            char = self.next()
            if char == "\\" and self.peek() in ('"', "\\"):
                out.append(self.next())
            elif char == '"':
                return "".join(out)
            else:
                out.append(char)
        self.pos = start
        raise self.error("unterminated double-quoted string")

    def read_regex(self) -> str:
        """Reads ``%...%`` at the cursor and returns the expression between the percent signs."""
        start = self.pos
        self.next()
        body: list[str] = []
        while not self.at_end():
            char = self.next()
            if char == "\\" and not self.at_end():
                body.append(char + self.next())
            elif char == "%":
                return "".join(body)
            else:
                body.append(char)
        self.pos = start
        raise self.error("unterminated regular expression (a regex is written between two '%')")

    def error(self, problem: str) -> FilterPatternError:
        return FilterPatternError(f"Invalid filter pattern: {problem} (at character {self.pos + 1} of {self.text!r})")
