"""Ruleset files as a user writes them: the source document's rule loads, every mistake gets one
message naming the file, the rule and the field, the schema is published and the CLI reports."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from testfleet.cli.rules import app
from testfleet.errors import UsageError
from testfleet.mutation.rules import (
    Ruleset,
    RulesetError,
    load_ruleset,
    loads_ruleset,
    ruleset_from_data,
    schema,
)

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "inventory" / "rules.yaml"
SOURCE_RULE = {
    "mutation_name": "InputSizeVariation",
    "target_parameter": "data_payload",
    "variation_type": "range",
    "min_value": 100,
    "max_value": 1000,
    "step_size": 100,
    "trigger_condition": "CPU_load > 80%",
}
PROPERTY = settings(max_examples=150, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def _rule(**changes: object) -> dict:
    rule = {"mutation_name": "R", "target_parameter": "x", "variation_type": "range",
            "min_value": 1, "max_value": 10}
    rule.update(changes)
    return {k: v for k, v in rule.items() if v is not None}


def test_the_source_documents_rule_loads_from_json(tmp_path: Path) -> None:
    path = tmp_path / "rules.json"
    path.write_text(json.dumps([SOURCE_RULE]))
    ruleset = load_ruleset(path)
    (rule,) = ruleset.rules
    assert (rule.mutation_name, rule.target_parameter, rule.variation_type) == \
        ("InputSizeVariation", "data_payload", "range")
    assert (rule.min_value, rule.max_value, rule.step_size) == (100, 1000, 100)
    assert rule.trigger_condition == "CPU_load > 80%"
    assert rule.priority == 1 and rule.enabled and rule.applies("tests/test_x.py::test_a")
    assert rule.triggered({"sut.cpu_percent": {"mean": 85.0}})
    assert not rule.triggered({"sut.cpu_percent": {"mean": 80.0}})
    assert rule.origin == "rule:InputSizeVariation"


def test_object_form_with_name_version_and_defaults() -> None:
    ruleset = loads_ruleset("name: demo\nversion: 7\nrules:\n"
                            "  - {mutation_name: a, target_parameter: cache.size, "
                            "variation_type: scale, max_value: 1GB, priority: 3}\n"
                            "  - {mutation_name: b, target_parameter: t, variation_type: jitter, "
                            "amount: 20%, applies_to: ['tests/test_o*.py::*'], enabled: false}\n")
    assert (ruleset.name, ruleset.version, len(ruleset)) == ("demo", "7", 2)
    a, b = ruleset.rules
    assert a.factor == 2.0 and a.max_value == 1024**3 and a.trigger is None
    assert b.amount == 20.0 and b.relative_amount and not b.enabled
    assert ruleset.for_case("tests/test_orders.py::t") == [a]
    assert ruleset.fired("tests/test_orders.py::t", {}) == [a]
    assert ruleset.get("b") is b and ruleset.get("zz") is None


def test_version_is_a_content_hash_that_changes_with_an_edit() -> None:
    one = ruleset_from_data([SOURCE_RULE])
    same = ruleset_from_data([dict(reversed(list(SOURCE_RULE.items())))])
    edited = ruleset_from_data([SOURCE_RULE | {"max_value": 2000}])
    assert one.version == same.version
    assert one.version != edited.version and len(one.version) == 12


def test_rules_sort_by_priority_then_file_order() -> None:
    ruleset = ruleset_from_data([_rule(mutation_name="low", priority=0.5),
                                 _rule(mutation_name="first"), _rule(mutation_name="second"),
                                 _rule(mutation_name="high", priority=5)])
    assert [r.mutation_name for r in ruleset.for_case("t")] == ["high", "first", "second", "low"]


BAD = [
    (_rule(max_value=0), "field max_value", "must be >= min_value 1"),
    (_rule(variation_type="ranger"), "field variation_type", "range | set"),
    (_rule(target_parameter=None), "field target_parameter", "missing required field"),
    (_rule(min_value=None), "field min_value", "missing required field"),
    (_rule(variation_type="set", min_value=None, max_value=None), "field values", "missing"),
    (_rule(variation_type="set", values=[], min_value=None, max_value=None), "field values", ""),
    (_rule(variation_type="set", values=[1, 1]), "field values", "appears twice"),
    (_rule(variation_type="jitter"), "field amount", "missing required field"),
    (_rule(variation_type="jitter", amount=-3), "field amount", ""),
    (_rule(variation_type="scale", factor=1), "field factor", "changes nothing"),
    (_rule(factor=2), "field factor", "does not apply to a range rule"),
    (_rule(step_size=0), "field step_size", "must be > 0"),
    (_rule(min_value="3 apples"), "field min_value", "unknown unit"),
    (_rule(priority="high"), "field priority", "not valid"),
    (_rule(priority=float("nan")), "field priority", "not a finite number"),
    (_rule(trigger_condition="CPU_load >"), "field trigger_condition", "bad trigger"),
    (_rule(trigger_condition="cpu_lod > 3"), "field trigger_condition", "unknown name 'cpu_lod'"),
    (_rule(colour="red"), "field colour", "unknown field 'colour'"),
    (_rule(applies_to="tests/*"), "field applies_to", "not valid"),
    (_rule(target_parameter="a..b"), "field target_parameter", "not valid"),
]


@pytest.mark.parametrize(("rule", "place", "words"), BAD)
def test_each_mistake_names_file_rule_and_field(rule: dict, place: str, words: str) -> None:
    data = [_rule(mutation_name="Fine"), rule]
    with pytest.raises(RulesetError) as caught:
        ruleset_from_data(data, source="rules.yaml")
    text = str(caught.value)
    assert text.startswith("rules.yaml [rule 2 (R) " + place), text
    assert words in text
    assert isinstance(caught.value, UsageError)


def test_duplicate_names_name_both_rules() -> None:
    with pytest.raises(RulesetError, match=r"\[rule 3 \(R\) field mutation_name\]: duplicate "
                                           r"mutation_name 'R' \(rule 1 has it too\)"):
        ruleset_from_data([_rule(), _rule(mutation_name="S"), _rule()], source="r.json")


@pytest.mark.parametrize(("data", "words"), [
    (5, "5 is not valid"), ({"rules": 3}, "field rules"), ({"rules": [], "extra": 1}, "extra"),
    ([3], "rule 1]: a rule must be a mapping"), ({"name": "x"}, "missing required field rules"),
])
def test_document_shape_errors(data: object, words: str) -> None:
    with pytest.raises(RulesetError, match="^f.yaml") as caught:
        ruleset_from_data(data, source="f.yaml")
    assert words in str(caught.value)


def test_yaml_errors_name_lines(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text("rules:\n  - mutation_name: a\n    target_parameter: x\n"
                    "    variation_type: [range\n")
    with pytest.raises(RulesetError, match=r"rules.yaml \[line \d+, column \d+\]: invalid YAML"):
        load_ruleset(path)
    path.write_text("rules:\n  - mutation_name: Size\n    target_parameter: x\n"
                    "    variation_type: range\n    min_value: 100\n    max_value: 10\n")
    with pytest.raises(RulesetError, match=r"\[rule 1 \(Size\) field max_value, line 6\]"):
        load_ruleset(path)
    path.write_text("- {mutation_name: a, target_parameter: x, variation_type: drop}\n"
                    "- {mutation_name: a, target_parameter: x, variation_type: drop}\n")
    with pytest.raises(RulesetError, match=r"field mutation_name, line 2\]"):
        load_ruleset(path)
    path.write_text("- {mutation_name: a, mutation_name: b}\n")
    with pytest.raises(RulesetError, match="duplicate key"):
        load_ruleset(path)


def test_unreadable_and_empty_files(tmp_path: Path) -> None:
    with pytest.raises(RulesetError, match="cannot read"):
        load_ruleset(tmp_path / "absent.yaml")
    (tmp_path / "empty.yaml").write_text("")
    with pytest.raises(RulesetError, match="empty"):
        load_ruleset(tmp_path / "empty.yaml")
    (tmp_path / "bad.json").write_bytes(b"[\xff]")
    with pytest.raises(RulesetError, match="UTF-8"):
        load_ruleset(tmp_path / "bad.json")


def test_published_schema_is_valid_and_accepts_the_example() -> None:
    jsonschema.Draft202012Validator.check_schema(schema())
    ruleset = load_ruleset(EXAMPLE)
    assert isinstance(ruleset, Ruleset) and len(ruleset) >= 10
    kinds = {r.variation_type for r in ruleset}
    assert {"range", "set", "boundary", "shuffle", "jitter"} <= kinds
    assert any(r.trigger is None for r in ruleset)
    import yaml
    jsonschema.validate(yaml.safe_load(EXAMPLE.read_text()), schema())


# ---------------------------------------------------------------- properties

_values = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=8),
                    st.lists(st.integers(), max_size=3))
_fields = st.sampled_from(["mutation_name", "target_parameter", "variation_type", "min_value",
                           "max_value", "step_size", "values", "factor", "amount",
                           "trigger_condition", "priority", "applies_to", "enabled",
                           "description", "other"])
_field_values = {
    "variation_type": st.sampled_from(["range", "set", "scale", "jitter", "shuffle", "boundary",
                                       "grow", "drop", "bogus"]),
    "min_value": st.one_of(st.integers(-100, 100), st.sampled_from(["1KB", "5ms", "x", "1e3MB"])),
    "max_value": st.one_of(st.integers(-100, 100), st.sampled_from(["1MB", "2s", "inf"])),
    "amount": st.one_of(st.floats(-5, 50), st.sampled_from(["20%", "0%", "5ms", "%"])),
    "trigger_condition": st.one_of(st.text(max_size=20),
                                   st.sampled_from(["cpu > 80%", "rss_mb >", "sut.fds.max < 3"])),
    "values": st.lists(_values, max_size=4),
}


@st.composite
def rule_dicts(draw: st.DrawFn) -> dict:
    rule = {"mutation_name": draw(st.text(min_size=0, max_size=5)),
            "target_parameter": draw(st.text(max_size=6)),
            "variation_type": draw(_field_values["variation_type"])}
    for name in draw(st.lists(_fields, max_size=6)):
        rule[name] = draw(_field_values.get(name, _values))
    for name in draw(st.lists(st.sampled_from(list(rule)), max_size=2)):
        rule.pop(name, None)
    return rule


@PROPERTY
@given(st.lists(rule_dicts(), max_size=3), st.booleans())
def test_arbitrary_rule_dicts_load_or_raise_ruleset_error(rules: list, wrapped: bool) -> None:
    data = {"rules": rules} if wrapped else rules
    try:
        ruleset = ruleset_from_data(data, source="h.yaml")
    except RulesetError as exc:
        assert str(exc).startswith("h.yaml")
        return
    assert len(ruleset) == len(rules)


@PROPERTY
@given(st.text(max_size=300))
def test_arbitrary_yaml_text_loads_or_raises_ruleset_error(text: str) -> None:
    try:
        loads_ruleset(text, source="t.yaml")
    except RulesetError:
        pass


# ---------------------------------------------------------------- CLI

def test_cli_validate_reports_each_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("- {mutation_name: B, target_parameter: x, variation_type: range, "
                   "min_value: 5, max_value: 1}\n")
    runner = CliRunner()
    ok = runner.invoke(app, ["validate", str(EXAMPLE)])
    assert ok.exit_code == 0
    assert ok.output.startswith(f"ok: {EXAMPLE} (") and "rules, version " in ok.output
    mixed = runner.invoke(app, ["validate", str(EXAMPLE), str(bad)])
    assert mixed.exit_code == 2
    assert "ok: " in mixed.output
    assert f"{bad} [rule 1 (B) field max_value, line 1]: must be >= min_value 5" in mixed.output


def test_cli_show_lists_rules() -> None:
    result = CliRunner().invoke(app, ["show", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    for words in ("InputSizeVariation", "payload_size", "range", "100..1000 step 100",
                  "CPU_load > 80%", "always", "(disabled)"):
        assert words in result.output
    assert CliRunner().invoke(app, ["show", "nope.yaml"]).exit_code == 2


def test_cli_schema_prints_the_published_schema() -> None:
    result = CliRunner().invoke(app, ["schema"])
    assert result.exit_code == 0
    printed = json.loads(result.output)
    jsonschema.Draft202012Validator.check_schema(printed)
    assert printed == schema()


# ---------------------------------------------------------------- one rule on its own (issue 15)

def test_cli_validate_accepts_the_source_documents_single_rule_object(tmp_path: Path) -> None:
    path = tmp_path / "rule.json"
    path.write_text(json.dumps(SOURCE_RULE, indent=2), encoding="utf-8")
    result = CliRunner().invoke(app, ["validate", str(path)])
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"ok: {path} (1 rule")


@pytest.mark.parametrize("form", ["single", "list", "object"])
def test_single_rule_list_and_rules_object_give_the_same_rule(form: str) -> None:
    data = {"single": dict(SOURCE_RULE), "list": [dict(SOURCE_RULE)],
            "object": {"rules": [dict(SOURCE_RULE)]}}[form]
    jsonschema.validate(data, schema())  # the published schema accepts all three forms
    [rule] = ruleset_from_data(data, source="r.json")
    assert (rule.mutation_name, rule.min_value, rule.max_value, rule.trigger_condition) == (
        "InputSizeVariation", 100, 1000, "CPU_load > 80%")


def test_a_single_rule_in_yaml_names_its_field_and_line() -> None:
    text = ("mutation_name: Alone\ntarget_parameter: x\nvariation_type: range\n"
            "min_value: 5\nmax_value: 1\n")
    with pytest.raises(RulesetError) as caught:
        loads_ruleset(text, source="one.yaml")
    assert caught.value.place == "rule 1 (Alone) field max_value, line 5"


def test_a_single_rule_missing_a_field_names_it_not_rules() -> None:
    with pytest.raises(RulesetError) as caught:
        ruleset_from_data({"mutation_name": "A", "variation_type": "shuffle"}, source="r.json")
    assert "missing required field target_parameter" in str(caught.value)
