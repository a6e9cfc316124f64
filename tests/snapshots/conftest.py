"""Helpers for the snapshot tests: a real store in tmp_path, a tree with every kind of entry, and
a comparable picture of a tree on disk (kinds, modes, bytes, link targets)."""

from __future__ import annotations

import os
import random
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from testfleet.snapshots.store import SnapshotStore
from testfleet.store.db import Store

BIG = 3 * 1024 * 1024


@pytest.fixture
def snaps(tmp_path: Path) -> Iterator[SnapshotStore]:
    with Store.open(tmp_path / "store" / "s.duckdb") as db:
        yield SnapshotStore(db)


def make_tree(root: Path, seed: int = 1) -> Path:
    """Nested directories, an empty one, 0755 and 0600 files, a symlink, a 3 MB file of several
    chunks, non-UTF-8 bytes."""
    rnd = random.Random(seed)
    (root / "conf" / "deep" / "er").mkdir(parents=True)
    (root / "empty").mkdir()
    (root / "app.yaml").write_text("server:\n  port: 8080\n  host: example.org\n")
    run = root / "bin" / "run.sh"
    run.parent.mkdir()
    run.write_text("#!/bin/sh\necho hi\n")
    run.chmod(0o755)
    secret = root / "conf" / "secret.env"
    secret.write_text("TOKEN=abc\n")
    secret.chmod(0o600)
    (root / "conf" / "deep" / "er" / "latin1.ini").write_bytes(b"[s]\nname = caf\xe9\n\xff\xfe\x00\x80")
    (root / "conf" / "big.bin").write_bytes(rnd.randbytes(BIG))
    (root / "conf" / "empty.txt").write_bytes(b"")
    os.symlink("../app.yaml", root / "conf" / "app-link.yaml")
    os.symlink("deep/er", root / "conf" / "dir-link")
    return root


def tree_state(root: Path) -> dict[str, tuple[str, int, bytes | str | None]]:
    """path -> (kind, permission bits, bytes / link target / None), for every entry below root."""
    out: dict[str, tuple[str, int, bytes | str | None]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = Path(dirpath) / name
            rel = full.relative_to(root).as_posix()
            st = full.lstat()
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("symlink", 0, os.readlink(full))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", stat.S_IMODE(st.st_mode), None)
            else:
                out[rel] = ("file", stat.S_IMODE(st.st_mode), full.read_bytes())
    return out


def packs(ss: SnapshotStore) -> list[Path]:
    return sorted(ss.packs_dir.glob("*.pack")) if ss.packs_dir.exists() else []


def stored_bytes(ss: SnapshotStore) -> int:
    return sum(p.stat().st_size for p in packs(ss))
