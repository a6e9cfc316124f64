"""The thread dump: every thread's stack at the moment of the anomaly.

A Python SUT: ``py-spy dump`` (the Python stack of each thread, with the GIL holder marked).
A native one: per thread of ``/proc/PID/task``, its name, state, the kernel function it waits in
(``wchan``) and, where the kernel lets us read it (root), its kernel stack.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

from testfleet.execution.probes.outcome import HelperOutcome, tail
from testfleet.execution.probes.settings import pyspy_path
from testfleet.execution.probes.target import Target

_TIMEOUT = 30.0


def dump_threads(target: Target, folder: Path, stem: str) -> HelperOutcome:
    path = folder / f"{stem}.threads.txt"
    if target.python:
        exe = pyspy_path()
        if exe is None:
            return HelperOutcome("threads", "py-spy", None, "py-spy is not installed "
                                 "(pip install 'testfleet[profile]')")
        try:
            done = subprocess.run([exe, "dump", "--pid", str(target.pid), "--nonblocking"],
                                  capture_output=True, timeout=_TIMEOUT, check=False)
        except subprocess.TimeoutExpired:
            return HelperOutcome("threads", "py-spy", None, f"py-spy dump took over {_TIMEOUT:.0f}s")
        if done.returncode != 0:
            return HelperOutcome("threads", "py-spy", None, f"py-spy dump failed (exit {done.returncode}): "
                                 f"{tail(done.stdout + done.stderr)}")
        path.write_bytes(done.stdout)
        return HelperOutcome("threads", "py-spy", str(path), f"Python stacks of pid {target.pid}")
    text = proc_threads(target.pid)
    if text is None:
        return HelperOutcome("threads", "proc", None, f"/proc/{target.pid}/task cannot be read")
    path.write_text(text, encoding="utf-8")
    return HelperOutcome("threads", "proc", str(path), f"threads of pid {target.pid} from /proc")


def proc_threads(pid: int) -> str | None:
    """Each thread of ``pid``: ``tid name state wchan`` and its kernel stack when readable."""
    tasks = Path(f"/proc/{pid}/task")
    try:
        tids = sorted(tasks.iterdir(), key=lambda p: int(p.name))
    except (OSError, ValueError):
        return None
    lines = [f"threads of pid {pid}"]
    for task in tids:
        name = _read(task / "comm").strip()
        status = dict(line.split(":", 1) for line in _read(task / "status").splitlines() if ":" in line)
        state = status.get("State", "?").strip()
        wchan = _read(task / "wchan").strip() or "-"
        lines.append(f"\nthread {task.name} {name!r} state {state} wchan {wchan}")
        stack = _read(task / "stack")
        lines.extend(f"    {frame}" for frame in stack.splitlines())
    return "\n".join(lines) + "\n"


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ""
