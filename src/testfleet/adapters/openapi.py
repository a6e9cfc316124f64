"""HTTP scenarios from an OpenAPI 3 document (3.0 or 3.1): one scenario per operation.

Each (path, method) becomes one ``<slug>.scenario.yaml`` (the slug from ``operationId``, else
from method and path; repeated slugs get ``-2``, ``-3``...) holding one step, whose parameter
space comes from the document's schemas:

- path and query parameters (declared on the path item or the operation) become ``params``;
  the request's path and query hold ``{name}`` placeholders. Header and cookie parameters, and
  object-valued query parameters, are left out.
- an ``application/json`` request body becomes the ``json:`` template: object properties are
  followed down (dotted parameter names such as ``address.city``; a name already taken by a
  path or query parameter gets a ``body.`` prefix) and each leaf is one ``"{name}"``
  placeholder, which keeps the value's type. Every property is sent, optional or not, except
  ``readOnly`` ones. Arrays are ``list`` dimensions; a non-object body is one parameter
  ``body``. Objects nested deeper than ``MAX_DEPTH`` (6) are sent as ``{}``.
- schemas become dimension declarations as :mod:`testfleet.adapters.openapi_schemas`
  describes, with its documented bounds for unbounded integers, numbers, strings and arrays.
- expectations: ``status`` lists the documented codes (a range such as ``2XX`` expands to the
  registered codes of its class; ``default`` adds none, and with no codes at all any status
  below 400 passes); ``schema`` is the JSON Schema of the first documented 2xx
  ``application/json`` response (references inlined, 3.0 ``nullable``/boolean exclusive
  bounds rewritten). The schema is checked whatever the status, so when other listed
  responses document JSON bodies of their own it is ``anyOf`` of the 2xx schema and theirs,
  and it is left out when a listed response documents no JSON body (HEAD never has one).

Server URLs are not used: the base URL is the runner's. ``trace`` operations are skipped.
Every scenario is checked with :func:`scenario_from_dict` in its written (YAML) form; any
problem is an :class:`OpenApiError` naming the document and the operation's place.
"""

from __future__ import annotations

import re
from http import HTTPStatus
from pathlib import Path
from typing import Any

import yaml

from testfleet.adapters.http_scenarios import scenario_from_dict
from testfleet.adapters.openapi_refs import (
    OPERATIONS,
    OpenApiError,
    check_document,
    load_openapi,
    place_of,
)
from testfleet.adapters.openapi_schemas import (
    MAX_DEPTH,
    SchemaMapper,
    is_scalar,
    json_schema,
)
from testfleet.atomic import atomic_write_text
from testfleet.errors import TestfleetError

_JSON = "application/json"
_PLACEHOLDER_NAME = re.compile(r"[^A-Za-z0-9_.\-]")


def scenarios_from_openapi(doc: Any, *, source: str) -> list[tuple[str, dict[str, Any]]]:
    """``(file name, scenario dict)`` for every operation of ``doc``, in document order; each
    dict loads with :func:`scenario_from_dict`. OpenApiError naming ``source`` otherwise."""
    doc = check_document(doc, source=source)
    v30 = str(doc["openapi"]).startswith("3.0")
    out: list[tuple[str, dict[str, Any]]] = []
    used: set[str] = set()
    for path, item in doc["paths"].items():
        for method in [m for m in item if m in OPERATIONS and m != "trace"]:
            operation = _Operation(source, path, method, item, v30)
            data = operation.scenario()
            op_id = item[method].get("operationId")
            slug = _slug(op_id if isinstance(op_id, str) and op_id.strip() else
                         f"{method} {path}")
            name, n = slug, 2
            while name in used:
                name, n = f"{slug}-{n}", n + 1
            used.add(name)
            file = f"{name}.scenario.yaml"
            try:
                scenario_from_dict(yaml.safe_load(dump_scenario(data)), source=file)
            except TestfleetError as exc:
                at = f" (at {exc.place})" if exc.place else ""
                raise OpenApiError(f"the scenario made for {method.upper()} {path} does not "
                                   f"load: {exc.message}{at}", source=source,
                                   place=operation.place, expected=exc.expected) from None
            out.append((file, data))
    return out


def dump_scenario(data: dict[str, Any]) -> str:
    """A scenario dict as YAML (keys in order, shared sub-schemas written out, no aliases)."""
    return yaml.dump(data, Dumper=_Dumper, sort_keys=False, allow_unicode=True,
                     default_flow_style=False, width=100)


class _Dumper(yaml.SafeDumper):
    def ignore_aliases(self, data: Any) -> bool:
        return True


def write_scenarios(files: list[tuple[str, dict[str, Any]]], out: str | Path, *,
                    force: bool = False) -> list[tuple[Path, str]]:
    """Write each scenario as ``out/<file name>`` (atomically, and only once every file was
    checked); ``(path, "new" | "replaced" | "unchanged")`` each. A different existing file is
    refused unless ``force``."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OpenApiError("is not a directory", source=str(out),
                           expected="a directory for the scenario files")
    plan: list[tuple[Path, str, str]] = []
    for name, data in files:
        target, text, state = out / name, dump_scenario(data), "new"
        if target.is_dir():
            raise OpenApiError("is a directory", source=str(target), expected="a file path")
        if target.exists():
            try:
                old: str | None = target.read_text(encoding="utf-8")
            except (OSError, UnicodeDecodeError):
                old = None
            if old == text:
                state = "unchanged"
            elif not force:
                raise OpenApiError("exists with different content and was not overwritten",
                                   source=str(target),
                                   expected="--force to replace it, or another --out directory")
            else:
                state = "replaced"
        plan.append((target, text, state))
    for target, text, state in plan:
        if state != "unchanged":
            try:
                atomic_write_text(target, text)
            except OSError as exc:
                raise OpenApiError(f"cannot write: {exc}", source=str(target)) from None
    return [(target, state) for target, _, state in plan]


def _slug(text: str) -> str:
    text = re.sub(r"([a-z0-9])([A-Z])", r"\1-\2", text)
    slug = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-").lower()[:80].strip("-")
    return slug or "operation"


def _escape(text: str) -> str:
    return text.replace("{", "{{").replace("}", "}}")


class _Operation:
    """One operation turned into a scenario dict; ``params`` collects the dimensions."""

    def __init__(self, source: str, path: str, method: str, item: dict[str, Any],
                 v30: bool) -> None:
        self.source, self.path, self.method, self.v30 = source, path, method, v30
        self.item, self.op = item, item[method]
        self.place = place_of("paths", path, method)
        self.params: dict[str, Any] = {}
        self.schemas = SchemaMapper(source, v30)

    def fail(self, message: str, where: str = "", expected: str | None = None) -> OpenApiError:
        return OpenApiError(message, source=self.source, place=place_of(self.place, where),
                            expected=expected)

    def scenario(self) -> dict[str, Any]:
        parameters = self._parameters()
        request: dict[str, Any] = {"method": self.method.upper(), "path": self._path(parameters)}
        query = {}
        for (name, where), (param, place) in parameters.items():
            if where == "query":
                decl = self.schemas.dim(self._param_schema(param, place), place_of(place, "schema"), 0)
                if decl.get("type") != "object" and not isinstance(decl.get("value"), dict) \
                        and decl.get("of", {}).get("type") != "object":
                    query[name] = "{" + self._register(name, decl, "query") + "}"
        if query:
            request["query"] = query
        body = self._body()
        if body is not None:
            request["json"] = body
        step: dict[str, Any] = {"name": f"{self.method.upper()} {self.path}", "request": request}
        expect = self._expect()
        if expect:
            step["expect"] = expect
        op_id = self.op.get("operationId")
        data: dict[str, Any] = {"name": op_id if isinstance(op_id, str) and op_id.strip()
                                else f"{self.method.upper()} {self.path}"}
        about = self.op.get("summary") or self.op.get("description")
        if isinstance(about, str) and about.strip():
            data["description"] = about.strip()
        if self.params:
            data["params"] = self.params
        data["steps"] = [step]
        return data

    # -- parameters ------------------------------------------------------------------------
    def _parameters(self) -> dict[tuple[str, str], tuple[dict[str, Any], str]]:
        merged: dict[tuple[str, str], tuple[dict[str, Any], str]] = {}
        for base, raw in ((place_of("paths", self.path, "parameters"), self.item.get("parameters")),
                          (place_of(self.place, "parameters"), self.op.get("parameters"))):
            if raw is None:
                continue
            if not isinstance(raw, list):
                raise OpenApiError("parameters must be a list", source=self.source, place=base,
                                   expected="parameters: [{name: id, in: path, schema: {...}}]")
            for i, param in enumerate(raw):
                where = f"{base}[{i}]"
                if not isinstance(param, dict) or not isinstance(param.get("name"), str) \
                        or param.get("in") not in ("path", "query", "header", "cookie"):
                    raise OpenApiError("a parameter needs a name and in: path, query, header or "
                                       "cookie", source=self.source, place=where,
                                       expected="{name: id, in: path, schema: {type: integer}}")
                merged[(param["name"], param["in"])] = (param, where)
        return merged

    def _param_schema(self, param: dict[str, Any], place: str) -> Any:
        if "schema" in param:
            return param["schema"]
        content = param.get("content")
        if isinstance(content, dict) and content:
            media = next(iter(content.values()))
            if isinstance(media, dict):
                return media.get("schema", {})
        return {}

    def _path(self, parameters: dict[tuple[str, str], tuple[dict[str, Any], str]]) -> str:
        pieces, pos, names = [], 0, {}
        for match in re.finditer(r"\{([^{}]*)\}", self.path):
            pieces.append(_escape(self.path[pos:match.start()]))
            var, pos = match.group(1), match.end()
            if (var, "path") not in parameters:
                raise self.fail(f"path variable {{{var}}} has no path parameter", "parameters",
                                f"parameters: [{{name: {var}, in: path, schema: {{...}}}}]")
            if var not in names:
                param, place = parameters[(var, "path")]
                decl = self.schemas.dim(self._param_schema(param, place), place_of(place, "schema"), 0)
                if decl.get("type") in ("object", "list") or not is_scalar(decl):
                    raise OpenApiError(f"path parameter {var!r} must have a scalar schema",
                                       source=self.source, place=place_of(place, "schema"),
                                       expected="type: integer, number, string or boolean")
                names[var] = self._register(var, decl, "path")
            pieces.append("{" + names[var] + "}")
        pieces.append(_escape(self.path[pos:]))
        return "".join(pieces)

    def _register(self, preferred: str, decl: dict[str, Any], prefix: str) -> str:
        name = _PLACEHOLDER_NAME.sub("_", preferred)
        if not re.match(r"[A-Za-z_]", name):
            name = "_" + name
        if name in self.params:
            name = f"{prefix}.{name}"
        base, n = name, 2
        while name in self.params:
            name, n = f"{base}-{n}", n + 1
        self.params[name] = decl
        return name

    # -- request body ----------------------------------------------------------------------
    def _body(self) -> Any:
        body = self.op.get("requestBody")
        if body is None:
            return None
        if not isinstance(body, dict) or not isinstance(body.get("content"), dict):
            raise self.fail("a request body needs a content mapping", "requestBody",
                            "requestBody: {content: {application/json: {schema: {...}}}}")
        for key, media in body["content"].items():
            if isinstance(key, str) and key.split(";")[0].strip().lower() == _JSON:
                where = place_of("requestBody", "content", key)
                if not isinstance(media, dict):
                    raise self.fail("a media type must be a mapping", where, "{schema: {...}}")
                if "schema" not in media:
                    return {}
                return self._template(media["schema"], "", place_of(self.place, where, "schema"),
                                      0)
        return None  # no JSON body: the request is sent without one

    def _template(self, schema: Any, prefix: str, where: str, depth: int) -> Any:
        schema = self.schemas.flat(schema, where)
        if schema.get("type") == "object" or ("type" not in schema and "properties" in schema):
            if depth >= MAX_DEPTH:
                return {}
            props = schema.get("properties", {})
            if not isinstance(props, dict):
                raise OpenApiError("properties must be a mapping", source=self.source,
                                   place=place_of(where, "properties"), expected="{name: schema}")
            out = {}
            for key, sub in props.items():
                if isinstance(sub, dict) and sub.get("readOnly") is True:
                    continue
                name = f"{prefix}.{key}" if prefix else str(key)
                out[str(key)] = self._template(sub, name, place_of(where, "properties", key),
                                               depth + 1)
            return out
        decl = self.schemas.dim(schema, where, depth)
        return "{" + self._register(prefix or "body", decl, "body") + "}"

    # -- schemas -> dimension declarations -------------------------------------------------
    # -- expectations ----------------------------------------------------------------------
    def _expect(self) -> dict[str, Any]:
        responses = self.op.get("responses")
        if responses is None:
            return {}
        if not isinstance(responses, dict):
            raise self.fail("responses must be a mapping", "responses",
                            "responses: {'200': {description: ok}}")
        bodies: dict[int, Any] = {}
        keys = sorted(responses, key=lambda k: "X" in str(k).upper())  # codes before ranges
        for key in keys:
            code, where = str(key).strip().upper(), place_of("responses", key)
            if code == "DEFAULT" or code.startswith("X-"):
                continue
            if re.fullmatch(r"[1-5][0-9][0-9]", code):
                group = [int(code)]
            elif re.fullmatch(r"[1-5]XX", code):
                group = [s.value for s in HTTPStatus if s.value // 100 == int(code[0])]
            else:
                raise self.fail(f"response key {key!r} is not a status code", where,
                                "a status such as 200, a range such as 2XX, or default")
            schema = self._response_schema(responses[key], where)
            for status in group:
                bodies.setdefault(status, schema)
        expect: dict[str, Any] = {}
        if bodies:
            expect["status"] = sorted(bodies)
        ok = [bodies[c] for c in sorted(bodies) if 200 <= c < 300 and bodies[c] is not None]
        if ok and self.method != "head" and all(s is not None for s in bodies.values()):
            distinct: list[Any] = []
            for schema in [ok[0], *(bodies[c] for c in sorted(bodies))]:
                if schema not in distinct:
                    distinct.append(schema)
            expect["schema"] = distinct[0] if len(distinct) == 1 else {"anyOf": distinct}
        return expect

    def _response_schema(self, response: Any, where: str) -> Any:
        """The JSON Schema of a response's JSON body; None when it documents none."""
        if not isinstance(response, dict):
            raise self.fail("a response must be a mapping", where, "{description: ok}")
        content = response.get("content")
        if content is None:
            return None
        if not isinstance(content, dict):
            raise self.fail("content must be a mapping", place_of(where, "content"),
                            "content: {application/json: {schema: {...}}}")
        for key, media in content.items():
            if isinstance(key, str) and key.split(";")[0].strip().lower() == _JSON:
                schema = media.get("schema", {}) if isinstance(media, dict) else {}
                return json_schema(schema, self.v30)
        return None


__all__ = ["OpenApiError", "dump_scenario", "load_openapi", "scenarios_from_openapi",
           "write_scenarios"]
