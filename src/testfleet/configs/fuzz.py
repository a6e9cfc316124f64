"""``testfleet space fuzz``: a space from a schema, a space file or an example config, and one
configuration file per generated variant plus a manifest.

Inputs, told apart by content: a *space file* (``dimensions:`` and ``constraints:``), a *JSON
Schema* (``$schema``, or ``type: object`` with ``properties``), otherwise an *example config*
in any supported format, whose space is inferred (``infer.py``). Variants are written in the
example's own format (or ``--format``); schema and space-file variants default to JSON. The
output directory is built beside the target and moved into place at the end, so an error leaves
nothing half-written and a previous fuzz output is replaced whole.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from testfleet.atomic import atomic_directory
from testfleet.configs.formats import FORMATS, coerce_scalars, dumps, load
from testfleet.configs.infer import STRING_FORMATS, ConfigSpace, infer_from_file
from testfleet.configs.paths import flatten
from testfleet.errors import ConfigError, UsageError
from testfleet.jsonable import jsonable
from testfleet.model import stable_id
from testfleet.space.declare import space_from_dict, space_to_dict
from testfleet.space.expressions import MISSING
from testfleet.space.jsonschema import space_from_json_schema
from testfleet.space.sampling import Points, generate
from testfleet.space.space import Space

MANIFEST = "manifest.json"
_EXTENSIONS = {"yaml": "yaml", "json": "json", "toml": "toml", "ini": "ini", "xml": "xml",
               "properties": "properties", "directives": "conf"}


@dataclass
class SpaceInput:
    """What a fuzz or coverage command works from."""

    path: str
    kind: str                     # "space" | "schema" | "config"
    space: Space
    format: str                   # the format variants are written in by default
    config: ConfigSpace | None = None
    schema: dict[str, Any] | None = None

    def document(self, point: dict[str, Any]) -> Any:
        if self.config is not None:
            return self.config.document(point)
        nested = self.space.nest(self.space.render(point))
        return nested["value"] if self.kind == "schema" and list(nested) == ["value"] else nested

    def points_of_documents(self, documents: list[Any]) -> list[dict[str, Any]]:
        """Parameter values of written documents (for coverage and --extend)."""
        points = []
        for doc in documents:
            flat = dict(doc) if self.format == "properties" and isinstance(doc, dict) \
                else flatten(doc)
            if self.kind == "schema" and list(self.space.names) == ["value"]:
                flat = {"value": doc}
            points.append(_typed_point(self.space, flat))
        return points


def _typed_point(space: Space, flat: dict[str, Any]) -> dict[str, Any]:
    """Leaves as the space's dimensions hold them (``64MB`` back to bytes)."""
    from testfleet.space.dimensions import Duration, Size, parse_duration, parse_size

    point: dict[str, Any] = {}
    for name, dim in space.dimensions.items():
        value = flat.get(name, MISSING)
        try:
            if isinstance(dim, Size) and isinstance(value, str):
                value = parse_size(value)
            elif isinstance(dim, Duration) and isinstance(value, str):
                value = parse_duration(value)
        except UsageError:
            pass  # left as written: it will count as outside the space
        point[name] = value
    return point


def load_input(path: str | Path, overlay: str | Path | None = None) -> SpaceInput:
    """A space from a space file, a JSON Schema or an example configuration."""
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"no such file: {path}", expected="a JSON Schema, a space file or an "
                         "example configuration")
    document = load(path)
    data = document.data
    if isinstance(data, dict) and "dimensions" in data and document.format in ("yaml", "json"):
        if overlay is not None:
            raise UsageError("--overlay refines an example configuration, not a space file",
                             source=str(path), expected="the overlay's contents in the space file")
        return SpaceInput(str(path), "space", space_from_dict(data, source=str(path)), "json")
    if isinstance(data, dict) and document.format in ("json", "yaml") and (
            "$schema" in data or (data.get("type") == "object" and "properties" in data)):
        if overlay is not None:
            raise UsageError("--overlay refines an example configuration, not a JSON Schema",
                             source=str(path), expected="the constraints in the schema")
        return SpaceInput(str(path), "schema", space_from_json_schema(data, source=str(path)),
                          "json", schema=data)
    config = infer_from_file(path, overlay)
    return SpaceInput(str(path), "config", config.space, document.format, config=config)


def manifest_params(point: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in point.items() if v is not MISSING}


def variant_id(source: str, params: dict[str, Any]) -> str:
    return stable_id("variant", f"space:{Path(source).name}", manifest_params(params))


def write_variants(source: SpaceInput, result: Points, out: str | Path, *, strategy: str,
                   seed: int, strength: int, fmt: str | None = None) -> Path:
    """One file per point plus ``manifest.json`` in ``out``, moved into place atomically."""
    fmt = fmt or source.format
    if fmt not in FORMATS:
        raise UsageError(f"unknown format {fmt!r}", expected=" | ".join(FORMATS))
    out = Path(out)
    if out.exists() and (not out.is_dir() or (any(out.iterdir())
                                               and not (out / MANIFEST).is_file())):
        raise UsageError(f"{out} exists and is not an earlier fuzz output", source=str(out),
                         expected="a new or empty directory (or one `space fuzz` wrote)")
    with atomic_directory(out) as staging:
        entries = []
        width = max(4, len(str(len(result.points))))
        for i, point in enumerate(result.points):
            vid = variant_id(source.path, point.params)
            name = f"{i:0{width}d}-{vid}.{_EXTENSIONS[fmt]}"
            text = dumps(_for_format(source.document(point.params), fmt), fmt, source=name)
            (staging / name).write_text(text, encoding="utf-8")
            entries.append({"id": vid, "file": name, "origin": point.origin,
                            "params": jsonable(manifest_params(point.params))})
        manifest = {"testfleet": "fuzz-manifest/1", "source": source.path, "kind": source.kind,
                    "format": fmt, "strategy": strategy, "seed": seed, "strength": strength,
                    "count": len(entries), "uniform": result.uniform,
                    "impossible": result.impossible, "space": space_to_dict(source.space),
                    "variants": entries}
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, ensure_ascii=False,
                                                   default=str), encoding="utf-8")
    return out


def _for_format(document: Any, fmt: str) -> Any:
    if fmt in ("ini",) and isinstance(document, dict) and any(
            not isinstance(v, dict) for v in document.values()):
        # INI needs sections: top-level scalars go to a [testfleet] section
        scalars = {k: v for k, v in document.items() if not isinstance(v, dict)}
        return {"testfleet": scalars} | {k: v for k, v in document.items() if isinstance(v, dict)}
    return document


def fuzz(path: str | Path, *, strategy: str, count: int | None, seed: int, out: str | Path,
         strength: int = 2, fmt: str | None = None, overlay: str | Path | None = None,
         extend: str | Path | None = None) -> tuple[SpaceInput, Points, Path]:
    source = load_input(path, overlay)
    existing = load_points(source, extend) if extend else []
    result = generate(source.space, strategy, count=count, seed=seed, strength=strength,
                      existing=existing)
    written = write_variants(source, result, out, strategy=strategy, seed=seed,
                             strength=strength, fmt=fmt)
    return source, result, written


def load_points(source: SpaceInput, where: str | Path) -> list[dict[str, Any]]:
    """Points already run: a manifest, a directory holding one, or a directory of configs."""
    where = Path(where)
    manifest = where / MANIFEST if where.is_dir() else where
    if manifest.is_file() and manifest.name == MANIFEST or where.suffix == ".json" and \
            _is_manifest(where):
        data = json.loads(manifest.read_text(encoding="utf-8"))
        return [_typed_point(source.space, v.get("params", {})) for v in data.get("variants", [])]
    if not where.is_dir():
        raise UsageError(f"no such manifest or directory: {where}",
                         expected="a fuzz manifest.json or a directory of configuration files")
    documents = []
    for file in sorted(p for p in where.iterdir() if p.is_file() and not p.name.startswith(".")):
        try:
            doc = load(file)
        except ConfigError:
            continue  # not a configuration file of a known format
        documents.append(coerce_scalars(doc.data) if doc.format in STRING_FORMATS else doc.data)
    return source.points_of_documents(documents)


def _is_manifest(path: Path) -> bool:
    try:
        return json.loads(path.read_text(encoding="utf-8")).get("testfleet") == \
            "fuzz-manifest/1"
    except (OSError, ValueError, AttributeError):
        return False
