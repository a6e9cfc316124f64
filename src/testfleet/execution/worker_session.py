"""A worker's session: it says Hello, takes its WorkerConfig, then runs what the coordinator sends.

One :class:`WorkerSession` lives in each worker process, inside its pytest session (started by
:class:`~testfleet.execution.pytest_worker.WorkerPlugin`). It has one method per coordinator
message (``on_run``, ``on_flush``...) and keeps the state they share: the queue of item indices,
the explored executions among them, and whether the coordinator has flushed, stopped or shut
the worker down. Like pytest-xdist, it holds back the last queued item until it knows the next
one (or is told that no more is coming), so ``nextitem`` is right and module/class fixtures are
not torn down between batches.
"""

from __future__ import annotations

import faulthandler
import os
import sys
import time
from collections import deque
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pytest

from testfleet.execution import protocol as P
from testfleet.execution.worker_items import (
    configure_instance,
    instance_config,
    space_declaration,
    swap_params,
)
from testfleet.execution.worker_results import result_of

if TYPE_CHECKING:
    from _pytest.nodes import Node  # an item's parent's type; pytest does not export it

    from testfleet.execution.pytest_worker import WorkerPlugin
    from testfleet.execution.worker_telemetry import WorkerTelemetry


class WorkerSession:
    """The worker side of the protocol, for one pytest session; see the module docstring."""

    def __init__(self, plugin: WorkerPlugin, session: pytest.Session, worker_id: str) -> None:
        self.plugin = plugin
        self.session = session
        self.config = session.config
        self.items = session.items
        self.worker_id = worker_id
        self.conn: Any = None
        self.worker_config: P.WorkerConfig | None = None
        self.telemetry: WorkerTelemetry | None = None
        self.engine = _Engine()
        self.queue: deque[int] = deque()
        # explorable executions: explored variants (indices past the collected items) and the
        # baselines of explorable cases
        self.explored: dict[int, P.Explored] = {}
        self.flushed = self.stopped = self.shut_down = False
        self.report_start = False
        self.last: tuple[int, pytest.Item] | None = None  # the item whose fixtures may be alive
        self.fixtures_alive = False  # kept for the next item, or interrupted
        self.interrupted = False

    # -- the messages --------------------------------------------------------------------------
    def handle(self, message: P.CoordinatorMessage) -> None:
        match message:
            case P.Configure():
                self.on_configure(message)
            case P.Run():
                self.on_run(message)
            case P.Ruleset():
                self.on_ruleset(message)
            case P.Flush():
                self.on_flush(message)
            case P.Shutdown():
                self.on_shutdown(message)
            case P.Stop():
                self.on_stop(message)

    def on_configure(self, message: P.Configure) -> None:
        config = self.worker_config = message.config
        os.environ["PYTEST_XDIST_WORKER_COUNT"] = str(config.worker_count)
        from testfleet.pytest_plugin import holder

        instance = holder(self.config)  # the run's seed and SUT table, not read again here
        instance.seed, instance.spec = config.seed, config.sut
        for key, document in config.rulesets:
            self.engine.get().set_ruleset(key, document)
        from testfleet.execution.worker_telemetry import WorkerTelemetry

        self.telemetry = WorkerTelemetry.from_config(config.telemetry_interval, config.metrics_interval,
                                                     workers=config.worker_count)

    def on_run(self, message: P.Run) -> None:
        self.queue.extend(message.indices)
        self.flushed = False
        self.report_start = message.report_start
        self.explored.update(message.explored)

    def on_ruleset(self, message: P.Ruleset) -> None:
        self.engine.get().set_ruleset(message.key, message.document)

    def on_flush(self, message: P.Flush) -> None:
        self.flushed = True

    def on_shutdown(self, message: P.Shutdown) -> None:
        self.flushed = self.shut_down = True

    def on_stop(self, message: P.Stop) -> None:
        self.stopped = True

    # -- the loop ------------------------------------------------------------------------------
    def serve(self) -> None:
        self.plugin.serving_pid = os.getpid()
        # the summary of a worker's session is never shown (the coordinator reports), and its
        # plugins' summary work (Hypothesis imports itself there, ~0.5 s) is paid per worker
        self.config.option.no_summary = True
        os.environ[P.ENV_WORKER_ID] = self.worker_id
        os.environ["PYTEST_XDIST_WORKER"] = self.worker_id
        crash_file = open(self.plugin.rundir / f"{self.worker_id}.crash", "w")  # noqa: SIM115 - lives as long as the worker
        faulthandler.enable(file=crash_file, all_threads=True)
        self.conn = self.plugin.connect()
        self.conn.send(P.Hello(self.worker_id, os.getpid()))
        if os.environ.get("TESTFLEET_CHAOS_DIR"):  # --chaos: this worker's side of the injection
            from testfleet.execution.chaos.agent import start_agent

            start_agent(self.worker_id)
        try:
            if self._await_config() and self.telemetry is not None:
                self.telemetry.start()
            self._loop()
        except KeyboardInterrupt:
            self.interrupted = True
        finally:
            self._finish()
        if self.interrupted:
            raise KeyboardInterrupt

    def _await_config(self) -> bool:
        """Read until the WorkerConfig comes (False: stopped or disconnected first)."""
        while self.worker_config is None and not self.stopped:
            try:
                self.handle(self.conn.recv())
            except EOFError:
                self.stopped = True
        return self.worker_config is not None

    def _runnable(self) -> bool:
        # The last queued item waits until the next is known (for ``nextitem``) or a flush.
        return len(self.queue) >= 2 or (bool(self.queue) and self.flushed)

    def _loop(self) -> None:
        while not self.stopped:
            if not self._runnable():
                if self.shut_down and not self.queue:
                    return
                try:
                    self.handle(self.conn.recv())
                except EOFError:
                    return
                continue
            while self.conn.poll():
                self.handle(self.conn.recv())
            if self.stopped:
                return
            if self._runnable() and not self._run_next():
                return

    def _run_next(self) -> bool:
        """Run the next queued item and send its result; False when the session must end."""
        index = self.queue.popleft()
        explored = self.explored.pop(index, None)
        base = explored.base if explored is not None else index
        item = self.items[base]
        nextitem: Node | None = None
        if self.queue:
            following = self.explored.get(self.queue[0])
            nextitem = self.items[following.base if following is not None else self.queue[0]]
        if nextitem is item:
            # the same item again (another variant): its own fixtures must be torn down and set
            # up afresh, its module's and class's kept; pytest keeps whatever is in nextitem's
            # chain, so name the parent
            nextitem = item.parent
        if self.report_start:
            self.conn.send(P.Started(index, time.time()))
        self.plugin.reports = []
        item._report_sections = []  # run again (a variant): only this run's output is its own
        self.last, self.fixtures_alive = (index, item), True
        t0 = self.telemetry.begin() if self.telemetry is not None else 0.0
        chaos = _chaos_agent()
        injected_before = chaos.injected() if chaos is not None else {}
        params = explored.params if explored is not None else None
        swap = swap_params(item, params)
        try:
            configure_instance(item, params)
            self.config.hook.pytest_runtest_protocol(item=item, nextitem=nextitem)
        except pytest.exit.Exception as exc:
            # e.g. the SUT never became ready: nothing more can run, the run stops. The session
            # then ends as after the last test: re-raising would make pytest render the whole
            # traceback of the Exit (seconds) before the worker leaves
            self.plugin.leave_if_stray()
            self.conn.send(P.Fatal(self.worker_id, str(exc.msg), exc.returncode))
            self.fixtures_alive = False
            return False
        finally:
            self.plugin.leave_if_stray()
            if swap is not None:
                swap.restore()
        self.fixtures_alive = nextitem is not None
        result = self._result(t0)
        if chaos is not None and (hit := chaos.injected_since(injected_before)):
            result = replace(result, injected=hit)  # the coordinator judges the failure on it
        if explored is not None and explored.task is not None:
            # the mutation engine proposes, next to the fresh telemetry
            sut_space = self.worker_config.sut_space if self.worker_config is not None else None
            result = self.engine.after(item, base, explored.task, result, sut_space)
        self.conn.send(P.Ran(index, result))
        return not (self.session.shouldfail or self.session.shouldstop)

    def _result(self, t0: float) -> P.TestResult:
        summary = series = None
        if self.telemetry is not None:
            summary = self.telemetry.end(t0)
            taken = self.telemetry.take_series()
            if taken["t"]:  # most fast tests fall between two samples: nothing to ship
                series = taken
        result = result_of(self.config, self.plugin.reports, self.plugin.take_warnings(),
                           telemetry=summary, series=series)
        sut = sys.modules.get("testfleet.execution.sut")  # never imported: this worker started no SUT
        pids = [] if sut is None else [pid for i in sut.active_instances() if (pid := i.pid) is not None]
        return replace(result, sut_pid=pids[0]) if pids else result

    def _finish(self) -> None:
        if self.fixtures_alive and self.last is not None:
            self._teardown_early(*self.last)
        reason = "KeyboardInterrupt" if self.interrupted else (self.session.shouldfail or self.session.shouldstop)
        try:
            if self.telemetry is not None and self.telemetry.sampler is not None:
                self.telemetry.close()
                self.conn.send(P.Telemetry(self.telemetry.take_series()))
            self.conn.send(P.Bye(self.worker_id, str(reason) if reason else None))
            self.conn.close()
        except OSError:
            pass

    def _teardown_early(self, index: int, item: pytest.Item) -> None:
        """Stopped before the last item's fixtures were torn down: tear them down now and report
        any error against that item, as pytest does when ``-x`` stops it."""
        # Only the fixtures are torn down, not the item's teardown hooks: plugins (logging,
        # capture, benchmark) finished their per-item work when the item's protocol ended.
        call = pytest.CallInfo.from_call(lambda: item.session._setupstate.teardown_exact(None), when="teardown")
        if call.excinfo is not None and call.excinfo.errisinstance(KeyboardInterrupt):
            return
        self.plugin.reports = [pytest.TestReport.from_item_and_call(item, call)]
        result = result_of(self.config, self.plugin.reports, self.plugin.take_warnings())
        if result.categories:
            try:
                self.conn.send(P.LateTeardown(index, result))
            except OSError:
                pass


def _chaos_agent() -> Any:
    """The chaos agent's module under --chaos (it counts the proxy's injected errors), else None."""
    if not os.environ.get("TESTFLEET_CHAOS_DIR"):
        return None
    from testfleet.execution.chaos import agent

    return agent


class _Engine:
    """The worker's mutation engine, made on first use (only an exploring run needs one)."""

    def __init__(self) -> None:
        self._engine: Any = None

    def get(self) -> Any:
        if self._engine is None:
            from testfleet.mutation.engine import MutationEngine

            self._engine = MutationEngine()
        return self._engine

    def after(self, item: pytest.Item, base: int, task: Any, result: P.TestResult,
              sut_space: dict[str, Any] | None) -> P.TestResult:
        """The result with the engine's proposals after this execution, and the instance's
        config then."""
        from testfleet.model import Outcome
        from testfleet.mutation.engine import Execution

        engine = self.get()
        space = engine.space(base, lambda: space_declaration(item, sut_space), item.nodeid)
        if space is None:
            return result
        execution = Execution(failed=Outcome(result.outcome).is_failure, fingerprint=result.fingerprint,
                              message=result.message, telemetry=result.telemetry, duration=result.duration)
        return replace(result, proposals=engine.propose(item.nodeid, space, task, execution),
                       instance=instance_config(item))
