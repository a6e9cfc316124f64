"""Spaces from JSON Schemas: every generated document validates against the schema, boundary
keywords become boundary values, and what cannot be honoured is refused with its path."""

from __future__ import annotations

import jsonschema
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from testfleet.errors import SpaceError
from testfleet.space.jsonschema import space_from_json_schema
from testfleet.space.sampling import generate

SERVICE = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["port", "mode", "workers"],
    "properties": {
        "port": {"type": "integer", "minimum": 1024, "exclusiveMaximum": 65536},
        "mode": {"enum": ["fast", "safe", "debug"]},
        "workers": {"type": "integer", "minimum": 0, "maximum": 64, "multipleOf": 4},
        "ratio": {"type": "number", "exclusiveMinimum": 0, "maximum": 1},
        "name": {"type": "string", "minLength": 1, "maxLength": 12},
        "id": {"type": "string", "pattern": "^[a-z]{2}-[0-9]{3}$"},
        "email": {"type": "string", "format": "email"},
        "tls": {"type": "boolean"},
        "version": {"const": 2},
        "note": {"type": ["string", "null"], "maxLength": 5},
        "limits": {
            "type": "object", "required": ["cpu"],
            "properties": {"cpu": {"type": "number", "minimum": 0.5, "maximum": 8},
                           "memory": {"$ref": "#/$defs/size"}},
        },
        "tags": {"type": "array", "items": {"type": "string", "maxLength": 4},
                 "minItems": 1, "maxItems": 3},
        "retry": {"oneOf": [{"type": "integer", "minimum": 0, "maximum": 5},
                            {"type": "string", "enum": ["never"]}]},
        "cert": {"type": "string", "maxLength": 8},
        "key": {"type": "string", "maxLength": 8},
    },
    "dependentRequired": {"cert": ["key"]},
    "$defs": {"size": {"type": "integer", "minimum": 1, "maximum": 4096}},
}


@pytest.mark.parametrize("strategy", ["random", "edge", "pairwise", "mixed"])
def test_every_generated_document_validates(strategy: str) -> None:
    space = space_from_json_schema(SERVICE)
    validator = jsonschema.Draft202012Validator(SERVICE)
    points = generate(space, strategy, count=200, seed=4).points
    assert points
    for point in points:
        document = space.nest(point.params)
        errors = [e.message for e in validator.iter_errors(document)]
        assert errors == [], (document, errors)


def test_boundaries_come_from_the_schema_keywords() -> None:
    space = space_from_json_schema(SERVICE)
    edges = {p.origin: p.params for p in generate(space, "edge").points}
    assert edges["edge:port=max"]["port"] == 65535           # exclusiveMaximum 65536
    assert 1024 in {params["port"] for params in edges.values()}  # min (here the baseline)
    assert edges["edge:workers=just below max"]["workers"] == 60  # multipleOf 4
    assert 0 < edges["edge:ratio=just above min"]["ratio"] < 1e-300  # exclusiveMinimum 0
    assert edges["edge:name=longest"]["name"].__len__() == 12
    assert any(origin.startswith("edge:note=") and params["note"] is None
               for origin, params in edges.items())
    assert "edge:cert=absent" in edges  # optional properties may be left out


def test_dependent_required_becomes_a_constraint() -> None:
    space = space_from_json_schema(SERVICE)
    for point in generate(space, "random", count=300, seed=9).points:
        document = space.nest(point.params)
        if "cert" in document:
            assert "key" in document


def test_draft4_boolean_exclusive_bounds() -> None:
    schema = {"type": "object", "required": ["n"],
              "properties": {"n": {"type": "integer", "minimum": 0, "exclusiveMinimum": True,
                                   "maximum": 10, "exclusiveMaximum": True}}}
    space = space_from_json_schema(schema)
    values = {p.params["n"] for p in generate(space, "edge").points}
    assert min(values) == 1 and max(values) == 9


def test_non_object_root_is_one_value_parameter() -> None:
    space = space_from_json_schema({"type": "integer", "minimum": 3, "maximum": 7})
    assert space.names == ["value"]
    assert {p.params["value"] for p in generate(space, "random", count=20, seed=0).points} \
        <= set(range(3, 8))


@pytest.mark.parametrize(("schema", "place"), [
    ({"type": "object", "properties": {"a": {"not": {"type": "string"}}}}, "#/properties/a"),
    ({"type": "object", "properties": {"a": {"type": "array", "uniqueItems": True}}},
     "#/properties/a"),
    ({"type": "object", "properties": {"a": {"$ref": "#/$defs/missing"}}}, "#/properties/a"),
    ({"type": "object", "properties": {"a": {"type": "integer", "minimum": 5, "maximum": 1}}},
     "#/properties/a"),
    ({"type": "object", "properties": {"a": {"type": "strin"}}}, "#/properties/a"),
    ({"type": "object", "required": ["b"], "properties": {"a": {"type": "integer"}}}, "#"),
    ({"type": "object", "properties": {"a": {"type": "string", "pattern": "a{9}",
                                             "maxLength": 3}}}, "#/properties/a"),
])
def test_unsupported_or_impossible_schemas_are_refused_with_their_path(schema, place) -> None:
    with pytest.raises(SpaceError) as info:
        space_from_json_schema(schema, source="s.json")
    assert info.value.source == "s.json"
    assert info.value.place == place


_SIMPLE = st.one_of(
    st.builds(lambda lo, span: {"type": "integer", "minimum": lo, "maximum": lo + span},
              st.integers(-100, 100), st.integers(0, 50)),
    st.builds(lambda lo, span: {"type": "number", "minimum": lo, "maximum": lo + span},
              st.floats(-10, 10), st.floats(0, 10)),
    st.builds(lambda lo, span: {"type": "string", "minLength": lo, "maxLength": lo + span},
              st.integers(0, 4), st.integers(0, 6)),
    st.lists(st.one_of(st.integers(), st.text(max_size=4), st.none()), min_size=1, max_size=4,
             unique=True).map(lambda values: {"enum": values}),
    st.just({"type": "boolean"}),
    st.builds(lambda m: {"type": "integer", "minimum": 0, "maximum": 100, "multipleOf": m},
              st.integers(1, 30)),
)


@settings(max_examples=40, deadline=None)
@given(props=st.dictionaries(st.from_regex(r"[a-z]{1,6}", fullmatch=True), _SIMPLE,
                             min_size=1, max_size=5),
       required=st.data(), seed=st.integers(0, 2**16))
def test_generated_documents_validate_for_random_schemas(props, required, seed) -> None:
    names = sorted(props)
    req = required.draw(st.lists(st.sampled_from(names), unique=True))
    schema = {"type": "object", "properties": props, "required": req}
    space = space_from_json_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    for strategy in ("random", "edge", "pairwise"):
        for point in generate(space, strategy, count=30, seed=seed).points:
            document = space.nest(point.params)
            assert not list(validator.iter_errors(document)), (schema, document)
