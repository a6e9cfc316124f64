"""The project archive of ``testfleet submit``: :func:`pack` on the client, :func:`unpack` on the server.

``pack`` makes a gzip'd tar of the project as git would see it: every ``.gitignore`` (the root's
and nested ones, git's rules through ``pathspec``'s ``GitIgnoreSpec``: a deeper file overrides a
higher one, the last matching line wins, ``!`` re-includes, ``dir/`` matches folders only, and
nothing under an ignored folder comes back) plus what never belongs in a submitted run: ``.git``,
``__pycache__``, ``.testfleet``, DuckDB stores (``*.duckdb*``) and virtualenvs (a folder holding
``pyvenv.cfg``). ``.git/info/exclude`` and the user's global excludes are not read. One known
difference from git: a line ending in ``**/`` ("d/**/", the folders under d) is read as
pathspec reads it, as the folder d itself. The bytes are
the same for the same tree: entries sorted, fixed mtime, owner, group and modes (0644, or 0755
when the owner may execute), no gzip timestamp or name.

Links: a symlink is stored as a link only when its final target is a file or folder that is
itself packed; its target is then written relative to the link (an absolute target inside the
project becomes relative). A symlink leading out of the project, dangling, or to an ignored file
is left out, as are sockets, fifos and devices.

``unpack`` trusts nothing: it refuses (:class:`~testfleet.errors.UsageError`, ``source="archive"``,
``place`` the member) absolute names, ``..`` components, a name met twice, a member under a link,
links whose target leaves the destination (checked on the names, then on the real files once
all are written), hard links to anything but an earlier regular file, devices and fifos, more
than ``max_files`` members, and a body that is not gzip or is corrupt. ``max_bytes`` bounds the
*decompressed* tar stream (file contents plus tar headers and padding) and is counted as the
gzip is inflated, so a gzip bomb stops after ``max_bytes``, not after expanding. Everything is
written into a fresh folder beside ``dest`` and renamed to ``dest`` at the end: on refusal
nothing is left, and nothing is ever written outside ``dest``.
"""

from __future__ import annotations

import copy
import gzip
import io
import os
import posixpath
import shutil
import stat
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path

from testfleet.errors import UsageError
from testfleet.service.gitignore import Ignores

__all__ = ["pack", "unpack", "ALWAYS_LEFT_OUT"]

#: names left out wherever they are, whatever .gitignore says
ALWAYS_LEFT_OUT = (".git", "__pycache__", ".testfleet", "*.duckdb*")

_MTIME = 1_000_000_000  # a fixed mtime (2001-09-09) keeps the bytes the same for the same tree
_CHUNK = 64 * 1024


# -- pack -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Entry:
    rel: str  # POSIX path relative to the root
    path: Path
    kind: str  # "file", "dir" or "link"


def _always_left_out(name: str) -> bool:
    return any(fnmatchcase(name, pattern) for pattern in ALWAYS_LEFT_OUT)


def _walk(root: Path, folder: Path, rel: str, ignores: Ignores,
          selected: list[str] | None) -> Iterator[_Entry]:
    ignores = ignores.below(folder, rel)
    try:
        names = sorted(os.listdir(folder))
    except OSError as exc:
        raise UsageError(f"cannot list the folder: {exc.strerror}", source="archive",
                         place=str(folder)) from None
    for name in names:
        if _always_left_out(name):
            continue
        path = folder / name
        child = f"{rel}/{name}" if rel else name
        mode = path.lstat().st_mode
        is_dir = stat.S_ISDIR(mode)
        if not _wanted(child, is_dir, selected) or ignores.ignored(child, is_dir):
            continue
        if stat.S_ISLNK(mode):
            yield _Entry(child, path, "link")
        elif is_dir:
            if (path / "pyvenv.cfg").is_file():
                continue  # a virtualenv: the server makes its own environment
            yield _Entry(child, path, "dir")
            yield from _walk(root, path, child, ignores, selected)
        elif stat.S_ISREG(mode):
            yield _Entry(child, path, "file")


def _wanted(rel: str, is_dir: bool, selected: list[str] | None) -> bool:
    """Inside one of the selected paths, or a folder on the way to one."""
    if selected is None:
        return True
    return any(rel == s or rel.startswith(s + "/") or (is_dir and s.startswith(rel + "/"))
               for s in selected)


def _selection(root: Path, paths: list[str] | None) -> list[str] | None:
    if paths is None:
        return None
    selected = []
    for given in paths:
        path = (root / given).resolve()
        if not path.exists() or not path.is_relative_to(root):
            raise UsageError("not a path inside the project", source="archive", place=given,
                             expected=f"an existing file or folder under {root}")
        rel = path.relative_to(root).as_posix()
        if rel == ".":
            return None
        selected.append(rel)
    return selected


def _link_target(root: Path, entry: _Entry, packed: set[str]) -> str | None:
    """The link's target relative to its folder, or None to leave the link out."""
    try:
        final = entry.path.resolve(strict=True)
    except (OSError, RuntimeError):
        return None  # dangling or a loop
    if not final.is_relative_to(root):
        return None
    target = final.relative_to(root).as_posix()
    if target not in packed:
        return None  # ignored, left out, or the project itself
    return posixpath.relpath(target, posixpath.dirname(entry.rel) or ".")


def _tarinfo(rel: str, kind: str, size: int = 0, mode: int = 0o644, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(rel)
    info.mtime = _MTIME
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    if kind == "dir":
        info.type, info.mode = tarfile.DIRTYPE, 0o755
    elif kind == "link":
        info.type, info.mode, info.linkname = tarfile.SYMTYPE, 0o777, link
    else:
        info.size, info.mode = size, mode
    return info


def pack(root: Path, paths: list[str] | None = None) -> bytes:
    """The project under ``root`` as a gzip'd tar (see the module's text for what is left out).

    ``paths`` (relative to ``root``, or absolute inside it) keeps only those files and folders
    (and the folders on the way to them); None packs the whole project. Raises
    :class:`~testfleet.errors.UsageError` when ``root`` is not a folder, a path is not inside it,
    a file cannot be read, or nothing is left to pack.
    """
    if not Path(root).is_dir():
        raise UsageError("the project folder does not exist", source="archive", place=str(root),
                         expected="an existing folder")
    root = Path(root).resolve()
    entries = list(_walk(root, root, "", Ignores(), _selection(root, paths)))
    packed = {e.rel for e in entries if e.kind != "link"}
    raw = io.BytesIO()
    count = 0
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for entry in entries:
            if entry.kind == "link":
                target = _link_target(root, entry, packed)
                if target is not None:
                    tar.addfile(_tarinfo(entry.rel, "link", link=target))
                    count += 1
            elif entry.kind == "dir":
                tar.addfile(_tarinfo(entry.rel, "dir"))
                count += 1
            else:
                _add_file(tar, entry)
                count += 1
    if count == 0:
        raise UsageError("nothing to pack: every file is ignored or left out", source="archive",
                         place=str(root), expected="a project with at least one file")
    out = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0, compresslevel=6) as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def _add_file(tar: tarfile.TarFile, entry: _Entry) -> None:
    try:
        with open(entry.path, "rb") as handle:
            status = os.fstat(handle.fileno())
            mode = 0o755 if status.st_mode & stat.S_IXUSR else 0o644
            tar.addfile(_tarinfo(entry.rel, "file", size=status.st_size, mode=mode), handle)
    except OSError as exc:
        raise UsageError(f"cannot read the file: {exc.strerror or exc}", source="archive",
                         place=str(entry.path), expected="a readable file, or a .gitignore line") from None


# -- unpack ---------------------------------------------------------------------------------------
def _refuse(message: str, place: str | None = None, expected: str | None = None) -> UsageError:
    return UsageError(message, source="archive", place=place, expected=expected)


class _BoundedGunzip:
    """A read-only file over gzip'd bytes that inflates on demand and refuses past ``cap`` bytes
    out, so a bomb (or a huge pax header tarfile would read into memory) stops early."""

    def __init__(self, data: bytes, cap: int) -> None:
        self._data = memoryview(data)
        self._pos = 0
        self._cap = cap
        self._total = 0
        self._inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._pending = b""  # input not yet given to the inflater

    def read(self, size: int = -1) -> bytes:
        out = bytearray()
        while size < 0 or len(out) < size:
            piece = self._next(_CHUNK if size < 0 else min(_CHUNK, size - len(out)))
            if not piece:
                break
            out += piece
        return bytes(out)

    def _next(self, want: int) -> bytes:
        while True:
            if self._inflater.eof:
                rest = self._inflater.unused_data + bytes(self._data[self._pos:])
                self._pos = len(self._data)
                if not rest:
                    return b""
                # another gzip member follows (gzip allows several); anything else is corrupt
                self._inflater, self._pending = zlib.decompressobj(16 + zlib.MAX_WBITS), rest
            if not self._pending:
                if self._pos >= len(self._data):
                    raise _refuse("the gzip body ends early", expected="a complete gzip'd tar")
                self._pending = bytes(self._data[self._pos:self._pos + _CHUNK])
                self._pos += _CHUNK
            try:
                piece = self._inflater.decompress(self._pending, want)
            except zlib.error as exc:
                raise _refuse(f"corrupt gzip body: {exc}", expected="a gzip'd tar") from None
            self._pending = self._inflater.unconsumed_tail
            if piece:
                self._total += len(piece)
                if self._total > self._cap:
                    raise _refuse(f"the archive expands past the limit of {self._cap} bytes",
                                  expected=f"at most {self._cap} bytes unpacked")
                return piece


def _member_name(member: tarfile.TarInfo) -> str:
    """The member's name as a normalised relative POSIX path ('' for the archive's root)."""
    name = member.name
    if "\0" in name:
        raise _refuse("a member name holds a NUL byte", place=repr(name))
    if name.startswith(("/", "\\")):
        raise _refuse("an absolute member name", place=name, expected="a name relative to the project")
    parts = [part for part in name.split("/") if part not in ("", ".")]
    if ".." in parts:
        raise _refuse("a member name with a '..' component", place=name,
                      expected="a name inside the project")
    return "/".join(parts)


class _Checker:
    """The checks made on each member before anything of it is written."""

    def __init__(self, max_bytes: int, max_files: int) -> None:
        self.max_bytes, self.max_files = max_bytes, max_files
        self.size = 0
        self.names: dict[str, str] = {}  # name -> "file", "dir" or "link"
        self.implied: set[str] = set()  # folders some member lies in
        self.symlinks: list[str] = []

    def check(self, member: tarfile.TarInfo) -> str:
        name = _member_name(member)
        if len(self.names) >= self.max_files:
            raise _refuse(f"more than {self.max_files} members", place=name,
                          expected=f"at most {self.max_files} files and folders")
        kind = ("dir" if member.isdir() else "file" if member.isreg()
                else "link" if member.issym() or member.islnk() else None)
        if kind is None:
            raise _refuse("a device, fifo or other special member", place=name,
                          expected="regular files, folders and links")
        if not name:
            if kind != "dir":
                raise _refuse("a member named as the archive's root", place=member.name)
            return name
        if name in self.names:
            raise _refuse("a member named twice", place=name, expected="each name once")
        if kind != "dir" and name in self.implied:
            raise _refuse("a file or link where a folder was", place=name)
        parents = name.split("/")[:-1]
        for depth in range(1, len(parents) + 1):
            parent = "/".join(parents[:depth])
            if self.names.get(parent, "dir") != "dir":
                raise _refuse("a member under a file or link", place=name,
                              expected="members under real folders only")
            self.implied.add(parent)
        if member.issym():
            self._check_symlink(member, name)
        elif member.islnk():
            target = _member_name(tarfile.TarInfo(member.linkname))
            if self.names.get(target) != "file":
                raise _refuse("a hard link to something other than an earlier file", place=name,
                              expected="a link to a file of the archive")
        elif kind == "file":
            self.size += member.size
            if self.size > self.max_bytes:
                raise _refuse(f"the files add up to more than {self.max_bytes} bytes", place=name,
                              expected=f"at most {self.max_bytes} bytes unpacked")
        self.names[name] = kind
        return name

    def _check_symlink(self, member: tarfile.TarInfo, name: str) -> None:
        target = member.linkname
        if not target or "\0" in target or target.startswith(("/", "\\")):
            raise _refuse("a link with an absolute or empty target", place=name,
                          expected="a target relative to the link, inside the project")
        joined = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
        if joined == ".." or joined.startswith("../"):
            raise _refuse("a link leading out of the project", place=name,
                          expected="a target inside the project")
        self.symlinks.append(name)


def _sanitised(member: tarfile.TarInfo, name: str) -> tarfile.TarInfo:
    """The member with its normalised name, owner-only modes, no owner names: what is written
    does not depend on the Python version's filters or on running as root."""
    clean = copy.copy(member)  # TarInfo.replace is 3.11.4+
    clean.name, clean.uid, clean.gid, clean.uname, clean.gname = name, os.getuid(), os.getgid(), "", ""
    if member.islnk():
        clean.linkname = _member_name(tarfile.TarInfo(member.linkname))
    if member.isreg():
        clean.mode = 0o755 if member.mode & stat.S_IXUSR else 0o644
    elif member.isdir():
        clean.mode = 0o755
    return clean


#: tarfile's filter refusals (3.11.4+); on older Pythons a class nothing raises
_FILTER_ERROR: type[tarfile.FilterError] = getattr(tarfile, "FilterError", type("_NoFilterError", (Exception,), {}))


def _prepare(dest: Path) -> Path:
    if dest.is_symlink() or (dest.exists() and (not dest.is_dir() or any(dest.iterdir()))):
        raise _refuse("the destination is not an empty folder", place=str(dest),
                      expected="a new or empty folder")
    dest.parent.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=f".{dest.name}.unpacking-", dir=dest.parent))


def unpack(data: bytes, dest: Path, *, max_bytes: int, max_files: int = 100_000) -> list[str]:
    """Unpack the gzip'd tar ``data`` into ``dest`` (a new or empty folder; its parent is made).

    Returns the members' normalised relative POSIX names, in archive order. Raises
    :class:`~testfleet.errors.UsageError` (``source="archive"``) for anything the module's text
    lists, leaving neither ``dest``'s content nor a temporary folder behind.
    """
    dest = Path(dest)
    if data[:2] != b"\x1f\x8b":
        raise _refuse("the body is not gzip", expected="a gzip'd tar (application/gzip)")
    tmp = _prepare(dest)
    try:
        names = _extract(data, tmp, max_bytes, max_files)
        if dest.exists():
            dest.rmdir()  # empty, checked above: the rename needs it gone
        os.rename(tmp, dest)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return names


def _extract(data: bytes, tmp: Path, max_bytes: int, max_files: int) -> list[str]:
    checker = _Checker(max_bytes, max_files)
    names: list[str] = []
    current: str | None = None  # the member being written, for the message of an OSError
    stream = _BoundedGunzip(data, max_bytes)
    extra: dict[str, object] = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
    try:
        with tarfile.open(fileobj=stream, mode="r|", errorlevel=2) as tar:  # type: ignore[call-overload]
            for member in tar:
                name = checker.check(member)
                if not name:
                    continue
                current = name
                tar.extract(_sanitised(member, name), tmp, **extra)
                names.append(name)
    except _FILTER_ERROR as exc:  # tarfile's data filter saw what the names alone did not
        raise _refuse(f"a member leading out of the project: {exc}", place=exc.tarinfo.name,
                      expected="members and link targets inside the project") from None
    except tarfile.TarError as exc:
        place = None if not names else f"after {names[-1]}"
        raise _refuse(f"not a readable tar archive: {exc}", place=place, expected="a gzip'd tar") from None
    except OSError as exc:
        raise _refuse(f"cannot write a member: {exc.strerror or exc}", place=current) from None
    root = os.path.realpath(tmp)
    for name in checker.symlinks:  # the names were checked; now the files, with every link real
        if os.path.commonpath([root, os.path.realpath(tmp / name)]) != root:
            raise _refuse("a link leading out of the project", place=name,
                          expected="a target inside the project")
    return names
