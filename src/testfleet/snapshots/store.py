"""The snapshot store: immutable, content-addressed copies of configurations, indexed in DuckDB.

Approach:

* Chunks live beside the DuckDB file, in ``<store dir>/<store stem>.snapshots/packs/`` (see
  :mod:`.chunks`); the index lives in the store's tables (``snapshots``, ``snapshot_entries``,
  ``snapshot_chunks``, ``snapshot_tags``, ``snapshot_meta``, ``run_snapshots``). All the SQL of
  snapshots is in this module.
* A save (or a batch of saves, :meth:`SnapshotStore.save_many`) is: scan and hash every file, ONE
  query for which chunks and snapshots the index already has, compress only the new chunks (in
  ~1 MiB frames of consecutive chunks) into ONE new pack, write the pack (temp, fsync, rename),
  then ALL index rows in ONE transaction. A crash before the commit leaves at most an orphan pack
  (``gc`` removes it), never a snapshot that lists without its data.
* The snapshot id hashes the entries only (:func:`.tree.snapshot_id`), so saving the same content
  again finds the existing snapshot and only adds the new tags and metadata.
* Public methods take a full id or a unique prefix (:meth:`SnapshotStore.resolve`).
"""

from __future__ import annotations

import builtins
import json
import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from testfleet.snapshots.check import Checked, Collected, collect, verify
from testfleet.snapshots.chunks import (
    ChunkDamage,
    ChunkRow,
    PackReader,
    PackWriter,
    Source,
    compress_into,
)
from testfleet.snapshots.restore import write_tree
from testfleet.snapshots.save import (
    PathsArg,
    Pending,
    check_unchanged,
    clean_meta,
    clean_tags,
    new_chunks,
    prepare,
)
from testfleet.snapshots.tree import FILE, DamageError, Entry, SnapshotError
from testfleet.store.db import Store

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# -- the SQL of snapshots (all of it) ---------------------------------------------------------

# Chunk ids (hex) and numbers travel as one comma-joined text each: DuckDB splits 7,000 of them
# in a fraction of the time it takes to convert a Python list of 7,000 values.
_EXISTING = (
    "SELECT 'c', chunk_id FROM snapshot_chunks "
    "WHERE chunk_id IN (SELECT unnest(string_split($1, ','))) "
    "UNION ALL SELECT 's', snapshot_id FROM snapshots "
    "WHERE snapshot_id IN (SELECT unnest($2::VARCHAR[]))")
_INSERT_SNAPSHOTS = (
    "INSERT INTO snapshots (snapshot_id, created_at, roots, files, size) "
    "SELECT unnest($1::VARCHAR[]), make_timestamptz(unnest($2::BIGINT[])), "
    "unnest($3::VARCHAR[]), unnest($4::BIGINT[]), unnest($5::BIGINT[])")
_INSERT_ENTRIES = (
    "INSERT INTO snapshot_entries (snapshot_id, path, kind, mode, size, sha256, target, chunks) "
    "SELECT unnest($1::VARCHAR[]), unnest($2::VARCHAR[]), unnest($3::VARCHAR[]), "
    "unnest($4::INTEGER[]), unnest($5::BIGINT[]), unnest($6::VARCHAR[]), unnest($7::VARCHAR[]), "
    "unnest($8::VARCHAR[])")
_INSERT_CHUNKS = (
    'INSERT INTO snapshot_chunks (chunk_id, pack, "offset", stored, frame_offset, size) '
    "SELECT unnest(string_split($1, ',')), unnest(string_split($2, ',')), "
    "unnest(string_split($3, ','))::BIGINT, unnest(string_split($4, ','))::BIGINT, "
    "unnest(string_split($5, ','))::BIGINT, unnest(string_split($6, ','))::BIGINT")
_INSERT_TAGS = (
    "INSERT INTO snapshot_tags (snapshot_id, tag) SELECT unnest($1::VARCHAR[]), "
    "unnest($2::VARCHAR[])")
_ON_CONFLICT = " ON CONFLICT DO NOTHING"
_DELETE_TAGS = (
    "DELETE FROM snapshot_tags WHERE snapshot_id = $1 AND tag IN (SELECT unnest($2::VARCHAR[]))")
_INSERT_META = (
    "INSERT INTO snapshot_meta (snapshot_id, key, value) SELECT unnest($1::VARCHAR[]), "
    "unnest($2::VARCHAR[]), unnest($3::VARCHAR[])")
_ON_CONFLICT_META = " ON CONFLICT (snapshot_id, key) DO UPDATE SET value = excluded.value"
_UPSERT_RUN = (
    "INSERT INTO run_snapshots (run_id, role, snapshot_id) VALUES ($1, $2, $3) "
    "ON CONFLICT (run_id, role) DO UPDATE SET snapshot_id = excluded.snapshot_id")
_ENTRIES = (
    "SELECT path, kind, mode, size, sha256, target, chunks::VARCHAR FROM snapshot_entries "
    "WHERE snapshot_id = $1 ORDER BY path")
_CHUNK_ROWS = (
    'SELECT chunk_id, pack, "offset", stored, frame_offset, size FROM snapshot_chunks '
    "WHERE chunk_id IN (SELECT unnest(string_split($1, ',')))")
_TREES = (
    "SELECT snapshot_id, path, kind, mode, size, sha256, target, chunks::VARCHAR "
    "FROM snapshot_entries {where} ORDER BY snapshot_id, path")
_DROP_UNUSED = (
    "DELETE FROM snapshot_chunks WHERE chunk_id NOT IN "
    '(SELECT DISTINCT unnest(chunks::VARCHAR[]) FROM snapshot_entries) RETURNING pack, "offset", '
    "stored")
_FRAMES_IN = (
    'SELECT DISTINCT pack, "offset" FROM snapshot_chunks '
    "WHERE pack IN (SELECT unnest($1::VARCHAR[]))")
# a frame holds several chunks: its compressed bytes count once
_STORED_SIZE = (
    'SELECT coalesce(sum(stored), 0) FROM (SELECT DISTINCT pack, "offset", stored '
    "FROM snapshot_chunks WHERE chunk_id IN ("
    "SELECT DISTINCT unnest(chunks::VARCHAR[]) FROM snapshot_entries WHERE snapshot_id = $1))")


def _us(value: datetime) -> int:
    if value.tzinfo is None:
        value = value.astimezone()  # a naive time is the user's local time
    return (value - _EPOCH) // timedelta(microseconds=1)


@dataclass(frozen=True)
class SnapshotInfo:
    """One snapshot as listed: id, when first saved, the paths given, its files, tags and meta."""

    snapshot_id: str
    created_at: datetime
    roots: list[str]
    files: int
    size: int
    tags: tuple[str, ...] = ()
    meta: dict[str, str] = field(default_factory=dict)


class SnapshotStore:
    """Snapshots in one :class:`~testfleet.store.db.Store` (and the packs beside its file)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        path = Path(store.path)
        self.root = path.parent / f"{path.stem}.snapshots"
        self.packs_dir = self.root / "packs"

    @property
    def _where(self) -> str:
        return str(self.store.path)

    # -- saving ------------------------------------------------------------------------------

    def save(self, paths: PathsArg, tags: Iterable[str] = (),
             meta: dict[str, str] | None = None) -> str:
        """Snapshot ``paths`` (a file, a directory, or several); return the snapshot id."""
        return self.save_many([(paths, tags, meta)])[0]

    def save_many(self, items: Sequence[tuple[PathsArg, Iterable[str], dict[str, str] | None]],
                  ) -> list[str]:
        """Save several snapshots with one pack and one index transaction; their ids in order."""
        sources: list[Source] = []
        try:
            batch = prepare(items, _us(datetime.now(UTC)), sources, self._own_files())
            have_chunks, have_snaps = self._existing(
                {c for b in batch for e in b.pending.entries for c in e.chunks},
                {b.pending.snapshot_id for b in batch})
            pieces = new_chunks(batch, have_chunks, have_snaps)
            pack = PackWriter(self.packs_dir)
            try:
                compress_into(pack, pieces)
                check_unchanged(batch)
                pack.commit()  # the pack is whole on disk before any row names it
                self._write_index([b.pending for b in batch], pack.rows, "save a snapshot")
            except BaseException:
                self._discard(pack)
                raise
            return [b.pending.snapshot_id for b in batch]
        finally:
            for src in sources:
                src.close()

    def _own_files(self) -> list[Path]:
        """The store's files: a saved tree that contains them (``save .``) leaves them out."""
        db = Path(self.store.path).resolve()
        return [db, db.with_name(db.name + ".wal"), self.root.resolve()]

    def _discard(self, pack: PackWriter) -> None:
        """Remove the pack of a failed save, unless the index names it after all (a commit that
        raised yet happened); when in doubt it stays, an orphan for ``gc``."""
        try:
            named = self.store.query("SELECT 1 FROM snapshot_chunks WHERE pack = $1 LIMIT 1",
                                     [pack.pack_id])
        except Exception:  # noqa: BLE001 (the original error is the one to report)
            return
        if not named:
            pack.discard()

    def _existing(self, chunk_ids: set[str], snapshot_ids: set[str]) -> tuple[set[str], set[str]]:
        """Which of these chunks and snapshots the index already has (one query)."""
        rows = self.store.query(_EXISTING, [",".join(sorted(chunk_ids)), sorted(snapshot_ids)])
        return ({v for k, v in rows if k == "c"}, {v for k, v in rows if k == "s"})

    def _write_index(self, batch: Sequence[Pending], rows: Sequence[ChunkRow], action: str,
                     ) -> None:
        """Every row of ``batch`` and the new chunks' locations, in one transaction.

        Rows of new snapshots and chunks are plain INSERTs (the caller saw them absent, and
        DuckDB lets one process write): an ON CONFLICT clause costs ~1 ms a statement, which is
        most of a small save. Only tags and metadata added to existing snapshots need one.
        """
        merged: dict[str, Pending] = {}
        for p in batch:  # the same content twice in one batch is one snapshot
            if p.snapshot_id in merged:
                merged[p.snapshot_id].tags |= p.tags
                merged[p.snapshot_id].meta.update(p.meta)
            else:
                merged[p.snapshot_id] = Pending(p.snapshot_id, p.roots, p.entries, set(p.tags),
                                                dict(p.meta), p.created_us, p.new)
        new = [p for p in merged.values() if p.new]
        old = len(new) < len(merged)
        entries = [(p.snapshot_id, e) for p in new for e in p.entries]
        tags = [(p.snapshot_id, t) for p in merged.values() for t in sorted(p.tags)]
        meta = [(p.snapshot_id, k, v) for p in merged.values() for k, v in sorted(p.meta.items())]
        statements: list[tuple[str, list[Any]]] = []
        if new:
            statements.append((_INSERT_SNAPSHOTS, [
                [p.snapshot_id for p in new], [p.created_us for p in new],
                [json.dumps(p.roots) for p in new],
                [sum(e.kind == FILE for e in p.entries) for p in new],
                [sum(e.size for e in p.entries if e.kind == FILE) for p in new]]))
        if entries:
            statements.append((_INSERT_ENTRIES, [
                [sid for sid, _ in entries], [e.path for _, e in entries],
                [e.kind for _, e in entries], [e.mode for _, e in entries],
                [e.size for _, e in entries], [e.sha256 for _, e in entries],
                [e.target for _, e in entries], [json.dumps(list(e.chunks)) for _, e in entries]]))
        if rows:
            statements.append((_INSERT_CHUNKS, [",".join(map(str, col))
                                                for col in zip(*rows, strict=True)]))
        if tags:
            statements.append(self._tag_sql(tags, conflict=old))
        if meta:
            statements.append((_INSERT_META + (_ON_CONFLICT_META if old else ""),
                               [[m[0] for m in meta], [m[1] for m in meta], [m[2] for m in meta]]))
        if statements:
            self.store.write(action, statements)

    @staticmethod
    def _tag_sql(tags: Sequence[tuple[str, str]], *, conflict: bool = True,
                 ) -> tuple[str, list[Any]]:
        return (_INSERT_TAGS + (_ON_CONFLICT if conflict else ""),
                [[sid for sid, _ in tags], [t for _, t in tags]])

    # -- finding -----------------------------------------------------------------------------

    def resolve(self, ref: str) -> str:
        """The full id of the snapshot named by ``ref`` (an id or a unique prefix of one)."""
        expected = "a snapshot id or a unique prefix of one (see `testfleet snapshot list`)"
        ref = (ref or "").strip().lower()
        if not ref:
            raise SnapshotError("no snapshot id given", source=self._where, expected=expected)
        rows = self.store.query("SELECT snapshot_id FROM snapshots WHERE snapshot_id = $1", [ref])
        if not rows:
            rows = self.store.query("SELECT snapshot_id FROM snapshots WHERE "
                                    "starts_with(snapshot_id, $1) ORDER BY 1 LIMIT 6", [ref])
        if len(rows) == 1:
            return str(rows[0][0])
        if not rows:
            raise SnapshotError(f"no snapshot {ref!r}", source=self._where, expected=expected)
        names = ", ".join(str(r[0])[:16] for r in rows[:5]) + (", ..." if len(rows) > 5 else "")
        raise SnapshotError(f"snapshot prefix {ref!r} is ambiguous: it matches {names}",
                            source=self._where, expected=expected)

    def list(self, tags: Iterable[str] = (), meta: dict[str, str] | None = None,
             since: datetime | None = None, until: datetime | None = None,
             ids: Sequence[str] | None = None) -> list[SnapshotInfo]:
        """Snapshots with all these tags and metadata, saved in [since, until), newest first."""
        where: builtins.list[str] = ["TRUE"]
        params: builtins.list[Any] = []
        for tag in clean_tags(tags):
            params.append(tag)
            where.append(f"snapshot_id IN (SELECT snapshot_id FROM snapshot_tags "
                         f"WHERE tag = ${len(params)})")
        for key, value in clean_meta(meta).items():
            params += [key, value]
            where.append(f"snapshot_id IN (SELECT snapshot_id FROM snapshot_meta "
                         f"WHERE key = ${len(params) - 1} AND value = ${len(params)})")
        for bound, op in ((since, ">="), (until, "<")):
            if bound is not None:
                params.append(_us(bound))
                where.append(f"created_at {op} make_timestamptz(${len(params)})")
        if ids is not None:
            params.append(list(ids))
            where.append(f"snapshot_id IN (SELECT unnest(${len(params)}::VARCHAR[]))")
        rows = self.store.query(
            "SELECT snapshot_id, epoch_us(created_at), roots::VARCHAR, files, size FROM snapshots "
            f"WHERE {' AND '.join(where)} ORDER BY created_at DESC, snapshot_id", params)
        found = [r[0] for r in rows]
        tags_of: dict[str, list[str]] = {}
        meta_of: dict[str, dict[str, str]] = {}
        if found:
            for sid, tag in self.store.query(
                    "SELECT snapshot_id, tag FROM snapshot_tags WHERE snapshot_id IN "
                    "(SELECT unnest($1::VARCHAR[])) ORDER BY tag", [found]):
                tags_of.setdefault(sid, []).append(tag)
            for sid, key, value in self.store.query(
                    "SELECT snapshot_id, key, value FROM snapshot_meta WHERE snapshot_id IN "
                    "(SELECT unnest($1::VARCHAR[])) ORDER BY key", [found]):
                meta_of.setdefault(sid, {})[key] = value
        return [SnapshotInfo(sid, _EPOCH + timedelta(microseconds=us), json.loads(roots),
                             files, size, tuple(tags_of.get(sid, ())), meta_of.get(sid, {}))
                for sid, us, roots, files, size in rows]

    def info(self, ref: str) -> SnapshotInfo:
        """One snapshot's summary."""
        return self.list(ids=[self.resolve(ref)])[0]

    def entries(self, ref: str) -> builtins.list[Entry]:
        """A snapshot's entries, sorted by path."""
        return self._entries(self.resolve(ref))

    def _entries(self, sid: str) -> builtins.list[Entry]:
        rows = self.store.query(_ENTRIES, [sid])
        return [Entry(p, k, m, s, h, t, tuple(json.loads(c))) for p, k, m, s, h, t, c in rows]

    def trees(self, sid: str | None = None) -> dict[str, builtins.list[Entry]]:
        """Full id -> entries of one snapshot, or of every snapshot (with none left out)."""
        where, params = ("WHERE snapshot_id = $1", [sid]) if sid is not None else ("", [])
        out: dict[str, list[Entry]] = {r[0]: [] for r in self.store.query(
            f"SELECT snapshot_id FROM snapshots {where} ORDER BY snapshot_id", params)}
        for s, p, k, m, size, h, t, c in self.store.query(_TREES.format(where=where), params):
            if s in out:
                out[s].append(Entry(p, k, m, size, h, t, tuple(json.loads(c))))
        return out

    def chunk_rows(self, chunk_ids: Iterable[str]) -> dict[str, ChunkRow]:
        """Where each of these chunks is stored (absent ones are left out)."""
        rows = self.store.query(_CHUNK_ROWS, [",".join(sorted(set(chunk_ids)))])
        return {r[0]: ChunkRow(*r) for r in rows}

    def stored_size(self, ref: str) -> int:
        """Compressed bytes of the distinct frames holding a snapshot's chunks (each counted
        once, shared ones too)."""
        rows = self.store.query(_STORED_SIZE, [self.resolve(ref)])
        return int(rows[0][0])

    def runs_of(self, ref: str) -> builtins.list[tuple[str, str]]:
        """(run id, role) of every run that recorded using this snapshot."""
        rows = self.store.query("SELECT run_id, role FROM run_snapshots WHERE snapshot_id = $1 "
                                "ORDER BY run_id, role", [self.resolve(ref)])
        return [(r[0], r[1]) for r in rows]

    def read_file(self, ref: str, path: str) -> bytes:
        """The bytes of one file of a snapshot, every chunk checked."""
        sid = self.resolve(ref)
        entry = next((e for e in self._entries(sid) if e.path == path), None)
        if entry is None or entry.kind != FILE:
            raise SnapshotError(f"snapshot {sid[:12]} has no file {path!r}", source=self._where)
        rows = self.chunk_rows(entry.chunks)
        with PackReader(self.packs_dir) as reader:
            try:
                return b"".join(reader.read(_row(rows, c)) for c in entry.chunks)
            except ChunkDamage as exc:
                raise DamageError(f"snapshot {sid[:12]} file {path!r}: {exc}",
                                  source=self._where) from None

    # -- changing tags and runs ------------------------------------------------------------

    def tag(self, ref: str, tags: Iterable[str]) -> str:
        sid = self.resolve(ref)
        clean = sorted(clean_tags(tags))
        if clean:
            self.store.write("tag a snapshot", [self._tag_sql([(sid, t) for t in clean])])
        return sid

    def untag(self, ref: str, tags: Iterable[str]) -> str:
        sid = self.resolve(ref)
        clean = sorted(clean_tags(tags))
        if clean:
            self.store.write("untag a snapshot", [(_DELETE_TAGS, [sid, clean])])
        return sid

    def record_run(self, run_id: str, role: str, snapshot_id: str) -> None:
        """Record that run ``run_id`` used this snapshot as ``role`` (settings, space, ...)."""
        sid = self.resolve(snapshot_id)
        self.store.write("record a run's snapshot", [(_UPSERT_RUN, [run_id, role, sid])])

    def run_snapshots(self, run_id: str) -> dict[str, str]:
        """role -> snapshot id for one run."""
        rows = self.store.query("SELECT role, snapshot_id FROM run_snapshots WHERE run_id = $1 "
                                "ORDER BY role", [run_id])
        return {r[0]: r[1] for r in rows}

    # -- restoring, checking, collecting ----------------------------------------------------

    def restore(self, ref: str, dest: str | os.PathLike[str]) -> Path:
        """Write a snapshot's tree to ``dest`` (new or empty), all or nothing; return ``dest``."""
        sid = self.resolve(ref)
        entries = self._entries(sid)
        rows = self.chunk_rows(c for e in entries for c in e.chunks)
        with PackReader(self.packs_dir) as reader:
            return write_tree(sid, entries, rows, reader, Path(dest))

    def verify(self, ref: str | None = None) -> Checked:
        """Read and check every chunk of one snapshot, or of all (see :mod:`.check`)."""
        return verify(self, None if ref is None else self.resolve(ref))

    def drop_unused_chunks(self) -> tuple[int, builtins.list[tuple[str, int]], set[str]]:
        """Delete the chunk rows no entry names. Returns how many, the (pack, stored) of each
        frame left holding no chunk, and the packs still used."""
        dropped = self.store.write("collect unused chunks", [(_DROP_UNUSED, [])])
        live = {r[0] for r in self.store.query("SELECT DISTINCT pack FROM snapshot_chunks")}
        touched = sorted({r[0] for r in dropped} & live)
        used = ({(r[0], r[1]) for r in self.store.query(_FRAMES_IN, [touched])} if touched
                else set())
        dead = {(pack, offset): stored for pack, offset, stored in dropped
                if (pack, offset) not in used}
        return len(dropped), [(pack, stored) for (pack, _), stored in dead.items()], live

    def gc(self) -> Collected:
        """Remove packs, chunk rows and temporary files no snapshot needs (see :mod:`.check`)."""
        return collect(self)


def _row(rows: dict[str, ChunkRow], chunk_id: str) -> ChunkRow:
    row = rows.get(chunk_id)
    if row is None:
        raise ChunkDamage(chunk_id, "is missing from the index")
    return row


__all__ = ["DamageError", "Entry", "SnapshotError", "SnapshotInfo", "SnapshotStore"]
