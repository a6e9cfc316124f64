"""The one-line text form of a request: it round-trips, and model garbage reads as ``None``."""

from __future__ import annotations

import math
import re
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from testfleet.generation.records import CapturedRequest
from testfleet.generation.serialize import candidate_lines, from_text, to_text

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_chars = st.characters(exclude_categories=("Cs",))
_text = st.text(_chars, max_size=12)
_literal = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="{}"), max_size=8)
_name = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="{}"),
                min_size=1, max_size=6)
_json = st.recursive(
    st.none() | st.booleans() | st.integers(-10**12, 10**12)
    | st.floats(allow_nan=False, allow_infinity=False) | _text,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(_text, inner, max_size=4),
    max_leaves=12)


@st.composite
def requests(draw: st.DrawFn) -> CapturedRequest:
    method = draw(st.sampled_from(["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"]))
    names = draw(st.lists(_name, max_size=3, unique=True))
    params = {name: draw(_text) for name in names if draw(st.booleans())}
    template = "/" + draw(_literal)
    for name in names:
        template += "{" + name + "}" + draw(_literal)
    path = template
    for name, value in params.items():
        path = path.replace("{" + name + "}", value)
    query = draw(st.dictionaries(_text, st.lists(_text, min_size=1, max_size=3), max_size=3))
    kind = draw(st.sampled_from(["none", "json", "text", "form"]))
    body: Any = {
        "none": st.none(), "json": _json, "text": _text,
        "form": st.dictionaries(_text, _text | st.lists(_text, min_size=1, max_size=3), max_size=3),
    }[kind]
    return CapturedRequest(method=method, path=path, template=template, path_params=params,
                           query=query, body=draw(body), body_kind=kind)


@settings(max_examples=400, deadline=None)
@given(requests())
def test_every_request_round_trips_through_one_line(req: CapturedRequest) -> None:
    line = to_text(req)
    assert line.splitlines() == [line]  # one line, whatever the values hold
    back = from_text(line)
    assert back is not None, line
    assert (back.method, back.template, back.path_params, back.query, back.body_kind) == (
        req.method, req.template, req.path_params, req.query, req.body_kind)
    assert back.body == req.body or (isinstance(req.body, float) and math.isclose(back.body, req.body))
    if set(req.path_params) == set(_PLACEHOLDER.findall(req.template)):
        assert back.path == req.path  # the path as sent is rebuilt from template and params


@settings(max_examples=400, deadline=None)
@given(st.text(_chars, max_size=80))
def test_arbitrary_text_never_raises(line: str) -> None:
    result = from_text(line)
    assert result is None or isinstance(result, CapturedRequest)


def test_the_documented_example_reads_as_expected() -> None:
    line = 'POST /items {"name":"bolt","quantity":3,"price":0.5} ?limit=10'
    req = from_text(line, source="generated:llm")
    assert req is not None
    assert (req.method, req.path, req.template, req.body_kind) == ("POST", "/items", "/items", "json")
    assert req.body == {"name": "bolt", "quantity": 3, "price": 0.5}
    assert req.query == {"limit": ["10"]}
    assert req.source == "generated:llm"
    assert to_text(req) == line


def test_path_parameters_are_written_in_place() -> None:
    req = CapturedRequest("PATCH", "/items/42", "/items/{id}", {"id": "42"},
                          body={"price": 1.25}, body_kind="json")
    assert to_text(req) == 'PATCH /items/{id=42} {"price":1.25}'
    back = from_text("patch /items/{id=42} {\"price\":1.25}")
    assert back is not None and back.method == "PATCH" and back.path == "/items/42"
    assert back.path_params == {"id": "42"}


def test_bodies_of_every_kind_and_headers_left_out() -> None:
    cases = [
        (CapturedRequest("POST", "/n", "/n", body="a b\nc", body_kind="text",
                         headers={"content-type": "text/plain"}), 'POST /n text:"a b\\nc"'),
        (CapturedRequest("POST", "/f", "/f", body={"u": "ann", "t": ["a", "b"]}, body_kind="form"),
         'POST /f form:{"u":"ann","t":["a","b"]}'),
        (CapturedRequest("PUT", "/c", "/c", body=None, body_kind="json", query={"dry": ["1"]}),
         "PUT /c json:null ?dry=1"),
        (CapturedRequest("GET", "/s", "/s", query={"tag": ["a", "b"], "q": ["x y"]}),
         "GET /s ?tag=a&tag=b&q=x%20y"),
    ]
    for req, line in cases:
        assert to_text(req) == line
        back = from_text(line)
        assert back is not None and (back.body, back.body_kind, back.query, back.headers) == (
            req.body, req.body_kind, req.query, {})


def test_model_garbage_gives_none() -> None:
    for line in ["", "   ", "GET", "hello world", "GET items", "GET /x {\"a\":", "GET /x {\"a\":1}}",
                 "GET /x text:3", "GET /x form:[1]", "GET /a}b", "GET /x ?a=1 ?b=2", "G3T /x",
                 "GET /x {} {}", "GET /x nonsense", "GET /x\nPOST /y"]:
        assert from_text(line) is None, line


def test_candidate_lines_strip_markdown_but_keep_garbage() -> None:
    answer = "Here you are:\n```\n1. GET /a\n- POST /b {}\n\n`PUT /c`\n```\n"
    assert list(candidate_lines(answer)) == ["Here you are:", "GET /a", "POST /b {}", "PUT /c"]
