"""Preparing snapshots to save: scan, read, cut, hash; later, pick and compress the new chunks.

Approach: :func:`prepare` turns each (paths, tags, meta) into a :class:`Pending` snapshot (its
entries carry their content SHA-256 and chunk ids) plus the files' chunk positions. The store then
asks its index, in one query, which chunks and snapshots it has; :func:`new_chunks` picks the
rest, each once, and :func:`.chunks.compress_into` packs them. Nothing here touches the index.

A file is stat-ed when found and again after its chunks were compressed: one that changed in
between is refused (its snapshot would mix two versions), as tar and borg warn.
"""

from __future__ import annotations

import os
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from testfleet.snapshots.chunks import Source, cut, hash_chunks, sha256_file, submit
from testfleet.snapshots.tree import (
    FILE,
    Entry,
    Found,
    SnapshotError,
    scan,
    snapshot_id,
)

PathsArg = str | os.PathLike[str] | Sequence[str | os.PathLike[str]]
_BIG_FILE = 4 << 20  # files this large hash the whole file on the pool while chunking


@dataclass
class Pending:
    """A snapshot about to be indexed (by a save or an import); ``new`` when its rows are."""

    snapshot_id: str
    roots: list[str]
    entries: list[Entry]
    tags: set[str]
    meta: dict[str, str]
    created_us: int
    new: bool = True


@dataclass
class Prepared:
    """One snapshot of a save: its :class:`Pending` and, per file, where its chunks are."""

    pending: Pending
    files: list[tuple[Entry, Found, Source, list[tuple[int, int]]]] = field(default_factory=list)


def clean_tags(tags: Iterable[str]) -> set[str]:
    if isinstance(tags, str):
        tags = [tags]
    out = set()
    for tag in tags:
        if not isinstance(tag, str) or not tag.strip():
            raise SnapshotError(f"bad tag {tag!r}", expected="a non-empty text")
        _refuse_control("tag", tag)
        out.add(tag.strip())
    return out


def _refuse_control(what: str, text: str) -> None:
    """Tags and metadata keys are printed as they are: a control character (an escape
    sequence, a line break) would reach the terminal, so it is refused."""
    bad = next((c for c in text if unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp")), None)
    if bad is not None:
        raise SnapshotError(f"bad {what} {text!r}: it holds the control character "
                            f"U+{ord(bad):04X}", expected="printable text (no escapes, tabs "
                                                          "or line breaks)")


def clean_meta(meta: dict[str, str] | None) -> dict[str, str]:
    out = {}
    for key, value in (meta or {}).items():
        if not isinstance(key, str) or not key.strip():
            raise SnapshotError(f"bad metadata key {key!r}", expected="a non-empty text")
        _refuse_control("metadata key", key)
        out[key.strip()] = str(value)
    return out


def prepare(items: Sequence[tuple[PathsArg, Iterable[str], dict[str, str] | None]],
            now_us: int, sources: list[Source], skip: Iterable[Path] = ()) -> list[Prepared]:
    """Scan and hash every item; each file's :class:`Source` is appended to ``sources`` (the
    caller closes them). ``skip``: paths never saved (see :func:`.tree.scan`)."""
    out = []
    for paths, tags, meta in items:
        paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
        entries: list[Entry] = []
        files = []
        for item in scan(paths, skip):
            if item.entry.kind != FILE:
                entries.append(item.entry)
                continue
            assert item.source is not None
            src = Source(item.source, item.entry.size)
            sources.append(src)
            entry, cuts = _hash_file(item.entry, src)
            src.close()  # a mapped file is mapped again only if it has new chunks
            entries.append(entry)
            files.append((entry, item, src, cuts))
        pending = Pending(snapshot_id(entries), [str(p) for p in paths], entries,
                          clean_tags(tags), clean_meta(meta), now_us)
        out.append(Prepared(pending, files))
    return out


def new_chunks(batch: Sequence[Prepared], have_chunks: set[str], have_snapshots: set[str],
               ) -> dict[str, tuple[Source, int, int]]:
    """Chunk id -> (source, offset, length) of every chunk the index lacks, each once; marks
    the snapshots the index already has as not new (their chunks are all stored)."""
    pieces: dict[str, tuple[Source, int, int]] = {}
    for prepared in batch:
        prepared.pending.new = prepared.pending.snapshot_id not in have_snapshots
        if not prepared.pending.new:
            continue
        for entry, _, src, cuts in prepared.files:
            for chunk_id, (offset, length) in zip(entry.chunks, cuts, strict=True):
                if chunk_id not in have_chunks and chunk_id not in pieces:
                    pieces[chunk_id] = (src, offset, length)
    return pieces


def check_unchanged(batch: Sequence[Prepared]) -> None:
    """Refuse a file that changed while it was being saved."""
    for prepared in batch:
        for _, item, _, _ in prepared.files:
            assert item.source is not None and item.stat is not None
            try:
                now = os.stat(item.source)
            except OSError:
                now = None
            before = item.stat
            if now is None or (now.st_size, now.st_mtime_ns, now.st_ino) != (
                    before.st_size, before.st_mtime_ns, before.st_ino):
                raise SnapshotError("changed while it was being saved; save again",
                                    source=str(item.source))


def _hash_file(entry: Entry, src: Source) -> tuple[Entry, list[tuple[int, int]]]:
    """The entry with its SHA-256 and chunk ids, and the chunks' (offset, length)."""
    data = src.data
    if len(data) >= _BIG_FILE:
        whole = submit(sha256_file, data)  # on the pool, while this thread cuts the chunks
        cuts = cut(data)
        ids = hash_chunks(data, cuts)
        digest = whole.result()
    else:
        cuts = cut(data)
        ids = hash_chunks(data, cuts)
        digest = ids[0] if len(cuts) == 1 else sha256_file(data)  # one chunk: the same hash
    return Entry(entry.path, entry.kind, entry.mode, len(data), digest, None, tuple(ids)), cuts
