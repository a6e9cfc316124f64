"""Key paths into nested configuration data: ``flatten``, ``unflatten``, ``set_path``.

A path names one node of nested dicts and lists, from the root:

- a dict key is written bare, after a ``.`` unless it opens the path (``server.port``);
- a list index is written in brackets (``hosts[0]``, ``[2].name`` for a top-level list);
- a key that is empty or contains ``.``, ``[`` or ``]`` is written as a JSON string in brackets
  (``labels["app.kubernetes.io/name"]``, ``[""]``), so every key string has exactly one spelling;
- the empty path ``""`` names the root itself.

``flatten`` maps every leaf to its path; a leaf is anything that is not a non-empty dict or list,
so empty containers survive as leaves (``{"a": {}}`` flattens to ``{"a": {}}``). Only string keys
can be spelled, so data with other keys (YAML allows ``1: x``) is refused rather than changed.
``unflatten`` is the exact inverse: ``unflatten(flatten(d)) == d`` for every such ``d``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from testfleet.errors import ConfigError

__all__ = ["MAX_DEPTH", "check_depth", "flatten", "format_path", "parse_path", "set_path",
           "unflatten", "walk"]

#: Deepest nesting of a document, and most parts of a key path, that are read: the recursive
#: walks here (and a user's config) never need more, and deeper input would exhaust the stack.
MAX_DEPTH = 100

Part = str | int
_SPECIAL = frozenset(".[]")
_MISSING: Any = object()
_DECODER = json.JSONDecoder()


def format_path(parts: tuple[Any, ...] | list[Any]) -> str:
    """Spell a sequence of keys (``str``) and list indexes (``int``) as one path."""
    out: list[str] = []
    for part in parts:
        if isinstance(part, int) and not isinstance(part, bool):
            out.append(f"[{part}]")
        elif isinstance(part, str) and part and not _SPECIAL.intersection(part):
            out.append(("." if out else "") + part)
        else:  # awkward strings; other key types only appear in error messages
            text = part if isinstance(part, str) else repr(part)
            out.append("[" + json.dumps(text, ensure_ascii=False) + "]")
    return "".join(out)


def parse_path(path: str) -> list[Part]:
    """The keys and indexes :func:`format_path` spelled as ``path``; ConfigError if malformed."""
    if not isinstance(path, str):
        raise ConfigError(f"a key path must be a string, not {type(path).__name__}",
                          expected='a path such as a.b[0] or a["x.y"]')
    parts: list[Part] = []
    pos = 0
    while pos < len(path):
        char = path[pos]
        if char == "[":
            if path.startswith('"', pos + 1):
                try:
                    key, pos = _DECODER.raw_decode(path, pos + 1)
                except ValueError:
                    raise _bad_path(path, pos, "an unterminated or malformed quoted key") from None
                parts.append(key)
            else:
                end = pos + 1
                while end < len(path) and path[end].isascii() and path[end].isdigit():
                    end += 1
                if end == pos + 1:
                    raise _bad_path(path, pos, "'[' not followed by an index or a quoted key")
                parts.append(int(path[pos + 1:end]))
                pos = end
            if not path.startswith("]", pos):
                raise _bad_path(path, pos, "a missing ']'")
            pos += 1
        else:
            if char == ".":
                if not parts:
                    raise _bad_path(path, pos, "a path that starts with '.'")
                pos += 1
            elif parts:
                raise _bad_path(path, pos, "a key that does not follow '.' or '['")
            end = pos
            while end < len(path) and path[end] not in "[].":
                end += 1
            if end == pos or path.startswith("]", end):
                raise _bad_path(path, end, "an empty key or a stray ']'")
            parts.append(path[pos:end])
            pos = end
        if len(parts) > MAX_DEPTH:
            raise _bad_path(path, pos, f"more than {MAX_DEPTH} levels")
    return parts


def check_depth(data: Any, source: str) -> None:
    """ConfigError naming ``source`` and where, when ``data`` nests more than MAX_DEPTH levels
    (checked with an explicit stack: the data may be too deep to recurse into)."""
    todo: list[tuple[Any, tuple[Any, ...]]] = [(data, ())]
    while todo:
        node, parts = todo.pop()
        if len(parts) > MAX_DEPTH:
            shown = format_path(parts[:3])
            raise ConfigError(f"the document nests more than {MAX_DEPTH} levels deep",
                              source=source, place=f"{shown}... (level {MAX_DEPTH + 1})",
                              expected=f"at most {MAX_DEPTH} levels of nesting")
        if isinstance(node, dict):
            todo.extend((value, (*parts, key)) for key, value in node.items())
        elif isinstance(node, list):
            todo.extend((value, (*parts, index)) for index, value in enumerate(node))


def _bad_path(path: str, pos: int, what: str) -> ConfigError:
    return ConfigError(f"malformed key path {path!r}: {what}", place=f"column {pos + 1}",
                       expected='keys joined by ".", indexes as [0], awkward keys as ["x.y"]')


def walk(data: Any) -> Iterator[tuple[tuple[Any, ...], Any]]:
    """Every node of ``data`` (containers first, then their contents) with its key tuple.

    Dicts, lists and tuples are entered; a container met again inside itself (YAML anchors can
    build such data) is not re-entered.
    """
    stack: set[int] = set()

    def visit(node: Any, where: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], Any]]:
        yield where, node
        if isinstance(node, dict | list | tuple) and id(node) not in stack:
            stack.add(id(node))
            items = node.items() if isinstance(node, dict) else enumerate(node)
            for key, value in items:
                yield from visit(value, (*where, key))
            stack.discard(id(node))

    yield from visit(data, ())


def flatten(data: Any) -> dict[str, Any]:
    """``{path: leaf}`` for every leaf of nested dicts and lists, in document order."""
    if isinstance(data, dict) and not data:
        return {}
    out: dict[str, Any] = {}
    active: set[int] = set()

    def visit(node: Any, parts: tuple[Part, ...]) -> None:
        if isinstance(node, dict | list) and node:
            if id(node) in active:
                raise ConfigError("the data contains itself, so it has no finite flat form",
                                  place=format_path(parts))
            active.add(id(node))
            if isinstance(node, dict):
                for key, value in node.items():
                    if not isinstance(key, str):
                        raise ConfigError(f"key {key!r} is not a string, so it has no path",
                                          place=format_path((*parts, key)), expected="string keys")
                    visit(value, (*parts, key))
            else:
                for index, value in enumerate(node):
                    visit(value, (*parts, index))
            active.discard(id(node))
        else:
            out[format_path(parts)] = node

    visit(data, ())
    return out


class _Map(dict[str, Any]):
    """A dict being rebuilt by unflatten (distinct from a leaf that happens to be a dict)."""


class _Seq(dict[int, Any]):
    """A list being rebuilt by unflatten: index -> node, checked for gaps at the end."""


def unflatten(flat: dict[str, Any]) -> Any:
    """Rebuild the nested data that :func:`flatten` turned into ``flat``."""
    if not isinstance(flat, dict):
        raise ConfigError(f"unflatten needs a dict of path -> value, not {type(flat).__name__}")
    if not flat:
        return {}
    root = _MISSING
    for path, value in flat.items():
        root = _place(root, parse_path(path), 0, value, path)
    return _finish(root, ())


def _place(node: Any, parts: list[Part], depth: int, value: Any, path: str) -> Any:
    here = format_path(parts[:depth]) or "the root"
    if depth == len(parts):
        if node is not _MISSING:
            raise ConfigError(f"{here} is given twice" if type(node) not in (_Map, _Seq)
                              else f"{here} has paths below it, so it cannot also hold a value", place=path)
        return value
    head = parts[depth]
    kind = _Seq if isinstance(head, int) else _Map
    if node is _MISSING:
        node = kind()
    elif type(node) is not kind:
        leaf = type(node) not in (_Map, _Seq)
        raise ConfigError(f"{here} holds a value, so no path can go below it" if leaf
                          else f"{here} is used both as a list and as a mapping", place=path)
    node[head] = _place(node.get(head, _MISSING), parts, depth + 1, value, path)
    return node


def _finish(node: Any, parts: tuple[Part, ...]) -> Any:
    if type(node) is _Map:
        return {key: _finish(value, (*parts, key)) for key, value in node.items()}
    if type(node) is _Seq:
        if sorted(node) != list(range(len(node))):
            missing = min(set(range(len(node) + 1)) - set(node))
            raise ConfigError(f"list index {missing} is missing", place=format_path((*parts, missing)),
                              expected="indexes 0, 1, 2, ... without gaps")
        return [_finish(node[index], (*parts, index)) for index in range(len(node))]
    return node


def set_path(data: Any, path: str, value: Any) -> Any:
    """A copy of ``data`` with the node at ``path`` replaced by ``value``; ``data`` is untouched.

    Containers along the path are copied; the rest is shared with ``data``. The last key may be
    new to its dict (it is added); every other step must exist, and indexes must be in range.
    """
    parts = parse_path(path)

    def replace(node: Any, depth: int) -> Any:
        if depth == len(parts):
            return value
        head = parts[depth]
        here = format_path(parts[:depth + 1])
        if isinstance(head, int):
            if not isinstance(node, list) or not 0 <= head < len(node):
                what = f"a list of {len(node)} items" if isinstance(node, list) else type(node).__name__
                raise ConfigError(f"no list item here ({format_path(parts[:depth]) or 'the root'} "
                                  f"is {what})", place=here)
            copy: Any = list(node)
        else:
            if not isinstance(node, dict):
                raise ConfigError(f"no mapping here ({format_path(parts[:depth]) or 'the root'} is "
                                  f"{type(node).__name__})", place=here)
            if head not in node and depth + 1 < len(parts):
                raise ConfigError("no such key", place=here)
            copy = dict(node)
        copy[head] = replace(node[head] if isinstance(head, int) or head in node else None, depth + 1)
        return copy

    return replace(data, 0)
