"""Trees of a snapshot: scanning paths into entries, the content id, and the safety rules.

Approach:

* An :class:`Entry` is one file, directory or symlink under a relative POSIX path. Saving one
  directory stores its *contents* (restoring gives them back under DEST); saving a file, or
  several paths, stores each under its own name. Symlinks are kept as links, never followed
  (except a symlink given on the command line, which is what the user named).
* The snapshot id is the SHA-256 of a canonical JSON of the sorted entries (path, kind, mode,
  content SHA-256, symlink target): the same tree always has the same id, whatever its tags,
  metadata, location or time of saving.
* :func:`check_entries` is the one gate for trees that come from outside (an imported archive)
  or that are about to be written (restore): relative paths without ``.``/``..``, no entry below
  a file or symlink, and symlinks that stay inside the tree when resolved the way the kernel
  would, link by link, through the tree's own links (a lexical check alone can be fooled by a
  chain of links containing ``..``).
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

# defined in testfleet.errors; re-exported from their old home
from testfleet.errors import DamageError as DamageError
from testfleet.errors import SnapshotError as SnapshotError

FILE, DIR, SYMLINK = "file", "dir", "symlink"
KINDS = (FILE, DIR, SYMLINK)
ID_FORMAT = "testfleet-snapshot/1"  # part of the hashed text: a new canonical form gets a new tag
_MAX_LINK_HOPS = 40  # as the kernel's ELOOP limit


@dataclass(frozen=True)
class Entry:
    """One file, directory or symlink of a snapshot, by relative POSIX path."""

    path: str
    kind: str
    mode: int
    size: int = 0
    sha256: str | None = None
    target: str | None = None
    chunks: tuple[str, ...] = field(default=())

    def identity(self) -> list[object]:
        """What the snapshot id hashes for this entry."""
        return [self.path, self.kind, self.mode, self.sha256, self.target]

    def to_dict(self) -> dict[str, object]:
        return {"path": self.path, "kind": self.kind, "mode": self.mode, "size": self.size,
                "sha256": self.sha256, "target": self.target, "chunks": list(self.chunks)}


def snapshot_id(entries: Iterable[Entry]) -> str:
    """SHA-256 of the canonical JSON of the entries' identities, sorted by path."""
    body = [e.identity() for e in sorted(entries, key=lambda e: e.path)]
    text = json.dumps([ID_FORMAT, body], separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# -- scanning --------------------------------------------------------------------------------

@dataclass
class Found:
    """A path met while scanning: its entry (without content hashes yet) and, for files, where
    to read it and the stat to compare after reading (a file changed mid-save is refused)."""

    entry: Entry
    source: Path | None = None
    stat: os.stat_result | None = None


def scan(paths: Sequence[str | os.PathLike[str]], skip: Iterable[Path] = ()) -> list[Found]:
    """Walk ``paths`` into entries sorted by path (see the module docstring for the layout),
    leaving out the ``skip`` paths below them (the store's own files, when a tree holds them)."""
    if not paths:
        raise SnapshotError("nothing to save", expected="at least one file or directory")
    roots = [Path(p) for p in paths]
    for root in roots:
        if not root.exists():
            raise SnapshotError("no such file or directory", source=str(root))
    found: dict[str, Found] = {}
    if len(roots) == 1 and roots[0].is_dir():
        _walk(roots[0].resolve(), "", found, frozenset(skip))
    else:
        for root in roots:
            name = root.resolve().name
            if name in found:
                raise SnapshotError(f"two paths are both named {name!r}", source=str(root),
                                    expected="paths with distinct names (or save their parent)")
            real = root.resolve()
            if real.is_dir():
                found[name] = Found(Entry(name, DIR, _mode(real.stat())))
                _walk(real, name, found, frozenset(skip))
            else:
                _add_file(real, name, real.stat(), found)
    items = [found[k] for k in sorted(found)]
    check_entries([f.entry for f in items], where=", ".join(map(str, roots)))
    return items


def _walk(directory: Path, prefix: str, found: dict[str, Found], skip: frozenset[Path]) -> None:
    # os.scandir keeps lstat results: no extra system call per entry, symlinks not followed.
    try:
        listing = sorted(os.scandir(directory), key=lambda d: d.name)
    except OSError as exc:
        raise SnapshotError(f"cannot read the directory: {exc.strerror}",
                            source=str(directory)) from exc
    for item in listing:
        if skip and Path(item.path) in skip:
            continue
        rel = f"{prefix}/{item.name}" if prefix else item.name
        _check_name(rel, item.path)
        st = item.stat(follow_symlinks=False)
        if stat.S_ISLNK(st.st_mode):
            found[rel] = Found(Entry(rel, SYMLINK, 0o777, target=os.readlink(item.path)))
        elif stat.S_ISDIR(st.st_mode):
            found[rel] = Found(Entry(rel, DIR, _mode(st)))
            _walk(Path(item.path), rel, found, skip)
        else:
            _add_file(Path(item.path), rel, st, found)


def _add_file(path: Path, rel: str, st: os.stat_result, found: dict[str, Found]) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise SnapshotError("is not a regular file, directory or symlink (a device, socket or "
                            "FIFO cannot be snapshotted)", source=str(path))
    found[rel] = Found(Entry(rel, FILE, _mode(st), size=st.st_size), source=path, stat=st)


def _check_name(rel: str, where: str) -> None:
    try:
        rel.encode("utf-8")
    except UnicodeEncodeError:
        raise SnapshotError("the file name is not valid UTF-8", source=os.fsdecode(where),
                            expected="UTF-8 file names (the index stores text)") from None


def _mode(st: os.stat_result) -> int:
    return stat.S_IMODE(st.st_mode)


# -- safety ----------------------------------------------------------------------------------

def check_path(path: str, *, where: str) -> None:
    """Refuse a path that is not a plain relative POSIX path inside the tree."""
    parts = path.split("/")
    if not path or path.startswith("/") or "\x00" in path or any(p in ("", ".", "..")
                                                                  for p in parts):
        raise SnapshotError(f"refused path {path!r}: absolute, empty, or with '.'/'..' "
                            "components", source=where,
                            expected="relative paths inside the snapshot")


def check_entries(entries: Sequence[Entry], *, where: str) -> None:
    """Refuse a tree that could write outside its root (see the module docstring)."""
    kinds: dict[str, str] = {}
    for e in entries:
        check_path(e.path, where=where)
        if e.kind not in KINDS:
            raise SnapshotError(f"entry {e.path!r} has unknown kind {e.kind!r}", source=where,
                                expected="file, dir or symlink")
        if e.path in kinds:
            raise SnapshotError(f"entry {e.path!r} appears twice", source=where)
        if not 0 <= e.mode <= 0o7777:
            raise SnapshotError(f"entry {e.path!r} has mode {e.mode!r}", source=where,
                                expected="permission bits 0..0o7777")
        kinds[e.path] = e.kind
    for e in entries:
        parts = e.path.split("/")
        for i in range(1, len(parts)):
            parent = "/".join(parts[:i])
            if kinds.get(parent, DIR) != DIR:
                raise SnapshotError(f"entry {e.path!r} lies below {kinds[parent]} {parent!r}",
                                    source=where, expected="entries below directories only")
    links = {e.path: e.target for e in entries if e.kind == SYMLINK}
    for path, target in links.items():
        if not target or target.startswith("/") or "\x00" in target:
            raise SnapshotError(f"refused symlink {path!r} -> {target!r}: an absolute or empty "
                                "target", source=where,
                                expected="symlinks that point inside the snapshot")
        if _escapes(path, links):
            raise SnapshotError(f"refused symlink {path!r} -> {target!r}: it points outside "
                                "the snapshot", source=where,
                                expected="symlinks that point inside the snapshot")


def _escapes(link: str, links: dict[str, str | None]) -> bool:
    """Whether following ``link`` (and any link met on the way) leaves the tree's root."""
    hops = 0

    def walk(base: list[str], target: str) -> list[str] | None:
        nonlocal hops
        stack = list(base)
        parts = [p for p in target.split("/") if p not in ("", ".")]
        for part in parts:
            if part == "..":
                if not stack:
                    return None
                stack.pop()
                continue
            stack.append(part)
            here = "/".join(stack)
            if here in links:
                hops += 1
                if hops > _MAX_LINK_HOPS:
                    return None  # a loop: refuse rather than guess
                resolved = walk(stack[:-1], links[here] or "")
                if resolved is None:
                    return None
                stack = resolved
        return stack

    parts = link.split("/")
    return walk(parts[:-1], links[link] or "") is None
