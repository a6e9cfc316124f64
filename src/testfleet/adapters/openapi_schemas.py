"""OpenAPI schemas as dimension declarations (the ``params:`` form of a scenario file).

Mapping: ``integer``/``number`` -> ``int``/``float`` with minimum/maximum (the 3.0 boolean and
the 3.1 numeric exclusive forms) and multipleOf as the step; ``enum``/``const`` -> ``choice``;
``string`` -> ``string`` with min/maxLength and pattern (taken as a full match; a few
``format`` values get a pattern); ``boolean`` -> ``bool``; ``array`` -> ``list``; ``object``
(inside a list) -> ``object``. ``allOf`` is merged, ``anyOf``/``oneOf`` take their first
branch, a type list its first non-null type (null is never generated), no type means any
value: a string. Schema defaults become dimension defaults when they fit.

Unbounded schemas get these bounds: integers -1000..1000 (minimum..minimum+1000 with only a
minimum, maximum-1000..maximum with only a maximum; numbers likewise, as floats); strings
0..32 characters (0..64 with a pattern or format; never more than 1000); arrays
minItems..minItems+3 items (never more than 20). Objects and arrays nested deeper than
:data:`MAX_DEPTH` are sent empty.
"""

from __future__ import annotations

import math
from typing import Any, TypeGuard

from testfleet.adapters.openapi_refs import OpenApiError, place_of
from testfleet.space.jsonschema import _FORMAT_PATTERNS

INT_SPAN = 1000
STRING_MAX, PATTERN_MAX, STRING_CAP = 32, 64, 1000
LIST_EXTRA, LIST_CAP = 3, 20
MAX_DEPTH = 6


class SchemaMapper:
    """Declarations for the schemas of one document; errors name ``source`` and the place."""

    def __init__(self, source: str, v30: bool) -> None:
        self.source, self.v30 = source, v30

    def flat(self, schema: Any, where: str) -> dict[str, Any]:
        if schema is True or schema is None:
            return {}
        if not isinstance(schema, dict):
            raise OpenApiError(f"a schema must be a mapping, not {schema!r}", source=self.source,
                               place=where, expected="{type: string}")
        schema = dict(schema)
        if "allOf" in schema:
            parts = schema.pop("allOf")
            if not isinstance(parts, list):
                raise OpenApiError("allOf must be a list", source=self.source, place=where,
                                   expected="allOf: [{...}, {...}]")
            for i, part in enumerate(parts):
                part = self.flat(part, place_of(where, f"allOf[{i}]"))
                props = {**mapping(schema.get("properties")), **mapping(part.get("properties"))}
                schema.update(part)
                if props:
                    schema["properties"] = props
        for key in ("oneOf", "anyOf"):
            if key in schema:
                branches = schema.pop(key)
                if not isinstance(branches, list) or not branches:
                    raise OpenApiError(f"{key} must be a non-empty list", source=self.source,
                                       place=where, expected=f"{key}: [{{...}}, {{...}}]")
                schema.update(self.flat(branches[0], place_of(where, f"{key}[0]")))
        kind = schema.get("type")
        if isinstance(kind, list):
            kinds = [k for k in kind if k != "null"]
            schema["type"] = kinds[0] if kinds else "null"
        return schema

    def dim(self, schema: Any, where: str, depth: int) -> dict[str, Any]:
        schema = self.flat(schema, where)
        if "const" in schema:
            return {"type": "fixed", "value": schema["const"]}
        if "enum" in schema:
            values = schema["enum"]
            if not isinstance(values, list) or not values:
                raise OpenApiError("enum must be a non-empty list", source=self.source,
                                   place=place_of(where, "enum"), expected="enum: [a, b]")
            decl: dict[str, Any] = {"type": "choice", "values": list(values)}
            default = schema.get("default")
            if default is not None and any(same(v, default) for v in values):
                decl["default"] = default
            return decl
        kind = schema.get("type")
        if kind is None:
            kind = "object" if "properties" in schema else "array" if "items" in schema else None
        if kind is None:  # any value: a string is one
            return {"type": "string", "min_len": 0, "max_len": STRING_MAX}
        if kind == "boolean":
            default = schema.get("default")
            return {"type": "bool"} | ({"default": default} if isinstance(default, bool) else {})
        if kind == "null":
            return {"type": "fixed", "value": None}
        if kind in ("integer", "number"):
            return self._number(schema, where, kind == "integer")
        if kind == "string":
            return self._string(schema, where)
        if kind == "array":
            return self._array(schema, where, depth)
        if kind == "object":
            props = mapping(schema.get("properties"))
            if depth >= MAX_DEPTH or not props:
                return {"type": "fixed", "value": {}}
            return {"type": "object", "fields": {
                str(k): self.dim(v, place_of(where, "properties", k), depth + 1)
                for k, v in props.items() if not (isinstance(v, dict) and v.get("readOnly"))}}
        raise OpenApiError(f"unknown type {kind!r}", source=self.source, place=place_of(
            where, "type"), expected="integer, number, string, boolean, null, object or array")

    def _bound(self, schema: dict[str, Any], where: str, key: str, flag: str) -> tuple[Any, bool]:
        value, exclusive = schema.get(key), schema.get(flag)
        for name, v in ((key, value), (flag, exclusive)):
            if v is not None and not finite(v) and not (name == flag and isinstance(v, bool)):
                raise OpenApiError(f"{name} must be a number, not {v!r}", source=self.source,
                                   place=place_of(where, name), expected="a finite number")
        if isinstance(exclusive, bool):  # 3.0: a flag on minimum/maximum
            return value, exclusive and value is not None
        if exclusive is None:
            return value, False
        lower = key == "minimum"
        if value is None or (exclusive >= value if lower else exclusive <= value):
            return exclusive, True
        return value, False

    def _number(self, schema: dict[str, Any], where: str, integer: bool) -> dict[str, Any]:
        lo, lo_ex = self._bound(schema, where, "minimum", "exclusiveMinimum")
        hi, hi_ex = self._bound(schema, where, "maximum", "exclusiveMaximum")
        step = schema.get("multipleOf")
        step = step if finite(step) and step > 0 else None
        try:
            if integer:
                lo = None if lo is None else math.floor(lo) + 1 if lo_ex else math.ceil(lo)
                hi = None if hi is None else math.ceil(hi) - 1 if hi_ex else math.floor(hi)
                step = step if isinstance(step, int) and step > 1 else None
            else:
                lo = None if lo is None else math.nextafter(lo, math.inf) if lo_ex else float(lo)
                hi = None if hi is None else math.nextafter(hi, -math.inf) if hi_ex else float(hi)
            lo = (hi - INT_SPAN if hi is not None else -INT_SPAN) if lo is None else lo
            hi = lo + INT_SPAN if hi is None else hi
            if step is not None:  # the grid starts at the first multiple
                lo = -(-lo // step) * step if integer else math.ceil(lo / step) * step
        except OverflowError:
            raise OpenApiError("bounds too large for a number", source=self.source, place=where,
                               expected="minimum and maximum within the float range") from None
        if lo > hi:
            raise OpenApiError(f"no {'integer' if integer else 'number'} between {lo} and {hi}",
                               source=self.source, place=where, expected="minimum <= maximum")
        decl: dict[str, Any] = {"type": "int" if integer else "float",
                                "min": lo if integer else float(lo),
                                "max": hi if integer else float(hi)}
        if step is not None:
            decl["step"] = step
        default = schema.get("default")
        if finite(default) and lo <= default <= hi and step is None \
                and (not integer or isinstance(default, int)):
            decl["default"] = default if integer else float(default)
        return decl

    def _string(self, schema: dict[str, Any], where: str) -> dict[str, Any]:
        lo, hi = schema.get("minLength", 0), schema.get("maxLength")
        pattern, fmt = schema.get("pattern"), schema.get("format")
        if not count(lo) or (hi is not None and not count(hi)) \
                or not isinstance(pattern, (str, type(None))):
            raise OpenApiError("minLength/maxLength must be counts and pattern a string",
                               source=self.source, place=where,
                               expected="minLength: 1, maxLength: 20, pattern: '[a-z]+'")
        if pattern is None and isinstance(fmt, str):
            pattern = _FORMAT_PATTERNS.get(fmt)
        if lo > STRING_CAP:
            raise OpenApiError(f"minLength {lo} is longer than generated strings can be",
                               source=self.source, place=where,
                               expected=f"minLength <= {STRING_CAP}")
        hi = max(lo, PATTERN_MAX if pattern else STRING_MAX) if hi is None else hi
        hi = min(hi, STRING_CAP)
        if hi < lo:
            raise OpenApiError(f"maxLength {hi} < minLength {lo}", source=self.source,
                               place=where, expected="minLength <= maxLength")
        decl: dict[str, Any] = {"type": "string", "min_len": lo, "max_len": hi}
        if pattern:
            decl["pattern"] = pattern
        return decl

    def _array(self, schema: dict[str, Any], where: str, depth: int) -> dict[str, Any]:
        lo, hi = schema.get("minItems", 0), schema.get("maxItems")
        if not count(lo) or (hi is not None and not count(hi)) or lo > LIST_CAP \
                or (hi is not None and hi < lo):
            raise OpenApiError("minItems/maxItems must be counts, minItems <= maxItems",
                               source=self.source, place=where,
                               expected=f"0 <= minItems <= maxItems, minItems <= {LIST_CAP}")
        hi = min(lo + LIST_EXTRA if hi is None else hi, max(lo, LIST_CAP))
        if depth >= MAX_DEPTH and lo == 0:
            return {"type": "fixed", "value": []}
        items = schema.get("items", {})
        if isinstance(items, list):
            raise OpenApiError("tuple-form items is not supported", source=self.source,
                               place=place_of(where, "items"), expected="items: {schema}")
        item = self.dim(items, place_of(where, "items"), depth + 1)
        return {"type": "list", "of": item, "min_items": lo, "max_items": hi}


def finite(value: Any) -> TypeGuard[int | float]:
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def same(a: Any, b: Any) -> bool:
    return type(a) is type(b) and a == b


def mapping(value: Any) -> dict[Any, Any]:
    return value if isinstance(value, dict) else {}


def is_scalar(decl: dict[str, Any]) -> bool:
    value = decl.get("value")
    return not isinstance(value, (dict, list)) and not any(
        isinstance(v, (dict, list)) for v in decl.get("values", []))


def json_schema(node: Any, v30: bool) -> Any:
    """An OpenAPI schema as JSON Schema 2020-12: 3.0's ``nullable`` becomes a type list (and
    null in an enum), its boolean exclusiveMinimum/Maximum the numeric form."""
    if isinstance(node, list):
        return [json_schema(v, v30) for v in node]
    if not isinstance(node, dict):
        return node
    out = {k: json_schema(v, v30) for k, v in node.items()}
    if v30:
        if out.pop("nullable", None) is True:
            if isinstance(out.get("type"), str):
                out["type"] = [out["type"], "null"]
            if isinstance(out.get("enum"), list) and None not in out["enum"]:
                out["enum"] = [*out["enum"], None]
        for flag, bound in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
            if isinstance(out.get(flag), bool) and out.pop(flag) and bound in out:
                out[flag] = out.pop(bound)
    return out
