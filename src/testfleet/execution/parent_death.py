"""Processes of a run die with the process that started them (Linux's parent-death signal).

``testfleet run`` starts a tree: coordinator -> zygote -> workers -> sampler and SUT processes.
When the coordinator exits or is killed (even by SIGKILL, where no cleanup of its own runs),
every process below it must go too, or a hung test keeps a worker, and its SUT, alive forever.
Each child arms ``prctl(PR_SET_PDEATHSIG, SIGKILL)`` as it starts, so the kernel kills it the
moment its parent exits; the chain then reaches the whole tree. The parent may already have
died before the signal was armed, so the child then checks that its parent is still the one
it expected, and kills itself if not.

Elsewhere (no prctl) :func:`die_with_parent` does nothing and returns False: the sampler still
leaves when its parent is gone (it watches the parent's pid), and the coordinator still stops
workers on every exit path it runs.

Where each process arms it: the zygote (``worker_main``, parent: the coordinator), each forked
worker (``pytest_worker``, parent: the zygote), each telemetry sampler (``sampler_process``), and
each SUT leader in the SUT's own child between fork and exec (``sut.py``: ``preexec_die_with``,
since the SUT runs in a session of its own) with a :class:`GroupWatchdog` for what the leader
started. ``tests/execution/test_process_lifetime.py`` and ``test_resume.py`` SIGKILL a real
``testfleet run`` mid-run and wait (bounded) for every descendant it had to be gone.

On Ray the coordinator is the Ray *driver*; no parent-death signal crosses Ray. What survives its
loss is Ray's to decide, and Ray decides: the worker actors are normal (not detached) actors owned
by the driver's job, so Ray kills them, and the test they run, when the driver dies; a Ray
instance that testfleet started itself (no ``--ray-address``) goes too, its node processes being
the driver's. A cluster joined with ``--ray-address`` lives on, as it should; only the run's
actors leave (Ray's documented fate-sharing of an actor with its owner; only the local instance
is tested here). Measured on a loaded 2-core machine with testfleet's own Ray instance: every Ray
process gone 3.5 s after SIGKILL of the driver, the actor running a blocked test included
(``tests/execution/test_resume_ray.py``, opt-in: starting Ray costs more than a unit test may).
The results the driver had received are in its journal either way, and ``--resume`` finishes the
run on Ray as on local workers.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import signal
import subprocess
import sys
from typing import Any

__all__ = ["ENV_PARENT_PID", "GroupWatchdog", "die_with_parent", "preexec_die_with"]

ENV_PARENT_PID = "TESTFLEET_COORDINATOR_PID"  # a local zygote or worker dies with this process

_PR_SET_PDEATHSIG = 1
_LIBC: list[Any] = []  # [libc or None], resolved once: a child between fork and exec must not load it


def _libc() -> Any:
    if not _LIBC:
        libc = None
        if sys.platform.startswith("linux"):
            try:
                libc = ctypes.CDLL(None, use_errno=True)
                libc.prctl  # noqa: B018 - resolved now, not in a child between fork and exec
            except (OSError, AttributeError):
                libc = None
        _LIBC.append(libc)
    return _LIBC[0]


def die_with_parent(expected_parent: int | None, sig: int = signal.SIGKILL) -> bool:
    """Have the kernel send ``sig`` to this process when its parent exits. ``expected_parent``:
    the pid the parent had (taken before the fork); if the parent is already another process
    (it died and this one was re-parented), ``sig`` is raised now. True when armed."""
    libc = _libc()
    if libc is None:
        return False
    if libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0) != 0:
        return False
    if expected_parent is not None and os.getppid() != expected_parent:
        os.kill(os.getpid(), sig)
    return True


def preexec_die_with(parent: int, sig: int = signal.SIGKILL) -> Any:
    """A ``preexec_fn`` for ``subprocess.Popen``: the child dies when ``parent`` (the caller of
    Popen, usually ``os.getpid()``) exits. The signal survives ``exec``."""
    _libc()  # resolved here, in the parent

    def arm() -> None:
        die_with_parent(parent, sig)

    return arm


class GroupWatchdog:
    """Kills process group ``pgid`` when this process dies, however it dies.

    A SUT runs in a process group of its own, and its leader dies with the worker (see
    :func:`preexec_die_with`), but what the leader started (``sh -c "server ..."``, a server's
    own children) would live on. The watchdog is a ``sh`` in a session of its own reading a pipe
    that only this process writes: at EOF without a line (this process is gone) it SIGKILLs the
    group; :meth:`release` (a normal stop) writes a line first, and it leaves without killing.
    Where ``sh`` or process groups are missing, it does nothing.
    """

    def __init__(self, pgid: int) -> None:
        self._proc: subprocess.Popen[bytes] | None = None
        self._write_fd: int | None = None
        shell = shutil.which("sh") if os.name == "posix" else None
        if shell is None:
            return
        read_fd, write_fd = os.pipe()
        try:
            self._proc = subprocess.Popen(
                [shell, "-c", 'read -r _ || kill -KILL "-$0" 2>/dev/null', str(pgid)],
                stdin=read_fd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        except OSError:
            os.close(write_fd)
            return
        finally:
            os.close(read_fd)
        self._write_fd = write_fd

    def release(self) -> None:
        """The group is being stopped normally: the watchdog leaves without killing. Idempotent."""
        if self._write_fd is not None:
            try:
                os.write(self._write_fd, b"\n")
            except OSError:
                pass
            os.close(self._write_fd)
            self._write_fd = None
        if self._proc is not None:
            try:
                self._proc.wait(timeout=2)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
            self._proc = None
