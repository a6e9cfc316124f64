"""Snapshot diffs: tree-level statuses, key-path diffs for the six formats, and the fallbacks.

The property at the end checks diff_documents against flatten: applying the Changes of
``diff_documents(a, b)`` to ``flatten(a)`` gives exactly ``flatten(b)`` (types included).
"""

from __future__ import annotations

import copy
import datetime as dt
import hashlib
import json
import math
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from testfleet.configs.paths import flatten
from testfleet.snapshots.diff import (
    Change,
    FileDiff,
    TreeDiff,
    diff_documents,
    diff_trees,
)


class Snap:
    """A snapshot's entries and contents, recording which paths were read."""

    def __init__(self) -> None:
        self.entries: dict[str, dict[str, Any]] = {}
        self.blobs: dict[str, bytes] = {}
        self.reads: list[str] = []

    def file(self, path: str, data: str | bytes, mode: int = 0o644) -> Snap:
        data = data.encode() if isinstance(data, str) else data
        self.entries[path] = {"kind": "file", "mode": mode, "sha256": hashlib.sha256(data).hexdigest(),
                              "target": None}
        self.blobs[path] = data
        return self

    def dir(self, path: str, mode: int = 0o755) -> Snap:
        self.entries[path] = {"kind": "dir", "mode": mode, "sha256": None, "target": None}
        return self

    def link(self, path: str, target: str) -> Snap:
        self.entries[path] = {"kind": "symlink", "mode": 0o777, "sha256": None, "target": target}
        return self

    def read(self, path: str) -> bytes:
        self.reads.append(path)
        return self.blobs[path]


def diff(old: Snap, new: Snap) -> TreeDiff:
    return diff_trees("A", old.entries, "B", new.entries, old.read, new.read)


def diff_file(path: str, old: str | bytes, new: str | bytes) -> FileDiff:
    found = diff(Snap().file(path, old), Snap().file(path, new))
    assert [f.path for f in found.files] == [path]
    return found.files[0]


# ---------------------------------------------------------------- six formats

SAMPLES = {
    "app.yaml": ("server:\n  port: 8080\n  host: example.org\ndebug: true\n",
                 ("server:\n  port: 9090\n  host: example.org\n  timeout: 30\n"
                  "cache:\n  ttl: 30s\n  size: 100\n")),
    "app.json": ('{"server": {"port": 8080, "host": "example.org"}, "debug": true}',
                 ('{"server": {"port": 9090, "host": "example.org", "timeout": 30},\n'
                  ' "cache": {"ttl": "30s", "size": 100}}')),
    "app.toml": ('debug = true\n[server]\nport = 8080\nhost = "example.org"\n',
                 ('[server]\nport = 9090\nhost = "example.org"\ntimeout = 30\n'
                  '[cache]\nttl = "30s"\nsize = 100\n')),
    "app.ini": ("[main]\nname = web\ndebug = true\n[server]\nport = 8080\nhost = example.org\n",
                ("[main]\nname = web\n[server]\nport = 9090\nhost = example.org\ntimeout = 30\n"
                 "[cache]\nttl = 30s\nsize = 100\n")),
    "app.xml": (('<config><server name="web"><port>8080</port><host>example.org</host></server>'
                 "<debug>true</debug></config>"),
                ('<config><server name="web"><port>9090</port><host>example.org</host><timeout>30</timeout>'
                 "</server><cache><ttl>30s</ttl><size>100</size></cache></config>")),
    "app.properties": ("server.port=8080\nserver.host=example.org\ndebug=true\n",
                       ("server.port=9090\nserver.host=example.org\nserver.timeout=30\n"
                        "cache.ttl=30s\ncache.size=100\n")),
}


def expected(prefix: str = "", debug: str = "debug") -> list[Change]:
    return [Change(prefix + "cache.size", "added", new=100), Change(prefix + "cache.ttl", "added", new="30s"),
            Change(prefix + debug, "removed", old=True),
            Change(prefix + "server.port", "changed", 8080, 9090),
            Change(prefix + "server.timeout", "added", new=30)]


@pytest.mark.parametrize(("path", "changes"), [
    ("app.yaml", expected()), ("app.json", expected()), ("app.toml", expected()),
    ("app.ini", expected(debug="main.debug")), ("app.xml", expected("config.")),
    ("app.properties", expected()),
])
def test_semantic_diff_in_each_format(path: str, changes: list[Change]) -> None:
    found = diff_file(path, *SAMPLES[path])
    assert (found.status, found.kind, found.note, found.lines) == ("changed", "semantic", "", [])
    assert found.changes == changes


def test_an_empty_yaml_file_holds_no_keys() -> None:
    assert diff_file("a.yaml", "# nothing yet\n", "a: 1\n").changes == [Change("a", "added", new=1)]


def test_properties_keys_are_compared_as_written() -> None:
    found = diff_file("a.properties", "hosts[0]=a\nlabels.app.kubernetes.io/name=web\n",
                      "hosts[0]=b\nlabels.app.kubernetes.io/name=api\n")
    assert found.changes == [Change("hosts[0]", "changed", "a", "b"),
                             Change("labels.app.kubernetes.io/name", "changed", "web", "api")]


def test_nested_awkward_keys_are_spelled_as_paths_spells_them() -> None:
    old = {"labels": {"app.kubernetes.io/name": "web"}}
    assert diff_documents(old, {"labels": {"app.kubernetes.io/name": "api"}}) == [
        Change('labels["app.kubernetes.io/name"]', "changed", "web", "api")]


# ---------------------------------------------------------------- diff_documents

def test_lists_are_compared_by_index_in_numeric_order() -> None:
    old = {"hosts": [f"h{i}" for i in range(12)]}
    new = {"hosts": [f"h{i}" for i in range(11)]}
    new["hosts"][2], new["hosts"][10] = "x", "y"
    assert diff_documents(old, new) == [Change("hosts[2]", "changed", "h2", "x"),
                                        Change("hosts[10]", "changed", "h10", "y"),
                                        Change("hosts[11]", "removed", old="h11")]
    assert diff_documents([1, 2], [1, 3, {"a": 4}]) == [Change("[1]", "changed", 2, 3),
                                                        Change("[2].a", "added", new=4)]


def test_a_change_of_type_is_a_change() -> None:
    found = diff_file("app.json", '{"port": 8080, "on": true, "n": 1}', '{"port": "8080", "on": 1, "n": 1.0}')
    assert found.changes == [Change("n", "changed", 1, 1.0), Change("on", "changed", True, 1),
                             Change("port", "changed", 8080, "8080")]
    assert "~ port: 8080 -> \"8080\"" in diff(Snap().file("app.json", '{"port": 8080}'),
                                              Snap().file("app.json", '{"port": "8080"}')).render_text()


def test_a_change_of_shape_is_one_change_at_that_path() -> None:
    assert diff_documents({"db": "sqlite"}, {"db": {"engine": "pg", "port": 5432}}) == [
        Change("db", "changed", "sqlite", {"engine": "pg", "port": 5432})]
    assert diff_documents({"db": {"a": 1}}, {"db": [1]}) == [Change("db", "changed", {"a": 1}, [1])]
    assert diff_documents({"s": {}}, {"s": {"k": 1}}) == [Change("s", "changed", {}, {"k": 1})]
    assert diff_documents({}, {"s": {}}) == [Change("s", "added", new={})]
    assert diff_documents({"x": 0.0, "y": math.nan}, {"x": -0.0, "y": math.nan}) == [
        Change("x", "changed", 0.0, -0.0)]


# ---------------------------------------------------------------- fallbacks

def test_invalid_yaml_on_the_new_side_falls_back_to_a_line_diff() -> None:
    found = diff_file("app.yaml", "server:\n  port: 8080\n", "server:\n  port: 8080\n bad: [\n")
    assert (found.status, found.kind, found.changes) == ("changed", "text", [])
    assert found.note.startswith("not valid YAML on the new side: line diff (line 3, ")
    assert found.lines[:3] == ["--- a/app.yaml", "+++ b/app.yaml", "@@ -1,2 +1,3 @@"]
    assert found.lines[3:] == [" server:", "   port: 8080", "+ bad: ["]


def test_same_data_with_another_layout_gives_a_line_diff_with_a_note() -> None:
    found = diff_file("app.json", '{"a": 1}\n', '{\n  "a": 1\n}\n')
    assert found.kind == "text" and "the same JSON data on both sides" in found.note
    assert "+  \"a\": 1" in found.lines
    found = diff_file("notes.txt", "one\ntwo\n", "one\r\ntwo")
    assert (found.kind, found.lines) == ("text", []) and "line endings" in found.note


def test_plain_text_gets_a_unified_diff() -> None:
    found = diff_file("README", "a\nb\nc\n", "a\nB\nc\n")
    assert (found.kind, found.note) == ("text", "")
    assert found.lines == ["--- a/README", "+++ b/README", "@@ -1,3 +1,3 @@", " a", "-b", "+B", " c"]


def test_binary_files_differ_by_size_and_digest() -> None:
    old, new = b"\xff\xfe\x00\x01", b"\x89PNG\r\n\x1a\n\x00"
    found = diff_file("logo.png", old, new)
    assert (found.status, found.kind, found.changes, found.lines) == ("changed", "binary", [], [])
    digests = [hashlib.sha256(data).hexdigest()[:12] for data in (old, new)]
    assert found.note == f"binary files differ: 4 -> 9 bytes, sha256 {digests[0]}… -> {digests[1]}…"
    assert diff_file("a.json", b'{"a": 1}', b'{"a": 1}\x00').kind == "binary"


# ---------------------------------------------------------------- tree level

def test_added_removed_mode_only_and_directories() -> None:
    old = (Snap().file("keep.txt", "same").file("gone.txt", "x").file("run.sh", "#!/bin/sh\n", 0o644)
           .dir("conf").file("conf/a.ini", "[s]\nk = 1\n").dir("empty-old").dir("logs", 0o755))
    new = (Snap().file("keep.txt", "same").file("run.sh", "#!/bin/sh\n", 0o755).dir("conf")
           .file("conf/a.ini", "[s]\nk = 1\n").dir("empty-new").dir("sub").file("sub/new.yaml", "a: 1\n")
           .dir("logs", 0o700))
    found = diff(old, new)
    assert [(f.path, f.status, f.kind, f.old_mode, f.new_mode, f.note) for f in found.files] == [
        ("empty-new", "added", "tree", None, 0o755, "empty directory"),
        ("empty-old", "removed", "tree", 0o755, None, "empty directory"),
        ("gone.txt", "removed", "tree", 0o644, None, ""),
        ("logs", "mode", "tree", 0o755, 0o700, ""),
        ("run.sh", "mode", "tree", 0o644, 0o755, ""),
        ("sub/new.yaml", "added", "tree", None, 0o644, ""),
    ]
    assert old.reads == new.reads == []  # nothing whose sha256 is the same, nor whole added/removed files
    assert found.counts() == {"added": 2, "removed": 2, "changed": 0, "mode": 2}
    text = found.render_text()
    assert text.splitlines()[0] == "snapshot A -> B: 2 added, 2 removed, 2 mode only"
    assert "  m run.sh  (mode 0644 -> 0755)" in text and "  + sub/new.yaml" in text


def test_symlinks_target_and_kind_changes() -> None:
    old = Snap().link("current", "releases/1").file("cfg", "x").link("same", "t").link("old-link", "a")
    new = (Snap().link("current", "releases/2").link("cfg", "elsewhere").link("same", "t")
           .link("new-link", "b"))
    found = diff(old, new)
    assert [(f.path, f.status, f.kind, f.note) for f in found.files] == [
        ("cfg", "changed", "link", "was a file, now a symlink to elsewhere"),
        ("current", "changed", "link", "symlink target releases/1 -> releases/2"),
        ("new-link", "added", "link", "symlink to b"),
        ("old-link", "removed", "link", "symlink to a"),
    ]
    assert old.reads == new.reads == []


def test_identical_trees_are_empty_and_read_nothing() -> None:
    def tree() -> Snap:
        return Snap().file("a.yaml", "a: 1\n").dir("d").file("d/b.bin", b"\xff").link("l", "a.yaml").dir("e")
    old, new = tree(), tree()
    found = diff(old, new)
    assert found.empty and found.files == [] and old.reads == new.reads == []
    assert found.render_text() == "snapshot A -> B: no differences\n"
    assert "no differences" in found.render_markdown()


def test_content_is_read_only_where_the_digest_differs() -> None:
    old = Snap().file("a.txt", "1").file("b.txt", "same").file("c.txt", "x")
    new = Snap().file("a.txt", "2").file("b.txt", "same").file("c.txt", "x", 0o600)
    found = diff(old, new)
    assert old.reads == new.reads == ["a.txt"]
    assert [(f.path, f.status) for f in found.files] == [("a.txt", "changed"), ("c.txt", "mode")]


def test_entries_may_be_objects_with_attributes() -> None:
    @dataclass(frozen=True)
    class Entry:
        kind: str
        mode: int
        sha256: str | None = None
        target: str | None = None
    found = diff_trees("A", {"a.json": Entry("file", 0o644, "1")}, "B", {"a.json": Entry("file", 0o600, "2")},
                       lambda p: b'{"a": 1}', lambda p: b'{"a": 2}')
    assert found.files == [FileDiff("a.json", "changed", "semantic", [Change("a", "changed", 1, 2)],
                                    [], 0o644, 0o600)]


# ---------------------------------------------------------------- output

def test_render_text_and_markdown() -> None:
    old, new = SAMPLES["app.yaml"]
    found = diff(Snap().file("app.yaml", old).file("notes.md", "a\n"),
                 Snap().file("app.yaml", new).file("notes.md", "b | c\n"))
    text = found.render_text()
    assert text.splitlines()[:3] == ["snapshot A -> B: 2 changed", "  ~ app.yaml  (5 key paths)",
                                     "  ~ notes.md  (+1 -1 lines)"]
    for line in ("  ~ server.port: 8080 -> 9090", "  + cache.ttl: 30s", "  - debug: true", "  +b | c"):
        assert line in text.splitlines()
    markdown = found.render_markdown()
    assert markdown.startswith("## Snapshot diff `A` → `B`\n")
    assert "| ~ | `server.port` | `8080` | `9090` |" in markdown
    assert "| + | `cache.ttl` |  | `30s` |" in markdown
    assert "```diff\n--- a/notes.md\n+++ b/notes.md\n@@ -1 +1 @@\n-a\n+b | c\n```" in markdown


def test_to_dict_is_json() -> None:
    old = "when: 2024-01-01\nratio: .nan\nblob: !!binary aGk=\nkeys: {1: a}\n"
    new = "when: 2024-02-01\nratio: .inf\nblob: !!binary aG8=\nkeys: {1: b}\nlist: [1, {x: null}]\n"
    found = diff(Snap().file("a.yml", old).file("b.bin", b"\xff"), Snap().file("a.yml", new))
    data = json.loads(json.dumps(found.to_dict(), allow_nan=False))
    assert data["old"] == "A" and data["counts"] == {"added": 0, "removed": 1, "changed": 1, "mode": 0}
    changes = {c["path"]: c for c in data["files"][0]["changes"]}
    assert changes["when"]["new"] == repr(dt.date(2024, 2, 1)) and changes["ratio"]["new"] == "inf"
    assert changes["blob"]["old"] == "b'hi'" and changes["list[1].x"] == {
        "path": "list[1].x", "kind": "added", "old": None, "new": None}
    assert changes["keys[1]"]["new"] == "b"  # a non-string key, spelled as format_path spells it
    assert data["files"][1] == {"path": "b.bin", "status": "removed", "kind": "tree", "old_mode": 0o644,
                                "new_mode": None, "note": "", "lines": [], "changes": []}


# ---------------------------------------------------------------- property

keys = st.text(alphabet='ab.["', max_size=2)
leaves = (st.none() | st.booleans() | st.integers(-2, 2)
          | st.sampled_from([0.0, -0.0, 1.0, math.nan, math.inf])
          | st.text(alphabet="ab1", max_size=2) | st.just({}) | st.just([]))
nested = st.recursive(leaves, lambda inner: st.lists(inner, max_size=3)
                      | st.dictionaries(keys, inner, max_size=3), max_leaves=12)
documents = st.dictionaries(keys, nested, max_size=4)


def _at(path: str, value: Any) -> dict[str, Any]:
    """The flat entries a value at ``path`` contributes to flatten's output."""
    if not (isinstance(value, dict | list) and value):
        return {path: value}
    return {path + sub if not path or sub.startswith("[") else f"{path}.{sub}": leaf
            for sub, leaf in flatten(value).items()}


def _typed(flat: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {path: (type(value).__name__, repr(value)) for path, value in flat.items()}


def _apply(flat: dict[str, Any], changes: list[Change]) -> dict[str, Any]:
    out = dict(flat)
    for change in changes:
        if change.kind == "added":
            assert change.path not in out
            out[change.path] = change.new
        elif change.kind == "removed":
            assert repr(out.pop(change.path)) == repr(change.old)
        else:  # a leaf, or a whole subtree when the shape changed: replace all at and below the path
            for path, value in _at(change.path, change.old).items():
                assert repr(out.pop(path)) == repr(value)
            out.update(_at(change.path, change.new))
    return out


@given(documents, documents)
@example({"a": 1}, {"a": {"b": [1, {}]}})
@example({"a": {"b": [1, 2]}, "c": []}, {"a": {"b": [True]}, "c": [[]]})
@example({"x": 0.0, '["': {}}, {"x": -0.0, '["': {"": None}})
def test_applying_the_changes_to_flatten_old_gives_flatten_new(a: dict[str, Any], b: dict[str, Any]) -> None:
    changes = diff_documents(a, b)
    assert len({c.path for c in changes}) == len(changes)
    assert _typed(_apply(flatten(a), changes)) == _typed(flatten(b))
    assert diff_documents(a, a) == [] and diff_documents(a, copy.deepcopy(a)) == []
    assert (changes == []) == (_typed(flatten(a)) == _typed(flatten(b)))


def test_redis_conf_directives_are_diffed_key_by_key() -> None:
    old = "# redis\nport 6379\nmaxmemory 100mb\nsave 3600 1\nsave 300 100\nappendonly no\n"
    new = "# redis\nport 6380\nmaxmemory 100mb\nsave 3600 1\nappendonly yes\nio-threads 4\n"
    found = diff_file("redis.conf", old, new)
    assert (found.status, found.kind) == ("changed", "semantic")
    assert found.changes == [Change("appendonly", "changed", "no", "yes"),
                             Change("io-threads", "added", new=4),
                             Change("port", "changed", 6379, 6380),
                             Change("save", "changed", ["3600 1", "300 100"], "3600 1")]
