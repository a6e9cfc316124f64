"""The process a helper attaches to: the SUT's pid, or the Python process it wraps.

A SUT declared as ``python app.py`` is a Python process itself; one declared through a wrapper
(``sh -c``, a launcher script) runs Python as a descendant, and the Python helpers (py-spy,
tracemalloc) want that one. Anything else is a native SUT (perf, /proc).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

import psutil

_PYTHON = re.compile(r"^(python|pypy)[0-9.]*$")


@dataclass(frozen=True)
class Target:
    pid: int
    python: bool
    name: str
    #: a native SUT: it and its descendants at attach time (a wrapper shell's work is in a child)
    family: tuple[int, ...] = ()


def _is_python(proc: psutil.Process) -> bool:
    try:
        if _PYTHON.match(proc.name()):
            return True
        exe = proc.exe()
    except (psutil.Error, OSError):
        return False
    return bool(_PYTHON.match(os.path.basename(exe)))


def find_target(pid: int) -> Target | None:
    """The process to attach to for the SUT ``pid`` (None: it is gone)."""
    try:
        proc = psutil.Process(pid)
        if proc.status() == psutil.STATUS_ZOMBIE:
            return None
        if _is_python(proc):
            return Target(pid, True, proc.name())
        children = proc.children(recursive=True)
        for child in children:
            if _is_python(child):
                return Target(child.pid, True, child.name())
        return Target(pid, False, proc.name(), (pid, *(c.pid for c in children)))
    except psutil.Error:
        return None
