"""Compare two snapshots: which files were added, removed or changed, and how each one changed.

Approach: :func:`diff_trees` walks the union of both snapshots' paths in sorted order and first
compares entries (``kind``, ``mode``, ``sha256``, ``target``): a path on one side only is
``added``/``removed`` (kind ``"tree"``, ``"link"`` for a symlink; a directory only when it is
empty on that side, else the paths below it tell the story); a changed entry kind or symlink
target is ``changed``; a changed mode alone is ``mode``. Only a file whose sha256 differs (or is
missing) is read, on both sides. Non-UTF-8 bytes (a BOM allowed; a NUL byte means binary, as in
git) give kind ``"binary"``, sizes and digests in the note. Text whose suffix names a
configuration format is parsed on both sides (``loads``; ``coerce_scalars`` for ini, xml and
properties; an empty YAML file holds no keys) and compared key path by key path (``"semantic"``).
A side that does not parse, data equal on both sides (only comments or layout differ) and any
other text give a unified line diff (``"text"``), the note saying why.

:func:`diff_documents` follows :func:`~testfleet.configs.paths.flatten`: leaves are scalars and
empty containers, paths spelled by ``format_path``. Dicts are compared key by key, lists index by
index; a key on one side only gives one added/removed Change per leaf below it. A leaf changing
value or type (8080 -> "8080"; True is not 1, -0.0 not 0.0; NaN equals NaN), or a node changing
shape (a scalar or empty container becomes a non-empty dict or list, a dict a list), is one
``changed`` Change there with both whole values. So applying the Changes to ``flatten(old)`` (set
added leaves, delete removed ones, replace all at and below a changed path by the new value's
leaves) gives ``flatten(new)``. ``.properties`` keys are paths already: compared as they are.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import math
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from testfleet.configs.formats import STRING_FORMATS, coerce_scalars, detect_format, loads
from testfleet.configs.paths import format_path
from testfleet.errors import ConfigError
from testfleet.jsonable import jsonable
from testfleet.snapshots.tree import Entry as TreeEntry

__all__ = ["Change", "FileDiff", "TreeDiff", "diff_documents", "diff_trees"]

_NAMES = {"yaml": "YAML", "json": "JSON", "toml": "TOML", "ini": "INI", "xml": "XML",
          "directives": "key-value directive",
          "properties": ".properties"}
_MARKS = {"added": "+", "removed": "-", "changed": "~", "mode": "m"}
_DETAILED = ("semantic", "text", "binary")
_LONGEST = 200  # characters of one value shown by render_text and render_markdown
_MISSING: Any = object()


@dataclass(frozen=True)
class Change:
    """One key path that differs: ``kind`` is "added", "removed" or "changed"."""

    path: str
    kind: str
    old: Any = None
    new: Any = None

    def render(self) -> str:
        """``~ server.port: 8080 -> 9090``, ``+ cache.ttl: 30s``, ``- debug: true``."""
        values = {"added": _show(self.new), "removed": _show(self.old)}
        return (f"{_MARKS[self.kind]} {self.path or '(root)'}: "
                + values.get(self.kind, f"{_show(self.old)} -> {_show(self.new)}"))


@dataclass
class FileDiff:
    """How one path differs between the snapshots (statuses and kinds: see the module doc)."""

    path: str
    status: str
    kind: str
    changes: list[Change] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)
    old_mode: int | None = None
    new_mode: int | None = None
    note: str = ""

    def detail(self) -> str:
        """What the tree summary says after the path: a mode change, the note, or a size."""
        parts = []
        if None not in (self.old_mode, self.new_mode) and self.old_mode != self.new_mode:
            parts.append(f"mode {self.old_mode:04o} -> {self.new_mode:04o}")
        if self.kind == "semantic":
            parts.append(f"{len(self.changes)} key path{'' if len(self.changes) == 1 else 's'}")
        elif self.kind == "text":
            body = [line[:1] for line in self.lines[2:]]  # after the ---/+++ header
            parts.append(f"+{body.count('+')} -{body.count('-')} lines")
        elif self.kind == "binary":
            parts.append("binary")
        elif self.note:
            parts.append(self.note)
        return "; ".join(parts)


@dataclass
class TreeDiff:
    """Every path that differs between two snapshots, sorted by path ("same" ones left out)."""

    old_id: str
    new_id: str
    files: list[FileDiff]

    @property
    def empty(self) -> bool:
        return not self.files

    def counts(self) -> dict[str, int]:
        """How many paths were added, removed, changed, and changed in mode only."""
        return {status: sum(f.status == status for f in self.files) for status in _MARKS}

    def _headline(self) -> str:
        counts = [f"{n} {'mode only' if s == 'mode' else s}" for s, n in self.counts().items() if n]
        return ", ".join(counts) or "no differences"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: JSON types only (non-finite floats and other values as their repr)."""
        return {"old": self.old_id, "new": self.new_id, "counts": self.counts(), "files": [
            {"path": f.path, "status": f.status, "kind": f.kind, "old_mode": f.old_mode,
             "new_mode": f.new_mode, "note": f.note, "lines": list(f.lines),
             "changes": [{"path": c.path, "kind": c.kind,
                          "old": jsonable(c.old, nonfinite="text"),  # data: show it as it was
                          "new": jsonable(c.new, nonfinite="text")} for c in f.changes]}
            for f in self.files]}

    def render_text(self) -> str:
        """The tree summary, one line a path, then each changed file's key paths or lines."""
        out = [f"snapshot {self.old_id} -> {self.new_id}: {self._headline()}"]
        for f in self.files:
            detail = f.detail()
            out.append(f"  {_MARKS.get(f.status, '?')} {f.path}" + (f"  ({detail})" if detail else ""))
        for f in (f for f in self.files if f.kind in _DETAILED):
            out += ["", f"{f.path}:"] + ([f"  ({f.note})"] if f.note else [])
            out += ["  " + c.render() for c in f.changes] + ["  " + line for line in f.lines]
        return "\n".join(out) + "\n"

    def render_markdown(self) -> str:
        """A summary table, then per changed file a key-path table or a ``diff`` block."""
        out = [f"## Snapshot diff {_code(self.old_id)} → {_code(self.new_id)}", "", self._headline()]
        if self.files:
            out += ["", "| | Path | Details |", "|---|---|---|"]
            out += [f"| {_MARKS.get(f.status, '?')} | {_code(f.path)} | {_cell(f.detail())} |"
                    for f in self.files]
        for f in (f for f in self.files if f.kind in _DETAILED):
            out += ["", f"### {_code(f.path)}", ""] + ([f"_{_cell(f.note)}_", ""] if f.note else [])
            if f.changes:
                out += ["| | Key path | Old | New |", "|---|---|---|---|"]
                out += [f"| {_MARKS[c.kind]} | {_code(c.path or '(root)')} | "
                        f"{'' if c.kind == 'added' else _code(_show(c.old))} | "
                        f"{'' if c.kind == 'removed' else _code(_show(c.new))} |" for c in f.changes]
            if f.lines:
                fence = "````" if any("```" in line for line in f.lines) else "```"
                out += [fence + "diff", *f.lines, fence]
        return "\n".join(out) + "\n"


# kind ("file" | "dir" | "symlink"), mode, sha256, target: a mapping or a stored entry (_field reads both)
Entry = Mapping[str, Any] | TreeEntry


def diff_trees(old_id: str, old: Mapping[str, Entry], new_id: str, new: Mapping[str, Entry],
               read_old: Callable[[str], bytes], read_new: Callable[[str], bytes]) -> TreeDiff:
    """Compare two snapshots' entries (path -> entry); content is read only where sha256 differs."""
    parents = (_parents(old), _parents(new))
    found = (_diff_entry(path, old.get(path), new.get(path), parents, read_old, read_new)
             for path in sorted(old.keys() | new.keys()))
    return TreeDiff(old_id, new_id, [f for f in found if f is not None])


def diff_documents(old: Any, new: Any) -> list[Change]:
    """The key-path Changes from ``old`` to ``new``, in path order (indexes numerically)."""
    found: list[tuple[tuple[Any, ...], Change]] = []
    _walk(old, new, (), found)
    found.sort(key=lambda item: [_order(part) for part in item[0]])
    return [change for _, change in found]


# ---------------------------------------------------------------- tree level

def _field(entry: Any, name: str) -> Any:
    try:
        return entry[name]
    except (KeyError, IndexError, TypeError):
        return getattr(entry, name, None)


def _parents(tree: Mapping[str, Entry]) -> set[str]:
    """Every directory path with something below it."""
    out: set[str] = set()
    for path in tree:
        parts = path.strip("/").split("/")
        out.update("/".join(parts[:i]) for i in range(1, len(parts)))
    return out


def _noun(entry: Any) -> str:
    kind = _field(entry, "kind")
    if kind == "symlink":
        return f"symlink to {_field(entry, 'target')}"
    return "directory" if kind == "dir" else str(kind or "file")


def _diff_entry(path: str, a: Any, b: Any, parents: tuple[set[str], set[str]],
                read_old: Callable[[str], bytes], read_new: Callable[[str], bytes]) -> FileDiff | None:
    kinds: list[Any] = [None if e is None else _field(e, "kind") for e in (a, b)]
    modes = [None if e is None else _field(e, "mode") for e in (a, b)]

    def make(status: str, kind: str, **more: Any) -> FileDiff:
        return FileDiff(path, status, kind, old_mode=modes[0], new_mode=modes[1], **more)

    if a is None or b is None:
        side, entry = (1, b) if a is None else (0, a)
        if kinds[side] == "dir" and path in parents[side]:
            return None
        note = {"dir": "empty directory", "symlink": _noun(entry)}.get(kinds[side], "")
        return make("added" if a is None else "removed",
                    "link" if kinds[side] == "symlink" else "tree", note=note)
    if kinds[0] != kinds[1]:
        return make("changed", "link" if "symlink" in kinds else "tree",
                    note=f"was a {_noun(a)}, now a {_noun(b)}")
    targets = (_field(a, "target"), _field(b, "target"))
    if kinds[0] == "symlink" and targets[0] != targets[1]:
        return make("changed", "link", note=f"symlink target {targets[0]} -> {targets[1]}")
    digest = _field(a, "sha256")
    if kinds[0] not in ("dir", "symlink") and (digest is None or digest != _field(b, "sha256")):
        old_bytes, new_bytes = read_old(path), read_new(path)
        if old_bytes != new_bytes:
            kind, changes, lines, note = _content_diff(path, old_bytes, new_bytes)
            return make("changed", kind, changes=changes, lines=lines, note=note)
    return make("mode", "tree") if modes[0] != modes[1] else None


# ---------------------------------------------------------------- file content

def _decode(data: bytes) -> str | None:
    try:
        return None if b"\x00" in data else data.removeprefix(b"\xef\xbb\xbf").decode("utf-8")
    except UnicodeDecodeError:
        return None


def _content_diff(path: str, old: bytes, new: bytes) -> tuple[str, list[Change], list[str], str]:
    old_text, new_text = _decode(old), _decode(new)
    if old_text is None or new_text is None:
        digests = [hashlib.sha256(data).hexdigest()[:12] for data in (old, new)]
        return "binary", [], [], (f"binary files differ: {len(old)} -> {len(new)} bytes, "
                                  f"sha256 {digests[0]}… -> {digests[1]}…")
    note = ""
    try:
        fmt: str | None = detect_format(path, new_text)  # a .conf: INI or directives
    except ConfigError:
        fmt = None
    if fmt is not None:
        name, docs, bad = _NAMES[fmt], [], []
        for side, text in (("old", old_text), ("new", new_text)):
            try:
                data = loads(text, fmt, source=path)
                data = {} if data is None and fmt == "yaml" else data  # an empty YAML file: no keys
                docs.append(coerce_scalars(data) if fmt in STRING_FORMATS else data)
            except ConfigError as exc:
                bad.append((side, (f"{exc.place}: " if exc.place else "") + exc.message))
        if bad:
            where = "both sides" if len(bad) == 2 else f"the {bad[0][0]} side"
            why = "; ".join(f"{side}: {message}" for side, message in bad) if len(bad) == 2 else bad[0][1]
            note = f"not valid {name} on {where}: line diff ({why})"
        else:
            try:
                changes = _diff_flat(*docs) if fmt == "properties" else diff_documents(*docs)
            except RecursionError:
                changes, note = [], f"{name} data nested too deeply to compare: line diff"
            if changes:
                return "semantic", changes, [], ""
            note = note or f"the same {name} data on both sides (comments or layout differ): line diff"
    lines = list(difflib.unified_diff(old_text.splitlines(), new_text.splitlines(),
                                      f"a/{path}", f"b/{path}", lineterm=""))
    if not lines:
        note = "the text differs only in line endings, a byte-order mark or the final newline"
    return "text", [], lines, note


# ---------------------------------------------------------------- documents

def _same(a: Any, b: Any) -> bool:
    if isinstance(a, dict) and isinstance(b, dict) or isinstance(a, list) and isinstance(b, list):
        return a == b  # only empty containers get here
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return (math.isnan(a) and math.isnan(b)) or (a == b and math.copysign(1, a) == math.copysign(1, b))
    return bool(a == b)


def _walk(old: Any, new: Any, parts: tuple[Any, ...], out: list[tuple[tuple[Any, ...], Change]]) -> None:
    if old is _MISSING or new is _MISSING:  # a subtree on one side only: one Change per leaf
        for where, leaf in _leaves(new if old is _MISSING else old, parts):
            change = (Change(format_path(where), "added", new=leaf) if old is _MISSING
                      else Change(format_path(where), "removed", old=leaf))
            out.append((where, change))
    elif isinstance(old, dict) and isinstance(new, dict) and (old and new or not parts):
        for key in old.keys() | new.keys():  # the root dict is never a leaf, as in flatten
            _walk(old.get(key, _MISSING), new.get(key, _MISSING), (*parts, key), out)
    elif isinstance(old, list) and isinstance(new, list) and old and new:
        for index in range(max(len(old), len(new))):
            _walk(old[index] if index < len(old) else _MISSING,
                  new[index] if index < len(new) else _MISSING, (*parts, index), out)
    elif old is not new and not _same(old, new):
        out.append((parts, Change(format_path(parts), "changed", old, new)))


def _leaves(node: Any, parts: tuple[Any, ...]) -> Iterator[tuple[tuple[Any, ...], Any]]:
    if isinstance(node, dict | list) and node:
        for key, value in node.items() if isinstance(node, dict) else enumerate(node):
            yield from _leaves(value, (*parts, key))
    else:
        yield parts, node


def _order(part: Any) -> tuple[int, Any]:
    if isinstance(part, int) and not isinstance(part, bool):
        return (0, part)
    return (1, part) if isinstance(part, str) else (2, repr(part))


def _diff_flat(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Flat documents (.properties): the keys are compared as they are, not spelled as paths."""
    return [Change(key, "removed", old=old[key]) if key not in new
            else Change(key, "added", new=new[key]) if key not in old
            else Change(key, "changed", old[key], new[key])
            for key in sorted(old.keys() | new.keys())
            if key not in old or key not in new or not _same(old[key], new[key])]


# ---------------------------------------------------------------- rendering

def _show(value: Any) -> str:
    """A value as text: a string bare unless it would read as something else (then JSON-quoted)."""
    if isinstance(value, str):
        plain = (value.isprintable() and value == value.strip() != "" and coerce_scalars(value) == value
                 and value.lower() not in ("null", "none", "~") and value[0] not in "\"'[{")
        text = value if plain else json.dumps(value, ensure_ascii=False)
    elif value is None or isinstance(value, bool | dict | list):
        try:
            text = json.dumps(value, ensure_ascii=False, default=str)
        except (TypeError, ValueError):  # keys JSON cannot spell
            text = repr(value)
    else:
        text = repr(value) if isinstance(value, int | float) else str(value)
    return text if len(text) <= _LONGEST else text[:_LONGEST - 1] + "…"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _code(text: str) -> str:
    return _cell(text) if "`" in text else f"`{_cell(text)}`"
