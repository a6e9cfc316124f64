"""Spaces declared as data (YAML/JSON space files, overlays, manifests) and back.

A declaration is ``{"dimensions": {name: spec}, "constraints": [text, ...]}`` where a spec is
what :meth:`Dimension.to_dict` writes, e.g. ``{"type": "int", "min": 1, "max": 64}``,
``{"type": "choice", "values": ["off", "lru"]}``, ``{"type": "size", "min": "1KB", "max":
"100MB"}``, ``{"type": "optional", "of": {...}}``, ``{"type": "object", "fields": {...}}``.
Short forms: a list is a choice, a scalar is a fixed value. Every error names the file and the
dimension's path.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from testfleet.errors import SpaceError
from testfleet.space.composite import ListOf, Object, Optional, Permutation, Union
from testfleet.space.dimensions import (
    Bool,
    Choice,
    Dimension,
    Duration,
    Float,
    Int,
    Size,
)
from testfleet.space.space import Space
from testfleet.space.text import String

_KEYS: dict[str, set[str]] = {
    "int": {"min", "max", "step", "default"},
    "float": {"min", "max", "step", "default"},
    "choice": {"values", "default"},
    "bool": {"default"},
    "string": {"min_len", "max_len", "pattern", "charset", "default"},
    "size": {"min", "max", "default", "human"},
    "duration": {"min", "max", "default", "human"},
    "permutation": {"items", "default"},
    "optional": {"of", "absent", "weight", "default"},
    "list": {"of", "min_items", "max_items", "default"},
    "object": {"fields"},
    "union": {"of", "default"},
    "fixed": {"value"},
}


def dimension(spec: Any, *, source: str | None = None, place: str = "dimension") -> Dimension:
    """A dimension from its declaration; SpaceError naming ``source`` and ``place`` otherwise."""
    if isinstance(spec, list):
        spec = {"type": "choice", "values": spec}
    elif not isinstance(spec, dict):
        spec = {"type": "fixed", "value": spec}
    kind = spec.get("type")
    if kind not in _KEYS:
        raise SpaceError(f"unknown dimension type {kind!r}", source=source, place=place,
                         expected="type: " + " | ".join(_KEYS))
    unknown = set(spec) - _KEYS[kind] - {"type"}
    if unknown:
        raise SpaceError(f"{kind} does not take {', '.join(sorted(unknown))}", source=source,
                         place=place, expected="keys " + ", ".join(sorted(_KEYS[kind])))
    args = {k: v for k, v in spec.items() if k != "type"}
    try:
        return _BUILDERS[kind](args, source, place)
    except SpaceError as exc:
        if exc.source or exc.place:
            raise
        raise SpaceError(exc.message, source=source, place=place, expected=exc.expected) from None
    except (TypeError, ValueError, KeyError, OverflowError) as exc:
        raise SpaceError(f"bad {kind} declaration: {exc}", source=source, place=place,
                         expected="keys " + ", ".join(sorted(_KEYS[kind]))) from None


def _required(args: dict[str, Any], key: str, kind: str) -> Any:
    if key not in args:
        raise SpaceError(f"{kind} needs {key!r}", expected=f"{key}: ...")
    return args[key]


def _int(args: dict[str, Any], source: str | None, place: str) -> Dimension:
    return Int(_required(args, "min", "int"), _required(args, "max", "int"), args.get("step", 1),
               default=args.get("default"))


def _float(args: dict[str, Any], source: str | None, place: str) -> Dimension:
    return Float(_required(args, "min", "float"), _required(args, "max", "float"),
                 step=args.get("step"), default=args.get("default"))


def _choice(args: dict[str, Any], source: str | None, place: str) -> Dimension:
    return Choice(_required(args, "values", "choice"), default=args.get("default"))


def _string(args: dict[str, Any], source: str | None, place: str) -> Dimension:
    return String(args.get("min_len", 0), args.get("max_len", 16), pattern=args.get("pattern"),
                  charset=args.get("charset"), default=args.get("default"))


def _size(args: dict[str, Any], source: str | None, place: str) -> Dimension:
    return Size(_required(args, "min", "size"), _required(args, "max", "size"),
                default=args.get("default"), human=args.get("human", True))


def _duration(args: dict[str, Any], source: str | None, place: str) -> Dimension:
    return Duration(_required(args, "min", "duration"), _required(args, "max", "duration"),
                    default=args.get("default"), human=args.get("human", True))


def _optional(args: dict[str, Any], source: str | None, place: str) -> Dimension:
    inner = dimension(_required(args, "of", "optional"), source=source, place=f"{place}.of")
    return Optional(inner, absent=bool(args.get("absent", False)),
                    weight=args.get("weight", 0.2), default=args.get("default"))


def _list(args: dict[str, Any], source: str | None, place: str) -> Dimension:
    item = dimension(_required(args, "of", "list"), source=source, place=f"{place}.of")
    return ListOf(item, args.get("min_items", 0), args.get("max_items", 5),
                  default=args.get("default"))


def _object(args: dict[str, Any], source: str | None, place: str) -> Dimension:
    fields = _required(args, "fields", "object")
    if not isinstance(fields, dict):
        raise SpaceError("object fields must be a mapping", expected="fields: {name: spec}")
    return Object({k: dimension(v, source=source, place=f"{place}.{k}") for k, v in fields.items()})


def _union(args: dict[str, Any], source: str | None, place: str) -> Dimension:
    branches = _required(args, "of", "union")
    if not isinstance(branches, list):
        raise SpaceError("union 'of' must be a list", expected="of: [spec, spec]")
    return Union([dimension(b, source=source, place=f"{place}.of[{i}]")
                  for i, b in enumerate(branches)], default=args.get("default"))


_BUILDERS: dict[str, Callable[[dict[str, Any], str | None, str], Dimension]] = {
    "int": _int, "float": _float, "choice": _choice,
    "bool": lambda a, s, p: Bool(default=a.get("default")),
    "string": _string, "size": _size, "duration": _duration,
    "permutation": lambda a, s, p: Permutation(_required(a, "items", "permutation"),
                                               default=a.get("default")),
    "optional": _optional, "list": _list, "object": _object, "union": _union,
    "fixed": lambda a, s, p: Choice([_required(a, "value", "fixed")]),
}


def space_from_dict(data: Any, *, source: str | None = None) -> Space:
    """A space from ``{"dimensions": {...}, "constraints": [...]}``."""
    if not isinstance(data, Mapping) or not isinstance(data.get("dimensions"), Mapping):
        raise SpaceError("a space declaration needs a 'dimensions' mapping", source=source,
                         expected="dimensions: {name: {type: int, min: 1, max: 64}}")
    extra = set(data) - {"dimensions", "constraints"}
    if extra:
        raise SpaceError(f"unknown keys {', '.join(sorted(map(str, extra)))}", source=source,
                         expected="dimensions and constraints")
    constraints = data.get("constraints") or []
    if not isinstance(constraints, list) or not all(isinstance(c, str) for c in constraints):
        raise SpaceError("constraints must be a list of expressions", source=source,
                         place="constraints", expected="[\"threads <= cpus * 2\"]")
    dims = {str(name): dimension(spec, source=source, place=f"dimensions.{name}")
            for name, spec in data["dimensions"].items()}
    return Space(dims, constraints, source=source)


def space_to_dict(space: Space) -> dict[str, Any]:
    return {"dimensions": {name: dim.to_dict() for name, dim in space.dimensions.items()},
            "constraints": [c.text for c in space.constraints]}
