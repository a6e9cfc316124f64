"""The run manager of ``testfleet serve``: submitted runs wait in FIFO order, up to
``max_concurrent`` run side by side, each as a child ``testfleet run`` (see the package docstring).

A run's life: ``queued`` (its project is unpacked) -> ``running`` (a private store is copied, the
child starts with ``--run-id``, ``--store`` and ``--events-fd``; two reader threads publish its
events and its console text to the hub) -> the child exits -> its rows are merged into the
server's store -> ``end`` with the child's exit code (pytest's). Cancelling a queued run drops it
(exit 2); cancelling a running one sends SIGTERM, which the child handles as Ctrl-C.
"""

from __future__ import annotations

import codecs
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from testfleet.service.hub import EventHub
from testfleet.service.merge import merge_run, private_copy

__all__ = ["RunManager", "SubmittedRun", "console_env", "new_run_id"]

INTERRUPTED = 2
INTERNAL = 3
#: options the server sets itself: a submitted run may not choose them
SERVER_OPTIONS = ("--store", "--run-id", "--events-fd", "--dashboard", "--submitted")


def console_env(terminal: bool, columns: int) -> dict[str, str]:
    """The environment that makes a run's console text what a terminal of ``columns`` (or a pipe)
    would show, whatever the server's own stdout is."""
    if terminal:
        return {"FORCE_COLOR": "1", "TTY_COMPATIBLE": "1", "COLUMNS": str(columns)}
    return {"NO_COLOR": "1", "TTY_COMPATIBLE": "0", "COLUMNS": str(columns)}


def new_run_id() -> str:
    import secrets
    from datetime import datetime

    return f"{datetime.now():%Y%m%d-%H%M%S}-{secrets.token_hex(2)}"


@dataclass
class SubmittedRun:
    run_id: str
    argv: list[str]  # the `testfleet run` arguments (paths, options, -- pytest args)
    project: Path  # where the child runs (an unpacked archive, or the user's own folder)
    owned: bool  # the project folder is the server's (removed when the run ends)
    env: dict[str, str] = field(default_factory=dict)
    status: str = "queued"
    exit_code: int | None = None
    process: subprocess.Popen[bytes] | None = None
    cancelled: bool = False
    done: threading.Event = field(default_factory=threading.Event)
    submitted_at: float = field(default_factory=time.time)


def _split_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    if "--" in argv:
        at = argv.index("--")
        return argv[:at], argv[at:]
    return list(argv), []


def refused_option(argv: list[str]) -> str | None:
    """The first option of ``argv`` (before ``--``) the server sets itself, if any."""
    head, _ = _split_argv(argv)
    for arg in head:
        name = arg.split("=", 1)[0]
        if name in SERVER_OPTIONS:
            return name
    return None


class RunManager:
    def __init__(self, state: Any, max_concurrent: int = 1, defaults: list[str] | None = None) -> None:
        self.state = state
        self.defaults = list(defaults or [])  # options every run gets first (its own come after)
        self.hub: EventHub = state.hub
        self.max_concurrent = max(1, max_concurrent)
        self.runs: dict[str, SubmittedRun] = {}
        self.waiting: deque[str] = deque()
        self.active: set[str] = set()
        self._lock = threading.Lock()
        self.closing = False

    # -- submitting -----------------------------------------------------------------------------
    def submit(self, run: SubmittedRun) -> SubmittedRun:
        with self._lock:
            self.runs[run.run_id] = run
            self.waiting.append(run.run_id)
        self._publish(run, "run", status="queued", argv=run.argv)
        self._start_next()
        return run

    def get(self, run_id: str) -> SubmittedRun | None:
        return self.runs.get(run_id)

    def cancel(self, run_id: str) -> bool:
        """Cancel a queued or running run; False when it has already ended."""
        run = self.runs.get(run_id)
        if run is None or run.done.is_set():
            return False
        with self._lock:
            run.cancelled = True
            queued = run_id in self.waiting
            if queued:
                self.waiting.remove(run_id)
        if queued:
            self._end(run, INTERRUPTED, status="interrupted")
        elif run.process is not None and run.process.poll() is None:
            run.process.send_signal(signal.SIGTERM)
        return True

    def close(self, timeout: float = 60.0) -> None:
        """Stop: queued runs are dropped, running ones interrupted and merged."""
        self.closing = True
        for run_id in list(self.waiting):
            self.cancel(run_id)
        for run_id in list(self.active):
            self.cancel(run_id)
        deadline = time.monotonic() + timeout
        for run in list(self.runs.values()):
            run.done.wait(max(0.0, deadline - time.monotonic()))

    # -- running --------------------------------------------------------------------------------
    def _start_next(self) -> None:
        while True:
            with self._lock:
                if self.closing or not self.waiting or len(self.active) >= self.max_concurrent:
                    return
                run = self.runs[self.waiting.popleft()]
                self.active.add(run.run_id)
            threading.Thread(target=self._run, args=(run,), name=f"run-{run.run_id}", daemon=True).start()

    def _run(self, run: SubmittedRun) -> None:
        code = INTERNAL
        try:
            code = self._execute(run)
        except Exception as exc:  # noqa: BLE001 - said on the run's stream, the server goes on
            self._publish(run, "message", text=f"the server could not run it: {exc}")
        finally:
            status = "interrupted" if run.cancelled or code == INTERRUPTED else "finished"
            self._end(run, code, status=status)
            with self._lock:
                self.active.discard(run.run_id)
            self._start_next()

    def _execute(self, run: SubmittedRun) -> int:
        folder = self.state.workdir / run.run_id
        folder.mkdir(parents=True, exist_ok=True)
        private = folder / "store.duckdb"
        with self.state.write_lock:
            private_copy(self.state.store, private)
        read_fd, write_fd = os.pipe()
        head, tail = _split_argv(run.argv)
        argv = [sys.executable, "-m", "testfleet", "run", *self.defaults, *head, "--store", str(private),
                "--run-id", run.run_id, "--events-fd", str(write_fd),
                "--submitted", json.dumps({"argv": ["testfleet", "submit", *run.argv],
                                           "store": str(self.state.store.path)}), *tail]
        env = {**os.environ, **run.env}
        run.status = "running"
        self._publish(run, "run", status="running", argv=run.argv)
        try:
            run.process = subprocess.Popen(argv, cwd=run.project, env=env, stdout=subprocess.PIPE,
                                           stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                           pass_fds=(write_fd,))
        finally:
            os.close(write_fd)  # the child holds the only write end: EOF when it exits
        if run.cancelled:  # cancelled while starting
            run.process.send_signal(signal.SIGTERM)
        readers = [threading.Thread(target=self._read_events, args=(run, read_fd), daemon=True),
                   threading.Thread(target=self._read_console, args=(run,), daemon=True)]
        for reader in readers:
            reader.start()
        code = run.process.wait()
        for reader in readers:
            reader.join()
        with self.state.write_lock:
            merge_run(self.state.store, private, run.run_id)
        shutil.rmtree(folder, ignore_errors=True)
        if run.owned:
            shutil.rmtree(run.project, ignore_errors=True)
        return code

    def _read_events(self, run: SubmittedRun, fd: int) -> None:
        with os.fdopen(fd, "rb", buffering=0) as pipe:
            pending = b""
            while chunk := pipe.read(65536):
                pending += chunk
                *lines, pending = pending.split(b"\n")
                for line in lines:
                    if line:
                        event = json.loads(line)
                        event["run_id"] = run.run_id
                        self.hub.publish(event)

    def _read_console(self, run: SubmittedRun) -> None:
        assert run.process is not None and run.process.stdout is not None
        stream = run.process.stdout
        decoder = codecs.getincrementaldecoder("utf-8")("replace")  # a character may span two reads
        while chunk := os.read(stream.fileno(), 65536):
            if text := decoder.decode(chunk):
                self._publish(run, "console", text=text)
        if tail := decoder.decode(b"", final=True):
            self._publish(run, "console", text=tail)
        stream.close()

    def _end(self, run: SubmittedRun, code: int, *, status: str) -> None:
        if run.done.is_set():
            return
        run.exit_code, run.status = code, status
        self._publish(run, "run", status=status, argv=run.argv, exit_code=code)
        self._publish(run, "end", exit_code=code)
        run.done.set()

    def _publish(self, run: SubmittedRun, kind: str, **fields: Any) -> None:
        self.hub.publish({"run_id": run.run_id, "kind": kind, "t": time.time(), **fields})
