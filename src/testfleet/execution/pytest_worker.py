"""The worker side of a run: a pytest plugin that collects the suite once and runs items on request.

Approach. The process is started with ``pytest.main(args, plugins=[WorkerPlugin(...)])``, so every
conftest, plugin, ini option and fixture behaves exactly as under plain pytest. Our
``pytest_runtestloop`` replaces pytest's loop:

* In **fork** mode the first process is a *zygote*: it collects, sends the collected items to the
  coordinator and then, on request, ``os.fork()``s workers that inherit the collected session.
  Adding workers (or replacing a crashed one) therefore costs a fork, never another collection.
  The zygote itself runs no test, so session fixtures are set up once per *worker*.
* In **spawn** mode (no ``os.fork``, or asked for) every worker collects for itself and the
  coordinator checks the collections agree.

A worker keeps one pytest session and runs items as the coordinator sends them: that is its
:class:`~testfleet.execution.worker_session.WorkerSession`, one method per message. Items are
described by :mod:`~testfleet.execution.worker_items` and results folded by
:mod:`~testfleet.execution.worker_results`.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable
from multiprocessing.connection import Client, Connection, wait
from pathlib import Path
from typing import Any

import pytest

from testfleet.execution import protocol as P
from testfleet.execution.parent_death import die_with_parent
from testfleet.execution.worker_items import describe, terminal_options
from testfleet.execution.worker_results import crash_message
from testfleet.execution.worker_session import WorkerSession


def _connect(address: str, authkey: bytes) -> Connection:
    return Client(address, authkey=authkey)


class WorkerPlugin:
    """Registered in the collector/worker pytest session; see the module docstring."""

    def __init__(self, *, mode: str, worker_id: str | None, rundir: str,
                 address: str | None = None, authkey: bytes = b"",
                 connector: Callable[[], Any] | None = None) -> None:
        self.mode = mode  # "zygote" or "worker"
        # How to reach the coordinator: a Unix socket (local backend) or, inside a Ray actor, a
        # channel with the same send/recv/poll/close surface.
        self.connect = connector or (lambda: _connect(address or "", authkey))
        self.worker_id = worker_id
        self.rundir = Path(rundir)
        self.collect_errors: list[dict[str, Any]] = []
        self.collect_skipped: list[dict[str, Any]] = []
        self.warnings: list[dict[str, Any]] = []
        self.deselected = 0
        self.reports: list[pytest.TestReport] = []
        self.is_forked_child = False
        self.serving_pid: int | None = None  # the worker's own pid while it runs tests
        self.exit_code_override: int | None = None

    @pytest.hookimpl
    def pytest_configure(self, config: pytest.Config) -> None:
        config.addinivalue_line(
            "markers", "requires(cpus=0, gpus=0, memory='0', resources={}, labels={}): what a worker "
            "must offer to run this test (testfleet); a test no worker can satisfy is skipped")

    # -- collection ---------------------------------------------------------------------------
    @pytest.hookimpl
    def pytest_collectreport(self, report: pytest.CollectReport) -> None:
        if report.failed:
            self.collect_errors.append({"nodeid": report.nodeid or report.fspath,
                                        "longrepr": str(report.longrepr)})
        elif report.skipped:  # pytest.skip(allow_module_level=True): pytest counts it as skipped
            self.collect_skipped.append({"nodeid": report.nodeid or report.fspath,
                                         "message": crash_message(report), "longrepr": str(report.longrepr)})

    @pytest.hookimpl
    def pytest_warning_recorded(self, warning_message: Any, when: str, nodeid: str,
                                location: tuple[str, int, str] | None) -> None:
        self.warnings.append({
            "message": str(warning_message.message), "category": type(warning_message.message).__name__
            if isinstance(warning_message.message, Warning) else str(warning_message.category.__name__),
            "filename": str(warning_message.filename), "lineno": warning_message.lineno,
            "when": when, "nodeid": nodeid,
        })

    @pytest.hookimpl
    def pytest_deselected(self, items: list[pytest.Item]) -> None:
        self.deselected += len(items)

    def _collection(self, session: pytest.Session) -> P.Collection:
        return {"items": [describe(item) for item in session.items], "deselected": self.deselected,
                "errors": self.collect_errors, "skipped": self.collect_skipped,
                "warnings": self.take_warnings(), "rootdir": str(session.config.rootpath),
                "pid": os.getpid(), "terminal": terminal_options(session.config)}

    # -- the loop -----------------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        if session.config.option.collectonly:
            return False  # let pytest print the collection as usual
        if self.mode == "zygote":
            self._zygote(session)
        else:
            conn = self.connect()
            conn.send(P.Collected(self._collection(session)))
            conn.close()
            self._serve(session)
        return True

    def _zygote(self, session: pytest.Session) -> None:
        conn = self.connect()
        conn.send(P.Collected(self._collection(session)))
        tmp_factory = getattr(session.config, "_tmp_path_factory", None)
        basetemp = None
        if tmp_factory is not None:
            try:
                basetemp = tmp_factory.getbasetemp()
            except OSError:
                basetemp = None
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        old_wakeup = signal.set_wakeup_fd(wake_w)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        children: dict[int, str] = {}
        forked = False
        inbox: deque[P.CoordinatorMessage] = deque()
        try:
            while True:
                if not inbox:
                    ready = wait([conn, wake_r])
                    if wake_r in ready:
                        os.read(wake_r, 4096)
                        self._reap(conn, children)
                    if conn not in ready:
                        continue
                try:
                    # everything queued: on a loaded machine forks are slow, and a STOP behind
                    # queued FORKs means the run is over, so those workers are not made
                    while conn.poll(0):
                        inbox.append(conn.recv())
                except (EOFError, OSError):
                    break  # the coordinator went away: stop making workers
                if any(isinstance(m, P.Stop) for m in inbox):
                    break
                if not inbox:
                    continue
                msg = inbox.popleft()
                if isinstance(msg, P.Fork):
                    worker_id = msg.worker_id
                    if not children and not forked:
                        forked = _prepare_forks()
                    sys.stdout.flush()
                    sys.stderr.flush()
                    zygote_pid = os.getpid()
                    pid = os.fork()
                    if pid == 0:
                        die_with_parent(zygote_pid)  # the zygote dies with the coordinator
                        signal.set_wakeup_fd(-1)
                        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                        for fd in (wake_r, wake_w):
                            os.close(fd)
                        conn.close()
                        self.is_forked_child = True
                        self._become_forked_worker(session, worker_id, basetemp)
                        return
                    children[pid] = worker_id
            # Wait for the workers we made so their exit statuses are reported, then leave at
            # once: the zygote ran no test, so its session has nothing to finish, and plugins'
            # session-end work here (Hypothesis imports itself, ~0.5 s) would only add latency
            # or overwrite what workers wrote.
            deadline = time.monotonic() + 30
            while children and time.monotonic() < deadline:
                self._reap(conn, children, block=True)
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
        finally:
            if not self.is_forked_child:
                signal.set_wakeup_fd(old_wakeup)
                signal.signal(signal.SIGCHLD, signal.SIG_DFL)
                for fd in (wake_r, wake_w):
                    os.close(fd)
                conn.close()

    @staticmethod
    def _reap(conn: Connection, children: dict[int, str], block: bool = False) -> None:
        while children:
            try:
                pid, status = os.waitpid(-1, 0 if block else os.WNOHANG)
            except ChildProcessError:
                children.clear()
                return
            if pid == 0:
                return
            worker_id = children.pop(pid, None)
            if worker_id is not None:
                try:
                    conn.send(P.Exited(worker_id, pid, os.waitstatus_to_exitcode(status)))
                except OSError:
                    pass
            if block:
                return

    def _become_forked_worker(self, session: pytest.Session, worker_id: str, basetemp: Path | None) -> None:
        config = session.config
        # The zygote's fd-level capture files are shared after fork: give this worker its own.
        capman = config.pluginmanager.getplugin("capturemanager")
        if capman is not None and capman.is_globally_capturing():
            capman.stop_global_capturing()
            capman.start_global_capturing()
            capman.suspend_global_capture()
        tmp_factory = getattr(config, "_tmp_path_factory", None)
        if tmp_factory is not None and basetemp is not None:
            tmp_factory._given_basetemp = basetemp / worker_id
            tmp_factory._basetemp = None
        # Workers must not race on pytest's own cache; testfleet keeps history in its store.
        for name in ("lfplugin", "nfplugin", "stepwiseplugin"):
            plugin = config.pluginmanager.get_plugin(name)
            if plugin is not None:
                config.pluginmanager.unregister(plugin)
        self.worker_id = worker_id
        self._serve(session)

    def _serve(self, session: pytest.Session) -> None:
        WorkerSession(self, session, self.worker_id or "gw0").serve()

    def take_warnings(self) -> list[dict[str, Any]]:
        warnings, self.warnings = self.warnings, []
        return warnings

    @pytest.hookimpl
    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        self.reports.append(report)

    # -- a test's forked child that returns into pytest ------------------------------------------
    @pytest.hookimpl(wrapper=True)
    def pytest_runtest_call(self, item: pytest.Item) -> Any:
        try:
            return (yield)
        except SystemExit as exc:
            if self.serving_pid is not None and os.getpid() != self.serving_pid:
                _exit_stray(exc.code)  # the child's sys.exit: it leaves as it asked, sending nothing
            raise

    def leave_if_stray(self) -> None:
        """A child a test forked came back out of the test: it is not the worker, so it must not
        report (the coordinator would take its result for the test's second attempt) nor read
        the worker's queue. It leaves with the outcome it had."""
        if self.serving_pid is not None and os.getpid() != self.serving_pid:
            _exit_stray(1 if any(r.failed for r in self.reports) else 0)


def _exit_stray(code: Any) -> None:
    """Leave a process forked by a test without running anything of the worker's."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:
        os._exit(code if isinstance(code, int) else (0 if code is None else 1))


def _prepare_forks() -> bool:
    """Before the zygote's first fork: what every worker would otherwise do for itself, once.

    The worker side's modules (telemetry, SUT instances: numpy, httpx, pydantic...) are imported
    here, or each of N workers would import them after its fork. Then the collected session is
    frozen out of the garbage collector's reach (``gc.freeze``): a worker's collections (pytest
    runs five at its end) would otherwise touch every inherited object and so copy every page
    of the zygote's memory, per worker."""
    import gc

    import testfleet.execution.worker_telemetry  # noqa: F401 - imported for the workers

    gc.collect()
    gc.freeze()
    return True
