"""Reading an OpenAPI 3 document (3.0 or 3.1, YAML or JSON) and inlining its local ``$ref``s.

:func:`load_openapi` reads the file and hands it to :func:`check_document`, which checks what
the scenario importer relies on (``openapi: 3.x``, a ``paths`` mapping whose keys start with
``/``, path items holding only known methods and fields) and returns the document with every
``$ref`` under ``paths`` replaced by what it points to. Only local references
(``#/components/...``, any JSON pointer into the same document) are followed; a reference to
another file or URL is refused, as is a cycle (a recursive schema cannot be inlined), and so is
a place whose inlined form would exceed ``MAX_INLINED_NODES`` nodes (definitions that each use
the next more than once grow exponentially with the depth).

Every error is an :class:`OpenApiError` (a :class:`ScenarioError`) naming the file, the place
as a dotted pointer (``paths./items.post.requestBody``) and what was expected.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import yaml

from testfleet.configs.formats import read_text, yaml_problem
from testfleet.errors import ConfigError
# defined in testfleet.errors; re-exported from its old home
from testfleet.errors import OpenApiError as OpenApiError

#: Operations a path item may hold (OpenAPI 3.0/3.1), and its other fields.
OPERATIONS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
PATH_ITEM_FIELDS = ("summary", "description", "servers", "parameters", "$ref")
_MAX_DEPTH = 200  # nesting deeper than this is a self-referencing YAML alias, not a document
#: Most nodes one inlined place may hold. References are resolved once and shared, but every
#: later step (schemas, templates, the scenario file) walks the inlined tree: 20 levels of two
#: definitions each using the next twice is 2**20 nodes.
MAX_INLINED_NODES = 100_000


def place_of(*parts: Any) -> str:
    """A dotted place such as ``paths./items.post`` from its parts (empty parts dropped)."""
    return ".".join(str(p) for p in parts if p != "") or "(top level)"


def load_openapi(path: str | Path) -> dict[str, Any]:
    """Read an OpenAPI 3 document (YAML, or JSON for ``.json``), check it and inline the local
    references under ``paths`` (see :func:`check_document`)."""
    source = str(path)
    try:
        text = read_text(path)
    except ConfigError as exc:
        raise OpenApiError(f"cannot read the OpenAPI document: {exc.message}", source=source,
                           place=exc.place, expected=exc.expected) from None
    if source.lower().endswith(".json"):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise OpenApiError(f"malformed JSON: {exc.msg}", source=source,
                               place=f"line {exc.lineno}, column {exc.colno}",
                               expected="a JSON object") from None
    else:
        try:
            data = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            problem, where = yaml_problem(exc)
            raise OpenApiError(f"malformed YAML: {problem}", source=source, place=where,
                               expected="a YAML mapping") from None
    return check_document(data, source=source)


def check_document(doc: Any, *, source: str) -> dict[str, Any]:
    """``doc`` with its ``paths`` checked and their local ``$ref``s inlined; OpenApiError
    naming ``source`` and the place otherwise. Idempotent."""
    if not isinstance(doc, dict):
        raise OpenApiError(f"the document is a {type(doc).__name__}, not a mapping", source=source,
                           place="(top level)", expected="openapi: 3.0.3 and paths: {...}")
    version = doc.get("openapi")
    if isinstance(version, bool) or not isinstance(version, (str, int, float)) \
            or not str(version).startswith("3."):
        hint = " (Swagger 2.0 documents need converting first)" if "swagger" in doc else ""
        raise OpenApiError(f"unsupported openapi version {version!r}{hint}", source=source,
                           place="openapi", expected="openapi: 3.0.x or 3.1.x")
    paths = doc.get("paths")
    if not isinstance(paths, dict):
        raise OpenApiError("the document has no paths mapping" if paths is None else
                           f"paths is a {type(paths).__name__}, not a mapping", source=source,
                           place="paths", expected="paths: {/items: {get: {...}}}")
    resolver = _Resolver(doc, source)
    resolved: dict[str, Any] = {}
    for key, item in paths.items():
        where = place_of("paths", key)
        if not isinstance(key, str) or not key.startswith("/"):
            raise OpenApiError(f"path {key!r} does not start with '/'", source=source,
                               place=where, expected="a path such as /items/{id}")
        item = resolver.resolve(item, where)
        if not isinstance(item, dict):
            raise OpenApiError(f"a path item must be a mapping, not {type(item).__name__}",
                               source=source, place=where, expected="get: {...}, post: {...}")
        for field, value in item.items():
            if field in OPERATIONS:
                if not isinstance(value, dict):
                    raise OpenApiError(f"operation {field} must be a mapping, not "
                                       f"{type(value).__name__}", source=source,
                                       place=place_of(where, field), expected="responses: {...}")
            elif field not in PATH_ITEM_FIELDS and not str(field).startswith("x-"):
                raise OpenApiError(f"unknown method or field {field!r}", source=source,
                                   place=place_of(where, field),
                                   expected=", ".join(OPERATIONS + PATH_ITEM_FIELDS) + ", x-*")
        resolved[key] = item
    return {**doc, "paths": resolved}


class _Resolver:
    """Inlines local references, each resolved once (and shared), refusing cycles."""

    def __init__(self, root: dict[str, Any], source: str) -> None:
        self.root = root
        self.source = source
        self.done: dict[str, tuple[Any, int]] = {}

    def fail(self, message: str, place: str, expected: str) -> OpenApiError:
        return OpenApiError(message, source=self.source, place=place, expected=expected)

    def resolve(self, node: Any, place: str, stack: tuple[str, ...] = (), depth: int = 0) -> Any:
        return self._resolve(node, place, stack, depth)[0]

    def _resolve(self, node: Any, place: str, stack: tuple[str, ...],
                 depth: int) -> tuple[Any, int]:
        """The node inlined and how many nodes its inlined form has (shared definitions count
        once per use: that is what every later step walks and what the scenario file holds)."""
        if depth > _MAX_DEPTH:
            raise self.fail(f"nested deeper than {_MAX_DEPTH} levels", place,
                            "a document without self-referencing YAML aliases")
        if isinstance(node, list):
            pairs = [self._resolve(v, f"{place}[{i}]", stack, depth + 1)
                     for i, v in enumerate(node)]
            return self._sized([v for v, _ in pairs], 1 + sum(n for _, n in pairs), place)
        if not isinstance(node, dict):
            return node, 1
        if "$ref" not in node:
            items = {k: self._resolve(v, place_of(place, k), stack, depth + 1)
                     for k, v in node.items()}
            return self._sized({k: v for k, (v, _) in items.items()},
                               1 + sum(n for _, n in items.values()), place)
        ref = node["$ref"]
        target, size = self._follow(ref, place, stack, depth)
        siblings = {k: self._resolve(v, place_of(place, k), stack, depth + 1)
                    for k, v in node.items() if k != "$ref"}
        if siblings and isinstance(target, dict):
            # 3.1: summary/description (and schema keywords) beside the $ref
            merged = {**target, **{k: v for k, (v, _) in siblings.items()}}
            return self._sized(merged, size + sum(n for _, n in siblings.values()), place)
        return target, size

    def _sized(self, value: Any, size: int, place: str) -> tuple[Any, int]:
        if size > MAX_INLINED_NODES:
            raise self.fail(f"inlining the $refs here makes more than {MAX_INLINED_NODES:,} "
                            "nodes (definitions that each use the next several times double "
                            "at every level)", place,
                            "definitions that expand to a reasonable size once inlined")
        return value, size

    def _follow(self, ref: Any, place: str, stack: tuple[str, ...],
                depth: int) -> tuple[Any, int]:
        expected = "a local reference such as #/components/schemas/Item"
        where = place_of(place, "$ref")
        if not isinstance(ref, str):
            raise self.fail(f"$ref must be a string, not {ref!r}", where, expected)
        if not ref.startswith("#"):
            raise self.fail(f"external $ref {ref!r} is not supported (only references inside "
                            "this document are)", where, expected)
        if ref in stack:
            chain = " -> ".join(stack[stack.index(ref):] + (ref,))
            raise self.fail(f"cyclic $ref {ref!r} ({chain}): recursive definitions cannot be "
                            "inlined", where, "definitions that do not refer back to themselves")
        if ref in self.done:
            return self.done[ref]  # resolved once and shared: linear time, whatever the reuse
        pointer = unquote(ref[1:])
        if pointer and not pointer.startswith("/"):
            raise self.fail(f"$ref {ref!r} is not a JSON pointer", where, expected)
        node: Any = self.root
        for part in pointer.split("/")[1:]:
            part = part.replace("~1", "/").replace("~0", "~")
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise self.fail(f"$ref {ref!r} points nowhere: no {part!r} there", where,
                                "a pointer to an existing definition")
        target_place = place_of(*(p.replace("~1", "/").replace("~0", "~")
                                  for p in pointer.split("/")[1:]))
        resolved = self._resolve(node, target_place, stack + (ref,), depth + 1)
        self.done[ref] = resolved
        return resolved
