"""Conditions compare exactly: a filled placeholder is exact text, numbers never collide through float
rounding, and ``allow_unlisted`` is parsed, validated and applied per backend and route."""

from __future__ import annotations

import tomllib
from dataclasses import replace

import pytest

import verifiers.expectations as module
from tests.verifiers import HEALTH, HOME, request
from verifiers.expectations import Condition, ExpectationsError, parse_expectations

BIG = "1234567890123456789"  # 19 digits: 1234567890123456788 is the same float


def _home_with_id(request_id: str):
    return replace(request(*HOME), request_id=request_id)


@pytest.mark.parametrize(
    "value",
    [
        "1234567890123456788",  # a neighbour: equal as floats
        "1.2345678901234568e18",  # the float's own spelling
        " 1234567890123456789 ",  # padded
        "1234567890123456789.0",
        1234567890123456788,
        1.2345678901234568e18,
    ],
)
def test_request_id_placeholder_rejects_lookalikes(value):
    r = _home_with_id(BIG)
    problem = Condition("app.request_id", "=", "{request_id}").check(value, r)
    assert problem is not None and "wanted = 1234567890123456789" in problem


@pytest.mark.parametrize("value", [BIG, int(BIG)])
def test_request_id_placeholder_accepts_the_exact_id(value):
    assert Condition("app.request_id", "=", "{request_id}").check(value, _home_with_id(BIG)) is None


def test_not_equal_placeholder_is_exact_too():
    cond = Condition("app.request_id", "!=", "{request_id}")
    assert cond.check("1234567890123456788", _home_with_id(BIG)) is None
    assert cond.check(BIG, _home_with_id(BIG)) is not None


def test_status_placeholder_still_matches_the_number_the_backend_stores():
    r = request(*HOME)  # status 200
    cond = Condition("http.status_code", "=", "{status}")
    assert cond.check(200, r) is None and cond.check("200", r) is None and cond.check(200.0, r) is None
    assert cond.check(201, r) is not None and cond.check(" 200", r) is not None and cond.check(True, r) is not None


@pytest.mark.parametrize(
    ("literal", "value", "ok"),
    [
        (BIG, int(BIG), True),
        (BIG, BIG, True),
        (BIG, 1234567890123456788, False),
        (BIG, "1234567890123456788", False),
        (BIG, 1.2345678901234568e18, False),  # the float nearest both
        ("0.1", 0.1, True),
        ("0.1", "0.10", True),
        ("200", " 200 ", False),
        ("200", "2e2", True),
        ("200", "nan", False),
    ],
)
def test_numeric_literal_compares_exactly(literal, value, ok):
    assert (Condition("k", "=", literal).check(value, request(*HOME)) is None) == ok


def test_ordering_is_exact_for_big_integers():
    r = request(*HOME)
    assert Condition("k", ">", BIG).check(1234567890123456790, r) is None
    assert Condition("k", ">", BIG).check(1234567890123456789, r) is not None
    assert Condition("k", ">", "{status}").check(201, r) is None  # a placeholder still orders numerically


def test_regex_placeholder_matches_the_literal_value():
    r = _home_with_id("a.b")
    cond = Condition("k", "~", "^{request_id}$")
    assert cond.check("a.b", r) is None
    assert cond.check("axb", r) is not None  # '.' in the id is not a wildcard


# ---- allow_unlisted ----

ALLOWING = """
[service]
name = "svc"
log_group = "app"
rollbar_environment = "prod"

[honeycomb]
request_id_attribute = "req.id"
allow_unlisted = ['^HTTP GET$']

[xray]
request_id_annotation = "req_id"
allow_unlisted = ['^remote$']

[logs]
request_id_regex = 'rid=(?P<request_id>\\S+)'
allow_unlisted = ['^debug rid={request_id}$']

[rollbar]
request_id_path = "custom.rid"

[[routes]]
name = "home"
path = '^/api/activities/home$'

  [routes.honeycomb]
  allow_unlisted = ['^SELECT ']

  [routes.xray]
  allow_unlisted = ['^sqlite$']

  [routes.logs]
  allow_unlisted = ['^sql {path} rid={request_id}$']
"""


def test_allow_unlisted_applies_per_backend_and_route():
    exp = parse_expectations(ALLOWING)
    home, health = request(*HOME), request(*HEALTH)
    assert exp.allows_unlisted("honeycomb", home, "HTTP GET") and exp.allows_unlisted("honeycomb", health, "HTTP GET")
    assert exp.allows_unlisted("honeycomb", home, "SELECT users")
    assert not exp.allows_unlisted("honeycomb", health, "SELECT users")  # the route's own list
    assert not exp.allows_unlisted("honeycomb", home, "remote")  # another backend's list
    assert exp.allows_unlisted("xray", home, "sqlite") and not exp.allows_unlisted("xray", health, "sqlite")
    assert exp.allows_unlisted("logs", health, f"debug rid={health.request_id}")
    assert not exp.allows_unlisted("logs", health, f"debug rid={home.request_id}")  # another request's id
    assert exp.allows_unlisted("logs", home, f"sql /api/activities/home rid={home.request_id}")


def test_the_bundled_file_allows_nothing_unlisted():
    home = request(*HOME)
    exp = module.load_expectations()
    assert not any(exp.allows_unlisted(b, home, "anything") for b in ("honeycomb", "xray", "logs"))


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        (
            "allow_unlisted = ['^HTTP GET$']",
            "allow_unlisted = '^HTTP GET$'",
            "honeycomb.allow_unlisted: must be a list",
        ),
        ("allow_unlisted = ['^remote$']", "allow_unlisted = ['(']", "xray.allow_unlisted[0]: invalid regex"),
        ("allow_unlisted = ['^SELECT ']", "allow_unlisted = ['{nope}']", "unknown placeholder {nope}"),
        ("allow_unlisted = ['^sqlite$']", "alow_unlisted = ['^sqlite$']", "did you mean 'allow_unlisted'"),
    ],
)
def test_bad_allow_unlisted_is_explained(old, new, message):
    with pytest.raises(ExpectationsError, match=message.replace("[", r"\[").replace("{", r"\{")):
        parse_expectations(ALLOWING.replace(old, new))


def test_the_allow_unlisted_examples_in_the_docstring_are_valid():
    doc = module.__doc__ or ""
    block = doc.split("by name with ``allow_unlisted``", 1)[1].split("\n\nThe bundled", 1)[0]
    examples = [line.split("#", 1)[0].strip() for line in block.splitlines() if "allow_unlisted = [" in line]
    assert len(examples) == 4
    for example in examples:  # each one, in place of the file's own honeycomb list, parses
        exp = parse_expectations(ALLOWING.replace("allow_unlisted = ['^HTTP GET$']", example))
        assert exp.honeycomb.allow_unlisted == tuple(tomllib.loads(example)["allow_unlisted"])
