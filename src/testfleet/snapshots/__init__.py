"""Configuration snapshots: content-addressed, chunked, compressed copies of config files and trees.

A snapshot is an immutable copy of one file or a tree (files, directories, symlinks, modes). Its
id is the SHA-256 of its sorted entries, so the same content always has the same id. File bytes
are cut into content-defined chunks (FastCDC, ~16 KiB), each stored once, in zstd frames of ~1 MiB
of consecutive chunks in pack files beside the store's DuckDB file; the index lives in the store's
``snapshot_*`` tables.

Modules, from the bottom up: :mod:`.tree` (entries, ids, the safety rules), :mod:`.chunks`
(chunking, compression, packs), :mod:`.save` (preparing a save), :mod:`.restore`,
:mod:`.check` (verify, gc), :mod:`.store` (:class:`SnapshotStore`, all the SQL),
:mod:`.archive` (export/import), :mod:`.diff` (what changed between two snapshots).

    from testfleet.store.db import Store
    from testfleet.snapshots import SnapshotStore

    with Store.open(".testfleet/testfleet.duckdb") as db:
        snaps = SnapshotStore(db)
        sid = snaps.save(["config/"], tags=["baseline"], meta={"env": "ci"})
        snaps.record_run(run_id, "settings", sid)
        snaps.restore(sid, "/tmp/config-again")
"""

from testfleet.snapshots.archive import Moved, export_archive, import_archive
from testfleet.snapshots.check import Checked, Collected, Problem
from testfleet.snapshots.store import SnapshotInfo, SnapshotStore
from testfleet.snapshots.tree import DamageError, Entry, SnapshotError, snapshot_id

__all__ = [
    "Checked",
    "Collected",
    "DamageError",
    "Entry",
    "Moved",
    "Problem",
    "SnapshotError",
    "SnapshotInfo",
    "SnapshotStore",
    "export_archive",
    "import_archive",
    "snapshot_id",
]
