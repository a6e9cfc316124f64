"""The published JSON Schema of a ruleset file, checking data against it, and naming places.

Errors from :mod:`jsonschema` become one :class:`RulesetError` for the first rule at fault,
naming the file, the rule (1-based, with its ``mutation_name``), the field and, for YAML, the
line, with what the field expects.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import jsonschema
import yaml
from jsonschema.exceptions import best_match

from testfleet.mutation.errors import RulesetError

__all__ = ["HINTS", "VARIATION_TYPES", "Where", "check_schema", "schema", "short",
           "variation_types"]

VARIATION_TYPES = ("range", "set", "scale", "jitter", "shuffle", "boundary", "grow", "drop")


def variation_types() -> tuple[str, ...]:
    """The built-in variation types and those plugins add (testfleet_add_mutation_operators)."""
    from testfleet.plugins import registry

    return tuple(registry().operators())

#: What each field expects, for messages.
HINTS = {
    "mutation_name": "a non-empty name, unique in the ruleset",
    "target_parameter": "a parameter name, dotted for nested keys (cache.size)",
    "variation_type": " | ".join(VARIATION_TYPES),
    "min_value": "a number or a number with a unit (64MB, 250ms)",
    "max_value": "a number or a number with a unit (64MB, 250ms)",
    "step_size": "a positive number or a number with a unit (64MB, 250ms)",
    "values": "a non-empty list of values",
    "factor": "a positive number other than 1",
    "amount": "a positive number, a number with a unit (250ms) or a percentage (\"20%\")",
    "trigger_condition": "an expression over telemetry such as 'CPU_load > 80%'",
    "priority": "a number (higher first)",
    "applies_to": "a list of nodeid globs such as 'tests/test_orders.py::*'",
    "enabled": "true or false",
    "description": "text",
    "rules": "a list of rules",
}

def schema() -> dict[str, Any]:
    """The published JSON Schema (draft 2020-12) of a ruleset file, its ``variation_type``
    enum holding the installed plugins' operators too."""
    return _schema(variation_types())


@cache
def _schema(types: tuple[str, ...]) -> dict[str, Any]:
    text = resources.files("testfleet.mutation").joinpath("ruleset.schema.json").read_text("utf-8")
    data: dict[str, Any] = json.loads(text)
    data["$defs"]["rule"]["properties"]["variation_type"]["enum"] = list(types)
    return data


def _validator() -> jsonschema.Draft202012Validator:
    return _validator_of(variation_types())


@cache
def _validator_of(types: tuple[str, ...]) -> jsonschema.Draft202012Validator:
    return jsonschema.Draft202012Validator(_schema(types))


class Where:
    """Names places in a ruleset: rule index and name, field, and the YAML line when known."""

    def __init__(self, data: Any, source: str, text: str | None, *, single: bool = False) -> None:
        self.data, self.source, self.text = data, source, text
        self.single = single  # data is [the file's one rule]: the YAML document is that rule
        self._nodes: Any = False

    def _rules(self) -> list[Any]:
        if isinstance(self.data, list):
            return self.data
        rules = self.data.get("rules") if isinstance(self.data, dict) else None
        return rules if isinstance(rules, list) else []

    def place(self, index: int | None, fld: str | None) -> str | None:
        parts = []
        if index is not None:
            rules = self._rules()
            spec = rules[index] if index < len(rules) else None
            name = spec.get("mutation_name") if isinstance(spec, dict) else None
            label = f" ({name})" if isinstance(name, str) and name.strip() else ""
            parts.append(f"rule {index + 1}{label}")
        if fld is not None:
            parts.append(f"field {fld}")
        text = " ".join(parts) or None
        line = self._line(index, fld)
        return f"{text}, line {line}" if text and line else (text or (f"line {line}" if line else None))

    def _line(self, index: int | None, fld: str | None) -> int | None:
        if self.text is None:
            return None
        if self._nodes is False:
            try:
                self._nodes = yaml.compose(self.text, Loader=yaml.SafeLoader)
            except Exception:  # noqa: BLE001 - lines are a courtesy, never a new error
                self._nodes = None
        node = self._nodes
        if self.single and isinstance(node, yaml.MappingNode):
            node = yaml.SequenceNode("tag:yaml.org,2002:seq", [node])
        elif isinstance(node, yaml.MappingNode):
            node = _child(node, "rules")
        if index is None or not isinstance(node, yaml.SequenceNode):
            return None
        if index >= len(node.value):
            return None
        rule: yaml.Node = node.value[index]
        if fld is not None and isinstance(rule, yaml.MappingNode):
            for key, _value in rule.value:
                if isinstance(key, yaml.ScalarNode) and key.value == fld:
                    return key.start_mark.line + 1
        return rule.start_mark.line + 1


def _child(node: yaml.MappingNode, key: str) -> Any:
    return next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key),
                None)


def short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[:limit - 3] + "..."


def check_schema(data: Any, where: Where) -> None:
    try:
        errors = list(_validator().iter_errors(data))
    except RecursionError:
        raise RulesetError("the ruleset is nested too deeply to check", source=where.source
                           ) from None
    if not errors:
        return
    in_list = isinstance(data, list)

    def locate(error: jsonschema.ValidationError) -> tuple[int | None, str | None]:
        path = list(error.absolute_path)
        if not in_list:
            if not path:
                return None, None
            if path[0] != "rules":
                return None, str(path[0])
            path = path[1:]
            if not path:
                return None, "rules"
        index = path[0] if path and isinstance(path[0], int) else None
        fld = str(path[1]) if len(path) > 1 else None
        return index, fld

    def position(error: jsonschema.ValidationError) -> int:
        index = locate(error)[0]
        return -1 if index is None else index

    first = min(position(e) for e in errors)
    error = best_match(e for e in errors if position(e) == first)
    index, fld = locate(error)
    instance = error.instance
    if fld is None and isinstance(instance, dict):
        if error.validator == "required":
            fld = next((k for k in error.validator_value if k not in instance), None)
            message = f"missing required field {fld}"
        elif error.validator == "additionalProperties":
            extra = sorted(str(k) for k in instance if k not in error.schema.get("properties", {}))
            fld = extra[0] if extra else None
            allowed = ", ".join(error.schema.get("properties", {}))
            raise RulesetError(f"unknown field{'s' if len(extra) > 1 else ''} "
                               f"{', '.join(map(repr, extra))}", source=where.source,
                               place=where.place(index, fld), expected=f"fields {allowed}")
        else:
            message = error.message
    elif fld is None and index is not None:
        message = f"a rule must be a mapping, not {short(instance)}"
        raise RulesetError(message, source=where.source, place=where.place(index, None),
                           expected="mutation_name, target_parameter, variation_type, ...")
    elif error.validator in ("oneOf", "anyOf", "pattern", "type", "enum", "const"):
        message = f"{short(instance)} is not valid"
    else:
        message = short(error.message, 160)
    expected: str | None
    if index is None and fld is None:
        expected = "one rule, a list of rules, or {name, version, rules: [...]}"
    else:
        expected = (" | ".join(variation_types()) if fld == "variation_type"
                    else HINTS.get(fld or "", None))
    raise RulesetError(message, source=where.source, place=where.place(index, fld),
                       expected=expected)
