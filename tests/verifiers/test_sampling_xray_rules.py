"""X-Ray rules as the SDK reads and matches them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from aws_xray_sdk.core.utils.search_pattern import wildcard_match as sdk_wildcard_match

from verifiers.sampling.xray_rules import RulesError, load_rules, parse_rules, wildcard_match

ROOT = Path(__file__).resolve().parents[2]


def rule(name: str, priority: int, **fields: object) -> dict[str, object]:
    base: dict[str, object] = {
        "RuleName": name, "ResourceARN": "*", "Priority": priority, "FixedRate": 0.1, "ReservoirSize": 2,
        "ServiceName": "*", "ServiceType": "*", "Host": "*", "HTTPMethod": "*", "URLPath": "*", "Version": 1,
    }  # fmt: skip
    return base | fields


@pytest.mark.parametrize(
    ("pattern", "text"),
    [
        ("*", "anything"), ("/api/*", "/api/activities/home"), ("/api/*", "/rollbar/test"),
        ("backend-?lask", "backend-Flask"), ("GET", "get"), ("", ""), ("", "x"), ("a*b*c", "aXXbYYc"),
        ("a*b*c", "aXXbYY"), ("*.com", "x.com"), ("a?", "a"),
    ],
)  # fmt: skip
def test_wildcards_match_like_the_sdk(pattern: str, text: str) -> None:
    assert wildcard_match(pattern, text) == sdk_wildcard_match(pattern, text)


def test_the_bundled_rule_files_parse() -> None:
    central = load_rules(ROOT / "target_app" / "xray-sampling-rules.json")
    assert central.mode == "centralized" and [r.name for r in central.rules] == ["Cruddur", "Default"]
    assert (central.rules[0].reservoir, central.rules[0].rate, central.default.reservoir) == (5, 0.1, 1)
    local = load_rules(ROOT / "target_app" / "xray-local-rules.json")
    assert local.mode == "local" and local.rules[0].reservoir == 5 and local.default.rate == 0.05


def test_priority_order_service_matching_and_skipped_rules() -> None:
    rules = parse_rules(
        {
            "SamplingRules": [
                rule("Catchall", 500),
                rule("Health", 100, URLPath="/api/health"),
                rule("Other", 50, ServiceName="other-service"),
                rule("Tagged", 10, Attributes={"team": "a"}),
                {"RuleName": "Default", "FixedRate": 0.2, "ReservoirSize": 3},
            ]
        },
        "doc",
    )
    assert [r.name for r in rules.rules] == ["Tagged", "Other", "Health", "Catchall", "Default"]
    assert rules.rule("Tagged").ignored  # the SDK skips rules with Attributes
    assert rules.match("backend-flask", "h", "GET", "/api/health").name == "Health"
    assert rules.match("backend-flask", "h", "GET", "/api/activities/home").name == "Catchall"
    assert rules.match("other-service", "h", "GET", "/x").name == "Other"
    assert (rules.default.reservoir, rules.default.rate) == (3, 0.2)


def test_a_rule_for_another_service_leaves_the_default() -> None:
    rules = parse_rules({"SamplingRule": rule("Cruddur", 9000, ServiceName="frontend")}, "doc")
    assert rules.match("backend-flask", "h", "GET", "/").name == "Default"
    assert (rules.default.reservoir, rules.default.rate) == (1, 0.05)  # the implicit Default rule


def test_get_sampling_rules_output_and_local_version_1(tmp_path: Path) -> None:
    records = {"SamplingRuleRecords": [{"SamplingRule": rule("A", 1)}, {"SamplingRule": rule("Default", 10000)}]}
    assert [r.name for r in parse_rules(records, "api").rules] == ["A", "Default"]
    v1 = {"version": 1, "rules": [{"service_name": "*", "http_method": "GET", "url_path": "/a*", "fixed_target": 0,
                                   "rate": 0.5}], "default": {"fixed_target": 2, "rate": 0.1}}  # fmt: skip
    local = parse_rules(v1, "v1")
    assert local.match("svc", "h", "GET", "/abc").rate == 0.5 and local.match("svc", "h", "POST", "/abc").is_default
    path = tmp_path / "r.json"
    path.write_text(json.dumps(v1))
    assert load_rules(path).mode == "local"


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ({"nope": 1}, "expected centralized rules"),
        ({"SamplingRule": rule("A", 1, FixedRate=2)}, "FixedRate must be"),
        ({"SamplingRule": rule("A", 1, ReservoirSize=-1)}, "ReservoirSize must be"),
        ({"SamplingRule": {"FixedRate": 0.1}}, "RuleName"),
        ({"version": 3, "default": {}}, "version must be 1 or 2"),
        ({"version": 2, "rules": [{"fixed_target": 1}], "default": {"fixed_target": 1, "rate": 0.1}}, "'host'"),
    ],
)  # fmt: skip
def test_bad_documents_name_the_problem(doc: object, message: str) -> None:
    with pytest.raises(RulesError, match=message):
        parse_rules(doc, "doc")
