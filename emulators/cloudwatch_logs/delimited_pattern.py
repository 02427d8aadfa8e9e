"""Space-delimited filter patterns: ``[ip, user, ..., status_code = 4* && status_code != 403, bytes > 1000]``.

Rules followed here:
- an event is split on whitespace; text between ``"..."`` or ``[...]`` is one field (delimiters dropped).
- one ``...`` stands for any number of fields; an empty entry (``[a, , b]`` or a trailing ``,``) is a
  field without a name.
- without ``...`` the event needs at least as many fields as the pattern, and the last entry takes the rest
  of the line: the current docs' ``[w1=ERROR, w2]`` matches ``ERROR 09/25/2014 12:00:02 Failed to process
  request`` (the 2020 docs said the opposite; see the conformance tests).
- string conditions use ``=``/``!=`` with ``*`` at the start or end; numeric ones ``< > <= >= = !=``; at most
  two regexes per pattern.
"""

from __future__ import annotations

from dataclasses import dataclass

from emulators.cloudwatch_logs.pattern_conditions import Condition, parse_condition
from emulators.cloudwatch_logs.pattern_lexer import Cursor
from emulators.cloudwatch_logs.pattern_values import Literal, read_literal, read_operator, require_number

MAX_REGEXES = 2
_VALUE_STOP = ",]&|)"
Fields = dict[str, str]


@dataclass(frozen=True)
class _Entry:
    name: str | None  # None: a field without a name
    condition: Condition[Fields] | None


@dataclass(frozen=True)
class _FieldTest:
    name: str
    op: str
    literal: Literal

    def test(self, fields: Fields) -> bool:
        value = fields.get(self.name)
        return value is not None and self.literal.compare(self.op, value, numeric_strings=True)


class _Always:
    def test(self, fields: Fields) -> bool:
        return True


def split_fields(message: str) -> list[tuple[str, int]]:
    """The event's fields with the offset each starts at (so the last entry can take the rest)."""
    fields: list[tuple[str, int]] = []
    i, n = 0, len(message)
    while i < n:
        if message[i].isspace():
            i += 1
            continue
        closing = {'"': '"', "[": "]"}.get(message[i])
        if closing is not None:
            end = message.find(closing, i + 1)
            end = n if end < 0 else end
            fields.append((message[i + 1 : end], i))
            i = end + 1
            continue
        start = i
        while i < n and not message[i].isspace():
            i += 1
        fields.append((message[start:i], start))
    return fields


class DelimitedPattern:
    def __init__(self, text: str) -> None:
        self._regexes = 0
        self._declaring: str | None = None
        self._referenced: set[str] = set()
        cursor = Cursor(text)
        cursor.expect("[", "'['")
        self._before, self._after, self._ellipsis = self._read_entries(cursor)
        cursor.expect_end()
        declared = {e.name for e in self._before + self._after if e.name}
        undeclared = sorted(self._referenced - declared)
        if undeclared:
            raise cursor.error(f"condition refers to field {undeclared[0]!r}, which the pattern does not declare")
        if self._regexes > MAX_REGEXES:
            raise cursor.error(f"more than {MAX_REGEXES} regular expressions in one pattern")

    def _read_entries(self, cursor: Cursor) -> tuple[list[_Entry], list[_Entry], bool]:
        before: list[_Entry] = []
        after: list[_Entry] = []
        ellipsis = False
        names: set[str] = set()
        cursor.skip_ws()
        if cursor.consume("]"):
            raise cursor.error("a space-delimited pattern needs at least one field, e.g. [w1, w2] or [...]")
        while True:
            cursor.skip_ws()
            if cursor.consume("..."):
                if ellipsis:
                    raise cursor.error("only one '...' is allowed in a space-delimited pattern")
                ellipsis = True
            else:
                entry = self._read_entry(cursor)
                if entry.name is not None:
                    if entry.name in names:
                        raise cursor.error(f"field {entry.name!r} is declared twice")
                    names.add(entry.name)
                (after if ellipsis else before).append(entry)
            cursor.skip_ws()
            if cursor.consume("]"):
                return before, after, ellipsis
            cursor.expect(",", "',' or ']'")

    def _read_entry(self, cursor: Cursor) -> _Entry:
        if cursor.peek() in (",", "]"):
            return _Entry(None, None)
        self._declaring = None
        condition = parse_condition(cursor, self._read_atom)
        return _Entry(self._declaring, None if isinstance(condition, _Always) else condition)

    def _read_atom(self, cursor: Cursor) -> Condition[Fields]:
        cursor.skip_ws()
        name = cursor.read_while(lambda c: c.isalnum() or c == "_")
        if not name:
            found = repr(cursor.peek()) if not cursor.at_end() else "the end of the pattern"
            raise cursor.error(f"expected a field name but found {found}")
        if self._declaring is None:
            self._declaring = name
        self._referenced.add(name)
        cursor.skip_ws()
        if cursor.peek() in ("", ",", "]", "&", "|", ")"):
            return _Always()
        op = read_operator(cursor)
        literal = read_literal(cursor, _VALUE_STOP)
        require_number(literal, op, cursor)
        self._regexes += literal.is_regex
        return _FieldTest(name, op, literal)

    def matches(self, message: str) -> bool:
        fields = self._bind(message)
        if fields is None:
            return False
        return all(e.condition.test(fields) for e in self._before + self._after if e.condition is not None)

    def _bind(self, message: str) -> Fields | None:
        tokens = split_fields(message)
        fixed = len(self._before) + len(self._after)
        if len(tokens) < fixed or (not self._ellipsis and fixed == 0):
            return None
        values = [value for value, _ in tokens]
        if not self._ellipsis and len(tokens) > fixed:
            # The last entry takes the rest of the line as written.
            values = values[: fixed - 1] + [message[tokens[fixed - 1][1] :].rstrip()]
        bound: Fields = {}
        for entry, value in zip(self._before, values, strict=False):
            if entry.name:
                bound[entry.name] = value
        for entry, value in zip(self._after, values[len(values) - len(self._after) :], strict=True):
            if entry.name:
                bound[entry.name] = value
        return bound
