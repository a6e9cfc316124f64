"""A space from a JSON Schema (draft 4 to 2020-12 keywords that decide what is valid).

Mapping: ``integer``/``number`` -> Int/Float with minimum/maximum/exclusive* (both the draft-4
boolean and the draft-6 numeric forms) and multipleOf as the grid step; ``string`` -> String
with min/maxLength and pattern (a few ``format`` values get a pattern); ``enum``/``const`` ->
Choice; ``boolean``; ``null``; ``object`` -> nested fields (flattened to dotted names), fields
not in ``required`` become optional-absent; ``dependentRequired`` (and draft-4 array-form
``dependencies``) -> constraints; ``array`` -> ListOf with min/maxItems; ``anyOf``/``oneOf`` and
type lists -> Union; ``allOf`` -> its branches merged; local ``$ref`` (``#/...``) resolved.

Unbounded numbers get int32 bounds (integers) or +-1e6 (numbers), strings at most 16 characters
(64 with a pattern): ranges wide enough for boundary classes, small enough to be useful.
Keywords that would make a generated value invalid and that this mapping cannot honour
(``not``, ``if``/``then``/``else``, ``uniqueItems: true``, tuple ``items``) are refused with
an error naming the path, rather than silently producing invalid variants.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from testfleet.errors import SpaceError
from testfleet.space.composite import ListOf, Object, Optional, Union
from testfleet.space.dimensions import Bool, Choice, Dimension, Float, Int
from testfleet.space.space import Space
from testfleet.space.text import String

INT_BOUNDS = (-(2**31), 2**31 - 1)
FLOAT_BOUNDS = (-1e6, 1e6)
_FORMAT_PATTERNS = {
    "email": r"[a-z]{1,8}@[a-z]{1,8}\.(com|org|net)",
    "uuid": r"[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}",
    "ipv4": r"(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])(\.(25[0-5]|2[0-4][0-9]|1[0-9][0-9]|[1-9]?[0-9])){3}",
    "date": r"20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])",
    "date-time": r"20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|1[0-9]|2[0-8])T([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]Z",
    "hostname": r"[a-z][a-z0-9]{0,10}(\.[a-z][a-z0-9]{0,10}){0,2}",
}
_REFUSED = ("not", "if", "then", "else", "prefixItems", "contains")
_MAX_REF_DEPTH = 8


class _Converter:
    def __init__(self, root: Mapping[str, Any], source: str | None) -> None:
        self.root = root
        self.source = source
        self.constraints: list[str] = []

    def fail(self, message: str, path: str, expected: str) -> SpaceError:
        return SpaceError(message, source=self.source, place="#" + path, expected=expected)

    def resolve(self, schema: Any, path: str, depth: int = 0) -> Mapping[str, Any]:
        if schema is True or schema == {}:
            return {}
        if not isinstance(schema, Mapping):
            raise self.fail(f"schema is {schema!r}", path, "a JSON Schema object")
        if "$ref" not in schema:
            return schema
        ref = schema["$ref"]
        if depth > _MAX_REF_DEPTH:
            raise self.fail(f"$ref {ref!r} nests deeper than {_MAX_REF_DEPTH}", path,
                            "a schema that is not recursive")
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise self.fail(f"$ref {ref!r} is not local", path, "a local reference such as "
                            "#/$defs/name")
        node: Any = self.root
        for part in [p for p in ref[1:].split("/") if p]:
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, Mapping) or part not in node:
                raise self.fail(f"$ref {ref!r} points nowhere", path, "an existing definition")
            node = node[part]
        merged = {k: v for k, v in schema.items() if k != "$ref"} | dict(self.resolve(
            node, path, depth + 1))
        return merged

    def convert(self, schema: Any, path: str, name: str) -> Dimension:
        schema = self.resolve(schema, path)
        for keyword in _REFUSED:
            if keyword in schema:
                raise self.fail(f"keyword {keyword!r} is not supported for generation", path,
                                "a schema without " + ", ".join(_REFUSED))
        if "allOf" in schema:
            schema = self._merge_all_of(schema, path)
        default = schema.get("default")
        if "const" in schema:
            return Choice([schema["const"]])
        if "enum" in schema:
            if not isinstance(schema["enum"], list) or not schema["enum"]:
                raise self.fail("enum must be a non-empty list", path, "enum: [a, b]")
            return Choice(list(schema["enum"]), default=default if default in schema["enum"]
                          else None)
        for keyword in ("anyOf", "oneOf"):
            if keyword in schema:
                branches = schema[keyword]
                if not isinstance(branches, list) or not branches:
                    raise self.fail(f"{keyword} must be a non-empty list", path, "[{...}, ...]")
                base = {k: v for k, v in schema.items() if k != keyword}
                return Union([self.convert(dict(base) | dict(self.resolve(b, path)),
                                           f"{path}/{keyword}/{i}", name)
                              for i, b in enumerate(branches)])
        kind = schema.get("type")
        if isinstance(kind, list):
            if not kind:
                raise self.fail("type list is empty", path, "type: [string, null]")
            if len(kind) == 1:
                kind = kind[0]
            else:
                return Union([self.convert(dict(schema) | {"type": k}, path, name) for k in kind])
        if kind is None:
            kind = "object" if "properties" in schema else None
        builder = {"integer": self._integer, "number": self._number, "string": self._string,
                   "boolean": lambda s, p, n: Bool(default=s.get("default")),
                   "null": lambda s, p, n: Choice([None]), "object": self._object,
                   "array": self._array}.get(kind)
        if kind is None:
            return Choice([None, 0, "", True])  # any JSON value: one of each simple type
        if builder is None:
            raise self.fail(f"unknown type {kind!r}", path,
                            "integer, number, string, boolean, null, object or array")
        dim = builder(schema, path, name)
        if default is not None and dim.contains(default) and hasattr(dim, "default"):
            dim.default = default
        return dim

    def _merge_all_of(self, schema: Mapping[str, Any], path: str) -> dict[str, Any]:
        merged = {k: v for k, v in schema.items() if k != "allOf"}
        for i, branch in enumerate(schema["allOf"]):
            part = self.resolve(branch, f"{path}/allOf/{i}")
            for key, value in part.items():
                if key == "properties":
                    merged["properties"] = dict(merged.get("properties", {})) | dict(value)
                elif key == "required":
                    merged["required"] = list(merged.get("required", [])) + list(value)
                elif key in ("minimum", "minLength", "minItems", "exclusiveMinimum"):
                    merged[key] = max(merged.get(key, value), value)
                elif key in ("maximum", "maxLength", "maxItems", "exclusiveMaximum"):
                    merged[key] = min(merged.get(key, value), value)
                else:
                    merged[key] = value
        return merged

    def _bounds(self, schema: Mapping[str, Any], integer: bool) -> tuple[float, float]:
        lo, hi = INT_BOUNDS if integer else FLOAT_BOUNDS
        lo = schema.get("minimum", lo)
        hi = schema.get("maximum", hi)
        low_ex, high_ex = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
        step = 1 if integer else math.inf
        if low_ex is True:  # draft 4: a flag on minimum
            lo = lo + 1 if integer else math.nextafter(lo, step)
        elif isinstance(low_ex, (int, float)) and not isinstance(low_ex, bool):
            lo = max(lo, low_ex + 1 if integer else math.nextafter(low_ex, step))
        if high_ex is True:
            hi = hi - 1 if integer else math.nextafter(hi, -step)
        elif isinstance(high_ex, (int, float)) and not isinstance(high_ex, bool):
            hi = min(hi, high_ex - 1 if integer else math.nextafter(high_ex, -step))
        return lo, hi

    def _integer(self, schema: Mapping[str, Any], path: str, name: str) -> Dimension:
        lo, hi = self._bounds(schema, integer=True)
        lo, hi = math.ceil(lo), math.floor(hi)
        step = schema.get("multipleOf", 1)
        if not isinstance(step, int) or step <= 0:
            raise self.fail(f"multipleOf {step!r} for an integer", path, "a positive integer")
        lo = -(-lo // step) * step
        if lo > hi:
            raise self.fail(f"no integer satisfies {path or '#'}", path,
                            "minimum <= maximum with a multiple of multipleOf between")
        return Int(lo, hi, step)

    def _number(self, schema: Mapping[str, Any], path: str, name: str) -> Dimension:
        lo, hi = self._bounds(schema, integer=False)
        step = schema.get("multipleOf")
        if step is not None:
            if not isinstance(step, (int, float)) or step <= 0:
                raise self.fail(f"multipleOf {step!r}", path, "a positive number")
            lo = math.ceil(lo / step) * step
        if lo > hi:
            raise self.fail(f"no number satisfies {path or '#'}", path, "minimum <= maximum")
        return Float(lo, hi, step=step)

    def _string(self, schema: Mapping[str, Any], path: str, name: str) -> Dimension:
        pattern = schema.get("pattern") or _FORMAT_PATTERNS.get(schema.get("format", ""))
        lo = schema.get("minLength", 0)
        hi = schema.get("maxLength", max(lo, 64 if pattern else 16))
        try:
            return String(lo, hi, pattern=pattern)
        except SpaceError as exc:
            raise self.fail(exc.message, path, exc.expected or "a satisfiable string") from None

    def _object(self, schema: Mapping[str, Any], path: str, name: str) -> Dimension:
        properties = schema.get("properties", {})
        if not isinstance(properties, Mapping):
            raise self.fail("properties must be an object", path, "properties: {name: schema}")
        required = set(schema.get("required", []))
        missing = required - set(properties)
        if missing:
            raise self.fail(f"required names {sorted(missing)} without properties", path,
                            "a schema for every required property")
        fields: dict[str, Dimension] = {}
        for key, sub in properties.items():
            dim = self.convert(sub, f"{path}/properties/{key}", f"{name}.{key}" if name else key)
            fields[key] = dim if key in required or isinstance(dim, Object) else \
                Optional(dim, absent=True)
        dependent = dict(schema.get("dependentRequired", {}))
        dependent |= {k: v for k, v in schema.get("dependencies", {}).items() if isinstance(v, list)}
        for key, needs in dependent.items():
            prefix = f"{name}." if name else ""
            if key not in fields or any(n not in fields for n in needs):
                raise self.fail(f"dependentRequired names a property that is not declared: {key}",
                                path, "properties for every name it lists")
            if key in required:
                continue
            wanted = " and ".join(f"present(`{prefix}{n}`)" for n in needs) or "true"
            self.constraints.append(f"present(`{prefix}{key}`) -> {wanted}")
        if not fields:
            return Choice([{}])
        return Object(fields)

    def _array(self, schema: Mapping[str, Any], path: str, name: str) -> Dimension:
        if schema.get("uniqueItems"):
            raise self.fail("uniqueItems is not supported for generation", path,
                            "an array schema without uniqueItems")
        items = schema.get("items", {})
        if isinstance(items, list):
            raise self.fail("tuple-form items is not supported", path, "items: {schema}")
        lo = schema.get("minItems", 0)
        hi = schema.get("maxItems", lo + 4)
        item = self.convert(items, f"{path}/items", f"{name}[]")
        return ListOf(item, lo, hi)


def space_from_json_schema(schema: Mapping[str, Any], *, source: str | None = None) -> Space:
    """The space of documents a JSON Schema accepts. A non-object root becomes one parameter
    named ``value``."""
    converter = _Converter(schema, source)
    root = converter.convert(schema, "", "")
    dims = root.fields if isinstance(root, Object) else {"value": root}
    return Space(dims, converter.constraints, source=source)
