"""RegexTemplate: one generic regex per template answers exactly what the regex filled per request would."""

from __future__ import annotations

import random
import re
from dataclasses import replace

import pytest

from tests.verifiers import EXP, HOME, request
from verifiers.expectations import RegexTemplate, placeholder_values, regex_template
from verifiers.model import SentRequest

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def fill_escaped(template: str, r: SentRequest) -> str:
    values = placeholder_values(r)
    return _PLACEHOLDER.sub(lambda m: re.escape(values[m[1]]), template)


def filled(template: str, r: SentRequest, text: str) -> bool:
    """The reference: the template filled with the request's escaped values, compiled, searched."""
    return re.search(fill_escaped(template, r), text) is not None


def home(**fields: object) -> SentRequest:
    return replace(request(*HOME), **fields)  # type: ignore[arg-type]


CASES = [
    # (template, request fields, text, expected)
    ("^id={request_id}$", {"request_id": "a.b+c(d)"}, "id=a.b+c(d)", True),  # metacharacters are literal
    ("^id={request_id}$", {"request_id": "a.b+c(d)"}, "id=aXb+c(d)", False),
    ("^id={request_id}$", {"request_id": "a.b+c(d)"}, "id=a.bbc(d)", False),
    ("^{request_id}-{request_id}$", {"request_id": "x1"}, "x1-x1", True),  # the same placeholder twice
    ("^{request_id}-{request_id}$", {"request_id": "x1"}, "x1-x2", False),
    ("^{request_id}b", {"request_id": "ab"}, "abb", True),  # the lazy group aligns differently: decided exactly
    ("^{method}.*{status}$", {"method": "GE"}, "GET 200", True),
    ("^{method} {path} {status}$", {}, "GET /api/activities/home 500", False),  # a wrong value
    ("^{method} {path} {status}$", {}, "GET /api/activities/home 200", True),
    ("^id={request_id}$", {"request_id": "x"}, "id=x\n", True),  # $ before a final newline, as re has it
    (r"\Aid={request_id}\Z", {"request_id": "x"}, "id=x\n", False),
    ("^id={request_id}$", {"request_id": "a\nb"}, "id=a\nb", True),  # a value holding a newline
    ("^[{method}]$", {}, "E", True),  # inside a class: the letters of the value
    ("^[{method}]$", {}, "GET", False),
    ("^{method}+$", {}, "GETTT", True),  # the quantifier repeats the last letter only
    ("^{method}+$", {}, "GETGET", False),
    ("^a{{status}}$", {"status": 2}, "aa", True),  # a placeholder as a repetition count
    (r"^\x{status}$", {"status": 200}, " 0", True),  # a hex escape takes the value's digits
    ("^(a){request_id}\\1$", {"request_id": "x"}, "axa", True),  # a backreference
    ("^{request_id}(a)\\1$", {"request_id": "x"}, "xaa", True),
    ("^(?!{request_id})", {"request_id": "x"}, "x", False),  # a lookahead
    ("^(?!{request_id})", {"request_id": "x"}, "y", True),
    ("^(?:foo|{method})$", {}, "foo", True),  # a group that did not take part
    ("(?i)^{method} /", {"method": "get"}, "GET /x", True),  # case-insensitive: decided exactly
    ("^x{status}y$", {"status": None}, "xy", True),  # an unanswered request's status is empty
    ("^(?>{request_id})b$", {"request_id": "ab"}, "abb", True),  # an atomic group
    ("^{request_id}$", {"request_id": ""}, "", True),
    ("no placeholder", {}, "has no placeholder in it", True),
    # A quantified group keeps only its last repetition: every copy must hold the value, not just the last.
    ("^(?:x{request_id}y)+$", {"request_id": "VAL"}, "xAAyxVALy", False),
    ("^(?:x{request_id}y)+$", {"request_id": "VAL"}, "xVALyxVALy", True),
    ("(?:<{request_id}>){2}", {"request_id": "VAL"}, "<AA><VAL>", False),
    ("id=({request_id},)*end", {"request_id": "VAL"}, "id=foo,VAL,end", False),
    ("id=({request_id},)?end", {"request_id": "VAL"}, "id=end", True),
]


@pytest.mark.parametrize(("template", "fields", "text", "expected"), CASES)
def test_tricky_templates_answer_as_the_filled_regex(template, fields, text, expected):
    r = home(**fields)
    assert filled(template, r, text) is expected  # the case means what it says
    assert RegexTemplate(template).search(r, text) is expected


def test_the_bundled_line_patterns_take_the_generic_path():
    """The speed depends on it: no regex is compiled per request for the bundled patterns."""
    patterns = [line.pattern for line in EXP.logs.lines] + [line.pattern for r in EXP.routes for line in r.lines]
    assert patterns
    for pattern in patterns:
        assert regex_template(pattern)._generic is not None, pattern


_PIECES = [
    "{request_id}",
    "{method}",
    "{path}",
    "{status}",
    "{name}",
    "-",
    " ",
    "=",
    ".*",
    ".+?",
    r"\d+",
    r"\S+",
    "[a-z]*",
    "(?:x|{status})",
    "(ab)?",
    "{method}?",
    "{status}{2}",
    r"\{request_id}",
    "[^/]{request_id}",
]
_ALPHABET = "ab.*+?()[]{}|^$\\ -=/\n0123456789xyzGET"


def _value(rng: random.Random) -> str:
    return "".join(rng.choice(_ALPHABET) for _ in range(rng.randint(0, 6)))


def _text(rng: random.Random, r: SentRequest) -> str:
    values = list(placeholder_values(r).values())
    parts = [rng.choice(values + ["-", " ", "=", "x", "12", "ab"]) for _ in range(rng.randint(0, 6))]
    text = "".join(parts)
    if text and rng.random() < 0.3:  # a near miss
        i = rng.randrange(len(text))
        text = text[:i] + rng.choice(_ALPHABET) + text[i + 1 :]
    return text


@pytest.mark.filterwarnings("ignore::FutureWarning")  # "possible nested set": some random templates
def test_random_templates_values_and_texts_answer_as_the_filled_regex(monkeypatch):
    exact = RegexTemplate.exact
    filled_calls = []

    def counted(self: RegexTemplate, r: SentRequest) -> re.Pattern[str]:
        filled_calls.append(self.template)
        return exact(self, r)

    monkeypatch.setattr(RegexTemplate, "exact", counted)
    rng = random.Random(20260414)
    checked = matched = 0
    for _ in range(3000):
        template = ("^" if rng.random() < 0.5 else "") + "".join(rng.choice(_PIECES) for _ in range(rng.randint(1, 5)))
        template += "$" if rng.random() < 0.5 else ""
        r = home(request_id=_value(rng), method=rng.choice(["GET", "POST", "g.t", ""]), name=_value(rng), status=200)
        r = replace(r, path="/" + _value(rng).replace("?", ""))
        try:
            re.compile(fill_escaped(template, r))
        except re.error:
            continue  # not a valid regex once filled: nothing to compare
        for _ in range(4):
            text = _text(rng, r)
            want = filled(template, r, text)
            assert regex_template(template).search(r, text) is want, (template, r.request_id, text)
            checked += 1
            matched += want
    assert checked > 5000 and 0.1 < matched / checked < 0.9  # both answers were well exercised
    # Both ways were exercised: the generic regex alone, and the filled one (unsafe syntax or a group mismatch).
    assert 0.2 < len(filled_calls) / checked < 0.8


def test_line_expectation_matches_as_its_regex_for():
    r = request(*HOME)
    line = EXP.logs.lines[0]
    text = f"[2025-Oct-09 08:53] 10.0.0.1 GET http /api/activities/home? 200 request_id={r.request_id}"
    assert line.matches(r, text) and line.regex_for(r).search(text)
    for wrong in (text.replace(" 200 ", " 500 "), text.replace("GET", "PUT"), text + "x", text[:-1]):
        assert not line.matches(r, wrong) and not line.regex_for(r).search(wrong)
