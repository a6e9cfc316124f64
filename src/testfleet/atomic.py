"""Writing files whole or not at all: a temporary file in the same directory, fsync, os.replace.

Every report, variant file, manifest and picture goes through here, so a crash or a full disk
leaves the old file (or none), never half of one. A replaced file keeps its permissions; a new
one gets the usual ``0666 & ~umask``. Directories of generated files (fuzzed variants, a
scenario plan, a saved model) are built beside their target and swapped in
(:func:`atomic_directory`).

Every command that writes a file checks the path first (:func:`check_output`: not a directory,
a folder it can create a file in) and every writer here turns an ``OSError`` (a full disk, a
read-only folder, a directory in the way) into one :class:`OutputError` naming the path, which
the CLI prints as one line with its usage exit code.
"""

from __future__ import annotations

import errno
import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from testfleet.errors import OutputError


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


_UMASK = _umask()

_REASONS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EFBIG: "the file would be too large",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EISDIR: "it is a directory",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EEXIST: "a part of the path is a file, not a folder",
    errno.ENOENT: "its folder does not exist and cannot be created",
    errno.ENAMETOOLONG: "the name is too long",
}
WRITE_ERRNOS = frozenset(_REASONS) - {errno.ENOENT, errno.EEXIST}
"""Errors that mean "this cannot be written here" whatever the file: the CLI reports them as
one :class:`OutputError` even when they come from a writer outside this module."""


def output_error(path: str | os.PathLike[str], exc: OSError, *, place: str | None = None,
                 ) -> OutputError:
    """The one message for ``path`` that could not be written because of ``exc``."""
    reason = _REASONS.get(exc.errno or 0, exc.strerror or str(exc))
    return OutputError(f"cannot write here: {reason}; nothing was written", source=str(path),
                       place=place, errno=exc.errno, strerror=exc.strerror or str(exc))


def check_output(path: str | os.PathLike[str], place: str | None = None, *,
                 folder: bool = False) -> Path:
    """Refuse, before any work, an output ``path`` that cannot be written: a directory where a
    file is wanted (a file where a ``folder`` is), or a path whose nearest existing folder does
    not take a new file (missing folders below it are created by the writer). ``place`` names
    the flag or setting in the message. Returns ``path`` as a Path."""
    target = Path(path).expanduser()
    if target.name in ("", ".", ".."):
        raise OutputError("names no file" if not folder else "names no folder", source=str(path),
                          place=place, expected="a path ending in a name")
    if folder and target.exists() and not target.is_dir():
        raise OutputError("exists and is not a folder", source=str(path), place=place,
                          expected="a folder or a new name")
    if not folder and target.is_dir():
        raise OutputError("is a directory", source=str(path), place=place,
                          expected=f"a file name, e.g. {target / 'report'}")
    nearest = target.parent
    while not nearest.exists() and nearest != nearest.parent:
        nearest = nearest.parent
    if not nearest.is_dir():
        raise OutputError(f"{nearest} is a file, not a folder", source=str(path), place=place)
    try:
        fd, probe = tempfile.mkstemp(prefix=".testfleet-probe.", dir=nearest)
    except OSError as exc:
        reason = "it takes no new files" if exc.errno == errno.ENOENT else _REASONS.get(
            exc.errno or 0, exc.strerror or str(exc))
        raise OutputError(f"cannot create a file in {nearest}: {reason}",
                          source=str(path), place=place) from None
    os.close(fd)
    os.unlink(probe)
    return target


def check_outputs(*given: tuple[str, str | os.PathLike[str] | None]) -> None:
    """:func:`check_output` each (flag, path) pair whose path is given (file outputs)."""
    for place, path in given:
        if path:
            check_output(path, place)


def _mkdir(target: Path) -> None:
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise output_error(target, exc) from None


@contextmanager
def atomic_open(path: str | os.PathLike[str], *, parents: bool = True) -> Iterator[BinaryIO]:
    """A binary handle on a temporary sibling of ``path`` that takes ``path``'s place when the
    block ends without an error (flushed and fsync-ed first); on any error the temporary file is
    removed, ``path`` is left as it was, and an ``OSError`` becomes an :class:`OutputError`."""
    target = Path(path)
    if parents:
        _mkdir(target)
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except OSError:
        mode = 0o666 & ~_UMASK
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    except OSError as exc:
        raise output_error(target, exc) from None
    try:
        os.chmod(tmp, mode)  # mkstemp makes 0600
        with os.fdopen(fd, "wb") as handle:
            yield handle
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        if isinstance(exc, OSError) and not isinstance(exc, OutputError):
            raise output_error(target, exc) from None
        raise


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, parents: bool = True
                       ) -> Path:
    """Write ``data`` to ``path`` through a temporary sibling and :func:`os.replace`; missing
    parent directories are created when ``parents`` (else an :class:`OutputError`)."""
    with atomic_open(path, parents=parents) as handle:
        handle.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike[str], text: str, *, parents: bool = True) -> Path:
    """:func:`atomic_write_bytes` of ``text`` as UTF-8, newlines written as given."""
    return atomic_write_bytes(path, text.encode("utf-8"), parents=parents)


@contextmanager
def atomic_directory(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Build the directory ``path`` whole or not at all: the block fills the empty staging
    directory it is given (a sibling of ``path``); when the block ends without an error the
    staging directory takes ``path``'s place (an existing ``path`` is moved aside first and
    removed after), otherwise it is removed and ``path`` is left as it was."""
    target = Path(path)
    _mkdir(target)
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    except OSError as exc:
        raise output_error(target, exc) from None
    try:
        yield staging
        os.chmod(staging, 0o777 & ~_UMASK)  # mkdtemp makes 0700; a new directory gets the usual mode
        if target.exists():
            old = target.with_name(f".{target.name}.old-{secrets.token_hex(4)}")
            os.replace(target, old)
            os.replace(staging, target)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(staging, target)
    except BaseException as exc:
        shutil.rmtree(staging, ignore_errors=True)
        if isinstance(exc, OSError) and not isinstance(exc, OutputError) \
                and _is_a_write_error(exc, staging, target):
            raise output_error(target, exc) from None
        raise


def _is_a_write_error(exc: OSError, staging: Path, target: Path) -> bool:
    """An OSError of writing into ``staging`` (or of the swap), not of reading some input."""
    if exc.errno in WRITE_ERRNOS:
        return True
    name = exc.filename
    return name is None or str(name).startswith((str(staging), str(target)))
