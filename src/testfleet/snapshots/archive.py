"""Moving snapshots between stores: ONE tar archive per export, checked in full on import.

Layout: ``manifest.json`` first (format, the snapshots with their ids, entries, tags, meta and
creation times, and the chunk list: SHA-256, raw size, stored size), then one member per chunk,
``chunks/<sha256>``, holding that chunk alone as one zstd frame: export reads each chunk from its
pack frame (checked) and compresses it on its own, so every member stands by itself.

Import trusts nothing in the archive. It never extracts: members are read one by one into
memory, only ``manifest.json`` and ``chunks/<64 hex digits>`` regular files are accepted, and
before anything is written it checks that

* every snapshot's entries hash to its id and pass the tree rules (relative paths without
  ``..``, nothing below a file or symlink, symlinks that stay inside the snapshot);
* every chunk decompresses to its declared size and hashes to its id;
* every file's chunks are all there (a truncated archive loses some) and its bytes hash to the
  file's SHA-256 (a manifest whose chunk lists were swapped keeps the snapshot id but not this).

Then the new chunks go into one pack, grouped into ~1 MiB frames in archive order as a save
groups a file's chunks, and every row into one transaction, as a save does.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import tarfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from testfleet.atomic import atomic_open
from testfleet.snapshots.chunks import (
    MAX_CHUNK,
    ChunkDamage,
    PackReader,
    PackWriter,
    by_frame,
    check_frame,
    compress_into,
    compressor,
    pmap,
)
from testfleet.snapshots.save import Pending, clean_meta, clean_tags
from testfleet.snapshots.store import SnapshotStore
from testfleet.snapshots.tree import (
    FILE,
    KINDS,
    DamageError,
    Entry,
    SnapshotError,
    check_entries,
    snapshot_id,
)

FORMAT = "testfleet-snapshots"
VERSION = 1
MANIFEST = "manifest.json"
MAX_MANIFEST = 256 << 20
_HEX64 = re.compile(r"[0-9a-f]{64}")
_CHUNK_MEMBER = re.compile(r"chunks/([0-9a-f]{64})")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Moved:
    """What an export wrote or an import read: snapshot ids, chunks and their stored bytes."""

    snapshots: list[str]
    chunks: int
    stored: int
    new_snapshots: int = 0


# -- export ----------------------------------------------------------------------------------

def export_archive(ss: SnapshotStore, refs: list[str], out: str | os.PathLike[str]) -> Moved:
    """Write the snapshots named by ``refs`` (and their chunks) to one tar file ``out``."""
    ids = list(dict.fromkeys(ss.resolve(r) for r in refs))
    if not ids:
        raise SnapshotError("nothing to export", expected="at least one snapshot id")
    infos = {i.snapshot_id: i for i in ss.list(ids=ids)}
    trees = {sid: ss.entries(sid) for sid in ids}
    user: dict[str, tuple[str, str]] = {}
    for sid, entries in trees.items():
        for e in entries:
            for c in e.chunks:
                user.setdefault(c, (sid, e.path))
    rows = ss.chunk_rows(user)
    for c, (sid, path) in user.items():
        if c not in rows:
            raise DamageError(f"snapshot {sid[:12]} file {path!r}: chunk {c[:12]} is missing "
                              "from the index")
    order = list(user)
    with PackReader(ss.packs_dir) as reader:
        def run(group: list[str]) -> list[bytes]:
            cctx = compressor()
            out_frames = []
            for c in group:
                try:
                    raw = reader.view(rows[c])  # checked: never export damage silently
                except ChunkDamage as exc:
                    sid, path = user[c]
                    raise DamageError(f"snapshot {sid[:12]} file {path!r}: {exc}") from None
                out_frames.append(cctx.compress(raw))
            return out_frames
        frames = [f for part in pmap(run, by_frame(order, lambda c: rows[c])) for f in part]
    manifest = {
        "format": FORMAT, "version": VERSION,
        "snapshots": [{
            "snapshot_id": sid, "created_at": infos[sid].created_at.isoformat(),
            "roots": infos[sid].roots, "tags": list(infos[sid].tags), "meta": infos[sid].meta,
            "entries": [e.to_dict() for e in trees[sid]]} for sid in ids],
        "chunks": [{"sha256": c, "size": rows[c].size, "stored": len(frame),
                    "compression": "zstd"} for c, frame in zip(order, frames, strict=True)],
    }
    with atomic_open(out) as handle:  # a full disk leaves no half archive
        with tarfile.open(fileobj=handle, mode="w", format=tarfile.PAX_FORMAT) as tar:
            now = time.time()
            _add(tar, MANIFEST, json.dumps(manifest, indent=1).encode(), now)
            for c, frame in zip(order, frames, strict=True):
                _add(tar, f"chunks/{c}", frame, now)
    return Moved(ids, len(order), sum(len(f) for f in frames))


def _add(tar: tarfile.TarFile, name: str, data: bytes, mtime: float) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = len(data), 0o644, mtime
    tar.addfile(info, io.BytesIO(data))


# -- import ----------------------------------------------------------------------------------

def import_archive(ss: SnapshotStore, file: str | os.PathLike[str]) -> Moved:
    """Check an archive in full, then add its snapshots to the store (see the module doc)."""
    where = str(file)
    try:
        tar = tarfile.open(file, mode="r:")  # noqa: SIM115 (closed below)
    except FileNotFoundError:
        raise SnapshotError("no such file", source=where) from None
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise SnapshotError(f"not a snapshot archive ({exc})", source=where) from None
    with tar:
        snapshots, declared = _read_manifest(tar, where)
        raw = _read_chunks(tar, where, declared, snapshots)
    users = {c: (p.snapshot_id, e.path) for p in snapshots for e in p.entries for c in e.chunks}
    have, have_snaps = ss._existing(set(users), {p.snapshot_id for p in snapshots})
    missing = [c for c in users if c not in raw and c not in have]
    if missing:
        sid, path = users[missing[0]]
        raise SnapshotError(f"snapshot {sid[:12]} file {path!r}: chunk {missing[0][:12]} is "
                            f"missing from the archive ({len(missing)} missing in all; truncated?)",
                            source=where)
    stored = ss.chunk_rows(c for c in users if c not in raw)
    with PackReader(ss.packs_dir) as reader:
        for p in snapshots:
            for e in p.entries:
                if e.kind == FILE:
                    _check_file(p.snapshot_id, e, raw, stored, reader, where)
    pack = PackWriter(ss.packs_dir)
    try:
        # in archive order (export writes a file's chunks in file order); a listed chunk no
        # file uses is not kept
        compress_into(pack, {c: (data, 0, len(data)) for c, data in raw.items()
                             if c not in have and c in users})
        for p in snapshots:
            p.new = p.snapshot_id not in have_snaps
        pack.commit()
        ss._write_index(snapshots, pack.rows, "import snapshots")
    except BaseException:
        ss._discard(pack)
        raise
    return Moved([p.snapshot_id for p in snapshots], len(pack.rows), pack.stored,
                  sum(p.new for p in snapshots))


def _next(tar: tarfile.TarFile, where: str, after: str) -> tarfile.TarInfo | None:
    try:
        return tar.next()
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise SnapshotError(f"the archive is truncated or damaged after member {after!r} "
                            f"({exc})", source=where) from None


def _read(tar: tarfile.TarFile, member: tarfile.TarInfo, where: str) -> bytes:
    handle = tar.extractfile(member)
    try:
        data = handle.read() if handle is not None else None
    except (tarfile.TarError, OSError, EOFError) as exc:
        raise SnapshotError(f"the archive is truncated or damaged in member {member.name!r} "
                            f"({exc})", source=where) from None
    if data is None or len(data) != member.size:
        raise SnapshotError(f"the archive is truncated in member {member.name!r}", source=where)
    return data


def _refuse(member: tarfile.TarInfo, where: str, why: str) -> SnapshotError:
    return SnapshotError(f"refused member {member.name!r}: {why}", source=where,
                         expected=f"{MANIFEST} and chunks/<sha256> regular files only")


def _read_manifest(tar: tarfile.TarFile, where: str,
                   ) -> tuple[list[Pending], dict[str, tuple[int, int]]]:
    member = _next(tar, where, "(start)")
    if member is None:
        raise SnapshotError("the archive is empty", source=where)
    if member.name != MANIFEST or not member.isreg():
        raise _refuse(member, where, f"the first member must be {MANIFEST}")
    if member.size > MAX_MANIFEST:
        raise _refuse(member, where, "too large")
    try:
        doc = json.loads(_read(tar, member, where))
    except (UnicodeDecodeError, ValueError) as exc:
        raise SnapshotError(f"{MANIFEST} is not JSON ({exc})", source=where) from None
    place = MANIFEST
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or doc.get("version") != VERSION:
        raise SnapshotError("not a testfleet snapshot archive", source=where, place=place,
                            expected=f'"format": "{FORMAT}", "version": {VERSION}')
    declared: dict[str, tuple[int, int]] = {}
    for i, chunk in enumerate(_list(doc, "chunks", where, place)):
        c, size, stored = (_get(chunk, k, t, where, f"{place} chunks[{i}]")
                           for k, t in (("sha256", str), ("size", int), ("stored", int)))
        if not _HEX64.fullmatch(c) or not 0 <= size <= MAX_CHUNK or not 0 < stored <= MAX_CHUNK:
            raise SnapshotError(f"bad chunk {c!r} (size {size}, stored {stored})", source=where,
                                place=f"{place} chunks[{i}]",
                                expected=f"a SHA-256 and sizes up to {MAX_CHUNK}")
        declared[c] = (size, stored)
    out = []
    for i, snap in enumerate(_list(doc, "snapshots", where, place)):
        at = f"{place} snapshots[{i}]"
        sid = _get(snap, "snapshot_id", str, where, at)
        entries = [_entry(e, where, f"{at} entries[{j}]")
                   for j, e in enumerate(_list(snap, "entries", where, at))]
        label = f"{where} [snapshot {sid[:12]}]"
        check_entries(entries, where=label)
        if snapshot_id(entries) != sid:
            raise SnapshotError(f"snapshot {sid[:12]}: its entries do not hash to its id (the "
                                "manifest was changed)", source=where, place=at)
        for e in entries:
            if e.kind == FILE:
                absent = [c for c in e.chunks if c not in declared]
                if absent:
                    raise SnapshotError(f"snapshot {sid[:12]} file {e.path!r}: chunk "
                                        f"{absent[0][:12]} is not in the chunk list",
                                        source=where, place=at)
                if sum(declared[c][0] for c in e.chunks) != e.size:
                    raise SnapshotError(f"snapshot {sid[:12]} file {e.path!r}: its chunks do not "
                                        f"add up to its size {e.size}", source=where, place=at)
        try:
            created = datetime.fromisoformat(_get(snap, "created_at", str, where, at))
            tags = clean_tags(_list(snap, "tags", where, at))
            meta = clean_meta(_get(snap, "meta", dict, where, at))
        except (ValueError, SnapshotError) as exc:
            raise SnapshotError(f"snapshot {sid[:12]}: {exc}", source=where, place=at) from None
        if created.tzinfo is None:
            created = created.replace(tzinfo=UTC)
        roots = [str(r) for r in _list(snap, "roots", where, at)]
        out.append(Pending(sid, roots, entries, tags, meta,
                           (created - _EPOCH) // timedelta(microseconds=1)))
    if not out:
        raise SnapshotError("the archive holds no snapshot", source=where, place=place)
    return out, declared


def _read_chunks(tar: tarfile.TarFile, where: str, declared: dict[str, tuple[int, int]],
                 snapshots: list[Pending]) -> dict[str, bytes]:
    """Every chunk member, checked: id -> raw bytes, in archive order."""
    user = {c: (p.snapshot_id, e.path) for p in snapshots for e in p.entries for c in e.chunks}
    raw: dict[str, bytes] = {}
    after = MANIFEST
    while (member := _next(tar, where, after)) is not None:
        match = _CHUNK_MEMBER.fullmatch(member.name)
        if not member.isreg():
            raise _refuse(member, where, "not a regular file (links and devices are refused)")
        if match is None:
            raise _refuse(member, where, "not a chunk name (absolute paths and '..' included)")
        c = match.group(1)
        if c not in declared:
            raise _refuse(member, where, "a chunk the manifest does not list")
        if c in raw:
            raise _refuse(member, where, "a chunk that appears twice")
        if member.size != declared[c][1]:
            raise _refuse(member, where, f"{member.size} bytes, the manifest says "
                                         f"{declared[c][1]}")
        frame = _read(tar, member, where)
        try:
            raw[c] = check_frame(c, frame, declared[c][0])
        except ChunkDamage as exc:
            sid, path = user.get(c, ("?" * 12, "?"))
            raise SnapshotError(f"snapshot {sid[:12]} file {path!r}: {exc}", source=where,
                                place=member.name) from None
        after = member.name
    return raw


def _check_file(sid: str, e: Entry, raw: dict[str, bytes], stored: dict[str, Any],
                reader: PackReader, where: str) -> None:
    digest = hashlib.sha256()
    for c in e.chunks:
        digest.update(raw[c] if c in raw else reader.read(stored[c]))
    if digest.hexdigest() != e.sha256:
        raise SnapshotError(f"snapshot {sid[:12]} file {e.path!r}: its chunks do not hash to the "
                            "file's SHA-256 (the manifest was changed)", source=where)


def _list(doc: Any, key: str, where: str, place: str) -> list[Any]:
    return _get(doc, key, list, where, place)


def _get(doc: Any, key: str, kind: type, where: str, place: str) -> Any:
    value = doc.get(key) if isinstance(doc, dict) else None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise SnapshotError(f"{key!r} is {value!r}", source=where, place=place,
                            expected=f"a {kind.__name__}")
    return value


def _entry(doc: Any, where: str, place: str) -> Entry:
    path = _get(doc, "path", str, where, place)
    kind = _get(doc, "kind", str, where, place)
    if kind not in KINDS:
        raise SnapshotError(f"entry {path!r} has kind {kind!r}", source=where, place=place,
                            expected="file, dir or symlink")
    mode = _get(doc, "mode", int, where, place)
    size = _get(doc, "size", int, where, place) if kind == FILE else 0
    sha = _get(doc, "sha256", str, where, place) if kind == FILE else None
    target = _get(doc, "target", str, where, place) if kind == "symlink" else None
    chunks = tuple(_get(doc, "chunks", list, where, place)) if kind == FILE else ()
    if any(not isinstance(c, str) or not _HEX64.fullmatch(c) for c in chunks):
        raise SnapshotError(f"entry {path!r} lists a chunk that is not a SHA-256", source=where,
                            place=place)
    return Entry(path, kind, mode, size, sha, target, chunks)
