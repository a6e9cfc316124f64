"""Writing files whole or not at all: a temporary file in the same directory, fsync, os.replace.

Every report, variant file, manifest and picture goes through here, so a crash or a full disk
leaves the old file (or none), never half of one. A replaced file keeps its permissions; a new
one gets the usual ``0666 & ~umask``. Directories of generated files (fuzzed variants, a
scenario plan, a saved model) are built beside their target and swapped in
(:func:`atomic_directory`).
"""

from __future__ import annotations

import os
import secrets
import shutil
import stat
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


_UMASK = _umask()


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes, *, parents: bool = True
                       ) -> Path:
    """Write ``data`` to ``path`` through a temporary sibling and :func:`os.replace`; missing
    parent directories are created when ``parents`` (else FileNotFoundError)."""
    target = Path(path)
    if parents:
        target.parent.mkdir(parents=True, exist_ok=True)
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        mode = 0o666 & ~_UMASK
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.chmod(tmp, mode)  # mkstemp makes 0600
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return target


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
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
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
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
