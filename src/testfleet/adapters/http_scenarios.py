"""HTTP scenarios: YAML files (``*.scenario.yaml``) of templated requests against the SUT.

A scenario is a list of steps. Each step sends one request (method, path, query, headers and a
JSON or raw body), checks expectations on the answer (status set, JSON Schema of the body,
latency bound, substring, regular expression) and may extract values from the JSON body
(JSONPath) for the steps after it::

    name: create and fetch an item
    params:                            # optional: dimensions, as in a space file
      qty: {type: int, min: 1, max: 100}
    steps:
      - name: create
        request: {method: POST, path: /items, json: {name: widget, quantity: "{qty}", price: 1}}
        expect: {status: [201], schema: {type: object, required: [id]}}   # or classes: [2xx, 404]
        extract: {item_id: "$.id"}
      - request: {method: GET, path: "/items/{item_id}"}
        expect: {status: [200], contains: "widget"}

Two optional top-level keys say how a batch runs the scenario
(:func:`testfleet.adapters.scenario_async.run_batch`)::

    repeat: 200        # executions of the whole step sequence in one run (int >= 1, default 1)
    concurrency: 50    # executions in flight at once (int >= 1, default 1)

Every execution gets the same parameters and its own extracted values; a failing execution
does not stop the others.

Templating: ``{name}`` in a string is replaced by a parameter or an extracted value; a string
that is exactly one placeholder keeps the value's type (``"{qty}"`` is the int 42 in a JSON
body); ``{{`` and ``}}`` write literal braces; a brace not followed by a name and ``}`` is kept
as written (so ``\\d{2,3}`` in a regex needs no escaping). Values placed in a path are
percent-encoded. Placeholders are checked when the file is loaded: every one must name a
parameter or a value extracted by an earlier step.

This module loads and validates; :mod:`testfleet.adapters.scenario_run` runs one execution
synchronously, :mod:`testfleet.adapters.scenario_async` runs them on an asyncio ``httpx``
client, one at a time or in concurrent batches.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jsonschema
import yaml
from jsonpath_ng import parse as parse_jsonpath

from testfleet.configs.formats import read_text, yaml_problem
from testfleet.patterns import Pattern, PatternError, compile_pattern
from testfleet.errors import ConfigError, ScenarioError, SpaceError, TestfleetError
from testfleet.space.declare import dimension
from testfleet.space.expressions import MISSING
from testfleet.space.space import Space

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS")
_TOP_KEYS = {"name", "description", "params", "constraints", "steps", "repeat", "concurrency"}
_STEP_KEYS = {"name", "request", "expect", "extract"}
_REQUEST_KEYS = {"method", "path", "query", "headers", "json", "body"}
_EXPECT_KEYS = {"status", "schema", "max_latency_ms", "contains", "regex"}
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.\-]*")


# -- templating ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Slot:
    name: str


def parse_template(text: str) -> list[str | _Slot]:
    """Literal runs and placeholders of one string, in order."""
    parts: list[str | _Slot] = []
    literal: list[str] = []
    i = 0
    while i < len(text):
        pair = text[i:i + 2]
        if pair in ("{{", "}}"):
            literal.append(pair[0])
            i += 2
            continue
        if text[i] == "{":
            match = _NAME.match(text, i + 1)
            if match and text[match.end():match.end() + 1] == "}":
                if literal:
                    parts.append("".join(literal))
                    literal = []
                parts.append(_Slot(match.group()))
                i = match.end() + 1
                continue
        literal.append(text[i])
        i += 1
    if literal:
        parts.append("".join(literal))
    return parts


def placeholders(value: Any) -> list[str]:
    """Names of every placeholder in a (nested) templated value."""
    if isinstance(value, str):
        return [p.name for p in parse_template(value) if isinstance(p, _Slot)]
    if isinstance(value, Mapping):
        return [n for v in value.values() for n in placeholders(v)]
    if isinstance(value, list):
        return [n for v in value for n in placeholders(v)]
    return []


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def render(value: Any, env: Mapping[str, Any], *, place: str, path: bool = False) -> Any:
    """``value`` with its placeholders filled from ``env``; ScenarioError naming ``place`` for a
    placeholder ``env`` has no value for. ``path=True`` percent-encodes substituted values."""
    if isinstance(value, Mapping):
        return {k: render(v, env, place=f"{place}.{k}", path=path) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, env, place=f"{place}[{i}]", path=path) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value
    parts = parse_template(value)

    def lookup(name: str) -> Any:
        found = env.get(name, MISSING)
        if found is MISSING:
            raise ScenarioError(f"placeholder {{{name}}} has no value", place=place,
                                expected="one of " + (", ".join(sorted(env)) or "(none)"))
        return found

    if len(parts) == 1 and isinstance(parts[0], _Slot) and not path:
        return lookup(parts[0].name)
    out = []
    for part in parts:
        if isinstance(part, _Slot):
            text = _text(lookup(part.name))
            out.append(quote(text, safe="") if path else text)
        else:
            out.append(part)
    return "".join(out)


# -- the model ----------------------------------------------------------------------------------
@dataclass
class Request:
    method: str
    path: str
    query: dict[str, Any] = field(default_factory=dict)
    headers: dict[str, Any] = field(default_factory=dict)
    json: Any = None
    has_json: bool = False
    body: str | None = None


@dataclass
class Expect:
    status: list[int] | None = None  # None: any status below 400
    schema: dict[str, Any] | bool | None = None  # true/false: the JSON Schemas that accept/reject all
    max_latency_ms: float | None = None
    contains: list[str] = field(default_factory=list)
    regex: Pattern | None = None


@dataclass
class Step:
    name: str
    request: Request
    expect: Expect
    extract: dict[str, Any] = field(default_factory=dict)  # name -> compiled JSONPath
    extract_text: dict[str, str] = field(default_factory=dict)  # name -> JSONPath as written


@dataclass
class Scenario:
    name: str
    path: Path
    params: Space | None
    steps: list[Step]
    repeat: int = 1  # executions of the step sequence in one run
    concurrency: int = 1  # executions in flight at once

    def baseline(self) -> dict[str, Any]:
        return self.params.baseline() if self.params is not None else {}


# -- loading ------------------------------------------------------------------------------------
class _Reader:
    """Validation helpers that raise ScenarioError naming the file and the place."""

    def __init__(self, source: str) -> None:
        self.source = source

    def fail(self, message: str, place: str | None, expected: str | None = None) -> ScenarioError:
        return ScenarioError(message, source=self.source, place=place, expected=expected)

    def mapping(self, value: Any, place: str, keys: set[str], expected: str) -> dict[str, Any]:
        if not isinstance(value, dict):
            raise self.fail(f"must be a mapping, not {type(value).__name__}", place, expected)
        unknown = sorted(str(k) for k in value if k not in keys)
        if unknown:
            raise self.fail(f"unknown key(s) {', '.join(unknown)}", place,
                            "keys " + ", ".join(sorted(keys)))
        return value

    def string_map(self, value: Any, place: str) -> dict[str, Any]:
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(f"must be a mapping, not {type(value).__name__}", place,
                            "{name: value}")
        for key, item in value.items():
            if not isinstance(key, str):
                raise self.fail(f"key {key!r} is not a string", place, "string keys")
            scalar = (str, int, float, bool)
            if not (isinstance(item, scalar) or (isinstance(item, list)
                                                 and all(isinstance(x, scalar) for x in item))):
                raise self.fail(f"value of {key!r} must be a scalar or a list of scalars",
                                f"{place}.{key}", "a string or number")
        return dict(value)


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate one scenario file; ScenarioError/SpaceError naming the file and place."""
    path = Path(path)
    source = str(path)
    reader = _Reader(source)
    try:
        text = read_text(path)
    except ConfigError as exc:
        raise reader.fail(f"cannot read the scenario: {exc.message}", exc.place, exc.expected) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        problem, where = yaml_problem(exc)
        raise reader.fail(f"malformed YAML: {problem}", where, "a YAML mapping") from None
    return scenario_from_dict(data, source=source, path=path)


def scenario_from_dict(data: Any, *, source: str, path: Path | None = None) -> Scenario:
    reader = _Reader(source)
    data = reader.mapping(data, "(top level)", _TOP_KEYS, "name, params and steps")
    name = data.get("name", (path.name.split(".")[0] if path else "scenario"))
    if not isinstance(name, str) or not name.strip():
        raise reader.fail("the scenario name must be a non-empty string", "name")
    space = _space(data.get("params"), data.get("constraints"), reader)
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise reader.fail("a scenario needs a non-empty list of steps", "steps",
                          "steps: [{request: {method: GET, path: /}}]")
    known = set(space.names) if space is not None else set()
    steps: list[Step] = []
    for index, raw in enumerate(raw_steps):
        step = _step(raw, f"steps[{index}]", index, reader)
        _check_placeholders(step, raw, f"steps[{index}]", known, reader)
        for extracted in step.extract:
            if space is not None and extracted in space.names:
                raise reader.fail(f"extract {extracted!r} would hide the parameter of that name",
                                  f"steps[{index}].extract.{extracted}", "a new name")
            known.add(extracted)
        steps.append(step)
    repeat = _count(data, "repeat", reader)
    concurrency = _count(data, "concurrency", reader)
    return Scenario(name=name, path=path or Path(source), params=space, steps=steps,
                    repeat=repeat, concurrency=concurrency)


def _count(data: dict[str, Any], key: str, reader: _Reader) -> int:
    """An optional positive integer setting (``repeat``, ``concurrency``); 1 when absent."""
    value = data.get(key, 1)
    if type(value) is not int or value < 1:
        raise reader.fail(f"{key} must be an integer >= 1, not {value!r}", key,
                          f"{key}: 10")
    return value


def _space(params: Any, constraints: Any, reader: _Reader) -> Space | None:
    if params is None or params == {}:
        if constraints:
            raise reader.fail("constraints need params", "constraints")
        return None
    if not isinstance(params, dict):
        raise reader.fail("params must be a mapping of dimensions", "params",
                          "params: {qty: {type: int, min: 1, max: 10}}")
    if constraints is not None and (not isinstance(constraints, list)
                                    or not all(isinstance(c, str) for c in constraints)):
        raise reader.fail("constraints must be a list of expressions", "constraints")
    try:
        dims = {}
        for key, spec in params.items():
            if not isinstance(key, str) or not _NAME.fullmatch(key):
                raise reader.fail(f"parameter name {key!r} is not a name", "params",
                                  "letters, digits, _ . - (not first)")
            dims[key] = dimension(spec, source=reader.source, place=f"params.{key}")
        return Space(dims, constraints or [], source=reader.source)
    except TestfleetError:
        raise
    except Exception as exc:  # noqa: BLE001 - an unforeseen declaration: still one message
        raise SpaceError(f"bad parameter declaration: {exc}", source=reader.source,
                         place="params") from None


def _step(raw: Any, place: str, index: int, reader: _Reader) -> Step:
    raw = reader.mapping(raw, place, _STEP_KEYS, "name, request, expect, extract")
    name = raw.get("name", f"step {index + 1}")
    if not isinstance(name, str):
        raise reader.fail("a step name must be a string", f"{place}.name")
    if "request" not in raw:
        raise reader.fail("a step needs a request", place, "request: {method: GET, path: /}")
    request = _request(raw["request"], f"{place}.request", reader)
    expect = _expect(raw.get("expect"), f"{place}.expect", reader)
    extract_text = raw.get("extract") or {}
    if not isinstance(extract_text, dict):
        raise reader.fail("extract must be a mapping", f"{place}.extract", "{item_id: $.id}")
    extract: dict[str, Any] = {}
    for key, expression in extract_text.items():
        where = f"{place}.extract.{key}"
        if not isinstance(key, str) or not _NAME.fullmatch(key):
            raise reader.fail(f"extract name {key!r} is not a name", f"{place}.extract")
        if not isinstance(expression, str):
            raise reader.fail("a JSONPath must be a string", where, "\"$.id\"")
        try:
            extract[key] = parse_jsonpath(expression)
        except Exception as exc:  # noqa: BLE001 - jsonpath-ng raises unrelated classes
            raise reader.fail(f"bad JSONPath {expression!r}: {exc}", where) from None
    return Step(name, request, expect, extract, dict(extract_text))


def _request(raw: Any, place: str, reader: _Reader) -> Request:
    raw = reader.mapping(raw, place, _REQUEST_KEYS, "method, path, query, headers, json|body")
    method = raw.get("method", "GET")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise reader.fail(f"bad method {method!r}", f"{place}.method", " | ".join(METHODS))
    target = raw.get("path")
    if not isinstance(target, str) or not target.startswith("/"):
        raise reader.fail(f"path must be a string starting with '/', not {target!r}",
                          f"{place}.path", "path: /items")
    if "json" in raw and "body" in raw:
        raise reader.fail("a request has a json body or a raw body, not both", place)
    body = raw.get("body")
    if body is not None and not isinstance(body, str):
        raise reader.fail("a raw body must be a string", f"{place}.body",
                          "body: text (use json: for structured bodies)")
    return Request(method=method.upper(), path=target,
                   query=reader.string_map(raw.get("query"), f"{place}.query"),
                   headers=reader.string_map(raw.get("headers"), f"{place}.headers"),
                   json=raw.get("json"), has_json="json" in raw, body=body)


def _expect(raw: Any, place: str, reader: _Reader) -> Expect:
    if raw is None:
        return Expect()
    raw = reader.mapping(raw, place, _EXPECT_KEYS, "status, schema, max_latency_ms, contains, regex")
    expect = Expect()
    if "status" in raw:
        status = raw["status"]
        codes = _status_codes(status)
        if codes is None:
            raise reader.fail(f"status must be a non-empty list of HTTP status codes or classes, "
                              f"not {status!r}", f"{place}.status", "status: [200, 201] or [2xx, 404]")
        expect.status = codes
    if "schema" in raw:
        schema = raw["schema"]
        if not isinstance(schema, (dict, bool)):
            raise reader.fail("schema must be a JSON Schema mapping", f"{place}.schema")
        try:
            jsonschema.validators.validator_for(schema).check_schema(schema)
        except jsonschema.SchemaError as exc:
            raise reader.fail(f"invalid JSON Schema: {exc.message}", f"{place}.schema") from None
        expect.schema = schema
    if "max_latency_ms" in raw:
        bound = raw["max_latency_ms"]
        if isinstance(bound, bool) or not isinstance(bound, (int, float)) or not bound > 0:
            raise reader.fail(f"max_latency_ms must be a positive number, not {bound!r}",
                              f"{place}.max_latency_ms", "max_latency_ms: 500")
        expect.max_latency_ms = float(bound)
    if "contains" in raw:
        contains = raw["contains"]
        contains = [contains] if isinstance(contains, str) else contains
        if not isinstance(contains, list) or not all(isinstance(c, str) for c in contains):
            raise reader.fail("contains must be a string or a list of strings",
                              f"{place}.contains")
        expect.contains = contains
    if "regex" in raw:
        pattern = raw["regex"]
        if not isinstance(pattern, str):
            raise reader.fail("regex must be a string", f"{place}.regex")
        try:
            expect.regex = compile_pattern(pattern)  # RE2: linear time on any response body
        except PatternError as exc:
            raise reader.fail(f"bad regular expression: {exc}", f"{place}.regex") from None
    return expect


def _status_codes(status: Any) -> list[int] | None:
    """``[200, 201]``, or classes ``[2xx, 4xx]`` (each 100 codes), or a mix; None when invalid."""
    if not isinstance(status, list) or not status:
        return None
    codes: list[int] = []
    for entry in status:
        if type(entry) is int and 100 <= entry <= 599:
            codes.append(entry)
        elif isinstance(entry, str) and re.fullmatch(r"[1-5][xX]{2}", entry):
            base = int(entry[0]) * 100
            codes.extend(range(base, base + 100))
        else:
            return None
    return sorted(set(codes))


def _check_placeholders(step: Step, raw: dict[str, Any], place: str, known: set[str],
                        reader: _Reader) -> None:
    request = step.request
    fields: dict[str, Any] = {"request.path": request.path, "request.query": request.query,
                              "request.headers": request.headers, "request.json": request.json,
                              "request.body": request.body, "expect.contains": step.expect.contains}
    for where, value in fields.items():
        for name in placeholders(value):
            if name not in known:
                raise reader.fail(
                    f"step {step.name!r}: unknown placeholder {{{name}}} in {where}",
                    f"{place}.{where}",
                    "a parameter or a value extracted by an earlier step: "
                    + (", ".join(sorted(known)) or "(none defined)"))


from testfleet.adapters.scenario_async import (  # noqa: E402 - the runners build on the model
    BatchResult,
    run_batch,
    run_scenario_async,
)
from testfleet.adapters.scenario_run import (  # noqa: E402
    ScenarioResult,
    StepResult,
    run_scenario,
)

__all__ = ["METHODS", "BatchResult", "Expect", "Request", "Scenario", "ScenarioError",
           "ScenarioResult", "Step", "StepResult", "load_scenario", "placeholders", "render",
           "run_batch", "run_scenario", "run_scenario_async", "scenario_from_dict"]
