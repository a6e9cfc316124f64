"""A space inferred from an example configuration file, refined by a small YAML overlay.

Every leaf of the example becomes a parameter named by its key path (``server.threads``,
``hosts[0]``), with the observed value as its default, so the baseline variant *is* the example:

- integers vary over ``[v/4, 4v]`` (``[0, 100]`` for 0, ``[4v, 0]`` below zero); floats alike;
- booleans vary over both values;
- strings that read as a size (``64MB``) or a duration (``250ms``) vary over ``[v/4, 4v]`` and are
  written back in the same style; other strings, nulls and empty containers stay fixed.

The overlay changes what inference guessed::

    parameters:
      server.threads: {min: 1, max: 64}        # keys without 'type' adjust the inferred dimension
      cache.mode: [off, lru, lfu]              # a list is a choice
      server.name: {type: string, max_len: 32} # with 'type' it replaces it
      log.file: fixed                          # never varied
    constraints:
      - "cache.mode == 'off' -> cache.size == 0"
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testfleet.configs.formats import STRING_FORMATS, coerce_scalars, load
from testfleet.configs.paths import flatten, set_path
from testfleet.errors import SpaceError
from testfleet.space.declare import dimension
from testfleet.space.dimensions import (
    Bool,
    Choice,
    Dimension,
    Duration,
    Float,
    Int,
    Size,
    parse_duration,
    parse_size,
)
from testfleet.space.expressions import MISSING
from testfleet.space.space import Space

_SIZE = re.compile(r"^\s*\d+(\.\d+)?\s*([KMGT]i?B|B)\s*$", re.IGNORECASE)
_DURATION = re.compile(r"^\s*\d+(\.\d+)?\s*(ns|us|ms|s|m|h|d)\s*$")


@dataclass
class ConfigSpace:
    """A space over a template document's leaves; ``document(point)`` writes a variant."""

    space: Space
    template: Any
    format: str

    def document(self, point: dict[str, Any]) -> Any:
        rendered = {k: v for k, v in self.space.render(point).items() if v is not MISSING}
        if self.format == "properties":  # flat keys: the dotted key is the name itself
            return dict(self.template) | rendered
        data = self.template
        for path, value in rendered.items():
            data = set_path(data, path, value)
        return data


def infer_dimension(value: Any) -> Dimension:
    """The dimension inference proposes for one observed leaf value."""
    if isinstance(value, bool):
        return Bool(default=value)
    if isinstance(value, int):
        lo, hi = (0, 100) if value == 0 else (value // 4, value * 4) if value > 0 else (value * 4, 0)
        return Int(lo, hi, default=value)
    if isinstance(value, float):
        flo, fhi = (0.0, 1.0) if value == 0 else (value / 4, value * 4) if value > 0 \
            else (value * 4, 0.0)
        return Float(flo, fhi, default=value)
    if isinstance(value, str) and _SIZE.match(value):
        size = parse_size(value.replace(" ", ""))
        return Size(size // 4, max(size * 4, 1), default=size)
    if isinstance(value, str) and _DURATION.match(value):
        seconds = parse_duration(value.replace(" ", ""))
        return Duration(seconds / 4, max(seconds * 4, 1e-3), default=seconds)
    return Choice([value])


def _adjust(inferred: Dimension, spec: Any, source: str, place: str) -> Dimension:
    if spec == "fixed":
        return Choice([inferred.baseline()])
    if isinstance(spec, list) or (isinstance(spec, dict) and "type" in spec):
        return dimension(spec, source=source, place=place)
    if not isinstance(spec, dict):
        raise SpaceError(f"overlay entry is {spec!r}", source=source, place=place,
                         expected="a mapping of settings, a list of values, or 'fixed'")
    merged = inferred.to_dict() | spec
    if merged.get("type") == "choice" and "values" not in spec:
        raise SpaceError("this value is a fixed string; give 'values' or a 'type'",
                         source=source, place=place, expected="values: [...] or type: string")
    return dimension(merged, source=source, place=place)


def infer_space(data: Any, fmt: str, *, overlay: dict[str, Any] | None = None,
                source: str = "<config>", overlay_source: str = "<overlay>") -> ConfigSpace:
    """The space of variants of ``data`` (already typed: string formats coerced)."""
    leaves = dict(data) if fmt == "properties" and isinstance(data, dict) else flatten(data)
    if not leaves or leaves == {"": data}:
        raise SpaceError("the example configuration has no values to vary", source=source,
                         expected="a mapping of settings")
    dims = {path: infer_dimension(value) for path, value in leaves.items()}
    overlay = overlay or {}
    if not isinstance(overlay, dict) or set(overlay) - {"parameters", "constraints"}:
        raise SpaceError("an overlay has 'parameters' and 'constraints' only",
                         source=overlay_source, expected="parameters: {path: ...}")
    params = overlay.get("parameters") or {}
    if not isinstance(params, dict):
        raise SpaceError("'parameters' must be a mapping", source=overlay_source,
                         place="parameters", expected="path: {min: .., max: ..}")
    for path, spec in params.items():
        place = f"parameters.{path}"
        if path not in dims:
            close = difflib.get_close_matches(str(path), list(dims), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            raise SpaceError(f"{path!r} is not a key of {source}{hint}", source=overlay_source,
                             place=place, expected="a key path of the example configuration")
        dims[path] = _adjust(dims[path], spec, overlay_source, place)
    constraints = overlay.get("constraints") or []
    if not isinstance(constraints, list) or not all(isinstance(c, str) for c in constraints):
        raise SpaceError("'constraints' must be a list of expressions", source=overlay_source,
                         place="constraints", expected="[\"cache.mode == 'off' -> ...\"]")
    return ConfigSpace(Space(dims, constraints, source=overlay_source
                             if overlay else source), data, fmt)


def infer_from_file(path: str | Path, overlay_path: str | Path | None = None) -> ConfigSpace:
    """Read an example config (any supported format) and an optional YAML overlay."""
    document = load(path)
    data = coerce_scalars(document.data) if document.format in STRING_FORMATS else document.data
    overlay = None
    if overlay_path is not None:
        overlay_doc = load(overlay_path)
        overlay = overlay_doc.data
    return infer_space(data, document.format, overlay=overlay, source=str(path),
                       overlay_source=str(overlay_path) if overlay_path else str(path))
