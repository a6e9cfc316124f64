"""HTTP scenarios against the bundled inventory service, started for real on 127.0.0.1."""

from __future__ import annotations

import socket
import tempfile
import textwrap
from pathlib import Path

import httpx
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testfleet.adapters.http_scenarios import (
    Scenario,
    load_scenario,
    parse_template,
    render,
    run_scenario,
)
from testfleet.errors import SpaceError, UsageError
from testfleet.space.sampling import generate

SERVICE = Path(__file__).resolve().parents[2] / "examples" / "inventory" / "inventory_service.py"

CREATE_AND_FETCH = """
name: create and fetch an item
params:
  qty: {type: int, min: 1, max: 100}
  name: {type: string, min_len: 1, max_len: 12, charset: abcdefghij}
steps:
  - name: create
    request:
      method: POST
      path: /items
      json: {name: "{name}", quantity: "{qty}", price: 2.5}
      headers: {X-Trace: "t-{qty}"}
    expect: {status: [201], max_latency_ms: 5000, schema: {type: object, required: [id]},
             contains: "id"}
    extract: {item_id: "$.id"}
  - name: fetch
    request: {method: GET, path: "/items/{item_id}"}
    expect: {status: [200], regex: "\\"quantity\\":\\\\s*\\\\d+", contains: ["{name}"]}
    extract: {got_qty: "$.quantity", got_name: "$.name"}
"""


def write(tmp_path: Path, text: str, name: str = "case.scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    return path


def scenario(tmp_path: Path, text: str) -> Scenario:
    return load_scenario(write(tmp_path, text))


# -- running ----------------------------------------------------------------------------------
def test_create_then_fetch_passes_with_extraction_and_typed_placeholders(tmp_path, base_url):
    loaded = scenario(tmp_path, CREATE_AND_FETCH)
    assert [s.name for s in loaded.steps] == ["create", "fetch"]
    result = run_scenario(loaded, base_url)
    assert result.ok, result.message
    assert result.message == "passed"
    create, fetch = result.steps
    assert create.status == 201 and create.method == "POST"
    item_id = create.extracted["item_id"]
    assert isinstance(item_id, int)
    assert fetch.url == f"{base_url}/items/{item_id}"
    # "{qty}" went out as a JSON int (the service answers 422 to a string quantity)
    assert fetch.extracted["got_qty"] == result.params["qty"]
    assert isinstance(fetch.extracted["got_qty"], int)
    assert fetch.extracted["got_name"] == result.params["name"]
    assert result.params == loaded.params.baseline()
    assert all(s.latency_ms is not None and s.latency_ms > 0 for s in result.steps)


def test_params_from_the_space_are_templated_into_each_run(tmp_path, base_url):
    loaded = scenario(tmp_path, CREATE_AND_FETCH)
    points = generate(loaded.params, "random", count=3, seed=1).points
    assert len(points) == 3
    seen = set()
    for point in points:
        result = run_scenario(loaded, base_url, point.params)
        assert result.ok, result.message
        assert result.params == point.params
        assert result.steps[1].extracted["got_qty"] == point.params["qty"]
        assert result.steps[1].extracted["got_name"] == point.params["name"]
        seen.add((point.params["qty"], point.params["name"]))
    assert len(seen) == 3


def test_wrong_status_names_step_expected_and_actual(tmp_path, base_url):
    loaded = scenario(tmp_path, """
        steps:
          - name: make item
            request: {method: POST, path: /items, json: {name: x, quantity: 1, price: 1}}
            expect: {status: [200, 204]}
          - name: never runs
            request: {method: GET, path: /health}
    """)
    result = run_scenario(loaded, base_url)
    assert not result.ok
    assert len(result.steps) == 1  # stopped at the first failing step
    assert result.steps[0].status == 201
    assert "'make item'" in result.message
    assert "status 201" in result.message and "[200, 204]" in result.message


def test_error_status_fails_when_no_status_is_expected(tmp_path, base_url):
    result = run_scenario(scenario(tmp_path, """
        steps: [{request: {method: GET, path: /items/999999}}]
    """), base_url)
    assert not result.ok and "status 404" in result.message


def test_schema_failure_names_the_place_and_the_problem(tmp_path, base_url):
    loaded = scenario(tmp_path, """
        steps:
          - name: health
            request: {method: GET, path: /health}
            expect:
              status: [200]
              schema:
                type: object
                required: [status, version]
                properties: {status: {const: ok}}
    """)
    result = run_scenario(loaded, base_url)
    assert not result.ok
    assert "schema" in result.message and "'version' is a required property" in result.message


def test_max_latency_is_enforced(tmp_path, base_url):
    loaded = scenario(tmp_path, """
        steps:
          - request: {method: GET, path: /health}
            expect: {status: [200], max_latency_ms: 0.001}
    """)
    result = run_scenario(loaded, base_url)
    assert not result.ok
    assert "latency" in result.message and "0.001 ms" in result.message


@pytest.mark.parametrize(("expect", "ok", "fragment"), [
    ({"contains": "ok"}, True, None),
    ({"contains": ["status", "ok"]}, True, None),
    ({"contains": "nope"}, False, "does not contain 'nope'"),
    ({"regex": r'"status":\s*"ok"'}, True, None),
    ({"regex": r"\d{3,}"}, False, "does not match regex"),
])
def test_contains_and_regex(tmp_path, base_url, expect, ok, fragment):
    text = yaml.safe_dump({"steps": [{"request": {"method": "GET", "path": "/health"},
                                      "expect": {"status": [200], **expect}}]})
    result = run_scenario(scenario(tmp_path, text), base_url)
    assert result.ok is ok, result.message
    if fragment:
        assert fragment in result.message


def test_multi_step_order_conflict_and_query(tmp_path, base_url):
    loaded = scenario(tmp_path, """
        params:
          stock: {type: int, min: 1, max: 5, default: 3}
        steps:
          - name: create
            request: {method: POST, path: /items, json: {name: bolt, quantity: "{stock}", price: 1}}
            expect: {status: [201]}
            extract: {id: "$.id"}
          - name: over-order
            request: {method: POST, path: /orders, json: {item_id: "{id}", quantity: 1000}}
            expect: {status: [409], contains: insufficient_stock}
          - name: bad order
            request: {method: POST, path: /orders, body: "not json",
                      headers: {Content-Type: application/json}}
            expect: {status: [422]}
          - name: page
            request: {method: GET, path: /items, query: {limit: "{stock}", offset: 0}}
            expect: {status: [200], schema: {type: object, properties: {limit: {const: 3}}}}
    """)
    result = run_scenario(loaded, base_url)
    assert result.ok, result.message
    assert result.steps[3].url.endswith("/items")


def test_extraction_that_matches_nothing_fails_the_step(tmp_path, base_url):
    result = run_scenario(scenario(tmp_path, """
        steps:
          - name: h
            request: {method: GET, path: /health}
            extract: {token: "$.token"}
    """), base_url)
    assert not result.ok and "extract token" in result.message


def test_connection_refused_is_a_failed_step(tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    loaded = scenario(tmp_path, "steps: [{name: ping, request: {method: GET, path: /health}}]")
    result = run_scenario(loaded, f"http://127.0.0.1:{port}", timeout=2.0)
    assert not result.ok
    assert result.steps[0].status is None
    assert "'ping'" in result.message and "no response" in result.message
    assert "ConnectError" in result.message


def test_a_given_client_is_used_and_left_open(tmp_path, base_url):
    loaded = scenario(tmp_path, "steps: [{request: {method: GET, path: /health}}]")
    with httpx.Client(headers={"X-From": "test"}) as client:
        assert run_scenario(loaded, base_url, client=client).ok
        assert not client.is_closed


# -- templating ---------------------------------------------------------------------------------
def test_templating_rules():
    env = {"n": 42, "s": "a b/c", "flag": True}
    assert render("{n}", env, place="x") == 42
    assert render("n={n}", env, place="x") == "n=42"
    assert render("{{n}} {n}", env, place="x") == "{n} 42"
    assert render(r"\d{2,3}", env, place="x") == r"\d{2,3}"
    assert render({"a": ["{flag}", "v{flag}"]}, env, place="x") == {"a": [True, "vtrue"]}
    assert render("/items/{s}", env, place="x", path=True) == "/items/a%20b%2Fc"
    assert [p if isinstance(p, str) else p.name for p in parse_template("{a.b}-{c}")] == \
        ["a.b", "-", "c"]
    with pytest.raises(UsageError, match="placeholder {zz}"):
        render("{zz}", env, place="steps[0].request.path")


# -- bad files ----------------------------------------------------------------------------------
BAD = {
    "missing steps": ("name: x\n", "[steps]"),
    "empty steps": ("steps: []\n", "[steps]"),
    "bad method": ("steps: [{request: {method: FETCH, path: /}}]\n", "[steps[0].request.method]"),
    "status not a list": ("steps: [{request: {path: /}, expect: {status: 200}}]\n",
                          "[steps[0].expect.status]"),
    "status strings": (("steps: [{request: {path: /}}, {request: {path: /}, "
                       "expect: {status: ['200']}}]\n"), "[steps[1].expect.status]"),
    "unknown placeholder": (("steps:\n  - {name: a, request: {path: /items}, extract: {item_id: $.id}}\n"
                            "  - {name: b, request: {path: '/items/{itemid}'}}\n"),
                            "[steps[1].request.path]"),
    "placeholder from a later step": (
        ("steps:\n  - {name: a, request: {path: '/x/{late}'}}\n"
        "  - {name: b, request: {path: /}, extract: {late: $.id}}\n"), "[steps[0].request.path]"),
    "malformed yaml": ("steps: [{request: {path: /}\n", "[line"),
    "not a mapping": ("- a\n- b\n", "[(top level)]"),
    "unknown step key": ("steps: [{request: {path: /}, expct: {}}]\n", "[steps[0]]"),
    "path without slash": ("steps: [{request: {path: items}}]\n", "[steps[0].request.path]"),
    "bad schema": ("steps: [{request: {path: /}, expect: {schema: {type: 12}}}]\n",
                   "[steps[0].expect.schema]"),
    "bad regex": ("steps: [{request: {path: /}, expect: {regex: '('}}]\n",
                  "[steps[0].expect.regex]"),
    "bad jsonpath": ("steps: [{request: {path: /}, extract: {a: '$.[['}}]\n",
                     "[steps[0].extract.a]"),
    "bad latency": ("steps: [{request: {path: /}, expect: {max_latency_ms: -1}}]\n",
                    "[steps[0].expect.max_latency_ms]"),
    "json and body": ("steps: [{request: {path: /, json: {}, body: x}}]\n", "[steps[0].request]"),
    "bad dimension": ("params: {qty: {type: integer}}\nsteps: [{request: {path: /}}]\n",
                      "[params.qty]"),
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_scenario_files_name_file_and_place(tmp_path, case):
    text, place = BAD[case]
    path = write(tmp_path, text, "bad.scenario.yaml")
    with pytest.raises(UsageError) as info:
        load_scenario(path)
    message = str(info.value)
    assert str(path) in message
    assert place in message, message


def test_unknown_placeholder_message_names_step_and_field(tmp_path):
    path = write(tmp_path, BAD["unknown placeholder"][0])
    with pytest.raises(UsageError) as info:
        load_scenario(path)
    assert "step 'b'" in str(info.value) and "{itemid}" in str(info.value)
    assert "item_id" in str(info.value)  # what it could have been


def test_bad_dimension_is_a_space_error(tmp_path):
    with pytest.raises(SpaceError):
        load_scenario(write(tmp_path, BAD["bad dimension"][0]))


def test_missing_file_is_a_usage_error(tmp_path):
    with pytest.raises(UsageError, match="cannot read"):
        load_scenario(tmp_path / "absent.scenario.yaml")


# -- property -------------------------------------------------------------------------------------
KEYS = ["name", "params", "steps", "request", "expect", "extract", "method", "path", "query",
        "headers", "json", "body", "status", "schema", "max_latency_ms", "contains", "regex",
        "type", "min", "max", "values", "of", "fields", "default", "constraints", "required"]
SCALARS = (st.none() | st.booleans() | st.integers(-5, 700) | st.floats(allow_nan=False)
           | st.sampled_from(["GET", "POST", "/", "/items/{id}", "{qty}", "$.id", "int",
                              "string", "object", "[", "{", "x", "qty > 3"])
           | st.text(max_size=6))
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=3)
    | st.dictionaries(st.sampled_from(KEYS) | st.text(max_size=4) | st.integers(0, 3),
                      inner, max_size=4),
    max_leaves=25,
)
STEP = st.fixed_dictionaries(
    {"request": st.fixed_dictionaries({"method": st.sampled_from(["GET", "POST", "BREW", 3]),
                                       "path": st.sampled_from(["/", "/a/{x}", "b", "/{qty}"])},
                                      optional={"json": VALUES, "query": VALUES,
                                                "headers": VALUES, "body": VALUES})},
    optional={"expect": st.dictionaries(st.sampled_from(KEYS[12:17]), VALUES, max_size=3),
              "extract": st.dictionaries(st.sampled_from(["x", "id", "1", "qty"]),
                                         st.sampled_from(["$.id", "$[", 3, "$..a"]), max_size=2),
              "name": st.text(max_size=4) | VALUES})
DIMENSIONS = st.sampled_from([{"type": "int", "min": 1, "max": 5}, {"type": "string", "max_len": 3},
                              [1, 2], 5, {"type": "int"}, {"type": "float", "min": 2, "max": 1},
                              {"type": "string", "pattern": "("}]) | VALUES
DOCS = (VALUES
        | st.fixed_dictionaries({}, optional={
            "name": st.sampled_from(["n", " ", 3, None]),
            "steps": st.lists(STEP, min_size=1, max_size=3) | VALUES,
            "params": st.dictionaries(st.sampled_from(["qty", "x", "a.b", "1"]),
                                      DIMENSIONS, max_size=2),
            "constraints": st.lists(st.sampled_from(["qty > 3", "x <", "qty == 'a'"]),
                                    max_size=2)}))


@settings(max_examples=250, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(DOCS)
def test_load_scenario_loads_or_raises_a_usage_error(doc):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "fuzz.scenario.yaml"
        path.write_text(yaml.safe_dump(doc), encoding="utf-8")
        try:
            loaded = load_scenario(path)
        except UsageError as exc:
            assert str(path) in str(exc)
        else:
            assert loaded.steps
