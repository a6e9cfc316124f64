"""The project archive: what ``pack`` sends (git's .gitignore rules, always-left-out folders, the
same bytes for the same tree) and what ``unpack`` refuses (traversal, links out, devices, bombs,
corrupt bodies), never writing outside its destination."""

from __future__ import annotations

import gzip
import io
import os
import shutil
import subprocess
import tarfile
import tempfile
import tracemalloc
import zlib
from pathlib import Path

import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from testfleet.errors import TestfleetError, UsageError
from testfleet.service.archive import pack, unpack

MB = 1024 * 1024
SETTINGS = settings(derandomize=True, deadline=None, max_examples=150,
                    suppress_health_check=[HealthCheck.too_slow])


# -- helpers --------------------------------------------------------------------------------------
def write_tree(root: Path, files: dict[str, bytes]) -> None:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)


def read_tree(root: Path) -> dict[str, bytes | str]:
    """Every file (content) and symlink ('-> target') under root, by relative POSIX path."""
    found: dict[str, bytes | str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                found[rel] = "-> " + os.readlink(path)
            elif path.is_file():
                found[rel] = path.read_bytes()
    return found


def files_of(data: bytes, tmp: Path) -> dict[str, bytes | str]:
    dest = tmp / "unpacked"
    unpack(data, dest, max_bytes=64 * MB)
    tree = read_tree(dest)
    shutil.rmtree(dest)
    return tree


def tar_gz(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, content in members:
            tar.addfile(info, io.BytesIO(content) if content is not None else None)
    return gzip.compress(raw.getvalue())


def member(name: str, kind: str = "file", content: bytes = b"x",
           link: str = "") -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type = {"file": tarfile.REGTYPE, "dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE,
                 "hardlink": tarfile.LNKTYPE, "fifo": tarfile.FIFOTYPE, "chr": tarfile.CHRTYPE,
                 "blk": tarfile.BLKTYPE}[kind]
    info.mode = 0o755 if kind == "dir" else 0o644
    info.linkname = link
    if kind == "file":
        info.size = len(content)
        return info, content
    return info, None


def snapshot(root: Path) -> dict[str, tuple[int, bytes | str | None]]:
    """Type and content of everything under root (links not followed)."""
    seen: dict[str, tuple[int, bytes | str | None]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            mode = path.lstat().st_mode
            body: bytes | str | None = None
            if path.is_symlink():
                body = os.readlink(path)
            elif path.is_file():
                body = path.read_bytes()
            seen[path.relative_to(root).as_posix()] = (mode & 0o170000, body)
    return seen


# -- pack: what is sent ---------------------------------------------------------------------------
def test_pack_leaves_out_git_caches_stores_and_virtualenvs(tmp_path):
    write_tree(tmp_path, {"app.py": b"a", "tests/test_a.py": b"t", ".git/HEAD": b"ref",
                          "pkg/__pycache__/m.cpython-311.pyc": b"c", ".testfleet/cache": b"c",
                          "runs.duckdb": b"d", "runs.duckdb.wal": b"w", "sub/old.duckdb": b"d",
                          ".venv/pyvenv.cfg": b"home", ".venv/lib/site.py": b"s",
                          "env2/pyvenv.cfg": b"home", "notvenv/pyvenv.txt": b"n"})
    assert files_of(pack(tmp_path), tmp_path / "_") == {
        "app.py": b"a", "tests/test_a.py": b"t", "notvenv/pyvenv.txt": b"n"}


def test_gitignore_negation_directory_patterns_and_nesting(tmp_path):
    write_tree(tmp_path, {
        ".gitignore": b"*.log\n!keep.log\nbuild/\n/only_root.txt\n# a comment\ndata\n",
        "a.log": b"", "keep.log": b"k", "only_root.txt": b"", "build/out.bin": b"",
        "sub/build": b"a file named build: 'build/' matches folders only",
        "sub/only_root.txt": b"r", "data/x": b"", "sub/data": b"",
        "sub/.gitignore": b"!a.log\n*.tmp\n", "sub/a.log": b"l", "sub/t.tmp": b"",
        "other/t.tmp": b"o",
    })
    assert files_of(pack(tmp_path), tmp_path / "_") == {
        ".gitignore": b"*.log\n!keep.log\nbuild/\n/only_root.txt\n# a comment\ndata\n",
        "keep.log": b"k", "sub/build": b"a file named build: 'build/' matches folders only",
        "sub/only_root.txt": b"r", "sub/.gitignore": b"!a.log\n*.tmp\n", "sub/a.log": b"l",
        "other/t.tmp": b"o"}


def test_nothing_under_an_ignored_folder_comes_back(tmp_path):
    # git: "It is not possible to re-include a file if a parent directory of that file is excluded"
    write_tree(tmp_path, {".gitignore": b"logs/\n!logs/keep.txt\n", "logs/keep.txt": b"",
                          "gen/.gitignore": b"*\n!.gitignore\n!wanted.py\n", "gen/wanted.py": b"w",
                          "gen/junk.py": b"", "main.py": b"m"})
    assert set(files_of(pack(tmp_path), tmp_path / "_")) == {".gitignore", "gen/.gitignore", "gen/wanted.py",
                                                              "main.py"}


def test_links_inside_are_kept_relative_and_links_out_are_left_out(tmp_path):
    project = tmp_path / "project"
    write_tree(project, {"src/real.py": b"r", "ignored.txt": b"i", ".gitignore": b"ignored.txt\n"})
    write_tree(tmp_path, {"secret.txt": b"s"})
    (project / "alias.py").symlink_to(project / "src" / "real.py")  # absolute, inside
    (project / "src" / "up").symlink_to("../src")  # a folder, relative
    (project / "out.txt").symlink_to(tmp_path / "secret.txt")
    (project / "dangling").symlink_to("nowhere")
    (project / "to_ignored").symlink_to("ignored.txt")
    tree = files_of(pack(project), tmp_path / "_")
    assert tree == {".gitignore": b"ignored.txt\n", "src/real.py": b"r", "alias.py": "-> src/real.py",
                    "src/up": "-> ."}


def test_same_tree_same_bytes_whatever_the_mtimes_or_place(tmp_path):
    files = {"a.py": b"1", "d/b.py": b"2", "d/e/c.txt": b"3" * 5000}
    write_tree(tmp_path / "one", files)
    write_tree(tmp_path / "two", dict(reversed(list(files.items()))))
    os.utime(tmp_path / "two" / "a.py", (12345, 12345))
    first = pack(tmp_path / "one")
    assert pack(tmp_path / "one") == first == pack(tmp_path / "two")
    (tmp_path / "two" / "a.py").write_bytes(b"changed")
    assert pack(tmp_path / "two") != first


def test_pack_keeps_the_executable_bit(tmp_path):
    write_tree(tmp_path / "p", {"run.sh": b"#!/bin/sh\n", "data.txt": b""})
    (tmp_path / "p" / "run.sh").chmod(0o755)
    unpack(pack(tmp_path / "p"), tmp_path / "out", max_bytes=MB)
    assert os.access(tmp_path / "out" / "run.sh", os.X_OK)
    assert not os.access(tmp_path / "out" / "data.txt", os.X_OK)


def test_pack_paths_keeps_only_those(tmp_path):
    write_tree(tmp_path / "p", {"tests/a/test_x.py": b"x", "tests/b/test_y.py": b"y", "setup.py": b""})
    data = pack(tmp_path / "p", ["tests/a"])
    assert files_of(data, tmp_path / "_") == {"tests/a/test_x.py": b"x"}
    with pytest.raises(UsageError):
        pack(tmp_path / "p", ["../elsewhere"])


def test_pack_refuses_a_missing_root_and_an_empty_project(tmp_path):
    with pytest.raises(UsageError, match="does not exist"):
        pack(tmp_path / "missing")
    write_tree(tmp_path / "p", {".git/HEAD": b""})
    with pytest.raises(UsageError, match="nothing to pack"):
        pack(tmp_path / "p")


SAFE_NAME = st.from_regex(r"[abcxyzé名_][abcxyzé名_. -]{0,6}", fullmatch=True)


@SETTINGS
@given(st.dictionaries(st.lists(SAFE_NAME, min_size=1, max_size=3).map("/".join),
                       st.binary(max_size=300), min_size=1, max_size=12))
def test_unpack_of_pack_is_the_tree(files):
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "p"
        written = {}
        for rel, content in files.items():  # a name may not be both a file and a folder
            path = root / rel
            if any((root / rel).is_relative_to(root / other) or (root / other).is_relative_to(path)
                   for other in written):
                continue
            write_tree(root, {rel: content})
            written[rel] = content
        assert files_of(pack(root), Path(tmp) / "_") == written


# a line ending in "**/" is left out: pathspec reads "d/**/" as the folder d itself, where git
# means the folders under d (a known difference, named in the archive module's text)
GIT_PATTERN = st.lists(st.sampled_from(["a", "b", "*", "?", "**", "x*", "*.py", "c"]), min_size=1,
                       max_size=3).map("/".join).flatmap(
    lambda body: st.sampled_from([body, "/" + body, "!" + body, "!/" + body]
                                 + ([] if body.endswith("**") else [body + "/"])))
GIT_TREE = ["a/b/c.py", "a/x.py", "b/a", "c", "x1/b.py", "a/c/b/c", "b/x/a.py", "top.py"]


@settings(derandomize=True, deadline=None, max_examples=80)
@given(st.lists(GIT_PATTERN, max_size=5), st.lists(GIT_PATTERN, max_size=3))
def test_gitignore_agrees_with_git(root_patterns, nested_patterns):
    """The files pack sends are those git itself reports as not ignored."""
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        write_tree(root, {rel: b"" for rel in GIT_TREE})
        write_tree(root, {".gitignore": "\n".join(root_patterns).encode() + b"\n",
                          "a/.gitignore": "\n".join(nested_patterns).encode() + b"\n"})
        subprocess.run(["git", "init", "-q", str(root)], check=True)
        listed = subprocess.run(["git", "ls-files", "--others", "--exclude-standard", "-z"], cwd=root,
                                check=True, capture_output=True).stdout.decode()
        expected = {name for name in listed.split("\0") if name}
        try:
            sent = {rel for rel, body in files_of(pack(root), root / ".git" / "_").items()
                    if isinstance(body, bytes)}
        except UsageError:
            sent = set()  # everything ignored
        event("sent nothing" if not sent else "sent some")
        assert sent == expected, (root_patterns, nested_patterns)


# -- unpack: what is refused ----------------------------------------------------------------------
@pytest.mark.parametrize("members,why", [
    ([member("/etc/evil")], "absolute"),
    ([member("../evil")], "'..'"),
    ([member("a/../../evil")], "'..'"),
    ([member("l", "symlink", link="/etc")], "absolute"),
    ([member("l", "symlink", link="../out")], "out of the project"),
    ([member("d/l", "symlink", link="../../out")], "out of the project"),
    ([member("l", "symlink", link="."), member("l/x")], "under a file or link"),
    ([member("h", "hardlink", link="../outside")], "'..'"),
    ([member("h", "hardlink", link="missing")], "hard link"),
    ([member("f", "fifo")], "device, fifo"),
    ([member("c", "chr")], "device, fifo"),
    ([member("b", "blk")], "device, fifo"),
    ([member("a"), member("a")], "named twice"),
    ([member("a"), member("a/b")], "under a file or link"),
    ([member("a/b"), member("a", "symlink", link="c")], "where a folder was"),
    ([member("ok"), member("n" * 300)], "cannot write a member"),  # a name too long for the disk
    # the names stay inside, the real files do not: l is the destination itself, so l/.. is its parent
    ([member("l", "symlink", link="."), member("m", "symlink", link="l/..")], "out of the project"),
    ([member("m", "symlink", link="l/.."), member("l", "symlink", link=".")], "out of the project"),
])
def test_unpack_refuses(tmp_path, members, why):
    (tmp_path / "outside").mkdir()
    before = snapshot(tmp_path)
    with pytest.raises(UsageError, match=why) as info:
        unpack(tar_gz(members), tmp_path / "dest", max_bytes=MB)
    assert info.value.source == "archive"
    assert snapshot(tmp_path) == before  # neither dest nor a temporary folder is left


def test_unpack_refuses_bodies_that_are_not_a_gzip_tar(tmp_path):
    good = tar_gz([member("a", content=b"hello" * 1000)])
    for body, why in [(b"", "not gzip"), (b"PK\x03\x04zip", "not gzip"),
                      (good[: len(good) // 2], "ends early"),
                      (good[:20] + bytes(b ^ 0xFF for b in good[20:40]) + good[40:], "corrupt|tar"),
                      (gzip.compress(b"not a tar" * 100), "tar"), (gzip.compress(b""), "tar")]:
        with pytest.raises(UsageError, match=why):
            unpack(body, tmp_path / "dest", max_bytes=MB)
        assert os.listdir(tmp_path) == []


def test_unpack_refuses_too_many_members_and_too_many_bytes(tmp_path):
    many = tar_gz([member(f"f{i}") for i in range(11)])
    with pytest.raises(UsageError, match="more than 10 members"):
        unpack(many, tmp_path / "dest", max_bytes=MB, max_files=10)
    assert unpack(many, tmp_path / "dest", max_bytes=MB, max_files=11) == [f"f{i}" for i in range(11)]
    big = tar_gz([member("a", content=b"a" * 600), member("b", content=b"b" * 600)])
    with pytest.raises(UsageError, match="1000 bytes"):
        unpack(big, tmp_path / "dest2", max_bytes=1000)
    assert not (tmp_path / "dest2").exists()


def zeros_gz(header: bytes, size: int) -> bytes:
    """A gzip'd tar stream of ``header`` then ``size`` zero bytes, made without holding them."""
    squeeze = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [squeeze.compress(header)]
    block = bytes(MB)
    for _ in range(size // MB):
        parts.append(squeeze.compress(block))
    parts.append(squeeze.flush())
    return b"".join(parts)


@pytest.mark.parametrize("kind", ["file", "pax header"])
def test_a_gzip_bomb_is_stopped_before_it_expands(tmp_path, kind):
    size = 512 * MB
    info = tarfile.TarInfo("bomb")
    if kind == "file":
        info.size = size
    else:  # tarfile reads a pax header whole into memory before it yields any member
        info.type, info.size = tarfile.XHDTYPE, size
    bomb = zeros_gz(info.tobuf(tarfile.USTAR_FORMAT), size)
    assert len(bomb) < MB
    tracemalloc.start()
    try:
        with pytest.raises(UsageError, match="limit|more than"):
            unpack(bomb, tmp_path / "dest", max_bytes=4 * MB)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 32 * MB  # a little over the cap, far from the 512 MB the bomb expands to
    assert os.listdir(tmp_path) == []


def test_unpack_needs_a_new_or_empty_destination(tmp_path):
    data = tar_gz([member("a")])
    (tmp_path / "full").mkdir()
    (tmp_path / "full" / "keep").write_text("mine")
    with pytest.raises(UsageError, match="empty folder"):
        unpack(data, tmp_path / "full", max_bytes=MB)
    assert (tmp_path / "full" / "keep").read_text() == "mine"
    (tmp_path / "empty").mkdir()
    assert unpack(data, tmp_path / "empty", max_bytes=MB) == ["a"]
    assert unpack(data, tmp_path / "new" / "deep", max_bytes=MB) == ["a"]


def test_links_inside_unpack(tmp_path):
    data = tar_gz([member("d", "dir"), member("d/a", content=b"A"), member("h", "hardlink", link="d/a"),
                   member("d/s", "symlink", link="../h"), member("t", "symlink", link="d")])
    assert unpack(data, tmp_path / "out", max_bytes=MB) == ["d", "d/a", "h", "d/s", "t"]
    assert (tmp_path / "out" / "h").read_bytes() == (tmp_path / "out" / "t" / "s").read_bytes() == b"A"


@pytest.mark.skipif(shutil.which("tar") is None, reason="no tar on this machine")
def test_an_archive_made_by_tar_unpacks(tmp_path):
    write_tree(tmp_path / "p", {"a.py": b"a", "sub/b.txt": b"b"})
    made = subprocess.run(["tar", "czf", "-", "-C", str(tmp_path / "p"), "."], check=True,
                          capture_output=True).stdout  # names as "./a.py", with a "./" entry first
    unpack(made, tmp_path / "out", max_bytes=MB)
    assert read_tree(tmp_path / "out") == {"a.py": b"a", "sub/b.txt": b"b"}


def test_unpacked_modes_are_the_owners(tmp_path):
    setuid = member("s", content=b"#!")
    setuid[0].mode = 0o4777
    locked = member("locked", "dir")
    locked[0].mode = 0o000
    unpack(tar_gz([setuid, locked, member("locked/f")]), tmp_path / "d", max_bytes=MB)
    assert (tmp_path / "d" / "s").stat().st_mode & 0o7777 == 0o755
    assert (tmp_path / "d" / "locked" / "f").read_bytes() == b"x"


# -- unpack, any archive: inside dest or refused --------------------------------------------------
ABS = "<ABS>"  # replaced by the sandbox's absolute path, so an escape would land where we look
# plain names (so that many archives unpack) with escapes and odd names mixed in
COMPONENT = st.one_of(st.sampled_from(["a", "a", "b", "l", "l", "..", "..", ".", "", "é", "名", " ", "a\\b",
                                       "...", ABS]),
                      st.text(st.characters(blacklist_characters="/\0", blacklist_categories=["Cs"]),
                              min_size=1, max_size=6))
PATH = st.lists(COMPONENT, min_size=1, max_size=4).map("/".join)
NAME = st.one_of(st.sampled_from(["a", "b", "l", "d/e", "l/x", "a/b"]), PATH)
TARGET = st.one_of(st.sampled_from([".", "..", "../outside/victim", "l/..", "d/../..", f"/{ABS}/outside", "a", "l"]),
                   PATH)
MEMBER = st.tuples(NAME, st.sampled_from(["file", "file", "dir", "symlink", "symlink", "hardlink", "fifo"]), TARGET)


@settings(SETTINGS, max_examples=300)
@given(st.lists(MEMBER, min_size=1, max_size=6, unique_by=lambda m: m[0]))
def test_any_archive_unpacks_inside_dest_or_is_refused(members):
    with tempfile.TemporaryDirectory() as tmp:
        sandbox = Path(tmp)
        (sandbox / "outside").mkdir()
        (sandbox / "outside" / "victim").write_bytes(b"v")
        fill = lambda text: text.replace(ABS, str(sandbox).lstrip("/"))  # noqa: E731
        data = tar_gz([member(fill(name), kind, content=b"c", link=fill(link)) for name, kind, link in members])
        before = snapshot(sandbox)
        dest = sandbox / "dest"
        try:
            names = unpack(data, dest, max_bytes=MB)
        except TestfleetError as exc:
            assert isinstance(exc, UsageError) and exc.source == "archive"
            assert snapshot(sandbox) == before
            event("refused")
            return
        event("unpacked")
        after = snapshot(sandbox)
        assert {k: v for k, v in after.items() if k != "dest" and not k.startswith("dest/")} == before
        root = os.path.realpath(dest)
        for name in names:
            path = dest / name
            assert os.path.lexists(path)
            assert os.path.commonpath([root, os.path.realpath(path)]) == root
