"""CloudWatch Logs filter patterns (FilterLogEvents, metric and subscription filters, Live Tail).

``compile_filter_pattern(text)`` returns something with ``matches(message) -> bool`` or raises
``FilterPatternError`` naming the problem. The first character picks the syntax: ``{`` JSON, ``[``
space-delimited, anything else a list of terms (a ``%regex%`` is one such term).

Term rules (documented, and easy to get wrong):
- terms are case-sensitive substrings (``ERROR`` matches ``ERRORCODE``); all plain terms must occur.
- ``"a phrase"`` is one term; ``-term`` excludes; ``?a ?b`` matches events with either.
- ``?`` terms mixed with plain or excluded terms are ignored: ``?ERROR ?ARGUMENTS REQUEST`` is ``REQUEST``.
- an empty pattern, or a quoted blank such as ``" "``, matches every event.
A pattern this module cannot read is rejected; nothing silently matches everything.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from emulators.cloudwatch_logs.delimited_pattern import DelimitedPattern
from emulators.cloudwatch_logs.json_pattern import JsonPattern
from emulators.cloudwatch_logs.pattern_lexer import Cursor, FilterPatternError
from emulators.cloudwatch_logs.pattern_values import compile_regex

__all__ = ["FilterPattern", "FilterPatternError", "compile_filter_pattern"]


class FilterPattern(Protocol):
    def matches(self, message: str) -> bool: ...


class MatchAll:
    def matches(self, message: str) -> bool:
        return True


@dataclass
class TermPattern:
    includes: list[Callable[[str], bool]] = field(default_factory=list)
    excludes: list[Callable[[str], bool]] = field(default_factory=list)
    optionals: list[Callable[[str], bool]] = field(default_factory=list)

    def matches(self, message: str) -> bool:
        # Plain loops, not all()/any() over generators: a read tests every event it scans.
        if self.includes or self.excludes:
            for term in self.includes:
                if not term(message):
                    return False
            for term in self.excludes:
                if term(message):
                    return False
            return True
        for term in self.optionals:
            if term(message):
                return True
        return not self.optionals


def compile_filter_pattern(text: str | None) -> FilterPattern:
    pattern = (text or "").strip()
    if not pattern:
        return MatchAll()
    if pattern.startswith("{"):
        return JsonPattern(pattern)
    if pattern.startswith("["):
        return DelimitedPattern(pattern)
    return _compile_terms(pattern)


def _compile_terms(pattern: str) -> FilterPattern:
    result = TermPattern()
    cursor = Cursor(pattern)
    while True:
        cursor.skip_ws()
        if cursor.at_end():
            break
        kind = _read_prefix(cursor)
        term = _read_term(cursor)
        if term is None:
            continue  # a quoted blank: matches every event, so it adds no condition
        {"?": result.optionals, "-": result.excludes, "": result.includes}[kind].append(term)
    return result


def _read_prefix(cursor: Cursor) -> str:
    """``-`` or ``?`` before a term (the 2020 docs also write ``- "Exiting"`` with a space)."""
    for prefix in ("-", "?"):
        if cursor.peek() == prefix:
            cursor.next()
            cursor.skip_ws()
            if cursor.at_end():
                raise cursor.error(f"'{prefix}' must be followed by a term")
            return prefix
    return ""


def _read_term(cursor: Cursor) -> Callable[[str], bool] | None:
    char = cursor.peek()
    if char == '"':
        phrase = cursor.read_quoted()
        return None if not phrase.strip() else _substring(phrase)
    if char == "%":
        regex = compile_regex(cursor.read_regex(), cursor)
        return _search(regex)
    word = cursor.read_while(lambda c: not c.isspace())
    return _substring(word)


def _substring(term: str) -> Callable[[str], bool]:
    return lambda message: term in message


def _search(regex: re.Pattern[str]) -> Callable[[str], bool]:
    return lambda message: regex.search(message) is not None
