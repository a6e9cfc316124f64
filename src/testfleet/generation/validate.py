"""Checking requests against request schemas, and generating only valid ones.

:func:`validate` checks each request's document (:func:`infer.request_document`) against the
schema of its endpoint (JSON Schema 2020-12, formats checked) and reports, per request, valid
or the first error with its JSON path (``$.body.price``). Schemas are the inferred ones
(``model.schemas``) or come from a user's OpenAPI 3 document (:func:`schemas_from_openapi`):
operations are matched to captured endpoints by template (``/items/{itemId}`` matches
``/items/{id}``: placeholders are renamed by position), path and query strings are converted to
the declared types before the check, and an optional request body may be absent.

:func:`generate_valid` generates, validates, regenerates the invalid ones (each retry with its
own derived seed) up to ``retries`` times and leaves out, with the reason logged, those still
invalid; its report gives the validity rate of the first draw and the final count.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import best_match

from testfleet.adapters.openapi_refs import OPERATIONS, check_document, load_openapi
from testfleet.adapters.openapi_schemas import json_schema
from testfleet.generation.infer import EndpointSchema, request_document
from testfleet.generation.records import CapturedRequest
from testfleet.generation.statistical import GenerationError, StatisticalModel

__all__ = ["RequestCheck", "RequestChecker", "ValidatedRequests", "ValidationReport", "generate_valid",
           "schemas_from_openapi", "validate"]

log = logging.getLogger("testfleet.generation")
_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_JSON = "application/json"


@dataclass
class RequestCheck:
    index: int
    endpoint: str
    valid: bool
    error: str | None = None
    path: str | None = None  # JSON path of the first error: $.body.price


@dataclass
class ValidationReport:
    checks: list[RequestCheck] = field(default_factory=list)

    @property
    def total(self) -> int:
        return len(self.checks)

    @property
    def valid(self) -> int:
        return sum(c.valid for c in self.checks)

    @property
    def validity_rate(self) -> float:
        return self.valid / self.total if self.checks else 1.0

    @property
    def invalid(self) -> list[RequestCheck]:
        return [c for c in self.checks if not c.valid]

    def to_dict(self) -> dict[str, Any]:
        return {"total": self.total, "valid": self.valid, "validity_rate": self.validity_rate,
                "invalid": [c.__dict__ for c in self.invalid]}


class RequestChecker:
    """Checks requests against per-endpoint schemas (compiled once). A schema given as a bare
    dict is the endpoint's body schema; one with a ``body`` key is a serialised EndpointSchema."""

    def __init__(self, schemas: Mapping[str, EndpointSchema | dict[str, Any]]) -> None:
        self.schemas: dict[str, EndpointSchema] = {}
        self.validators: dict[str, Draft202012Validator] = {}
        for ep, schema in schemas.items():
            if isinstance(schema, dict):
                schema = EndpointSchema.from_dict({"endpoint": ep, **schema}) if "body" in schema \
                    else EndpointSchema(ep, body=schema)
            self.schemas[ep] = schema
            self.validators[ep] = Draft202012Validator(
                schema.json_schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)

    def check(self, index: int, request: CapturedRequest) -> RequestCheck:
        ep = request.endpoint
        if ep not in self.validators:
            return RequestCheck(index, ep, False, f"no schema for endpoint {ep}", "$")
        schema = self.schemas[ep]
        doc = request_document(request)
        if schema.coerce:
            doc = _coerce(doc, schema)
        error = best_match(self.validators[ep].iter_errors(doc))
        if error is None:
            return RequestCheck(index, ep, True)
        return RequestCheck(index, ep, False, error.message, error.json_path)


def validate(requests: list[CapturedRequest], schemas: Mapping[str, EndpointSchema | dict[str, Any]]
             ) -> ValidationReport:
    """Each request checked against its endpoint's schema (``{endpoint: EndpointSchema}``, or
    ``{endpoint: body JSON Schema}``)."""
    checker = RequestChecker(schemas)
    return ValidationReport([checker.check(i, r) for i, r in enumerate(requests)])


@dataclass
class ValidatedRequests:
    """What :func:`generate_valid` returns: the requests kept, the first draw's validity and what
    was regenerated or left out. (The language-model generators answer with
    :class:`testfleet.generation.llm.GenerationResult`, which counts lines drawn and parsed.)"""

    requests: list[CapturedRequest]
    first_pass: ValidationReport  # the validity of the first draw, before regeneration
    regenerated: int  # requests replaced by a valid regeneration
    dropped: list[RequestCheck]  # still invalid after every retry: left out

    @property
    def validity_rate(self) -> float:
        return self.first_pass.validity_rate

    @property
    def count(self) -> int:
        return len(self.requests)

    def to_dict(self) -> dict[str, Any]:
        return {"requested": self.first_pass.total, "count": self.count,
                "validity_rate": self.validity_rate, "regenerated": self.regenerated,
                "dropped": [c.__dict__ for c in self.dropped]}


def generate_valid(model: StatisticalModel, n: int, seed: int, *,
                   schemas: Mapping[str, EndpointSchema | dict[str, Any]] | None = None,
                   retries: int = 3, **options: Any) -> ValidatedRequests:
    """``model.generate(n, seed, **options)`` with every request validated; invalid ones are
    regenerated (same endpoint) up to ``retries`` times, then left out and logged."""
    if retries < 0:
        raise GenerationError(f"retries is {retries}", expected="a count >= 0")
    checker = RequestChecker(model.schemas if schemas is None else schemas)
    requests: list[CapturedRequest | None] = list(model.generate(n, seed, **options))
    first = ValidationReport([checker.check(i, r) for i, r in enumerate(requests)])  # type: ignore[arg-type]
    failing = {c.index: c for c in first.invalid}
    regenerated = 0
    gen_options = {k: v for k, v in options.items() if k in ("mode", "weights")}
    for attempt in range(1, retries + 1):
        if not failing:
            break
        by_endpoint: dict[str, list[int]] = {}
        for index, check in sorted(failing.items()):
            by_endpoint.setdefault(check.endpoint, []).append(index)
        for ep, indexes in sorted(by_endpoint.items()):
            if ep not in model.endpoints:
                continue  # a schema's endpoint the model cannot generate: retrying cannot help
            fresh = model.generate_endpoint(ep, len(indexes), seed * 1000 + attempt, **gen_options)
            for index, request in zip(indexes, fresh):
                check = checker.check(index, request)
                if check.valid:
                    requests[index] = request
                    regenerated += 1
                    del failing[index]
                else:
                    failing[index] = check
    for index, check in sorted(failing.items()):
        log.warning("generated request %d (%s) left out after %d retries: %s at %s", index,
                    check.endpoint, retries, check.error, check.path)
        requests[index] = None
    kept = [r for r in requests if r is not None]
    return ValidatedRequests(kept, first, regenerated, sorted(failing.values(), key=lambda c: c.index))


# -- OpenAPI -------------------------------------------------------------------------------------
def _shape(template: str) -> str:
    return _PLACEHOLDER.sub("{}", template.rstrip("/") or "/")


def schemas_from_openapi(document: str | Path | dict[str, Any], *, endpoints: list[str] | None = None,
                         source: str | None = None) -> dict[str, EndpointSchema]:
    """Request schemas of an OpenAPI 3 document (a path or a parsed document), one per
    operation, keyed by ``METHOD template``; with ``endpoints`` (captured ``METHOD template``
    names), operations are matched to them by template and keyed by the captured name, path
    placeholders renamed by position."""
    if isinstance(document, (str, Path)):
        source = source or str(document)
        doc = load_openapi(document)
    else:
        source = source or "openapi"
        doc = check_document(document, source=source)
    v30 = str(doc.get("openapi", "")).startswith("3.0")
    captured = {}
    for ep in endpoints or []:
        method, _, template = ep.partition(" ")
        captured[(method.upper(), _shape(template))] = (ep, _PLACEHOLDER.findall(template))
    out: dict[str, EndpointSchema] = {}
    for path, item in doc["paths"].items():
        for method in OPERATIONS:
            if method not in item:
                continue
            names = _PLACEHOLDER.findall(path)
            key, rename = f"{method.upper()} {path}", {}
            match = captured.get((method.upper(), _shape(path)))
            if match is not None:
                key = match[0]
                rename = dict(zip(names, match[1]))
            out[key] = _operation_schema(key, item, item[method], rename, v30, source)
    return out


def _operation_schema(endpoint: str, item: dict[str, Any], op: dict[str, Any], rename: dict[str, str],
                      v30: bool, source: str) -> EndpointSchema:
    params: dict[tuple[str, str], dict[str, Any]] = {}
    for raw in (item.get("parameters") or [], op.get("parameters") or []):
        for param in raw:
            if isinstance(param, dict) and "name" in param and "in" in param:
                params[(param["name"], param["in"])] = param
    groups: dict[str, dict[str, Any]] = {"path": {"type": "object", "properties": {}, "required": []},
                                         "query": {"type": "object", "properties": {}, "required": []}}
    for (name, where), param in params.items():
        if where not in groups:
            continue
        schema = json_schema(param.get("schema", {}), v30)
        target = groups[where]
        if where == "path":
            name = rename.get(name, name)
            target["properties"][name] = schema
            target["required"].append(name)
        else:
            target["properties"][name] = {"type": "array", "items": schema}
            if param.get("required") is True:
                target["required"].append(name)
    for group in groups.values():
        if not group["required"]:
            del group["required"]
    body: dict[str, Any] = {"type": "null"}
    request_body = op.get("requestBody")
    if isinstance(request_body, dict):
        for media_type, media in (request_body.get("content") or {}).items():
            if str(media_type).split(";")[0].strip().lower() == _JSON and isinstance(media, dict):
                schema = json_schema(media.get("schema", {}), v30)
                body = schema if request_body.get("required") is True else \
                    {"anyOf": [{"type": "null"}, schema]}
                break
        else:
            body = {}
    return EndpointSchema(endpoint, path=groups["path"], query=groups["query"], body=body,
                          source=source, coerce=True)


def _coerce(doc: dict[str, Any], schema: EndpointSchema) -> dict[str, Any]:
    """Path and query strings converted to the type their OpenAPI schema declares."""
    out = dict(doc)
    path_props = schema.path.get("properties", {})
    out["path"] = {k: _convert(v, path_props.get(k, {})) for k, v in doc["path"].items()}
    query_props = schema.query.get("properties", {})
    out["query"] = {k: [_convert(x, query_props.get(k, {}).get("items", {})) for x in v]
                    for k, v in doc["query"].items()}
    return out


def _convert(value: Any, schema: dict[str, Any]) -> Any:
    if not isinstance(value, str):
        return value
    types = schema.get("type")
    types = [types] if isinstance(types, str) else list(types or [])
    try:
        if "integer" in types and re.fullmatch(r"-?[0-9]+", value):
            return int(value)
        if "number" in types:
            return float(value) if not re.fullmatch(r"-?[0-9]+", value) else int(value)
        if "boolean" in types and value in ("true", "false"):
            return value == "true"
    except ValueError:
        return value
    return value
