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

A worker keeps one pytest session and runs items as the coordinator sends them. Like
pytest-xdist, it holds back the last queued item until it knows the next one (or is told that no
more is coming), so ``nextitem`` is right and module/class fixtures are not torn down between
batches.
"""

from __future__ import annotations

import enum
import faulthandler
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

OUTCOME_PRIORITY = ("failed", "error", "xpassed", "xfailed", "skipped", "passed")


def _connect(address: str, authkey: bytes) -> Connection:
    return Client(address, authkey=authkey)


class WorkerPlugin:
    """Registered in the collector/worker pytest session; see the module docstring."""

    def __init__(self, *, mode: str, worker_id: str | None, rundir: str, worker_count: int,
                 address: str | None = None, authkey: bytes = b"",
                 connector: Callable[[], Any] | None = None) -> None:
        self.mode = mode  # "zygote" or "worker"
        # How to reach the coordinator: a Unix socket (local backend) or, inside a Ray actor, a
        # channel with the same send/recv/poll/close surface.
        self.connect = connector or (lambda: _connect(address or "", authkey))
        self.worker_id = worker_id
        self.rundir = Path(rundir)
        self.worker_count = worker_count
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
                                         "message": _crash_message(report), "longrepr": str(report.longrepr)})

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

    def _collection_payload(self, session: pytest.Session) -> dict[str, Any]:
        items = []
        for item in session.items:
            path, line, name = item.location
            items.append({
                "nodeid": item.nodeid,
                "file": path,
                "line": None if line is None else line + 1,
                "name": name,
                "markers": sorted({m.name for m in item.iter_markers()}),
                "keywords": sorted(str(k) for k in item.keywords),
                "requires": _requires(item),
                "params": _callspec_params(item),
                "space": _space_declaration(item),
            })
        return {"items": items, "deselected": self.deselected, "errors": self.collect_errors,
                "skipped": self.collect_skipped, "warnings": self._take_warnings(),
                "rootdir": str(session.config.rootpath), "pid": os.getpid(),
                "terminal": _terminal_options(session.config)}

    # -- the loop -----------------------------------------------------------------------------
    @pytest.hookimpl(tryfirst=True)
    def pytest_runtestloop(self, session: pytest.Session) -> bool:
        if session.config.option.collectonly:
            return False  # let pytest print the collection as usual
        if self.mode == "zygote":
            self._zygote(session)
        else:
            conn = self.connect()
            conn.send((P.COLLECTED, self._collection_payload(session)))
            conn.close()
            self._serve(session)
        return True

    def _zygote(self, session: pytest.Session) -> None:
        conn = self.connect()
        conn.send((P.COLLECTED, self._collection_payload(session)))
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
        inbox: deque[tuple] = deque()
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
                if any(m[0] == P.STOP for m in inbox):
                    break
                if not inbox:
                    continue
                msg = inbox.popleft()
                if msg[0] == P.FORK:
                    worker_id = msg[1]
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
                elif msg[0] == P.STOP:
                    break
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
                    conn.send((P.EXITED, worker_id, pid, os.waitstatus_to_exitcode(status)))
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
        worker_id = self.worker_id or "gw0"
        self.serving_pid = os.getpid()
        # the summary of a worker's session is never shown (the coordinator reports), and its
        # plugins' summary work (Hypothesis imports itself there, ~0.5 s) is paid per worker
        session.config.option.no_summary = True
        os.environ[P.ENV_WORKER_ID] = worker_id
        os.environ["PYTEST_XDIST_WORKER"] = worker_id
        os.environ["PYTEST_XDIST_WORKER_COUNT"] = str(self.worker_count)
        from testfleet.execution.worker_telemetry import WorkerTelemetry

        telemetry = WorkerTelemetry.from_environment(dict(os.environ))
        crash_file = open(self.rundir / f"{worker_id}.crash", "w")  # noqa: SIM115 - lives as long as the worker
        faulthandler.enable(file=crash_file, all_threads=True)
        conn = self.connect()
        conn.send((P.HELLO, worker_id, os.getpid()))
        items = session.items
        config = session.config
        queue: deque[int] = deque()
        # explorable executions: explored variants (indices past the collected items) and the
        # baselines of explorable cases, each (item index, its params or None, its ExploreTask)
        variants: dict[int, tuple[int, dict[str, Any] | None, Any]] = {}
        engine = _Engine()
        flush = stop = shutdown = False
        report_start = False

        def handle(msg: tuple) -> None:
            nonlocal flush, stop, shutdown, report_start
            tag = msg[0]
            if tag == P.RUN:
                queue.extend(msg[1])
                flush = False
                if len(msg) > 2:
                    report_start = bool(msg[2])
                if len(msg) > 3 and msg[3]:
                    variants.update(msg[3])
            elif tag == P.RULESET:
                engine.get().set_ruleset(msg[1], msg[2])
            elif tag == P.FLUSH:
                flush = True
            elif tag == P.SHUTDOWN:
                flush = shutdown = True
            elif tag == P.STOP:
                stop = True

        def runnable() -> bool:
            # The last queued item waits until the next is known (for ``nextitem``) or a flush.
            return len(queue) >= 2 or (bool(queue) and flush)

        last_index: int | None = None
        last_item: pytest.Item | None = None
        fixtures_alive = False  # fixtures of ``last_index`` kept for the next item, or interrupted
        interrupted = False
        if telemetry is not None:
            telemetry.start()
        try:
            while True:
                if not runnable() and not stop:
                    if shutdown and not queue:
                        break
                    try:
                        handle(conn.recv())
                    except EOFError:
                        break
                    continue
                while conn.poll():
                    handle(conn.recv())
                if stop:
                    break
                if not runnable():
                    continue
                index = queue.popleft()
                base, params, task = variants.pop(index, (index, None, None))
                item = items[base]
                nextitem = items[variants.get(queue[0], (queue[0],))[0]] if queue else None
                if nextitem is item:
                    # the same item again (another variant): its own fixtures must be torn down
                    # and set up afresh, its module's and class's kept; pytest keeps whatever is
                    # in nextitem's chain, so name the parent
                    nextitem = item.parent
                if report_start:
                    conn.send((P.STARTED, index, time.time()))
                self.reports = []
                item._report_sections = []  # run again (a variant): only this run's output is its own
                last_index, last_item, fixtures_alive = index, item, True
                t0 = telemetry.begin() if telemetry is not None else 0.0
                saved = _with_params(item, params)
                try:
                    _configure_instance(item, params)
                    config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
                except pytest.exit.Exception as exc:
                    # e.g. the SUT never became ready: nothing more can run, the run stops. The
                    # session then ends as after the last test: re-raising would make pytest
                    # render the whole traceback of the Exit (seconds) before the worker leaves
                    self._leave_if_stray()
                    conn.send((P.FATAL, worker_id, str(exc.msg), exc.returncode))
                    fixtures_alive = False
                    break
                finally:
                    self._leave_if_stray()
                    if saved is not None and "__scenario__" in saved:
                        item.params = saved["__scenario__"]
                    elif saved is not None:
                        item.callspec.params.update(saved)
                fixtures_alive = nextitem is not None
                payload = result_payload(config, self.reports, self._take_warnings())
                if telemetry is not None:
                    payload["telemetry"] = telemetry.end(t0)
                    series = telemetry.take_series()
                    if series["t"]:  # most fast tests fall between two samples: nothing to ship
                        payload["series"] = series
                if task is not None:  # the mutation engine proposes, next to the fresh telemetry
                    engine.after(item, base, task, payload)
                conn.send((P.RESULT, index, payload))
                if session.shouldfail or session.shouldstop:
                    break
        except KeyboardInterrupt:
            interrupted = True
        finally:
            if fixtures_alive and last_index is not None and last_item is not None:
                self._teardown_early(config, conn, last_item, last_index)
            reason = "KeyboardInterrupt" if interrupted else (session.shouldfail or session.shouldstop)
            try:
                if telemetry is not None:
                    telemetry.close()
                    conn.send((P.TELEMETRY, telemetry.take_series()))
                conn.send((P.BYE, worker_id, str(reason) if reason else None))
                conn.close()
            except OSError:
                pass
        if interrupted:
            raise KeyboardInterrupt

    def _take_warnings(self) -> list[dict[str, Any]]:
        warnings, self.warnings = self.warnings, []
        return warnings

    def _teardown_early(self, config: pytest.Config, conn: Connection, item: pytest.Item, index: int) -> None:
        """Stopped before the last item's fixtures were torn down: tear them down now and report
        any error against that item, as pytest does when ``-x`` stops it."""
        # Only the fixtures are torn down, not the item's teardown hooks: plugins (logging,
        # capture, benchmark) finished their per-item work when the item's protocol ended.
        call = pytest.CallInfo.from_call(lambda: item.session._setupstate.teardown_exact(None), when="teardown")
        if call.excinfo is not None and call.excinfo.errisinstance(KeyboardInterrupt):
            return
        self.reports = [pytest.TestReport.from_item_and_call(item, call)]
        payload = result_payload(config, self.reports, self._take_warnings())
        if payload["categories"]:
            try:
                conn.send((P.TEARDOWN, index, payload))
            except OSError:
                pass

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

    def _leave_if_stray(self) -> None:
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


def _callspec_params(item: pytest.Item) -> dict[str, Any]:
    """A parametrized test's parameters, as the baseline variant's params: JSON scalars kept,
    anything else by its repr (so failure analysis can group by them).

    Only values of exactly a builtin type are kept as they are: a subclass (an ``IntEnum`` or
    ``StrEnum`` member defined in the test module, numpy's scalars) would be pickled as a
    reference to a module the coordinator cannot import. An enum member becomes ``Class.NAME``.
    """
    callspec = getattr(item, "callspec", None)
    if callspec is None:
        return {}
    out: dict[str, Any] = {}
    for name, value in callspec.params.items():
        if value is None or type(value) in (bool, int, float, str):
            out[name] = value if type(value) is not str or len(value) <= 200 else value[:200]
        elif isinstance(value, enum.Enum):
            out[name] = f"{type(value).__name__}.{value.name}"[:200]
        else:
            out[name] = repr(value)[:200]
    return out


class _Engine:
    """The worker's mutation engine, made on first use (only an exploring run needs one)."""

    def __init__(self) -> None:
        self._engine: Any = None

    def get(self) -> Any:
        if self._engine is None:
            from testfleet.mutation.engine import MutationEngine

            self._engine = MutationEngine()
        return self._engine

    def after(self, item: pytest.Item, base: int, task: Any, payload: dict[str, Any]) -> None:
        """Add the engine's proposals after this execution, and the instance's config then."""
        from testfleet.model import Outcome
        from testfleet.mutation.engine import Execution

        engine = self.get()
        space = engine.space(base, lambda: _space_declaration(item), item.nodeid)
        if space is None:
            return
        execution = Execution(failed=Outcome(payload["outcome"]).is_failure,
                              fingerprint=payload.get("fingerprint"), message=payload.get("message", ""),
                              telemetry=payload.get("telemetry") or {}, duration=payload.get("duration"))
        payload["proposals"] = engine.propose(item.nodeid, space, task, execution)
        instance = _instance_config(item)
        if instance is not None:
            payload["instance"] = instance


def _instance_config(item: pytest.Item) -> dict[str, Any] | None:
    """The name and config of the SUT instance the item ran against (None: it used none)."""
    if "testfleet_instance" not in getattr(item, "fixturenames", ()) and not hasattr(item, "scenario"):
        return None
    from testfleet.pytest_plugin import holder

    instance = holder(item.config).instance
    if instance is None:
        return None
    return {"name": instance.instance, "config": dict(instance.config)}


def _space_declaration(item: pytest.Item) -> dict[str, Any] | None:
    """The ``@testfleet.explore`` space of the test, as data the coordinator can rebuild."""
    scenario = getattr(item, "scenario", None)  # an HTTP scenario's params are its space
    function = getattr(item, "function", None)
    space = None
    if scenario is not None:
        space = scenario.params
    elif function is not None:
        from testfleet.explorable import space_of

        space = space_of(function)
    sut_space = _sut_space(item) if ("testfleet_instance" in getattr(item, "fixturenames", ())
                                     or scenario is not None) else None
    if sut_space is not None:  # the instance's config is explored too: dimensions sut.<key>
        from testfleet.space.space import Space

        dims = {**(space.dimensions if space is not None else {}), **sut_space.dimensions}
        texts = [c.text for c in (space.constraints if space is not None else [])]
        space = Space(dims, texts + [c.text for c in sut_space.constraints])  # both spaces' constraints
    if space is None:
        return None
    from testfleet.space.declare import space_to_dict

    return space_to_dict(space)


_SUT_SPACE: dict[str, Any] = {}


def _sut_space(item: pytest.Item) -> Any:
    """``[tool.testfleet.sut] config_space`` as exploration varies it (dimensions ``sut.<key>``,
    constraints kept, baselines from ``config``), read once per process (None: none)."""
    if "space" not in _SUT_SPACE:
        _SUT_SPACE["space"] = None
        try:
            from testfleet.execution.sut_spec import explored_space
            from testfleet.settings import load_settings

            settings, source = load_settings([], {}, cwd=item.config.rootpath)
            spec = settings.sut_spec()
            if spec is not None and spec.config_space:
                if spec.cwd is None:
                    spec = spec.model_copy(update={"cwd": str(source.parent if source else item.config.rootpath)})
                _SUT_SPACE["space"] = explored_space(spec)
        except Exception:  # noqa: BLE001 - the instance itself reports a bad SUT table
            _SUT_SPACE["space"] = None
    return _SUT_SPACE["space"]


def _configure_instance(item: pytest.Item, params: dict[str, Any] | None) -> None:
    """A variant's ``sut.*`` values reach the worker's instance (restarted when they change)."""
    if "testfleet_instance" not in getattr(item, "fixturenames", ()) and not hasattr(item, "scenario"):
        return
    from testfleet.pytest_plugin import holder

    holder(item.config).configure({k: v for k, v in (params or {}).items() if k.startswith("sut.")})


def _with_params(item: pytest.Item, params: dict[str, Any] | None) -> dict[str, Any] | None:
    """Give a parametrized item other values for its parameters (a variant); returns the old
    ones to put back. pytest reads a direct parameter from ``callspec.params`` at setup."""
    if params and hasattr(item, "scenario"):  # a scenario item reads its own params
        saved_params = dict(item.params)
        item.params = dict(params)
        return {"__scenario__": saved_params}
    callspec = getattr(item, "callspec", None)
    if not params or callspec is None:
        return None
    saved = dict(callspec.params)
    callspec.params.update({k: v for k, v in params.items() if k in callspec.params})
    return saved


def _requires(item: pytest.Item) -> dict[str, Any]:
    """The test's ``requires`` markers merged, the one closest to the test winning per key."""
    merged: dict[str, Any] = {}
    for marker in reversed(list(item.iter_markers("requires"))):
        merged.update(marker.kwargs)
    return merged


def _crash_message(report: pytest.TestReport) -> str:
    longrepr = report.longrepr
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None and getattr(crash, "message", None):
        return str(crash.message)
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2])
    text = str(longrepr or "")
    return text.strip().splitlines()[-1] if text.strip() else ""


def _fingerprint(report: pytest.TestReport) -> str | None:
    crash = getattr(report.longrepr, "reprcrash", None)
    if crash is None:
        return None
    exc_type = str(crash.message).split(":", 1)[0].strip()
    return f"{Path(str(crash.path)).name}:{crash.lineno}:{exc_type}"


def _terminal_options(config: pytest.Config) -> dict[str, Any]:
    """How pytest's own terminal would report (``-r`` characters, ``-q``/``-v`` from the command
    line or ``addopts``), so that the coordinator's console prints what pytest would."""
    reporter = config.pluginmanager.get_plugin("terminalreporter")
    return {"reportchars": str(getattr(reporter, "reportchars", "fE")),
            "verbosity": int(getattr(config.option, "verbose", 0) or 0)}


def _is_subtest(report: pytest.TestReport) -> bool:
    """A subtest's report: pytest's own ``subtests`` (pytest >= 9) or the pytest-subtests plugin."""
    return callable(getattr(report, "_sub_test_description", None)) and hasattr(report, "context")


def _skip_place(config: pytest.Config, report: pytest.TestReport) -> list[Any]:
    """Where a skip happened and why, folded the way pytest's ``-rs`` summary folds them: the
    path relative to the invocation folder, the line (None for a ``skip`` mark on the test)."""
    fspath, lineno, reason = report.longrepr  # type: ignore[misc]
    try:
        path = os.path.relpath(fspath, config.invocation_params.dir)
    except ValueError:  # another drive (Windows)
        path = str(fspath)
    keywords = getattr(report, "keywords", {})
    if report.when == "setup" and "skip" in keywords and "pytestmark" not in keywords:
        lineno = None
    return [path, lineno, str(reason)]


def _subtest_entry(config: pytest.Config, rep: pytest.TestReport, category: str, word: str) -> dict[str, Any]:
    """One subtest: its description (``[msg] (i=1)``), outcome, pytest's summary word and, when
    it did not pass, its message, traceback and captured output."""
    entry: dict[str, Any] = {"description": rep._sub_test_description(), "outcome": rep.outcome,  # type: ignore[attr-defined]
                             "category": category, "word": word, "duration": rep.duration}
    if rep.failed or rep.skipped:
        entry["message"] = _crash_message(rep)
        entry["longrepr"] = rep.longreprtext
        entry["fingerprint"] = _fingerprint(rep)
        if rep.skipped and isinstance(rep.longrepr, tuple) and len(rep.longrepr) == 3:
            entry["skip"] = _skip_place(config, rep)
        for title, content in rep.sections:
            for stream in ("stdout", "stderr", "log"):
                if title.startswith(f"Captured {stream}"):
                    entry[stream] = entry.get(stream, "") + content
    return entry


def result_payload(config: pytest.Config, reports: list[pytest.TestReport],
                   warnings: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """Everything the coordinator needs about one item's run, as plain data (cheap to pickle)."""
    categories: list[str] = []
    phases: dict[str, dict[str, Any]] = {}
    longreprs: list[str] = []
    message = ""
    when = None
    fingerprint = None
    subtests: list[dict[str, Any]] = []
    for rep in reports:
        category, _letter, word = config.hook.pytest_report_teststatus(report=rep, config=config)
        if category:
            categories.append(category)
        word = str(word[0] if isinstance(word, tuple) else word)
        if _is_subtest(rep):  # its own entry; the item's message and traceback stay the test's own
            subtests.append(_subtest_entry(config, rep, category, word))
            continue
        phase: dict[str, Any] = {"outcome": rep.outcome, "duration": rep.duration}
        if category:  # what pytest's short summary shows for this report
            phase.update(category=category, word=word)
        if rep.skipped and isinstance(rep.longrepr, tuple) and len(rep.longrepr) == 3:
            phase["skip"] = _skip_place(config, rep)
        if rep.failed or (rep.skipped and rep.longrepr is not None):
            text = rep.longreprtext
            phase["longrepr"] = text
            if rep.failed:
                phase["message"] = _crash_message(rep)
                # sections plugins add beside the captured output (the SUT's log) stay with it
                extra = "".join(f"\n\n{'-' * 8} {title} {'-' * 8}\n{content}" for title, content
                                in rep.sections if not title.startswith("Captured "))
                text += extra
                longreprs.append(text if rep.when == "call" else f"[{rep.when}] {text}")
                if when is None:
                    when, message, fingerprint = rep.when, _crash_message(rep), _fingerprint(rep)
        if hasattr(rep, "wasxfail"):
            phase["wasxfail"] = rep.wasxfail
        phases[rep.when] = phase
    outcome = next((o for o in OUTCOME_PRIORITY if o in categories), None)
    if outcome is None:  # a plugin's own category: fall back on the report outcomes
        outcome = "failed" if any(r.failed for r in reports) else "passed"
    failed_subtest = next((sub for sub in subtests if sub["outcome"] == "failed"), None)
    if failed_subtest is not None and not longreprs:  # only subtests failed: say the first
        when, message, fingerprint = "call", failed_subtest["message"], failed_subtest.get("fingerprint")
    elif failed_subtest is not None and fingerprint is None:  # "contains 1 failed subtest"
        fingerprint = failed_subtest.get("fingerprint")
    if subtests:
        phases.setdefault("call", {"outcome": "passed", "duration": 0.0})["subtests"] = subtests
    if not message:
        for rep in reports:
            if rep.skipped and not _is_subtest(rep):
                message = getattr(rep, "wasxfail", "") or _crash_message(rep)
                when = rep.when
                break
    last = next((r for r in reversed(reports) if not _is_subtest(r)), None)
    return {
        "outcome": outcome,
        "categories": categories,
        "duration": sum(r.duration for r in reports if not _is_subtest(r)),  # subtests ran in call
        "start": reports[0].start if reports else time.time(),
        "stop": last.stop if last else time.time(),
        "when": when,
        "message": message,
        "longrepr": "\n\n".join(longreprs),
        "stdout": last.capstdout if last else "",
        "stderr": last.capstderr if last else "",
        "log": last.caplog if last else "",
        "fingerprint": fingerprint,
        "phases": phases,
        "warnings": warnings or [],
    }
