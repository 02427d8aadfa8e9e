"""The expectations file: the bundled one loads and routes requests; bad files say which key is wrong."""

from __future__ import annotations

import pytest

from tests.verifiers import EXP, FAULT, HOME, USER, USER_INVALID, request
from verifiers.expectations import (
    DEFAULT_EXPECTATIONS,
    MISSING,
    Condition,
    ExpectationsError,
    StatusSet,
    load_expectations,
    parse_expectations,
)

MINIMAL = """
[service]
name = "My Service"
log_group = "app"
rollbar_environment = "prod"

[honeycomb]
request_id_attribute = "req.id"

[xray]
request_id_annotation = "req_id"

[logs]
request_id_regex = 'rid=(?P<request_id>\\S+)'

[rollbar]
request_id_path = "custom.rid"
"""


def test_bundled_file_loads_with_the_cruddur_names():
    exp = load_expectations(DEFAULT_EXPECTATIONS)
    assert (
        exp.service.name,
        exp.service.honeycomb_dataset,
        exp.service.log_group,
        exp.service.rollbar_environment,
    ) == ("backend-flask", "backend-flask", "cruddur", "local")
    assert [r.name for r in exp.routes] == [
        "home",
        "user_activities",
        "notifications",
        "health",
        "rollbar_test",
        "fault",
    ]
    assert exp.honeycomb_columns() == ["app.request_id", "http.status_code", "app.now", "app.result_length"]


def test_first_matching_route_and_status_filters():
    home, user, invalid, fault = (request(*r) for r in (HOME, USER, USER_INVALID, FAULT))
    assert EXP.route_name(home) == "home"
    assert [s.name for s in EXP.spans_for(home)] == ["home-activities-mock-data"]
    assert [s.name for s in EXP.subsegments_for(user)] == ["user-activities", "mock-data"]
    assert EXP.subsegments_for(invalid) == []  # 422: only a valid handle runs the query
    assert [line.name for line in EXP.lines_for(home)] == ["access line", "hello line"]
    assert [line.name for line in EXP.lines_for(fault)] == ["access line"]
    assert [o.describe() for o in EXP.occurrences_for(fault)] == ["error RuntimeError exception"]
    assert EXP.route_name(request("x", "/nowhere", 200)) == "(no route)"


def test_a_minimal_file_is_enough_and_slugs_the_dataset():
    exp = parse_expectations(MINIMAL)
    assert exp.service.honeycomb_dataset == "my-service"
    assert exp.routes == () and exp.logs.lines == ()
    assert exp.honeycomb_columns() == ["req.id"]


def test_line_pattern_fills_placeholders_literally():
    home = request(*HOME)
    line = EXP.lines_for(home)[0]
    text = f"[2025-Oct-09 08:53] 10.0.0.1 GET http /api/activities/home? 200 request_id={home.request_id}"
    assert line.regex_for(home).search(text)
    assert not line.regex_for(home).search(text.replace(" 200 ", " 500 "))
    assert line.fields() == ["method", "path", "status"]


@pytest.mark.parametrize(
    ("op", "value", "ok"),
    [
        ("exists", 0, True),
        ("exists", MISSING, False),
        ("absent", MISSING, True),
        ("absent", "x", False),
        ("= 200", 200, True),
        ("= 200", "200", True),
        ("= 200", 201, False),
        ("!= 200", 201, True),
        ("> 0", 5, True),
        ("> 0", 0, False),
        (">= 5", 5, True),
        ("< 5", "4", True),
        ("<= 5", 6, False),
        ("> 0", "lots", False),
        ("~ ^a.c$", "abc", True),
        ("= true", True, True),
        ("= true", False, False),
        ('= "200"', 200, False),
        ("= {status}", 200, True),
        ("= {request_id}", "nope", False),
    ],
)
def test_condition_semantics(op, value, ok):
    result = _condition(op).check(value, request(*HOME))
    assert (result is None) == ok, result


def _condition(text: str) -> Condition:
    source = MINIMAL.replace(
        'request_id_attribute = "req.id"',
        f"request_id_attribute = \"req.id\"\nserver_span = {{ attributes = {{ k = '{text}' }} }}",
    )
    return parse_expectations(source).honeycomb.server_attributes[0]


def test_bare_values_mean_equality():
    source = MINIMAL.replace(
        'request_id_attribute = "req.id"',
        'request_id_attribute = "req.id"\nevery_span = { attributes = { a = 5, b = true } }',
    )
    conds = parse_expectations(source).honeycomb.every_span_attributes
    assert [(c.key, c.op, c.operand) for c in conds] == [("a", "=", "5"), ("b", "=", "true")]


def test_status_sets():
    assert 503 in StatusSet(("5xx",)) and 404 not in StatusSet(("5xx",))
    assert 200 in StatusSet(()) and None not in StatusSet(())
    assert 404 in StatusSet(("2xx", "404")) and StatusSet(("2xx", "404")).describe() == "2xx/404"


def bad(extra: str, base: str = MINIMAL) -> str:
    with pytest.raises(ExpectationsError) as err:
        parse_expectations(base + extra, source="my.toml")
    return str(err.value)


def test_unknown_key_suggests_the_close_one():
    route = '\n[[routes]]\nname = "r"\npath = "^/$"\n[[routes.honeycomb.spans]]\nname = "s"\natributes = {}\n'
    message = bad(route)
    assert message == (
        "my.toml: routes[0] (\"r\").honeycomb.spans[0]: unknown key 'atributes' - did you mean 'attributes'?"
    )


def test_unknown_top_level_table_is_named():
    assert "unknown key 'rolbar' - did you mean 'rollbar'?" in bad("\n[rolbar]\nx = 1\n")


def test_missing_required_key_and_table():
    assert bad("", MINIMAL.replace('log_group = "app"\n', "")) == "my.toml: service: missing required key 'log_group'"
    assert "missing table [xray]" in bad("", MINIMAL.replace('[xray]\nrequest_id_annotation = "req_id"', ""))


def test_bad_regex_condition_status_and_level_are_explained():
    route = '\n[[routes]]\nname = "r"\npath = "^/($"\n'
    assert "routes[0] (\"r\").path: invalid regex '^/($'" in bad(route)
    cond = (
        '\n[[routes]]\nname = "r"\npath = "^/$"\n[[routes.honeycomb.spans]]\nname = "s"\nattributes = { a = "big" }\n'
    )
    assert "'big' is not a condition" in bad(cond)
    num = cond.replace('"big"', '"> lots"')
    assert "'> lots': > needs a number" in bad(num)
    status = (
        '\n[[routes]]\nname = "r"\npath = "^/$"\n[[routes.logs.lines]]\nname = "l"\n'
        'pattern = "{request_id}"\nstatuses = ["200 OK"]\n'
    )
    assert "'200 OK' is not a status" in bad(status)
    level = (
        '\n[[routes]]\nname = "r"\npath = "^/$"\n[[routes.rollbar.occurrences]]\nlevel = "eror"\n'
        'exception_class = "E"\n'
    )
    assert "'eror' is not a Rollbar level" in bad(level) and "did you mean 'error'?" in bad(level)


def test_structural_mistakes_are_explained():
    parent = '\n[[routes]]\nname = "r"\npath = "^/$"\n[[routes.xray.subsegments]]\nname = "a"\nparent = "b"\n'
    assert "'b' is neither \"segment\" nor a name listed before this entry (none)" in bad(parent)
    line = '\n[[logs.lines]]\nname = "l"\npattern = "no id here"\n'
    assert "logs.lines[0].pattern: must contain {request_id}" in bad(line)
    placeholder = '\n[[logs.lines]]\nname = "l"\npattern = "{request_id} {user}"\n'
    assert "unknown placeholder {user}" in bad(placeholder)
    both = '\n[[routes]]\nname = "r"\npath = "^/$"\n[[routes.rollbar.occurrences]]\nlevel = "error"\n'
    assert "give exactly one of exception_class" in bad(both)
    twice = '\n[[routes]]\nname = "r"\npath = "^/$"\n[[routes]]\nname = "r"\npath = "^/x$"\n'
    assert "route name 'r' is used twice" in bad(twice)
    count = '\n[[logs.lines]]\nname = "l"\npattern = "{request_id}"\ncount = 0\n'
    assert "logs.lines[0].count: must be a whole number >= 1" in bad(count)
    group = MINIMAL.replace("(?P<request_id>\\S+)", "(\\S+)")
    assert "needs a named group (?P<request_id>...)" in bad("", group)


def test_invalid_toml_and_missing_file():
    assert bad("[service").startswith("my.toml: not valid TOML")
    with pytest.raises(FileNotFoundError):
        load_expectations("/nonexistent/expect.toml")


def test_expectations_errors_are_value_errors():
    assert issubclass(ExpectationsError, ValueError)  # the CLI turns ValueError into a usage error


def test_the_format_example_in_the_docstring_parses():
    import textwrap

    import verifiers.expectations as module

    doc = module.__doc__ or ""
    block = doc.split("::\n\n", 1)[1].split("\n\nEvery span", 1)[0]
    exp = parse_expectations(textwrap.dedent(block), source="docstring")
    assert exp.service.name == "backend-flask" and [r.name for r in exp.routes] == ["home"]
    route = exp.routes[0]
    assert [s.name for s in route.spans] == ["home-activities-mock-data"]
    assert [s.name for s in route.subsegments] == ["user-activities"]
    assert [o.describe() for o in route.occurrences] == ["error RuntimeError exception"]
    home = request(*HOME)
    text = f"[2025-Oct-09 08:53] 1.2.3.4 GET http /api/activities/home? 200 request_id={home.request_id}"
    assert exp.lines_for(home)[0].regex_for(home).search(text)


@pytest.mark.parametrize(
    ("pattern", "breaks"),
    [
        ("request_id={request_id}$|[a-{method}]", "{method} is filled with a value like 'GET'"),
        ("(?P<{name}>x){request_id}", "{name} is filled with a value like 'a-b'"),
    ],
)
def test_a_log_pattern_that_only_breaks_once_filled_is_refused_at_load(pattern: str, breaks: str) -> None:
    line = (
        f"\n[[routes]]\nname = \"r\"\npath = \"^/$\"\n[[routes.logs.lines]]\nname = \"l\"\npattern = '''{pattern}'''\n"
    )
    message = bad(line)
    assert 'routes[0] ("r").logs.lines[0]' in message and breaks in message, message
