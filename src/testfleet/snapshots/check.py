"""Checking and collecting the snapshot store: ``verify`` and ``gc``.

Approach:

* ``verify`` reads every distinct chunk the chosen snapshots use exactly once (pack by pack, in
  frame order, each frame decompressed once, ~1 MiB per thread-pool task never splitting a
  frame's chunks) and checks its frame and SHA-256; each bad chunk is then reported for every
  snapshot and file that uses it (a damaged frame: every chunk in it that they use). It also recomputes
  each snapshot's id from its entries (an index edited behind testfleet's back), checks the tree
  rules and that each file's chunks add up to its size.
* ``gc`` keeps what a complete snapshot needs. Chunk rows no entry names are dropped (one
  transaction; a frame whose chunks are all dropped stays in its pack as dead bytes while the
  pack has other live frames); pack files that no chunk row names (a save that crashed between writing its pack
  and committing its index) and temporary files are deleted. It runs with the store open for
  writing, which DuckDB grants to one process at a time, so no save can be half-way through.
"""

from __future__ import annotations

import os
from collections import defaultdict
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from testfleet.snapshots.chunks import (
    PACK_SUFFIX,
    TEMP_SUFFIX,
    ChunkDamage,
    ChunkRow,
    PackReader,
    by_frame,
    pmap,
)
from testfleet.snapshots.tree import (
    FILE,
    SnapshotError,
    check_entries,
    snapshot_id,
)

if TYPE_CHECKING:
    from testfleet.snapshots.store import SnapshotStore


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a snapshot: which one, which file (if any), which chunk, and why."""

    snapshot_id: str
    path: str | None
    chunk_id: str | None
    reason: str

    def __str__(self) -> str:
        text = f"snapshot {self.snapshot_id[:12]}"
        if self.path is not None:
            text += f" file {self.path}"
        if self.chunk_id is not None:
            text += f": chunk {self.chunk_id[:12]}"
        return f"{text}: {self.reason}"


@dataclass
class Checked:
    """What ``verify`` looked at and what it found."""

    snapshots: int = 0
    chunks: int = 0
    bytes: int = 0
    problems: list[Problem] = field(default_factory=list)


def verify(ss: SnapshotStore, sid: str | None = None) -> Checked:
    """Read and check every chunk of snapshot ``sid``, or of every snapshot."""
    trees = ss.trees(sid)
    found = Checked(snapshots=len(trees))
    users: dict[str, list[tuple[str, str]]] = defaultdict(list)
    for s, entries in trees.items():
        if snapshot_id(entries) != s:
            found.problems.append(Problem(s, None, None, "its entries no longer hash to its id "
                                          "(the index was changed)"))
        try:
            check_entries(entries, where=f"snapshot {s[:12]}")
        except SnapshotError as exc:
            found.problems.append(Problem(s, None, None, exc.message))
        for e in entries:
            if e.kind == FILE:
                for c in dict.fromkeys(e.chunks):
                    users[c].append((s, e.path))
    rows = ss.chunk_rows(users)
    bad: dict[str, str] = {c: "is missing from the index" for c in users if c not in rows}
    by_pack: dict[str, list[ChunkRow]] = defaultdict(list)
    for row in rows.values():
        by_pack[row.pack].append(row)
    work = [g for pack in sorted(by_pack)
            for g in by_frame(sorted(by_pack[pack], key=lambda r: (r.offset, r.frame_offset)),
                              lambda r: r)]
    with PackReader(ss.packs_dir) as reader:
        def run(group: list[ChunkRow]) -> list[tuple[str, str]]:
            out = []
            for row in group:
                try:
                    reader.view(row)
                except ChunkDamage as exc:
                    out.append((row.chunk_id, exc.reason))
            return out
        for part in pmap(run, work):
            bad.update(part)
    found.chunks = len(rows)
    found.bytes = sum(r.size for r in rows.values())
    for s, entries in trees.items():
        for e in entries:
            if e.kind != FILE:
                continue
            for c in dict.fromkeys(e.chunks):
                if c in bad:
                    found.problems.append(Problem(s, e.path, c, bad[c]))
            if all(c in rows for c in e.chunks) and sum(rows[c].size for c in e.chunks) != e.size:
                found.problems.append(Problem(s, e.path, None, "its chunks do not add up to its "
                                              f"size ({e.size} bytes)"))
    return found


@dataclass
class Collected:
    """What ``gc`` removed."""

    packs: list[tuple[str, int]] = field(default_factory=list)
    temp_files: list[tuple[str, int]] = field(default_factory=list)
    chunk_rows: int = 0
    kept_packs: int = 0
    dead_bytes: int = 0  # bytes of frames no chunk uses any more, still inside kept packs

    @property
    def freed(self) -> int:
        return sum(n for _, n in self.packs) + sum(n for _, n in self.temp_files)


def collect(ss: SnapshotStore) -> Collected:
    """Remove packs, chunk rows and temporary files that no complete snapshot needs."""
    done = Collected()
    done.chunk_rows, dead, live = ss.drop_unused_chunks()
    done.dead_bytes = sum(stored for pack, stored in dead if pack in live)
    done.kept_packs = len(live)
    if not ss.packs_dir.is_dir():
        return done
    with os.scandir(ss.packs_dir) as listing:
        items = sorted(listing, key=lambda d: d.name)
    for item in items:
        if not item.is_file(follow_symlinks=False):
            continue
        size = item.stat(follow_symlinks=False).st_size
        if item.name.startswith(".") and item.name.endswith(TEMP_SUFFIX):
            os.unlink(item.path)
            done.temp_files.append((item.name, size))
        elif item.name.endswith(PACK_SUFFIX) and item.name[:-len(PACK_SUFFIX)] not in live:
            os.unlink(item.path)
            done.packs.append((item.name, size))
    return done
