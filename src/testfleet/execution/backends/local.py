"""The local backend: worker processes on this machine, forked from a collected zygote.

``fork`` (the default where ``os.fork`` exists): one subprocess collects the suite and then forks a
worker per request, so N workers cost one collection and a replacement costs a fork. ``spawn``:
every worker is its own subprocess and collects for itself (the portable fallback).

Connections arrive on a ``multiprocessing.connection.Listener`` (a Unix socket in a private
temporary directory, authenticated with a random key). A small thread accepts them, so the
orchestrator's loop only ever waits on connections that carry messages.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing.connection import (
    Connection,
    Listener,
    answer_challenge,
    deliver_challenge,
    wait,
)
from pathlib import Path
from typing import Any

from testfleet.errors import WorkerError
from testfleet.execution import protocol as P
from testfleet.execution.backends.base import (
    Backend,
    CollectedEvent,
    CollectorExitedEvent,
    Event,
    HelloEvent,
    LostEvent,
    MessageEvent,
    WorkerInfo,
)
from testfleet.execution.parent_death import ENV_PARENT_PID
from testfleet.execution.resilience import trim_fault_dump

EXIT_STATUS_WAIT = 5.0


def default_start_method() -> str:
    return "fork" if hasattr(os, "fork") and sys.platform != "win32" else "spawn"


class LocalBackend(Backend):
    name = "local"

    def __init__(self, pytest_args: list[str], *, workers: int, start_method: str = "auto",
                 cwd: str | os.PathLike[str] | None = None, env: dict[str, str] | None = None,
                 offers: dict[str, Any] | None = None) -> None:
        self.pytest_args = list(pytest_args)
        self.workers = workers
        self.start_method = default_start_method() if start_method == "auto" else start_method
        self.cwd = str(cwd or os.getcwd())
        self.extra_env = dict(env or {})
        self.offers = dict(offers or {})  # resources/labels this machine offers, from settings
        self.rundir = Path(tempfile.mkdtemp(prefix="testfleet-"))
        self.authkey = secrets.token_bytes(16)
        family = "AF_UNIX" if sys.platform != "win32" else "AF_PIPE"
        address = str(self.rundir / "sock") if family == "AF_UNIX" else None
        self.listener = Listener(address, family=family, authkey=self.authkey)
        self.log_path = self.rundir / "workers.log"
        self._log = open(self.log_path, "ab")  # noqa: SIM115 - closed in close()
        self._wake_r, self._wake_w = os.pipe()
        self._accepted: list[Connection] = []
        self._accept_lock = threading.Lock()
        self._closed = False
        self._pending: list[Connection] = []  # connected, not yet identified
        self._conns: dict[str, Connection] = {}  # worker id -> connection
        self._conn_owner: dict[Connection, str] = {}
        self._collector_conn: Connection | None = None
        self._collector_proc: subprocess.Popen[bytes] | None = None
        self._procs: dict[str, subprocess.Popen[bytes]] = {}  # spawn mode: worker id -> process
        self._exit_codes: dict[str, int] = {}  # fork mode: reported by the zygote
        self._collected = False
        self.info: dict[str, WorkerInfo] = {}
        self._thread = threading.Thread(target=self._accept_loop, name="testfleet-accept", daemon=True)

    # -- processes ----------------------------------------------------------------------------
    def _env(self) -> dict[str, str]:
        """How the process reaches the coordinator (the address and authkey must not show in
        ``ps``); everything else about the run comes in its WorkerConfig, after its Hello."""
        env = dict(os.environ)
        env.update(self.extra_env)
        env[P.ENV_ADDRESS] = str(self.listener.address)
        env[P.ENV_AUTHKEY] = self.authkey.hex()
        env[ENV_PARENT_PID] = str(os.getpid())
        env.pop(P.ENV_WORKER_ID, None)
        return env

    def _popen(self, mode: str, worker_id: str | None) -> subprocess.Popen[bytes]:
        cmd = [sys.executable, "-m", "testfleet.execution.worker_main", mode, "--rundir", str(self.rundir),
               *(["--worker-id", worker_id] if worker_id is not None else []), "--", *self.pytest_args]
        # A session of its own: Ctrl-C reaches the coordinator only, which then stops workers
        # cleanly instead of having every test interrupted at once.
        return subprocess.Popen(cmd, cwd=self.cwd, env=self._env(), stdin=subprocess.DEVNULL,
                                stdout=self._log, stderr=self._log, start_new_session=True)

    @property
    def workers_collect(self) -> bool:
        return self.start_method == "spawn"

    def start(self) -> None:
        if self._thread.is_alive():
            return  # started already (the CLI starts collection early)
        self._thread.start()
        if self.start_method == "fork":
            self._collector_proc = self._popen("zygote", None)
        else:
            self._collector_proc = self._popen("worker", "gw0")
            self._procs["gw0"] = self._collector_proc
            self.info["gw0"] = WorkerInfo("gw0", self._collector_proc.pid)

    def capabilities(self) -> list[Any]:
        from testfleet.execution.capabilities import detect

        return [detect(resources=self.offers.get("resources"), labels=self.offers.get("labels"))]

    def spawn_worker(self, worker_id: str, pool: str = "") -> None:
        if self.start_method == "spawn" and worker_id in self._procs:
            return  # the process that collected is this worker already
        if self.start_method == "fork":
            if self._collector_conn is None:
                raise WorkerError("cannot fork a worker: the collector is not connected")
            self._collector_conn.send(P.Fork(worker_id))
            self.info[worker_id] = WorkerInfo(worker_id)
        else:
            proc = self._popen("worker", worker_id)
            self._procs[worker_id] = proc
            self.info[worker_id] = WorkerInfo(worker_id, proc.pid)

    def kill(self, worker_id: str, sig: int) -> None:
        info = self.info.get(worker_id)
        if info is None or info.pid is None:
            return
        try:
            os.kill(info.pid, sig)
        except (ProcessLookupError, PermissionError):
            pass

    def send(self, worker_id: str, message: P.CoordinatorMessage) -> bool:
        conn = self._conns.get(worker_id)
        if conn is None:
            return False
        try:
            conn.send(message)
            return True
        except (OSError, EOFError):
            return False

    # -- events -------------------------------------------------------------------------------
    def _accept_loop(self) -> None:
        # Listener.accept() runs the authkey handshake (two round trips with the worker) before
        # it takes the next connection: with 100 workers starting on 2 CPUs, each waiting to be
        # scheduled, one handshake after another took tens of seconds. The raw connection is
        # taken here and its handshake runs on a thread of its own.
        raw_accept = getattr(getattr(self.listener, "_listener", None), "accept", None)
        while not self._closed:
            try:
                conn = raw_accept() if raw_accept is not None else self.listener.accept()
            except Exception:  # noqa: BLE001 - closed listener, failed handshake: keep serving
                if self._closed:
                    return
                continue
            if raw_accept is None:
                self._take_in(conn)
            else:
                threading.Thread(target=self._handshake, args=(conn,), name="testfleet-handshake",
                                 daemon=True).start()

    def _handshake(self, conn: Connection) -> None:
        try:
            deliver_challenge(conn, self.authkey)
            answer_challenge(conn, self.authkey)
        except Exception:  # noqa: BLE001 - a failed or abandoned handshake: that connection only
            conn.close()
            return
        self._take_in(conn)

    def _take_in(self, conn: Connection) -> None:
        with self._accept_lock:  # close() closes the wake pipe under this lock too
            if self._closed:
                conn.close()
                return
            self._accepted.append(conn)
            try:
                os.write(self._wake_w, b"x")
            except OSError:
                pass

    def poll(self, timeout: float | None) -> list[Event]:
        events: list[Event] = []
        if not self._collected and self._collector_proc is not None:
            code = self._collector_proc.poll()
            if code is not None and not self._drain_for_collection(events):
                return [CollectorExitedEvent(code)]
        watch: list[Connection | int] = [self._wake_r, *self._pending, *self._conns.values()]
        if self._collector_conn is not None:
            watch.append(self._collector_conn)
        if not self._collected:  # keep an eye on a collector that dies
            timeout = 0.2 if timeout is None else min(timeout, 0.2)
        for ready in wait(watch, timeout):
            if ready == self._wake_r:
                os.read(self._wake_r, 4096)
                self._take_accepted()
                continue
            self._read(ready, events)  # type: ignore[arg-type]  # the wake pipe's fd is handled above
        return events

    def _drain_for_collection(self, events: list[Event]) -> bool:
        """The collector exited: did it manage to send its collection first?"""
        deadline = time.monotonic() + 1.0
        while time.monotonic() < deadline and not self._collected:
            for event in self._poll_pending():
                events.append(event)
            if not self._accepted and not self._pending:
                break
        return self._collected

    def _poll_pending(self) -> list[Event]:
        events: list[Event] = []
        self._take_accepted()
        for conn in list(self._pending):
            if conn.poll(0.2):
                self._read(conn, events)
        return events

    def _take_accepted(self) -> None:
        """Connections the accept thread has taken in, now waiting to say who they are."""
        with self._accept_lock:
            self._pending.extend(self._accepted)
            self._accepted.clear()

    def _tracked(self, conn: Connection) -> bool:
        return conn in self._conn_owner or conn in self._pending or conn is self._collector_conn

    def _read(self, conn: Connection, events: list[Event]) -> None:
        # A connection in this wait() batch may have been handled already (read to its end
        # while waiting for an exit status): skip it rather than read it twice.
        if conn.closed or not self._tracked(conn):
            return
        try:
            while not conn.closed and conn.poll(0):
                self._dispatch(conn, P.receive(conn), events)
        except (EOFError, OSError):
            self._lost(conn, events)

    def _dispatch(self, conn: Connection, msg: P.WorkerMessage, events: list[Event]) -> None:
        if conn in self._pending:  # a new connection's first message says who it is
            self._pending.remove(conn)
            match msg:
                case P.Collected(collection):
                    self._collected = True
                    if self.start_method == "fork":
                        self._collector_conn = conn
                        self.info.setdefault("zygote", WorkerInfo("zygote", collection.get("pid")))
                    else:
                        conn.close()
                    events.append(CollectedEvent(collection))
                case P.Hello(worker_id, pid):
                    self._conns[worker_id] = conn
                    self._conn_owner[conn] = worker_id
                    info = self.info.setdefault(worker_id, WorkerInfo(worker_id))
                    info.pid = pid
                    events.append(HelloEvent(worker_id, pid))
                case _:
                    conn.close()
            return
        if conn is self._collector_conn:
            if isinstance(msg, P.Exited):
                self._exit_codes[msg.worker_id] = msg.code
            return
        worker_id = self._conn_owner[conn]
        if isinstance(msg, P.Bye):
            self.info[worker_id].said_bye = True
        events.append(MessageEvent(worker_id, msg))

    def _lost(self, conn: Connection, events: list[Event]) -> None:
        if conn in self._pending:
            self._pending.remove(conn)
            conn.close()
            return
        if conn is self._collector_conn:
            self._collector_conn = None
            conn.close()
            return
        worker_id = self._conn_owner.pop(conn, None)
        if worker_id is None:
            conn.close()
            return
        self._conns.pop(worker_id, None)
        conn.close()
        info = self.info.get(worker_id)
        code = None if info is not None and info.said_bye else self._exit_code(worker_id)
        events.append(LostEvent(worker_id, code))

    def _exit_code(self, worker_id: str) -> int | None:
        deadline = time.monotonic() + EXIT_STATUS_WAIT
        if self.start_method == "spawn":
            proc = self._procs.get(worker_id)
            if proc is None:
                return None
            try:
                return proc.wait(timeout=EXIT_STATUS_WAIT)
            except subprocess.TimeoutExpired:
                return None
        while worker_id not in self._exit_codes and self._collector_conn is not None:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self._collector_conn.poll(remaining):
                break
            try:
                msg = P.receive(self._collector_conn)
            except (EOFError, OSError):
                self._collector_conn.close()
                self._collector_conn = None
                break
            if isinstance(msg, P.Exited):
                self._exit_codes[msg.worker_id] = msg.code
        return self._exit_codes.get(worker_id)

    def collector_output(self) -> str:
        self._log.flush()
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def crash_text(self, worker_id: str) -> str:
        """What faulthandler wrote when this worker died (a traceback of every thread), if anything."""
        try:
            text = (self.rundir / f"{worker_id}.crash").read_text(errors="replace").strip()
        except OSError:
            return ""
        return trim_fault_dump(text)


    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if not self._collected and self._collector_proc is not None and self._collector_proc.poll() is None:
            # Never delivered a collection (the run was refused or interrupted early): it has run
            # no test, so it is stopped rather than waited for.
            self._collector_proc.kill()
        # Tell everyone still connected that the run is over, then drop the connections so a
        # worker blocked on a read sees EOF and leaves.
        for conn in [*self._conns.values(), self._collector_conn]:
            if conn is not None:
                try:
                    conn.send(P.Stop())
                except OSError:
                    pass
        self._take_accepted()
        for conn in self._pending:
            conn.close()
        procs = [p for p in [self._collector_proc, *self._procs.values()] if p is not None]
        deadline = time.monotonic() + 10
        # A worker that connects only now (forked late on a busy machine) finds its connection
        # closed (_take_in), so it leaves instead of waiting for work.
        for proc in procs:
            try:
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()  # the zygote's workers die with it (parent-death signal)
                proc.wait()
        for worker_id in list(self._conns):  # still connected after the grace: stuck, so killed
            self.kill(worker_id, signal.SIGKILL)
        for conn in [*self._conns.values(), self._collector_conn]:
            if conn is not None:
                conn.close()
        try:
            self.listener.close()
        except OSError:
            pass
        with self._accept_lock:
            for fd in (self._wake_r, self._wake_w):
                try:
                    os.close(fd)
                except OSError:
                    pass
            for conn in self._accepted:  # handshakes that finished after the last poll
                conn.close()
            self._accepted.clear()
        self._log.close()
        shutil.rmtree(self.rundir, ignore_errors=True)
