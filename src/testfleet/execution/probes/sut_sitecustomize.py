"""testfleet's sitecustomize for a Python SUT whose memory the ``memory`` helper tracks.

testfleet copies this file as ``sitecustomize.py`` into a folder it puts first on the SUT's
``PYTHONPATH`` (with ``TESTFLEET_MEMORY_DIR`` naming where to write), so Python imports it at
start-up, before the SUT's own code: tracemalloc then sees every allocation. On SIGUSR2 the SUT
writes ``tracemalloc-<pid>.tsv`` to that folder: its largest allocation sites now, and how much
each site grew since the previous request. A marker ``tracemalloc-<pid>.ready`` says the handler
is installed (a SUT that installs its own SIGUSR2 handler keeps it, and gets no marker): SIGUSR2's
default action ends a process, so testfleet signals only a process that left the marker.

Standard library only: it runs inside the SUT's interpreter, which may not have testfleet.
Imported under any other name than ``sitecustomize`` it does nothing.
"""

from __future__ import annotations

import os
import signal
import sys
import tracemalloc
from typing import Any

_state: dict[str, Any] = {"previous": None}


# importlib's, tracemalloc's and this file's frames say nothing about the SUT; dropped from the
# aggregated statistics (Snapshot.filter_traces matches every trace: seconds on a large heap)
_SKIPPED = ("<frozen importlib._bootstrap>", "<frozen importlib._bootstrap_external>", tracemalloc.__file__,
            __file__)


def _kept(stats: list[Any], top: int) -> list[Any]:
    return [s for s in stats if s.traceback[0].filename not in _SKIPPED][:top]


def _row(kind: str, size: int, count: int, stat: Any) -> str:
    frame = stat.traceback[0]
    return f"{kind}\t{size}\t{count}\t{frame.filename}:{frame.lineno}"


def write_snapshot(folder: str, top: int) -> str:
    """Write this process's allocation report to ``folder``; its path."""
    snapshot = tracemalloc.take_snapshot()
    lines = [f"# testfleet tracemalloc pid {os.getpid()}"]
    lines += [_row("top", s.size, s.count, s) for s in _kept(snapshot.statistics("lineno"), top)]
    previous = _state["previous"]
    if previous is not None:
        growth = _kept([d for d in snapshot.compare_to(previous, "lineno") if d.size_diff > 0], top)
        lines += [_row("growth", d.size_diff, d.count_diff, d) for d in growth]
    _state["previous"] = snapshot
    path = os.path.join(folder, f"tracemalloc-{os.getpid()}.tsv")
    partial = path + ".partial"
    with open(partial, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    os.replace(partial, path)  # the reader sees the whole report or none
    return path


def _chain() -> None:
    """Run the sitecustomize this one shadows (a virtual environment's, coverage's), if any."""
    import importlib.machinery
    import importlib.util

    here = os.path.dirname(os.path.abspath(__file__))
    rest = [p for p in sys.path if os.path.abspath(p or os.curdir) != here]
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", rest)
    if spec is not None and spec.loader is not None:
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)


def install() -> None:
    folder = os.environ.get("TESTFLEET_MEMORY_DIR")
    if not folder:
        return
    top = int(os.environ.get("TESTFLEET_MEMORY_TOP", "25"))
    tracemalloc.start(int(os.environ.get("TESTFLEET_TRACEMALLOC_FRAMES", "1")))
    if signal.getsignal(signal.SIGUSR2) in (signal.SIG_DFL, None):
        def on_request(_signum: int, _frame: Any) -> None:
            try:
                write_snapshot(folder, top)
            except Exception:  # noqa: BLE001 - a failed report must never take the SUT down
                pass

        signal.signal(signal.SIGUSR2, on_request)
        try:
            with open(os.path.join(folder, f"tracemalloc-{os.getpid()}.ready"), "w", encoding="utf-8"):
                pass
        except OSError:
            pass


if __name__ == "sitecustomize":
    try:
        install()
    finally:
        _chain()
