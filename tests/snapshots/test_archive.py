"""Export and import: one tar archive, checked in full before anything is written."""

from __future__ import annotations

import hashlib
import io
import json
import tarfile
from pathlib import Path

import pytest
import zstandard

from testfleet.snapshots.archive import export_archive, import_archive
from testfleet.snapshots.store import SnapshotStore
from testfleet.snapshots.tree import Entry, SnapshotError, snapshot_id
from testfleet.store.db import Store

from .conftest import make_tree, packs, tree_state


@pytest.fixture
def other(tmp_path: Path):
    with Store.open(tmp_path / "other" / "o.duckdb") as db:
        yield SnapshotStore(db)


def read_archive(path: Path) -> tuple[dict, dict[str, bytes]]:
    with tarfile.open(path) as tar:
        members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
    return json.loads(members.pop("manifest.json")), members


def write_archive(path: Path, manifest: dict, members: dict[str, bytes],
                  extra: list[tarfile.TarInfo] = ()) -> Path:
    with tarfile.open(path, "w") as tar:
        for name, data in [("manifest.json", json.dumps(manifest).encode()), *members.items()]:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
        for info in extra:
            tar.addfile(info)
    return path


def handmade(path: Path, files: dict[str, bytes], links: dict[str, str] | None = None,
             extra: list[tarfile.TarInfo] = (), *, mode: int = 0o644,
             dirs: dict[str, int] | None = None, tags: tuple[str, ...] = ("evil",)) -> Path:
    """An archive built by hand, ids and hashes all correct: only the tree itself is bad."""
    entries, members, chunks = [], {}, []
    for name, dir_mode in (dirs or {}).items():
        entries.append(Entry(name, "dir", dir_mode))
    for name, data in files.items():
        digest = hashlib.sha256(data).hexdigest()
        frame = zstandard.ZstdCompressor().compress(data)
        members[f"chunks/{digest}"] = frame
        chunks.append({"sha256": digest, "size": len(data), "stored": len(frame)})
        entries.append(Entry(name, "file", mode, len(data), digest, None, (digest,)))
    for name, target in (links or {}).items():
        entries.append(Entry(name, "symlink", 0o777, target=target))
    snap = {"snapshot_id": snapshot_id(entries), "created_at": "2024-05-01T12:00:00+00:00",
            "roots": ["x"], "tags": list(tags), "meta": {},
            "entries": [e.to_dict() for e in entries]}
    manifest = {"format": "testfleet-snapshots", "version": 1, "snapshots": [snap],
                "chunks": chunks}
    return write_archive(path, manifest, members, extra)


def test_export_import_round_trip(snaps: SnapshotStore, other: SnapshotStore, tmp_path: Path):
    src = make_tree(tmp_path / "src")
    first = snaps.save(src, tags=["v1"], meta={"env": "ci"})
    (src / "app.yaml").write_text("server:\n  port: 9090\n")
    second = snaps.save(src, tags=["v2"])
    archive = tmp_path / "out" / "snaps.tar"
    moved = export_archive(snaps, [second[:8], first, second], archive)
    assert moved.snapshots == [second, first]
    manifest, members = read_archive(archive)
    with tarfile.open(archive) as tar:
        assert tar.getnames()[0] == "manifest.json"
    assert len(members) == len(manifest["chunks"]) == moved.chunks  # shared chunks once
    got = import_archive(other, archive)
    assert got.snapshots == [second, first] and got.new_snapshots == 2
    for sid in (first, second):
        a, b = snaps.info(sid), other.info(sid)
        assert (a.tags, a.meta, a.created_at, a.roots) == (b.tags, b.meta, b.created_at, b.roots)
    out = other.restore(second, tmp_path / "restored")
    assert tree_state(out) == tree_state(src)
    assert other.verify().problems == []
    again = import_archive(other, archive)
    assert again.new_snapshots == 0 and again.chunks == 0 and len(packs(other)) == 1


def test_import_adds_tags_to_a_snapshot_it_already_has(snaps: SnapshotStore, other: SnapshotStore,
                                                       tmp_path: Path):
    src = make_tree(tmp_path / "src")
    sid = snaps.save(src, tags=["from-a"])
    other.save(src, tags=["from-b"])
    export_archive(snaps, [sid], tmp_path / "a.tar")
    moved = import_archive(other, tmp_path / "a.tar")
    assert moved.new_snapshots == 0 and moved.chunks == 0
    assert other.info(sid).tags == ("from-a", "from-b")


def _exported(snaps: SnapshotStore, tmp_path: Path) -> tuple[str, Path]:
    src = make_tree(tmp_path / "src")
    sid = snaps.save(src)
    archive = tmp_path / "a.tar"
    export_archive(snaps, [sid], archive)
    return sid, archive


def _nothing_written(ss: SnapshotStore) -> None:
    assert ss.list() == [] and packs(ss) == []
    assert not ss.packs_dir.exists() or list(ss.packs_dir.iterdir()) == []


def test_a_truncated_archive_is_refused(snaps: SnapshotStore, other: SnapshotStore,
                                        tmp_path: Path):
    sid, archive = _exported(snaps, tmp_path)
    data = archive.read_bytes()
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
    inside = members[5]  # a chunk member: cut in its data
    cut = tmp_path / "cut-inside.tar"
    cut.write_bytes(data[:inside.offset_data + inside.size // 2])
    with pytest.raises(SnapshotError, match="truncated") as err:
        import_archive(other, cut)
    assert inside.name in str(err.value)
    boundary = tmp_path / "cut-boundary.tar"  # cut between members: chunks are simply absent
    boundary.write_bytes(data[:members[len(members) // 2].offset])
    with pytest.raises(SnapshotError, match="missing from the archive") as err:
        import_archive(other, boundary)
    assert f"snapshot {sid[:12]} file 'conf/big.bin'" in str(err.value)
    header_only = tmp_path / "cut-header.tar"
    header_only.write_bytes(data[:300])
    with pytest.raises(SnapshotError):
        import_archive(other, header_only)
    _nothing_written(other)


def test_a_tampered_manifest_or_chunk_is_refused(snaps: SnapshotStore, other: SnapshotStore,
                                                 tmp_path: Path):
    sid, archive = _exported(snaps, tmp_path)
    manifest, members = read_archive(archive)
    edited = json.loads(json.dumps(manifest))
    next(e for e in edited["snapshots"][0]["entries"] if e["path"] == "app.yaml")["mode"] = 0o777
    with pytest.raises(SnapshotError, match=f"snapshot {sid[:12]}: its entries do not hash"):
        import_archive(other, write_archive(tmp_path / "mode.tar", edited, members))
    big = next(e for e in manifest["snapshots"][0]["entries"] if e["path"] == "conf/big.bin")
    name = f"chunks/{big['chunks'][2]}"
    flipped = dict(members)
    frame = bytearray(flipped[name])
    frame[len(frame) // 2] ^= 0x01
    flipped[name] = bytes(frame)
    with pytest.raises(SnapshotError, match=f"snapshot {sid[:12]} file 'conf/big.bin'") as err:
        import_archive(other, write_archive(tmp_path / "chunk.tar", manifest, flipped))
    assert name in str(err.value)
    _nothing_written(other)


def test_swapped_chunk_lists_are_caught_by_the_file_hash(other: SnapshotStore, tmp_path: Path):
    archive = handmade(tmp_path / "two.tar", {"a.conf": b"a = 1\n", "b.conf": b"b = 2\n"})
    manifest, members = read_archive(archive)
    a, b = manifest["snapshots"][0]["entries"]
    a["chunks"], b["chunks"] = b["chunks"], a["chunks"]  # the id hashes sha256, not chunks
    with pytest.raises(SnapshotError, match="file 'a.conf': its chunks do not hash"):
        import_archive(other, write_archive(tmp_path / "swapped.tar", manifest, members))
    _nothing_written(other)


@pytest.mark.parametrize(("files", "links", "message"), [
    ({"/etc/evil.conf": b"x"}, {}, "refused path '/etc/evil.conf'"),
    ({"conf/../../evil.conf": b"x"}, {}, "refused path"),
    ({"ok.conf": b"x"}, {"link": "../../etc/passwd"}, "points outside"),
    ({"ok.conf": b"x"}, {"abs": "/etc/passwd"}, "absolute"),
    ({"d/ok.conf": b"x"}, {"d/up": "..", "d/esc": "up/.."}, "points outside"),
    ({"l/f.conf": b"x"}, {"l": "."}, "lies below symlink"),
])
def test_archives_that_would_escape_are_refused(other: SnapshotStore, tmp_path: Path, files,
                                                links, message):
    archive = handmade(tmp_path / "bad.tar", files, links)
    with pytest.raises(SnapshotError, match=message):
        import_archive(other, archive)
    _nothing_written(other)
    assert not (tmp_path.parent / "evil.conf").exists()


@pytest.mark.parametrize("member", ["../evil", "/tmp/evil", "chunks/../../evil", "other.txt"])
def test_unexpected_member_names_are_refused(other: SnapshotStore, tmp_path: Path, member: str):
    info = tarfile.TarInfo(member)
    archive = handmade(tmp_path / "bad.tar", {"ok.conf": b"x"}, extra=[info])
    with pytest.raises(SnapshotError, match="refused member"):
        import_archive(other, archive)
    _nothing_written(other)


def test_link_members_are_refused(other: SnapshotStore, tmp_path: Path):
    link = tarfile.TarInfo("chunks/" + "0" * 64)
    link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
    archive = handmade(tmp_path / "bad.tar", {"ok.conf": b"x"}, extra=[link])
    with pytest.raises(SnapshotError, match="not a regular file"):
        import_archive(other, archive)
    _nothing_written(other)


def test_not_an_archive(other: SnapshotStore, tmp_path: Path):
    junk = tmp_path / "junk.tar"
    junk.write_bytes(b"hello")
    with pytest.raises(SnapshotError, match="not a snapshot archive|empty"):
        import_archive(other, junk)
    with pytest.raises(SnapshotError, match="no such file"):
        import_archive(other, tmp_path / "absent.tar")


def test_members_are_one_chunk_each_and_import_groups_them_into_frames(
        snaps: SnapshotStore, other: SnapshotStore, tmp_path: Path):
    src = make_tree(tmp_path / "src")
    sid = snaps.save(src)
    export_archive(snaps, [sid], tmp_path / "a.tar")
    manifest, members = read_archive(tmp_path / "a.tar")
    for chunk in manifest["chunks"]:  # each member stands alone: one frame, one chunk
        frame = members[f"chunks/{chunk['sha256']}"]
        assert len(frame) == chunk["stored"]
        raw = zstandard.ZstdDecompressor().decompress(frame)
        assert len(raw) == chunk["size"] and hashlib.sha256(raw).hexdigest() == chunk["sha256"]
    moved = import_archive(other, tmp_path / "a.tar")
    assert moved.chunks == len(manifest["chunks"])
    rows = other.chunk_rows(c["sha256"] for c in manifest["chunks"])
    frames = {r.frame for r in rows.values()}
    assert len(frames) < len(rows) / 10  # grouped as a save groups them
    assert moved.stored == sum(stored for _, _, stored in frames) == packs(other)[0].stat().st_size
    assert tree_state(other.restore(sid, tmp_path / "out")) == tree_state(src)
    assert other.verify().problems == []


def test_restore_never_sets_setuid_setgid_or_sticky_from_an_archive(other: SnapshotStore,
                                                                     tmp_path: Path):
    archive = handmade(tmp_path / "suid.tar", {"d/run": b"#!/bin/sh\n"}, mode=0o7777,
                       dirs={"d": 0o3777})
    [sid] = import_archive(other, archive).snapshots
    dest = other.restore(sid, tmp_path / "out")
    file_mode, dir_mode = (dest / "d" / "run").stat().st_mode, (dest / "d").stat().st_mode
    assert file_mode & 0o7777 == 0o777 and dir_mode & 0o7777 == 0o777  # rwx kept, s/t bits not


@pytest.mark.parametrize("tag", ["red\x1b[31m", "two\nlines", "bell\x07", "rtl\u202e"])
def test_import_refuses_tags_with_control_characters(other: SnapshotStore, tmp_path: Path,
                                                     tag: str):
    archive = handmade(tmp_path / "tag.tar", {"a.conf": b"a = 1\n"}, tags=(tag,))
    with pytest.raises(SnapshotError, match="control character U\\+"):
        import_archive(other, archive)
    assert other.list() == []
