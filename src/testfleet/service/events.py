"""The child run's side of the event stream: a run listener, beside the console, that writes each
event as one JSON line on the pipe the server gave it (``testfleet run --events-fd N``).

One ``os.write`` per event, unbuffered, so the server sees a result as soon as the coordinator
has it (the dashboard's latency is this write plus the server's push). A server that went away
(a broken pipe) stops the writing, never the run.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from testfleet.jsonable import jsonable
from testfleet.model import FAILURE_OUTCOMES, Result

if TYPE_CHECKING:
    from testfleet.execution.protocol import Series

__all__ = ["EventWriter"]

#: the largest report file sent back to a submitting client
MAX_REPORT = 64 * 1024 * 1024


class EventWriter:
    """A :class:`~testfleet.execution.plan.Listener` that writes the contract's events to ``fd``."""

    def __init__(self, fd: int, run_id: str) -> None:
        self.fd = fd
        self.run_id = run_id
        self.broken = False

    def emit(self, kind: str, **fields: Any) -> None:
        if self.broken:
            return
        event = {"run_id": self.run_id, "kind": kind, "t": time.time(), **fields}
        line = (json.dumps(jsonable(event), separators=(",", ":")) + "\n").encode()
        try:
            while line:
                written = os.write(self.fd, line)
                line = line[written:]
        except OSError:  # the server is gone: the run goes on, its store keeps everything
            self.broken = True

    def on_collected(self, total: int, deselected: int, workers: int) -> None:
        self.emit("collected", total=total, deselected=deselected, workers=workers)

    def on_running(self, worker_id: str, nodeid: str | None) -> None:
        self.emit("running", worker=worker_id, nodeid=nodeid)

    def on_result(self, result: Result, done: int, total: int) -> None:
        failed = result.outcome in FAILURE_OUTCOMES
        self.emit("result", nodeid=result.nodeid, outcome=result.outcome.value, attempt=result.attempt,
                  final=result.final, flaky=result.flaky, worker=result.worker, duration=result.duration,
                  message=result.message, longrepr=result.longrepr if failed else None,
                  variant_id=result.variant_id, done=done, total=total)

    def on_message(self, text: str) -> None:
        self.emit("message", text=text)

    def on_exploring(self, budget: str) -> None:
        self.emit("exploring", budget=budget)

    def on_worker(self, worker_id: str, state: str, detail: str) -> None:
        self.emit("worker", worker=worker_id, state=state, detail=detail)

    def on_series(self, worker_id: str, columns: Series) -> None:
        n = len(columns.get("t", ()))
        if n:
            self.emit("series", worker=[worker_id] * n, t=columns["t"], metric=columns["metric"],
                      value=columns["value"])

    def report(self, path: Path) -> None:
        """A report file the run wrote (``--junitxml`` ...), sent whole so the client that
        submitted the run can write it where it asked; its path relative to the run's folder
        when it lies inside it."""
        path = path.resolve()
        try:
            size = path.stat().st_size
            if size > MAX_REPORT:
                self.emit("message", text=f"report {path.name} ({size} bytes) is too large to send back")
                return
            content = path.read_text(encoding="utf-8", errors="replace")
        except OSError:
            return
        cwd = Path.cwd().resolve()
        shown = str(path.relative_to(cwd)) if path.is_relative_to(cwd) else str(path)
        self.emit("report", path=shown, content=content)

    def close(self) -> None:
        try:
            os.close(self.fd)
        except OSError:
            pass
