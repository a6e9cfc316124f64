"""Writing files whole or not at all: a temporary file in the same directory, fsync, os.replace.

Every report, variant file, manifest and picture goes through here, so a crash or a full disk
leaves the old file (or none), never half of one. A replaced file keeps its permissions; a new
one gets the usual ``0666 & ~umask``.
"""

from __future__ import annotations

import os
import stat
import tempfile
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
