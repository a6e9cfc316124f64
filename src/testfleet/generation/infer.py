"""Request schemas inferred from captured traffic (JSON Schema 2020-12).

A request is seen as one JSON document (:func:`request_document`)::

    {"path": {"id": "42"}, "query": {"limit": ["10"]}, "headers": {"content-type": "..."},
     "body": {...} | "text" | null}

and :func:`infer_schema` turns the documents of one endpoint into a schema that accepts every one
of them: a type (or ``anyOf`` of types) per position, ``required`` = the properties present in
every sample, nested objects and arrays (``items`` learned from every element), ``enum`` for
low-cardinality strings, ``format`` (date-time, email, uuid, uri) when every string has it,
``pattern`` for strings that are all integers (query values and path ids), and the observed
ranges (``minimum``/``maximum``, ``minLength``/``maxLength``, ``minItems``/``maxItems``).
The statistical model (``statistical.py``) generates inside these bounds, so its realistic
and explore modes both produce valid requests.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass, field
from typing import Any

from testfleet.generation.records import CapturedRequest

__all__ = ["ENUM_MAX", "HEADERS_OF_INTEREST", "EndpointSchema", "detect_format",
           "group_by_endpoint", "infer_endpoint_schemas", "infer_schema", "is_enum", "json_type",
           "request_document", "shape_of"]

#: A string field with at most this many distinct values (each seen at least twice on
#: average) is an enum.
ENUM_MAX = 12
#: Headers a request schema (and the statistical model) keeps; the rest vary per client.
HEADERS_OF_INTEREST = ("content-type", "accept")
TYPE_ORDER = ("null", "boolean", "integer", "number", "string", "array", "object")

INT_STRING = re.compile(r"-?(0|[1-9][0-9]{0,17})\Z")
_DATE_TIME = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})\Z")
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]{1,63}(\.[A-Za-z0-9-]{1,63})+\Z")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\Z")
_URI = re.compile(r"https?://[A-Za-z0-9.-]+(:\d{1,5})?(/[A-Za-z0-9._~:/?#@!$&'()*+,;=%-]*)?\Z")


def json_type(value: Any) -> str:
    """The JSON Schema type name of a parsed JSON value (bool before int; floats are numbers)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, dict):
        return "object"
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def shape_of(text: str) -> str:
    """The character-class shape of a string: upper-case letters -> ``A``, other letters ->
    ``a``, digits -> ``9``, everything else kept (``Box-12`` -> ``Aaa-99``)."""
    out = []
    for ch in text:
        if ch.isdigit() and ch.isascii():
            out.append("9")
        elif ch.isalpha():
            out.append("A" if ch.isupper() else "a")
        else:
            out.append(ch)
    return "".join(out)


def _is_date_time(text: str) -> bool:
    if not _DATE_TIME.match(text):
        return False
    try:
        dt.datetime.fromisoformat(text.replace("z", "Z").replace("t", "T"))
    except ValueError:
        return False
    return True


_FORMATS = (("date-time", _is_date_time), ("uuid", lambda s: bool(_UUID.match(s))),
            ("email", lambda s: bool(_EMAIL.match(s))), ("uri", lambda s: bool(_URI.match(s))))


def detect_format(values: list[str]) -> str | None:
    """The format every string in ``values`` has (date-time, uuid, email, uri), or None."""
    if not values:
        return None
    for name, check in _FORMATS:
        if all(check(v) for v in values):
            return name
    return None


def is_enum(values: list[Any]) -> bool:
    """Whether these (string or number) values look like a closed set: few distinct values,
    each seen about twice or more."""
    distinct = len(set(values))
    return 0 < distinct <= ENUM_MAX and len(values) >= 2 * distinct


def infer_schema(samples: list[Any]) -> dict[str, Any]:
    """A JSON Schema accepting every sample (parsed JSON values), as tight as they allow."""
    by_type: dict[str, list[Any]] = {}
    for value in samples:
        by_type.setdefault(json_type(value), []).append(value)
    if "integer" in by_type and "number" in by_type:  # integers are numbers too
        by_type["number"] = by_type.pop("integer") + by_type["number"]
    branches = [_schema_for(t, by_type[t]) for t in TYPE_ORDER if t in by_type]
    if not branches:
        return {}
    if len(branches) == 1:
        return branches[0]
    simple = [b for b in branches if set(b) == {"type"}]
    if len(simple) == len(branches):
        return {"type": [b["type"] for b in branches]}
    return {"anyOf": branches}


def _schema_for(kind: str, values: list[Any]) -> dict[str, Any]:
    if kind in ("null", "boolean"):
        return {"type": kind}
    if kind in ("integer", "number"):
        return {"type": kind, "minimum": min(values), "maximum": max(values)}
    if kind == "string":
        return _string_schema(values)
    if kind == "array":
        items = [item for value in values for item in value]
        schema: dict[str, Any] = {"type": "array", "minItems": min(len(v) for v in values),
                                  "maxItems": max(len(v) for v in values)}
        if items:
            schema["items"] = infer_schema(items)
        return schema
    keys: dict[str, list[Any]] = {}
    for value in values:
        for key, sub in value.items():
            keys.setdefault(key, []).append(sub)
    schema = {"type": "object",
              "properties": {key: infer_schema(subs) for key, subs in keys.items()}}
    required = [key for key, subs in keys.items() if len(subs) == len(values)]
    if required:
        schema["required"] = required
    return schema


def _string_schema(values: list[str]) -> dict[str, Any]:
    if is_enum(values):
        return {"type": "string", "enum": sorted(set(values))}
    fmt = detect_format(values)
    if fmt:
        return {"type": "string", "format": fmt}
    schema: dict[str, Any] = {"type": "string"}
    if all(INT_STRING.match(v) for v in values):
        schema["pattern"] = "^-?[0-9]+$"
    schema["minLength"] = min(len(v) for v in values)
    schema["maxLength"] = max(len(v) for v in values)
    return schema


def request_document(request: CapturedRequest) -> dict[str, Any]:
    """The JSON document a request schema describes (see the module docstring)."""
    headers = {k: v for k, v in request.headers.items() if k in HEADERS_OF_INTEREST}
    return {"path": dict(request.path_params), "query": {k: list(v) for k, v in request.query.items()},
            "headers": headers, "body": request.body}


@dataclass
class EndpointSchema:
    """The request schema of one endpoint (``METHOD template``) and where it came from."""

    endpoint: str
    path: dict[str, Any] = field(default_factory=lambda: {"type": "object"})
    query: dict[str, Any] = field(default_factory=lambda: {"type": "object"})
    headers: dict[str, Any] = field(default_factory=lambda: {"type": "object"})
    body: dict[str, Any] = field(default_factory=dict)
    source: str = "inferred"  # or the OpenAPI document's path
    samples: int = 0
    coerce: bool = False  # OpenAPI: path/query strings converted to the declared type first

    def json_schema(self) -> dict[str, Any]:
        """One schema for :func:`request_document` of a request of this endpoint."""
        return {"$schema": "https://json-schema.org/draft/2020-12/schema", "type": "object",
                "properties": {"path": self.path, "query": self.query, "headers": self.headers,
                               "body": self.body}}

    def to_dict(self) -> dict[str, Any]:
        return {"endpoint": self.endpoint, "path": self.path, "query": self.query,
                "headers": self.headers, "body": self.body, "source": self.source,
                "samples": self.samples, "coerce": self.coerce}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EndpointSchema:
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})

    @classmethod
    def infer(cls, requests: list[CapturedRequest]) -> EndpointSchema:
        """The schema of one endpoint's requests (all with the same :attr:`endpoint`)."""
        if not requests:
            raise ValueError("no requests to infer a schema from")
        docs = [request_document(r) for r in requests]
        whole = infer_schema(docs)
        props = whole.get("properties", {})
        return cls(endpoint=requests[0].endpoint, path=props["path"], query=props["query"],
                   headers=props["headers"], body=props["body"], samples=len(requests))


def group_by_endpoint(requests: list[CapturedRequest]) -> dict[str, list[CapturedRequest]]:
    """Requests grouped by endpoint, endpoints in order of first appearance."""
    groups: dict[str, list[CapturedRequest]] = {}
    for request in requests:
        groups.setdefault(request.endpoint, []).append(request)
    return groups


def infer_endpoint_schemas(requests: list[CapturedRequest], *, min_samples: int = 1
                           ) -> dict[str, EndpointSchema]:
    """One :class:`EndpointSchema` per endpoint with at least ``min_samples`` requests."""
    return {ep: EndpointSchema.infer(reqs) for ep, reqs in group_by_endpoint(requests).items()
            if len(reqs) >= min_samples}
