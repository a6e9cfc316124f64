"""Validation against inferred and OpenAPI schemas; regeneration of what fails."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from testfleet.generation.records import CapturedRequest
from testfleet.generation.statistical import learn
from testfleet.generation.synthetic import synthetic_capture
from testfleet.generation.validate import generate_valid, schemas_from_openapi, validate

OPENAPI = Path(__file__).resolve().parents[2] / "examples" / "inventory" / "openapi.yaml"


@pytest.fixture(scope="module")
def model():
    return learn(synthetic_capture(1500, seed=21))


def item(body, item_id="7", method="PATCH"):
    return CapturedRequest(method, f"/items/{item_id}", "/items/{id}", {"id": item_id}, body=body,
                           body_kind="json", headers={"content-type": "application/json",
                                                      "accept": "application/json"})


def test_report_names_the_first_error_with_its_json_path(model):
    good = model.generate(50, seed=1, endpoints=["PATCH /items/{id}"])
    bad = item({"price": "cheap"})
    report = validate([*good, bad, CapturedRequest("GET", "/x", "/x")], model.schemas)
    assert report.total == 52 and report.valid == 50
    first, second = report.invalid
    assert (first.index, first.path) == (50, "$.body.price") and "'cheap'" in first.error
    assert second.error == "no schema for endpoint GET /x"
    assert report.validity_rate == pytest.approx(50 / 52)


def test_generate_valid_regenerates_then_drops_with_reasons(model, caplog):
    result = generate_valid(model, 2000, seed=3)
    assert result.validity_rate >= 0.99 and result.count == 2000 and not result.dropped
    # a stricter schema than the model learned: some fail, get regenerated, the rest dropped
    strict = dict(model.schemas)
    body = dict(strict["POST /items"].body)
    body["properties"] = {**body["properties"], "quantity": {"type": "integer", "maximum": 3}}
    strict["POST /items"] = type(strict["POST /items"])(**{**strict["POST /items"].__dict__, "body": body})
    with caplog.at_level(logging.WARNING, logger="testfleet.generation"):
        result = generate_valid(model, 2000, seed=3, schemas=strict, retries=2)
    assert result.validity_rate < 0.99
    assert result.regenerated > 0 and result.dropped
    assert result.count == 2000 - len(result.dropped)
    assert all(c.path == "$.body.quantity" for c in result.dropped)
    assert "left out after 2 retries" in caplog.text
    assert validate(result.requests, strict).validity_rate == 1.0
    again = generate_valid(model, 2000, seed=3, schemas=strict, retries=2)
    assert [r.to_dict() for r in again.requests] == [r.to_dict() for r in result.requests]


def test_openapi_schemas_match_captured_templates(model):
    schemas = schemas_from_openapi(OPENAPI, endpoints=list(model.endpoints))
    assert "PATCH /items/{id}" in schemas and schemas["PATCH /items/{id}"].coerce
    ok = validate([item({"price": 3.5}), item({"quantity": 2}, method="PATCH")], schemas)
    assert ok.validity_rate == 1.0
    report = validate([item({"price": -1}), item({"price": 2}, item_id="0"),
                       CapturedRequest("GET", "/items", "/items", query={"limit": ["9999"]})], schemas)
    assert [c.path for c in report.invalid] == ["$.body.price", "$.path.id", "$.query.limit[0]"]
    generated = generate_valid(model, 500, seed=2, schemas=schemas, endpoints=["PATCH /items/{id}",
                                                                               "GET /items"])
    assert generated.validity_rate == 1.0
