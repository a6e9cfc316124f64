"""Inferred request schemas accept every request they were learned from, as tightly as useful."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from testfleet.generation.infer import (
    EndpointSchema,
    infer_endpoint_schemas,
    infer_schema,
    request_document,
)
from testfleet.generation.synthetic import synthetic_capture

CHECK = Draft202012Validator.FORMAT_CHECKER


def accepts(schema, value) -> bool:
    Draft202012Validator.check_schema(schema)
    return Draft202012Validator(schema, format_checker=CHECK).is_valid(value)


scalars = (st.none() | st.booleans() | st.integers(-10**12, 10**12)
           | st.floats(allow_nan=False, allow_infinity=False, width=64)
           | st.text(max_size=12)
           | st.sampled_from(["2024-06-01T12:00:00Z", "a@b.io", "https://x.org/p",
                              "123e4567-e89b-42d3-a456-426614174000", "42", "-7", "red"]))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=5), inner, max_size=4), max_leaves=12)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(json_values, min_size=1, max_size=8))
def test_inferred_schema_accepts_every_sample(samples):
    schema = infer_schema(samples)
    for sample in samples:
        assert accepts(schema, sample), (schema, sample)


def test_types_required_enums_formats_and_ranges():
    samples = [{"id": i, "price": 1.5 + i, "kind": ["a", "b"][i % 2], "at": f"2024-06-0{1 + i % 9}T10:00:00Z",
                "mail": f"u{i}@example.com", "ref": "123e4567-e89b-42d3-a456-42661417400" + str(i % 10),
                "note": None if i % 3 else "x", "tags": ["t"] * (i % 3), "opt": True} | ({} if i % 2 else {"extra": 1})
               for i in range(10)]
    schema = infer_schema(samples)
    props = schema["properties"]
    assert props["id"] == {"type": "integer", "minimum": 0, "maximum": 9}
    assert props["price"]["type"] == "number"
    assert props["kind"] == {"type": "string", "enum": ["a", "b"]}
    assert props["at"]["format"] == "date-time"
    assert props["mail"]["format"] == "email"
    assert props["ref"]["format"] == "uuid"
    assert props["note"] == {"anyOf": [{"type": "null"}, {"type": "string", "enum": ["x"]}]} \
        or props["note"]["anyOf"][0] == {"type": "null"}
    assert props["tags"]["items"]["type"] == "string" and props["tags"]["maxItems"] == 2
    assert "extra" not in schema["required"] and "id" in schema["required"]
    assert not accepts(schema, {**samples[0], "kind": "c"})
    assert not accepts(schema, {**samples[0], "id": 10})
    assert not accepts(schema, {k: v for k, v in samples[0].items() if k != "id"})


def test_endpoint_schema_covers_path_query_headers_body():
    capture = synthetic_capture(600, seed=3)
    schemas = infer_endpoint_schemas(capture)
    assert set(schemas) == {r.endpoint for r in capture}
    for request in capture:
        schema = schemas[request.endpoint]
        assert accepts(schema.json_schema(), request_document(request))
    listing = schemas["GET /items"]
    assert listing.query["properties"]["limit"]["items"]["enum"] == ["10", "100", "20", "50"]
    assert "offset" not in listing.query.get("required", [])
    assert schemas["GET /items/{id}"].path["properties"]["id"]["pattern"] == "^-?[0-9]+$"
    assert EndpointSchema.from_dict(listing.to_dict()) == listing
