"""The snapshot store through its Python API: real files, a real DuckDB store in tmp_path."""

from __future__ import annotations

import os
import shutil
import string
import subprocess
import sys
import tempfile
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testfleet.snapshots.store import SnapshotStore
from testfleet.snapshots.tree import DamageError, SnapshotError
from testfleet.store.db import Store

from .conftest import BIG, make_tree, packs, stored_bytes, tree_state

# -- round trips -------------------------------------------------------------------------------

def test_save_restore_round_trip_keeps_bytes_modes_and_links(snaps: SnapshotStore, tmp_path: Path):
    src = make_tree(tmp_path / "src")
    sid = snaps.save(src)
    out = snaps.restore(sid, tmp_path / "out")
    assert tree_state(out) == tree_state(src)
    assert (out / "bin" / "run.sh").stat().st_mode & 0o777 == 0o755
    assert (out / "conf" / "secret.env").stat().st_mode & 0o777 == 0o600
    assert os.readlink(out / "conf" / "app-link.yaml") == "../app.yaml"
    assert (out / "empty").is_dir() and not any((out / "empty").iterdir())
    big = next(e for e in snaps.entries(sid) if e.path == "conf/big.bin")
    assert len(big.chunks) > 20 and big.size == BIG
    assert snaps.read_file(sid[:10], "conf/deep/er/latin1.ini") == \
        (src / "conf" / "deep" / "er" / "latin1.ini").read_bytes()


def test_a_file_or_several_paths_are_stored_under_their_names(snaps: SnapshotStore, tmp_path: Path):
    src = make_tree(tmp_path / "src")
    one = snaps.save(src / "app.yaml")
    assert [e.path for e in snaps.entries(one)] == ["app.yaml"]
    both = snaps.save([src / "app.yaml", src / "bin"])
    assert [e.path for e in snaps.entries(both)] == ["app.yaml", "bin", "bin/run.sh"]
    out = snaps.restore(both, tmp_path / "out")
    assert (out / "bin" / "run.sh").read_text() == "#!/bin/sh\necho hi\n"
    with pytest.raises(SnapshotError, match="both named"):
        snaps.save([src / "app.yaml", src / "conf" / "deep" / ".." / ".." / "app.yaml"])


def test_same_content_same_id_and_tags_and_meta_merge(snaps: SnapshotStore, tmp_path: Path):
    src = make_tree(tmp_path / "src")
    copy = tmp_path / "elsewhere" / "copy"
    shutil.copytree(src, copy, symlinks=True)
    a = snaps.save(src, tags=["v1"], meta={"env": "ci", "by": "alice"})
    before = stored_bytes(snaps)
    b = snaps.save(copy, tags=["v2"], meta={"by": "bob"})
    assert a == b
    assert stored_bytes(snaps) == before and len(packs(snaps)) == 1  # nothing new stored
    [info] = snaps.list()
    assert info.tags == ("v1", "v2")
    assert info.meta == {"by": "bob", "env": "ci"}
    assert info.files == 6 and info.roots == [str(src)]  # the first save's paths stay


def test_id_depends_on_content_modes_and_names(snaps: SnapshotStore, tmp_path: Path):
    src = make_tree(tmp_path / "src")
    base = snaps.save(src)
    (src / "conf" / "secret.env").chmod(0o640)
    moded = snaps.save(src)
    (src / "app.yaml").rename(src / "app2.yaml")
    renamed = snaps.save(src)
    assert len({base, moded, renamed}) == 3


def test_a_one_byte_change_in_a_big_file_stores_few_new_chunks(snaps: SnapshotStore,
                                                               tmp_path: Path):
    src = make_tree(tmp_path / "src")
    first = snaps.save(src)
    size_one = stored_bytes(snaps)
    big = src / "conf" / "big.bin"
    data = bytearray(big.read_bytes())
    data[len(data) // 2] ^= 0xFF
    big.write_bytes(bytes(data))
    second = snaps.save(src)
    assert second != first
    growth = stored_bytes(snaps) - size_one
    assert 0 < growth < 3 * 64 * 1024, growth  # one or two chunks, not the 3 MB file
    old, new = ({e.path: e for e in snaps.entries(s)} for s in (first, second))
    changed = set(new["conf/big.bin"].chunks) - set(old["conf/big.bin"].chunks)
    assert 1 <= len(changed) <= 2
    assert snaps.read_file(second, "conf/big.bin") == bytes(data)


def test_a_tree_holding_the_store_leaves_the_store_out(tmp_path: Path):
    project = tmp_path / "project"
    (project / "conf").mkdir(parents=True)
    (project / "conf" / "a.conf").write_text("a = 1\n")
    with Store.open(project / ".testfleet" / "t.duckdb") as db:
        ss = SnapshotStore(db)
        first = ss.save(project)
        assert ss.save(project) == first  # its own packs did not become part of the tree
        assert [e.path for e in ss.entries(first)] == [".testfleet", "conf", "conf/a.conf"]


def test_save_many_is_one_transaction_and_keeps_order(snaps: SnapshotStore, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch):
    files = []
    for i in range(5):
        path = tmp_path / f"c{i}.conf"
        path.write_text(f"n = {i}\n")
        files.append(path)
    writes = []
    real = snaps.store.write
    monkeypatch.setattr(snaps.store, "write", lambda *a, **k: writes.append(a[0]) or real(*a, **k))
    ids = snaps.save_many([([f], ["batch"], {"i": str(i)}) for i, f in enumerate(files)]
                          + [([files[0]], ["again"], None)])
    assert len(writes) == 1
    assert ids[0] == ids[5] and len(set(ids)) == 5
    assert [snaps.entries(s)[0].path for s in ids[:5]] == [f"c{i}.conf" for i in range(5)]
    assert snaps.info(ids[0]).tags == ("again", "batch")
    assert len(packs(snaps)) == 1


# -- finding and tagging ------------------------------------------------------------------------

def test_list_filters_by_tag_meta_and_time(snaps: SnapshotStore, tmp_path: Path):
    ids = []
    for i, (tag, env) in enumerate([("a", "ci"), ("b", "ci"), ("a", "prod")]):
        path = tmp_path / f"f{i}.conf"
        path.write_text(f"x = {i}\n")
        ids.append(snaps.save(path, tags=[tag, "all"], meta={"env": env}))
    assert {s.snapshot_id for s in snaps.list(tags=["a"])} == {ids[0], ids[2]}
    assert [s.snapshot_id for s in snaps.list(tags=["a"], meta={"env": "ci"})] == [ids[0]]
    assert [s.snapshot_id for s in snaps.list(meta={"env": "prod"})] == [ids[2]]
    assert snaps.list(tags=["nope"]) == []
    now = datetime.now(UTC)
    assert len(snaps.list(since=now - timedelta(hours=1))) == 3
    assert snaps.list(since=now + timedelta(hours=1)) == []
    assert snaps.list(until=now - timedelta(hours=1)) == []
    assert len(snaps.list(until=now + timedelta(hours=1), tags=["all"])) == 3


def test_tag_untag_and_resolve(snaps: SnapshotStore, tmp_path: Path):
    ids = []
    for i in range(17):  # 17 ids over 16 hex digits: two share a first digit
        path = tmp_path / f"f{i}.conf"
        path.write_text(f"x = {i}\n")
        ids.append(snaps.save(path))
    sid = ids[0]
    snaps.tag(sid[:8], ["keep", "prod"])
    snaps.untag(sid, ["prod", "absent"])
    assert snaps.info(sid).tags == ("keep",)
    assert snaps.resolve(sid.upper()[:12]) == sid
    digits = [s[0] for s in ids]
    shared = next(d for d in digits if digits.count(d) > 1)
    with pytest.raises(SnapshotError, match="ambiguous") as err:
        snaps.resolve(shared)
    assert sum(s[:16] in str(err.value) for s in ids if s[0] == shared) >= 2
    with pytest.raises(SnapshotError, match="no snapshot 'ffffffffff0'"):
        snaps.resolve("ffffffffff0")


def test_record_run_and_read_it_back(snaps: SnapshotStore, tmp_path: Path):
    path = tmp_path / "settings.toml"
    path.write_text("workers = 2\n")
    sid = snaps.save(path)
    snaps.record_run("run-1", "settings", sid[:8])
    snaps.record_run("run-1", "space", sid)
    assert snaps.run_snapshots("run-1") == {"settings": sid, "space": sid}
    assert snaps.runs_of(sid) == [("run-1", "settings"), ("run-1", "space")]
    with pytest.raises(SnapshotError):
        snaps.record_run("run-1", "ruleset", "0" * 64)


def test_bad_input_is_refused_with_a_clear_message(snaps: SnapshotStore, tmp_path: Path):
    with pytest.raises(SnapshotError, match="no such file"):
        snaps.save(tmp_path / "missing")
    tree = tmp_path / "t"
    tree.mkdir()
    os.symlink("/etc/passwd", tree / "abs")
    with pytest.raises(SnapshotError, match="absolute"):
        snaps.save(tree)
    (tree / "abs").unlink()
    os.symlink("../../outside", tree / "up")
    with pytest.raises(SnapshotError, match="outside the snapshot"):
        snaps.save(tree)
    (tree / "up").unlink()
    os.mkfifo(tree / "pipe")
    with pytest.raises(SnapshotError, match="FIFO"):
        snaps.save(tree)
    assert snaps.list() == [] and packs(snaps) == []


# -- restore --------------------------------------------------------------------------------------

def test_restore_refuses_a_non_empty_destination_but_fills_an_empty_one(snaps: SnapshotStore,
                                                                      tmp_path: Path):
    src = make_tree(tmp_path / "src")
    sid = snaps.save(src)
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("mine")
    with pytest.raises(SnapshotError, match="not empty"):
        snaps.restore(sid, full)
    assert [p.name for p in full.iterdir()] == ["keep.txt"]
    empty = tmp_path / "empty"
    empty.mkdir()
    snaps.restore(sid, empty)
    assert tree_state(empty) == tree_state(src)
    assert not [p for p in tmp_path.iterdir() if ".restore-" in p.name]  # no staging left


def test_restore_refuses_an_index_that_would_escape(snaps: SnapshotStore, tmp_path: Path):
    path = tmp_path / "a.conf"
    path.write_text("a = 1\n")
    sid = snaps.save(path)
    for bad in ("../evil.conf", "/tmp/evil.conf"):  # an index edited behind testfleet's back
        snaps.store.write("tamper", [("UPDATE snapshot_entries SET path = $1 WHERE snapshot_id = $2",
                                      [bad, sid])])
        with pytest.raises(SnapshotError, match="refused path"):
            snaps.restore(sid, tmp_path / "out" / "inner")
    link = ("UPDATE snapshot_entries SET path = 'l', kind = 'symlink', target = 'x/../../..' "
            "WHERE snapshot_id = $1")
    snaps.store.write("tamper", [(link, [sid])])
    with pytest.raises(SnapshotError, match="outside the snapshot"):
        snaps.restore(sid, tmp_path / "out" / "inner")
    assert not (tmp_path / "evil.conf").exists() and not (tmp_path / "out" / "inner").exists()


def test_symlink_chains_are_resolved_link_by_link():
    from testfleet.snapshots.tree import Entry, check_entries

    ok = [Entry("sub", "dir", 0o755), Entry("sub/x2", "symlink", 0o777, target=".."),
          Entry("a", "symlink", 0o777, target="sub/x2")]
    check_entries(ok, where="test")
    sneaky = [*ok, Entry("sub/z", "symlink", 0o777, target="x2/..")]  # lexically sub/, really ..
    with pytest.raises(SnapshotError, match="outside"):
        check_entries(sneaky, where="test")
    below_link = [*ok, Entry("a/f", "file", 0o644)]
    with pytest.raises(SnapshotError, match="lies below symlink"):
        check_entries(below_link, where="test")


# -- integrity ------------------------------------------------------------------------------------

def test_a_flipped_byte_in_a_pack_is_found_and_restore_refuses(snaps: SnapshotStore,
                                                               tmp_path: Path):
    src = make_tree(tmp_path / "src")
    sid = snaps.save(src)
    assert snaps.verify().problems == []
    [pack] = packs(snaps)
    big = next(e for e in snaps.entries(sid) if e.path == "conf/big.bin")
    rows = snaps.chunk_rows(c for e in snaps.entries(sid) for c in e.chunks)
    in_frame = _frames(rows.values())
    # a chunk in the middle of big.bin: its frame holds big.bin's chunks only
    chunk = next(c for c in big.chunks[len(big.chunks) // 2:]
                 if set(in_frame[rows[c].frame]) <= set(big.chunks))
    row = rows[chunk]
    data = bytearray(pack.read_bytes())
    data[row.offset + row.stored // 2] ^= 0x01
    pack.write_bytes(bytes(data))
    problems = snaps.verify(sid[:6]).problems
    assert problems and all(p.snapshot_id == sid and p.path == "conf/big.bin" for p in problems)
    assert {p.chunk_id for p in problems} == set(in_frame[row.frame])  # the whole frame
    with pytest.raises(DamageError, match=f"snapshot {sid[:12]} file 'conf/big.bin'"):
        snaps.restore(sid, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert not [p for p in tmp_path.iterdir() if ".restore-" in p.name]
    with pytest.raises(DamageError):
        snaps.read_file(sid, "conf/big.bin")
    assert snaps.read_file(sid, "app.yaml").startswith(b"server:")  # the rest still reads


def _frames(rows) -> dict[tuple[str, int, int], list[str]]:
    """frame (pack, offset, stored) -> its chunk ids, in frame order."""
    out: dict[tuple[str, int, int], list[str]] = {}
    for row in sorted(rows, key=lambda r: (r.pack, r.offset, r.frame_offset)):
        out.setdefault(row.frame, []).append(row.chunk_id)
    return out


def test_a_big_file_is_stored_in_frames_of_several_chunks(snaps: SnapshotStore, tmp_path: Path):
    path = tmp_path / "big.conf"
    lines = [f"[svc-{i}]\nport = {8000 + i % 50}\nhost = \"h{i * 7919 % 10007}.internal\"\n"
             for i in range(150_000)]
    path.write_text("".join(lines))  # ~6 MB of compressible config
    sid = snaps.save(path)
    [entry] = snaps.entries(sid)
    rows = snaps.chunk_rows(entry.chunks)
    frames = _frames(rows.values())
    assert len(entry.chunks) > 100 and len(frames) < len(entry.chunks) / 20
    # consecutive chunks of the file, back to back in their frame, frames in file order
    ordered = [c for chunks in frames.values() for c in chunks]
    assert ordered == list(dict.fromkeys(entry.chunks))
    for chunks in frames.values():
        at = 0
        for c in chunks:
            assert rows[c].frame_offset == at
            at += rows[c].size
        assert at >= 1 << 20 or chunks[-1] == entry.chunks[-1]  # ~1 MiB each, the last less
    assert sum(stored for _, _, stored in frames) < entry.size / 3  # compressed as a whole
    assert snaps.stored_size(sid) == sum(stored for _, _, stored in frames)
    assert snaps.read_file(sid, "big.conf") == path.read_bytes()
    out = snaps.restore(sid, tmp_path / "out")
    assert (out / "big.conf").read_bytes() == path.read_bytes()
    assert snaps.verify(sid).problems == []


def test_a_flipped_byte_in_a_shared_frame_names_every_chunk_and_file_in_it(snaps: SnapshotStore,
                                                                            tmp_path: Path):
    src = make_tree(tmp_path / "src")
    sid = snaps.save(src)
    entries = [e for e in snaps.entries(sid) if e.kind == "file"]
    rows = snaps.chunk_rows(c for e in entries for c in e.chunks)
    frames = _frames(rows.values())
    assert len(frames) < len(rows)
    # the first frame: the small files before big.bin in file order, then big.bin's first MiB
    first = min(frames, key=lambda f: f[1])
    hit = set(frames[first])
    files_hit = {e.path for e in entries if hit & set(e.chunks)}
    assert {"app.yaml", "bin/run.sh", "conf/big.bin"} <= files_hit
    [pack] = packs(snaps)
    data = bytearray(pack.read_bytes())
    data[first[1] + first[2] // 2] ^= 0x01
    pack.write_bytes(bytes(data))
    problems = snaps.verify().problems
    assert {p.chunk_id for p in problems} == hit
    assert {p.path for p in problems} == files_hit
    assert all(p.snapshot_id == sid and p.reason for p in problems)
    for path in files_hit:
        with pytest.raises(DamageError, match=f"file '{path}'"):
            snaps.read_file(sid, path)
    for e in entries:  # files with no chunk in that frame still read
        if e.path not in files_hit:
            assert snaps.read_file(sid, e.path) == (src / e.path).read_bytes()
    with pytest.raises(DamageError):
        snaps.restore(sid, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_an_index_row_pointing_outside_its_frame_is_damage(snaps: SnapshotStore, tmp_path: Path):
    src = make_tree(tmp_path / "src")
    sid = snaps.save(src)
    big = next(e for e in snaps.entries(sid) if e.path == "conf/big.bin")
    chunk = big.chunks[5]
    for sql, reason in [
        ("UPDATE snapshot_chunks SET frame_offset = frame_offset + 1 WHERE chunk_id = $1",
         "does not match its SHA-256"),
        ("UPDATE snapshot_chunks SET frame_offset = 1073741824 WHERE chunk_id = $1",
         "the index puts the chunk at"),
        ('UPDATE snapshot_chunks SET "offset" = "offset" + 1 WHERE chunk_id = $1',
         "not a valid zstd frame"),
        ("UPDATE snapshot_chunks SET stored = 1099511627776 WHERE chunk_id = $1", "is truncated"),
    ]:
        before = snaps.chunk_rows([chunk])[chunk]
        snaps.store.write("tamper", [(sql, [chunk])])
        [problem] = snaps.verify(sid).problems
        assert (problem.path, problem.chunk_id) == ("conf/big.bin", chunk)
        assert reason in problem.reason
        with pytest.raises(DamageError, match=reason):
            snaps.read_file(sid, "conf/big.bin")
        restore = ('UPDATE snapshot_chunks SET "offset" = $2, stored = $3, frame_offset = $4 '
                   "WHERE chunk_id = $1")
        snaps.store.write("untamper", [(restore, [chunk, before.offset, before.stored,
                                                  before.frame_offset])])
    assert snaps.verify(sid).problems == []


def test_threads_reading_one_frame_decompress_it_once(snaps: SnapshotStore, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch):
    from concurrent.futures import ThreadPoolExecutor

    from testfleet.snapshots.chunks import PackReader

    src = make_tree(tmp_path / "src")
    sid = snaps.save(src)
    rows = snaps.chunk_rows(c for e in snaps.entries(sid) for c in e.chunks)
    calls = []
    real = PackReader._decompress

    def counted(self, row):
        calls.append(row.frame)
        return real(self, row)
    monkeypatch.setattr(PackReader, "_decompress", counted)
    with PackReader(snaps.packs_dir) as reader, ThreadPoolExecutor(8) as pool:
        got = list(pool.map(reader.read, list(rows.values()) * 3))
    assert sorted(calls) == sorted(_frames(rows.values()))  # each frame once
    assert [len(g) for g in got] == [r.size for r in rows.values()] * 3


def test_gc_counts_frames_left_unused_inside_kept_packs(snaps: SnapshotStore, tmp_path: Path):
    src = make_tree(tmp_path / "src")
    sid = snaps.save(src)
    entries = snaps.entries(sid)
    rows = snaps.chunk_rows(c for e in entries for c in e.chunks)
    big = set(next(e for e in entries if e.path == "conf/big.bin").chunks)
    only_big = [f for f, chunks in _frames(rows.values()).items() if set(chunks) <= big]
    assert only_big  # and the first frame is shared with the small files
    snaps.store.write("forget big.bin", [(
        "DELETE FROM snapshot_entries WHERE snapshot_id = $1 AND path = 'conf/big.bin'", [sid])])
    done = snaps.gc()
    assert done.chunk_rows == len(big) and done.packs == [] and done.kept_packs == 1
    assert done.dead_bytes == sum(stored for _, _, stored in only_big)
    assert snaps.read_file(sid, "app.yaml").startswith(b"server:")


def test_a_deleted_pack_is_reported_missing(snaps: SnapshotStore, tmp_path: Path):
    a = tmp_path / "a.conf"
    a.write_text("a = 1\n")
    first = snaps.save(a)
    b = tmp_path / "b.conf"
    b.write_text("b = 2\n")
    second = snaps.save(b)
    pack = snaps.chunk_rows(snaps.entries(second)[0].chunks).popitem()[1].pack
    (snaps.packs_dir / f"{pack}.pack").unlink()
    problems = snaps.verify().problems
    assert [(p.snapshot_id, p.path) for p in problems] == [(second, "b.conf")]
    assert "is missing" in str(problems[0]) and second[:12] in str(problems[0])
    assert snaps.verify(first).problems == []


def test_an_edited_index_is_found_by_verify(snaps: SnapshotStore, tmp_path: Path):
    a = tmp_path / "a.conf"
    a.write_text("a = 1\n")
    sid = snaps.save(a)
    snaps.store.write("tamper", [("UPDATE snapshot_entries SET mode = 511 WHERE snapshot_id = $1",
                                  [sid])])
    [problem] = snaps.verify().problems
    assert "no longer hash to its id" in str(problem)


def test_a_file_changed_while_saving_is_refused(snaps: SnapshotStore, tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch):
    import testfleet.snapshots.store as store_module

    path = tmp_path / "a.conf"
    path.write_text("a = 1\n")
    real = store_module.compress_into

    def and_edit(pack, pieces):
        real(pack, pieces)
        path.write_text("a = 2, and longer\n")
    monkeypatch.setattr(store_module, "compress_into", and_edit)
    with pytest.raises(SnapshotError, match="changed while it was being saved"):
        snaps.save(path)
    assert snaps.list() == [] and packs(snaps) == []


# -- crashes and gc -------------------------------------------------------------------------------

def test_a_failed_index_write_leaves_no_snapshot_and_no_pack(snaps: SnapshotStore, tmp_path: Path,
                                                             monkeypatch: pytest.MonkeyPatch):
    src = make_tree(tmp_path / "src")
    real = snaps.store.write
    seen = []

    def fail(action, statements):
        seen.append(len(packs(snaps)))  # the pack is complete on disk before the index write
        raise RuntimeError("disk full")
    monkeypatch.setattr(snaps.store, "write", fail)
    with pytest.raises(RuntimeError):
        snaps.save(src)
    monkeypatch.setattr(snaps.store, "write", real)
    assert seen == [1]
    assert snaps.list() == [] and packs(snaps) == []


def test_a_killed_save_never_lists_and_gc_frees_its_pack(tmp_path: Path):
    src = make_tree(tmp_path / "src")
    store_path = tmp_path / "s.duckdb"
    script = textwrap.dedent(f"""
        import os, signal
        from testfleet.store.db import Store
        from testfleet.snapshots.store import SnapshotStore
        def crash(self, action, statements):
            os.kill(os.getpid(), signal.SIGKILL)  # dies after the pack, before the index
        Store.write = crash
        SnapshotStore(Store.open({str(store_path)!r})).save({str(src)!r})
    """)
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60,
                          check=False)
    assert proc.returncode == -9, proc.stderr
    with Store.open(store_path) as db:
        ss = SnapshotStore(db)
        [orphan] = packs(ss)
        size = orphan.stat().st_size
        (ss.packs_dir / ".deadbeef.pack.tmp").write_bytes(b"x" * 10)  # a crash mid-write
        assert ss.list() == [] and ss.verify().problems == []
        done = ss.gc()
        assert done.packs == [(orphan.name, size)] and done.freed == size + 10
        assert [name for name, _ in done.temp_files] == [".deadbeef.pack.tmp"]
        assert list(ss.packs_dir.iterdir()) == []
        sid = ss.save(src)  # and the store works on
        assert ss.gc().freed == 0 and ss.verify(sid).problems == []


# -- the property -------------------------------------------------------------------------------

names = st.text(alphabet=string.ascii_letters + string.digits + "_-. é", min_size=1,
                max_size=8).filter(lambda n: n not in (".", ".."))
files = st.dictionaries(
    st.lists(names, min_size=1, max_size=3).map(tuple),
    st.tuples(st.binary(max_size=3000), st.sampled_from([0o644, 0o600, 0o755, 0o400, 0o777])),
    min_size=0, max_size=8)


def _write(root: Path, tree: dict[tuple[str, ...], tuple[bytes, int]]) -> None:
    root.mkdir(parents=True)
    for parts, (data, mode) in tree.items():
        path = root.joinpath(*parts)
        if any(p.is_file() for p in path.parents if p != root and p.is_relative_to(root)):
            continue  # a file already where a directory would go
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        path.chmod(mode)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=files)
def test_property_restore_gives_the_same_tree_and_the_id_only_depends_on_content(tree):
    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        _write(base / "one", tree)
        _write(base / "other" / "place", tree)
        with Store.open(base / "s.duckdb") as db:
            ss = SnapshotStore(db)
            sid = ss.save(base / "one", tags=["x"], meta={"k": "v"})
            assert ss.save(base / "other" / "place", tags=["y"]) == sid
            out = ss.restore(sid, base / "out")
            assert tree_state(out) == tree_state(base / "one")
