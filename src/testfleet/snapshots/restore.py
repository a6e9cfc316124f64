"""Restoring a snapshot: exact bytes and permission bits, symlinks recreated, all or nothing.

The setuid, setgid and sticky bits are never restored (as tar does for a non-root user): an
imported archive could otherwise plant a ``-rwsrwxrwx`` program. A snapshot keeps them in its
entries (they are part of its id); only the restored files lack them.

Approach:

* The tree is checked again before anything is written (:func:`.tree.check_entries`: relative
  paths, nothing below a file or symlink, symlinks that stay inside), whatever its origin: the
  index is trusted no more than an imported archive.
* Everything is built in a staging directory next to DEST (same file system), then renamed into
  place in one step. DEST must not exist or be an empty directory; a damaged chunk stops the
  restore and removes the staging directory, leaving DEST as it was.
* Files are created with ``O_EXCL | O_NOFOLLOW`` (nothing in the fresh staging tree can redirect
  them), directories owner-writable until every entry is in; symlinks come last, then the
  directories get their modes, deepest first (a read-only directory would refuse its children).
* A large file's chunks are decompressed, checked and ``pwrite``-n at their offsets by the
  shared thread pool, ~1 MiB per task and a frame's chunks in one task (the reader decompresses
  each frame once): no ordering is needed, and zstd and SHA-256 release the GIL.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
from collections.abc import Callable
from pathlib import Path

from testfleet.snapshots.chunks import ChunkDamage, ChunkRow, PackReader, by_frame, pmap
from testfleet.snapshots.tree import (
    DIR,
    FILE,
    SYMLINK,
    DamageError,
    Entry,
    SnapshotError,
    check_entries,
)


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


_DEFAULT_DIR_MODE = 0o777 & ~_umask()
#: The mode bits a restore sets: read/write/execute for all; never S_ISUID, S_ISGID, S_ISVTX.
PERMISSION_BITS = stat.S_IRWXU | stat.S_IRWXG | stat.S_IRWXO


def check_dest(dest: Path) -> None:
    """Refuse a DEST that is a file, a symlink or a non-empty directory."""
    if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
        raise SnapshotError("exists and is not a directory", source=str(dest),
                            expected="a new path or an empty directory")
    if dest.is_dir():
        with os.scandir(dest) as listing:
            if next(listing, None) is not None:
                raise SnapshotError("is not empty; restore refuses to mix trees",
                                    source=str(dest), expected="a new path or an empty directory")


def write_tree(sid: str, entries: list[Entry], rows: dict[str, ChunkRow], reader: PackReader,
               dest: Path) -> Path:
    """Restore ``entries`` of snapshot ``sid`` at ``dest`` (see the module docstring)."""
    check_entries(entries, where=f"snapshot {sid[:12]}")
    for e in entries:
        for c in e.chunks if e.kind == FILE else ():
            if c not in rows:
                raise DamageError(f"snapshot {sid[:12]} file {e.path!r}: chunk {c[:12]} is "
                                  "missing from the index")
    dest = Path(os.path.abspath(dest))
    check_dest(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{dest.name}.restore-", dir=dest.parent))
    try:
        dirs: list[tuple[Path, int]] = []
        for e in sorted(entries, key=lambda e: e.path):
            path = staging / e.path
            if e.kind == SYMLINK:
                continue
            path.parent.mkdir(parents=True, exist_ok=True)  # parents an archive left implicit
            if e.kind == DIR:
                os.mkdir(path, 0o700)
                dirs.append((path, e.mode & PERMISSION_BITS))
            else:
                _write_file(sid, e, rows, reader, path)
        for e in entries:
            if e.kind == SYMLINK:
                (staging / e.path).parent.mkdir(parents=True, exist_ok=True)
                os.symlink(e.target or "", staging / e.path)
        for path, mode in reversed(dirs):
            os.chmod(path, mode)
        os.chmod(staging, _DEFAULT_DIR_MODE)
        os.replace(staging, dest)  # rename(2) also replaces an empty directory
    except BaseException:
        remove_tree(staging)
        raise
    return dest


def _write_file(sid: str, e: Entry, rows: dict[str, ChunkRow], reader: PackReader,
                path: Path) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
                 0o600)
    try:
        work, offset = [], 0
        for c in e.chunks:
            work.append((rows[c], offset))
            offset += rows[c].size
        if offset != e.size:
            raise DamageError(f"snapshot {sid[:12]} file {e.path!r}: its chunks hold {offset} "
                              f"bytes, the index says {e.size}")

        try:
            pmap(_writer(fd, reader), by_frame(work, lambda w: w[0]))
        except ChunkDamage as exc:
            raise DamageError(f"snapshot {sid[:12]} file {e.path!r}: {exc}") from None
        os.fchmod(fd, e.mode & PERMISSION_BITS)  # never setuid, setgid or sticky
    finally:
        os.close(fd)


def _writer(fd: int, reader: PackReader) -> Callable[[list[tuple[ChunkRow, int]]], None]:
    def run(group: list[tuple[ChunkRow, int]]) -> None:
        for row, at in group:
            data = reader.view(row)
            done = 0
            while done < len(data):  # pwrite may write less than asked
                done += os.pwrite(fd, data[done:], at + done)
    return run


def remove_tree(path: Path) -> None:
    """Remove a (staging) tree, even one whose directories were made read-only."""
    if not path.exists():
        return
    for root, dirs, _ in os.walk(path):
        for d in dirs:
            full = os.path.join(root, d)
            if not os.path.islink(full):
                os.chmod(full, 0o700)
    shutil.rmtree(path, ignore_errors=True)
