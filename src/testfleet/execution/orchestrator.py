"""The orchestrator: one run's loop, the same for every backend.

collect (the backend's collector) -> plan (:class:`Scheduler`) -> dispatch batches -> record each
result (buffered, written in batches through a :class:`Recorder`) -> rerun failures on another
worker, replace crashed workers, kill tests over ``timeout`` -> shut the fleet down. The
orchestrator is the only writer of results during a run; it knows nothing of DuckDB or of the
console: the CLI hands it a recorder and a listener.

Fault rules: a worker that dies mid-test gets that test reported ``crashed`` with the exit code or
signal and faulthandler's traceback; the tests queued behind it go back to the queue; the worker
is replaced while the restart budget lasts. A crashed test is retried once; a test that crashes
a worker twice is not retried again. ``timeout`` is enforced here, not in the worker: the worker is
killed (SIGABRT first, so faulthandler dumps where it hung) and replaced.
"""

from __future__ import annotations

import gc
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from testfleet.execution import protocol as P
from testfleet.execution.backends.base import (
    Backend,
    CollectedEvent,
    CollectorExitedEvent,
    Event,
    HelloEvent,
    LostEvent,
    MessageEvent,
)
from testfleet.execution.orchestrator_explore import ExplorationMixin
from testfleet.execution.plan import (
    Listener,
    NullListener,
    Recorder,
    RunOutcome,
    RunPlan,
)
from testfleet.execution.resilience import RetryPolicy, describe_exit, lost_test_payload
from testfleet.execution.scheduler import Scheduler
from testfleet.execution.worker_items import with_sut_space
from testfleet.model import FAILURE_OUTCOMES, Case, Outcome, Result, Run, Variant

STORE_FLUSH_SECONDS = 1.0
STORE_FLUSH_ROWS = 2000
KILL_GRACE = 2.0
SHUTDOWN_GRACE = 30.0


@dataclass
class _Slot:
    worker_id: str
    outstanding: deque[int] = field(default_factory=deque)
    last_batch: int = 0
    flushed: bool = False
    ready: bool = False
    gone: bool = False
    running: tuple[int, float] | None = None
    killed_for: int | None = None
    said_bye: bool = False
    pool: str = ""
    kill_deadline: float | None = None


class Orchestrator(ExplorationMixin):
    def __init__(self, backend: Backend, plan: RunPlan, run: Run, recorder: Recorder,
                 listener: Listener | None = None, crash_text: Callable[[str], str] | None = None) -> None:
        self.backend = backend
        self.plan = plan
        self.run_info = run
        self.recorder = recorder
        self.listener = listener or NullListener()
        self.crash_text = crash_text or (lambda _worker: "")
        self.retry = RetryPolicy(plan.reruns)
        self.slots: dict[str, _Slot] = {}
        self.items: list[dict[str, Any]] = []
        self.cases: list[Case] = []
        self.variants: list[Variant] = []
        self.results: list[Result] = []
        self.final: dict[int, Result] = {}
        self.attempts: dict[int, int] = {}
        self.crashes: dict[int, int] = {}
        self.failed_once: set[int] = set()
        self.buffer: list[Result] = []
        self.last_flush = time.monotonic()
        self.messages: list[str] = []
        self.collect_errors: list[dict[str, Any]] = []
        self.not_run: list[int] = []
        self.failures = 0
        self.restarts = 0
        self.next_worker = 0
        self.stopping = False
        self.total = 0
        self.scheduler: Scheduler | None = None
        self.backlog: list[Event] = []
        self.warnings: list[dict[str, Any]] = []
        self.worker_interrupted = False
        self.selected: list[int] = []
        self.collected_items: list[P.CollectedItem] = []
        self.gave_up = False
        self.series: dict[str, list[Any]] = {"worker": [], "t": [], "metric": [], "value": []}
        self.events: list[dict[str, Any]] = []
        self.anomalies: list[dict[str, Any]] = []
        self.fatal: tuple[int, str] | None = None
        self.explorer = plan.explorer
        self.variant_map: dict[int, tuple[int, dict[str, Any]]] = {}  # explored index -> (item, params)
        self.tasks: dict[int, Any] = {}  # index -> the ExploreTask its worker's mutation engine gets
        self.instance_snapshots: dict[str, dict[str, Any]] = {}  # failing explored variant -> its SUT config
        self.config_snapshots: dict[str, str] = {}  # an instance config (JSON) -> its snapshot id
        self.min_job: Any = None  # the failing variant being minimised (mutation.minimize_job)
        self.min_index: dict[int, Any] = {}
        self.min_fingerprints: set[str] = set()  # failures minimised (minimize_job.next_failure)
        self.minimized: list[dict[str, Any]] = []
        # variant id -> (failed, failure fingerprint, message), for minimisation
        self.final_by_variant: dict[str, tuple[bool, str | None, str]] = {}

    # -- public -------------------------------------------------------------------------------
    def execute(self) -> RunOutcome:
        interrupted = False
        collector_exit: int | None = None
        try:
            self.backend.start()
            if self.backend.workers_collect:  # every worker collects: start them all now
                for _ in range(self.plan.workers):
                    self._spawn()
            payload = self._await_collection()
            if payload is None:
                collector_exit = self._collector_exit
            elif self._plan(payload):
                # the plan (items, cases, variants: ~100k objects for 4,000 tests) lives as long as
                # the run: out of the collector's reach, each full collection while results come
                # in no longer walks it (it was a third of the coordinator's CPU per result)
                gc.freeze()
                self._loop()
        except P.UnreadableMessage as exc:  # an internal error, pytest's exit 3, naming the test
            self.fatal = (3, self._unreadable(exc))
            if not self.cases:  # failed while reading the collection: the run still gets its row
                self.recorder.begin_run(self.run_info, [], [])
        except KeyboardInterrupt:
            interrupted = True
            self._say("interrupted: stopping workers")
            self._stop_all()
            for slot in self.slots.values():
                if not slot.gone:  # interrupt the running test; the worker then tears fixtures down
                    self.backend.kill(slot.worker_id, signal.SIGINT)
            try:
                self._drain(SHUTDOWN_GRACE / 3)
            except KeyboardInterrupt:
                pass
        finally:
            if self.plan.monitor is not None and self.final:
                self._add_events(self.plan.monitor.finish())
            if self.explorer is not None:
                self._add_events(self._exploration_events())
            self._flush(force=True)
            gc.unfreeze()  # a process that runs again (tests, an API caller) collects this plan then
            output = self.backend.collector_output()
            self.backend.close()
        return self._outcome(interrupted=interrupted, collector_exit=collector_exit, output=output)

    def _unreadable(self, exc: P.UnreadableMessage) -> str:
        """Which test's data the coordinator could not read, and why."""
        msg = exc.message
        tests: list[str] = []
        if isinstance(msg, P.Collected):
            tests = [str(item.get("nodeid")) for item in msg.collection.get("items", ()) if P.holds_stand_in(item)]
        elif isinstance(msg, (P.Ran, P.LateTeardown, P.Started)) and msg.index < len(self.items):
            tests = [str(self.items[msg.index]["nodeid"])]
        where = f" for {', '.join(tests[:3])}" + (f" and {len(tests) - 3} more" if len(tests) > 3 else "") \
            if tests else ""
        return (f"internal error: a worker sent data{where} that the coordinator cannot read: it refers to "
                f"{', '.join(exc.missing)}, which cannot be imported outside the test session ({exc.reason})")

    # -- collection and plan ------------------------------------------------------------------
    def _await_collection(self) -> P.Collection | None:
        self._collector_exit: int | None = None
        while True:
            events = self.backend.poll(0.2)
            for position, event in enumerate(events):
                match event:
                    case CollectedEvent(collection):
                        self.backlog = events[position + 1:]  # handled once the plan exists
                        return collection
                    case CollectorExitedEvent(code):
                        self._collector_exit = code
                        return None
                    case HelloEvent(worker_id):  # spawn mode: a worker can be faster than the collector
                        self._on_hello(worker_id)

    def _plan(self, payload: P.Collection) -> bool:
        self.collected_items = payload["items"]  # as the workers collected them, to compare
        # a test that runs against the SUT explores the instance's config too (dimensions sut.*)
        sut_space = self.plan.worker.sut_space
        self.items = [{**item, "space": with_sut_space(item["space"], sut_space)}
                      if sut_space is not None and item.get("uses_instance") else item
                      for item in payload["items"]]
        self.collect_errors = list(payload["errors"])
        self.warnings.extend(payload["warnings"])
        self.run_info.collected = len(self.items)  # selected; deselected is counted apart
        self.run_info.deselected = payload["deselected"]
        self.run_info.rootdir = payload["rootdir"]
        nodeids = [item["nodeid"] for item in self.items]
        self.cases = [Case.from_nodeid(i["nodeid"], file=i["file"], line=i["line"], name=i["name"],
                                       markers=i["markers"]) for i in self.items]
        # a parametrized test's callspec is its baseline variant's parameters
        self.variants = [Variant.of(case, item.get("params") or {})
                         for case, item in zip(self.cases, self.items, strict=True)]
        selected = range(len(nodeids))
        if self.plan.only_last_failed:
            previously = [i for i, n in enumerate(nodeids) if n in self.plan.last_failed]
            if previously:
                self._say(f"run-last-failure: rerun previous {len(previously)} failure"
                          f"{'s' if len(previously) != 1 else ''}")
                self.run_info.deselected += len(nodeids) - len(previously)
                selected = previously
            else:
                self._say("run-last-failure: no previously failed tests, not deselecting items.")
        pools, unmet = self._requirements(list(selected))
        self.selected = [i for i in selected if i not in unmet]
        self.total = len(self.selected)
        skipped_modules = [self._collect_skip(entry) for entry in payload["skipped"]]
        for index, reason in unmet.items():
            self._unmet_requirement(index, reason)
        self.recorder.begin_run(self.run_info, self.cases + [c for c, _ in skipped_modules],
                                self.variants + [v for _, v in skipped_modules])
        if self.collect_errors and not self.plan.continue_on_collection_errors:
            return False
        if payload["terminal"] and hasattr(self.listener, "on_terminal"):  # -r, -q as pytest saw them
            self.listener.on_terminal(payload["terminal"])
        self.listener.on_collected(self.total + len(unmet), self.run_info.deselected, self.plan.workers)
        if unmet:
            word = "errors" if self.plan.strict_requirements else "skipped"
            self._say(f"{len(unmet)} test{'s' if len(unmet) != 1 else ''} {word}: no worker meets "
                      f"{'their' if len(unmet) != 1 else 'its'} requirements")
        if not self.total:
            return False
        self.scheduler = Scheduler(nodeids, workers=self.plan.workers, dist=self.plan.dist,
                                   history=self.plan.history, failed=self.plan.last_failed,
                                   failed_first=self.plan.failed_first, order=self.selected, pools=pools)
        if self.explorer is not None:
            explorable = [i for i in self.selected if self.items[i].get("space")]
            selected_items = [self.items[i] if i in set(explorable) else {**self.items[i], "space": None}
                              for i in range(len(self.items))]
            if not self.explorer.register(selected_items, self.cases, self.variants):
                self._say("--explore: no selected test declares a space (@testfleet.explore); "
                          "only the baseline runs")
            else:
                self.listener.on_exploring(self.explorer.budget.describe())
                for base in self.explorer.cases:
                    self.tasks[base] = self.explorer.task(base, self.variants[base], self._reference(base),
                                                          baseline=True)
        if not self.backend.workers_collect:  # workers come from the collected session
            # more workers than tests would only sit idle (exploration makes its own work)
            for _ in range(self.plan.workers if self.explorer is not None else min(self.plan.workers, self.total)):
                self._spawn()
        for pool in self.scheduler.pool_names:
            if pool:  # one worker made to measure for each set of requirements
                self._spawn(pool)
        for slot in self.slots.values():
            if slot.ready:
                self._feed(slot)
        return True

    def _requirements(self, selected: list[int]) -> tuple[list[str], dict[int, str]]:
        """Each test's pool, and the tests no worker can satisfy (index -> reason)."""
        from fnmatch import fnmatch

        from testfleet.execution.capabilities import Requirements, skip_reason

        rules = [(pattern, Requirements.from_marker_kwargs(kwargs, where=f"requirements[{pattern!r}]"))
                 for pattern, kwargs in self.plan.requirement_rules]
        pools = [""] * len(self.items)
        unmet: dict[int, str] = {}
        offered = None
        for index in selected:
            item = self.items[index]
            needed = Requirements.from_marker_kwargs(item.get("requires") or {}, where=item["nodeid"])
            for pattern, rule in rules:
                if fnmatch(item["nodeid"], pattern) or fnmatch(item["file"], pattern):
                    needed = needed.merge(rule, where=item["nodeid"])
            if needed.is_empty:
                continue
            offered = self.backend.capabilities() if offered is None else offered
            reason = skip_reason(needed, offered) if offered else None
            if reason:
                unmet[index] = reason
            elif self.backend.routes_requirements:
                pools[index] = needed.key()
                self.backend.define_pool(needed.key(), needed)
        return pools, unmet

    def _unmet_requirement(self, index: int, reason: str) -> None:
        """A test no worker can run: skipped with the reason, or an error with --strict-requirements."""
        outcome = Outcome.error if self.plan.strict_requirements else Outcome.skipped
        item = self.items[index]
        self._record_synthetic(self.cases[index], self.variants[index], outcome, worker="scheduler",
                               when="setup", message=reason, longrepr=reason, line=item["line"])

    def _collect_skip(self, entry: dict[str, Any]) -> tuple[Case, Variant]:
        """A module skipped at collection (``allow_module_level``): pytest counts it as skipped."""
        case = Case.from_nodeid(entry["nodeid"], file=entry["nodeid"].split("::", 1)[0])
        variant = Variant.of(case)
        self._record_synthetic(case, variant, Outcome.skipped, worker="collector", when="collect",
                               message=entry["message"], longrepr=entry["longrepr"])
        return case, variant

    def _record_synthetic(self, case: Case, variant: Variant, outcome: Outcome, *, worker: str, when: str,
                          message: str, longrepr: str, line: int | None = None) -> None:
        """A final result decided without running the test (it never reaches a worker)."""
        now = datetime.now(UTC)
        result = Result(run_id=self.run_info.run_id, variant_id=variant.variant_id, case_id=case.case_id,
                        nodeid=case.nodeid, worker=worker, outcome=outcome, started_at=now, finished_at=now,
                        when=when, message=message, longrepr=longrepr, categories=[outcome.value],
                        file=case.file, line=line)
        self.results.append(result)
        self.buffer.append(result)

    def _spawn(self, pool: str = "") -> None:
        worker_id = f"gw{self.next_worker}"
        self.next_worker += 1
        self.slots[worker_id] = _Slot(worker_id, pool=pool)
        self.backend.spawn_worker(worker_id, pool)
        self.listener.on_worker(worker_id, "started", pool)

    # -- the loop -----------------------------------------------------------------------------
    def _loop(self) -> None:
        for event in self.backlog:
            self._handle(event)
        while True:
            for event in self.backend.poll(self._poll_timeout()):
                self._handle(event)
            self._check_timeouts()
            self._flush()
            live = [s for s in self.slots.values() if not s.gone]
            if not live:
                if self.scheduler and not self.scheduler.empty and not self.stopping:
                    self._give_up()
                return
            if not self.stopping and self.scheduler is not None and self.scheduler.empty \
                    and self.explorer is not None and self._explore_more(2 * len(live)):
                self._feed_all()
                continue
            if self.explorer is not None and self._minimizing(live):
                continue
            if not self.stopping and self.scheduler is not None and self.scheduler.empty \
                    and not any(s.outstanding for s in live):
                self.stopping = True
                for slot in live:
                    if slot.ready:
                        self.backend.send(slot.worker_id, P.Shutdown())
                    else:  # still starting and nothing left for it: not waited for (close() ends it)
                        slot.gone = True
                self._drain(SHUTDOWN_GRACE)
                return

    def _poll_timeout(self) -> float:
        timeout = STORE_FLUSH_SECONDS
        now = time.monotonic()
        for slot in self.slots.values():
            if slot.kill_deadline is not None:
                timeout = min(timeout, max(0.0, slot.kill_deadline - now))
            elif self.plan.timeout and slot.running is not None:
                timeout = min(timeout, max(0.0, slot.running[1] + self.plan.timeout - now))
        return timeout

    def _handle(self, event: Event) -> None:
        """One event of the fleet, to its handler (as pytest-xdist's ``DSession.worker_*``)."""
        match event:
            case HelloEvent(worker_id) if worker_id in self.slots:
                self._on_hello(worker_id)
            case MessageEvent(worker_id, message) if worker_id in self.slots:
                self._on_message(self.slots[worker_id], message)
            case LostEvent(worker_id, code) if worker_id in self.slots:
                self._on_lost(self.slots[worker_id], code)
            case CollectedEvent(collection) if self.items and collection["items"] != self.collected_items:
                self._on_different_collection()

    def _on_message(self, slot: _Slot, message: P.WorkerMessage) -> None:
        match message:
            case P.Ran(index, result):
                self._on_result(slot, index, result)
            case P.Started(index):
                slot.running = (index, time.monotonic())
            case P.LateTeardown(index, result):
                self._record(index, slot.worker_id, result, late_teardown=True)
            case P.Telemetry(series):
                self._add_series(slot.worker_id, series)
            case P.Fatal():
                self._on_fatal(slot, message)
            case P.Bye(reason=reason):
                self._on_bye(slot, reason)

    def _on_fatal(self, slot: _Slot, message: P.Fatal) -> None:
        if self.fatal is not None:
            return
        self.fatal = (int(message.code), str(message.message))  # type: ignore[arg-type]
        # said at once (the whole message follows when the workers are gone), and the tests
        # still running are interrupted: nothing they find can be trusted
        first = str(message.message).splitlines()[0].split("; log ")[0] if message.message else "cannot go on"
        self._say(f"{slot.worker_id}: {first} (stopping the run)")
        self._stop_all()
        for other in self.slots.values():
            if other is not slot and not other.gone and other.outstanding:
                self.backend.kill(other.worker_id, signal.SIGINT)

    def _on_bye(self, slot: _Slot, reason: str | None) -> None:
        slot.said_bye = True
        if reason == "KeyboardInterrupt":
            self.worker_interrupted = True  # a test raised it: pytest stops, exit 2
        if reason and not self.stopping:
            # The worker's own pytest session asked to stop (e.g. `-- -x`): stop the run.
            self._say(f"{slot.worker_id}: {reason}")
            self._stop_all()

    def _on_different_collection(self) -> None:
        self._say("workers collected different tests; the run stops (is collection deterministic?)")
        self.collect_errors.append({"nodeid": "", "longrepr": "Different tests were collected by the "
                                    "workers: collection must not depend on the process."})
        self._stop_all()

    def _on_hello(self, worker_id: str) -> None:
        slot = self.slots.setdefault(worker_id, _Slot(worker_id))
        slot.ready = True
        if self.stopping:
            self.backend.send(worker_id, P.Stop())
            return
        # the worker's one configuration: the run's, with the rulesets its mutation engine applies
        rulesets = tuple(self.explorer.rulesets()) if self.explorer is not None else ()
        self.backend.send(worker_id, P.Configure(replace(self.plan.worker, worker_count=self.plan.workers,
                                                         rulesets=rulesets)))
        if self.scheduler is not None:
            self._feed(slot)

    def _feed(self, slot: _Slot) -> None:
        """Top a worker up. A worker holds its last queued item until it knows the next one, so it
        is always left with two or more items, or told (FLUSH) that no more are coming."""
        if self.stopping or not slot.ready or slot.gone or self.scheduler is None:
            return
        alive = sum(1 for s in self.slots.values() if s.ready and not s.gone and s.pool == slot.pool)
        if slot.pool == "" and self.scheduler.pool_empty("") and self.explorer is not None:
            self._explore_more(2 * max(alive, 1))
        batch: list[int] = []
        while len(slot.outstanding) + len(batch) < 2:
            more = self.scheduler.next_batch(slot.worker_id, alive=alive, pool=slot.pool)
            if not more:
                break
            batch.extend(more)
        if not batch and not slot.outstanding:
            return
        if batch:
            slot.outstanding.extend(batch)
            slot.last_batch = len(batch)
            slot.flushed = False
            explored = {i: P.Explored(*self.variant_map.get(i, (i, None)), self.tasks.get(i))
                        for i in batch if i in self.variant_map or i in self.tasks}
            self.backend.send(slot.worker_id, P.Run(batch, bool(self.plan.timeout), explored))
            if not self.plan.timeout:
                self.listener.on_running(slot.worker_id, self.items[slot.outstanding[0]]["nodeid"])
        if self.scheduler.pool_empty(slot.pool):
            # every worker of the pool may now run what it holds: also one that was passed over
            # while a rerun it must not take was still queued for another worker
            for other in self.slots.values():
                if other.pool == slot.pool and other.outstanding and not other.flushed and not other.gone:
                    other.flushed = True
                    self.backend.send(other.worker_id, P.Flush())

    def _feed_all(self) -> None:
        for slot in self.slots.values():
            if not slot.outstanding or self.scheduler.needs_work(len(slot.outstanding), slot.last_batch):
                self._feed(slot)

    # -- results ------------------------------------------------------------------------------
    def _on_result(self, slot: _Slot, index: int, payload: P.TestResult) -> None:
        if slot.outstanding and slot.outstanding[0] == index:
            slot.outstanding.popleft()
        else:
            try:
                slot.outstanding.remove(index)
            except ValueError:
                pass
        slot.running = None
        self._record(index, slot.worker_id, payload)
        if slot.outstanding:
            self.listener.on_running(slot.worker_id, self.items[slot.outstanding[0]]["nodeid"])
        else:
            self.listener.on_running(slot.worker_id, None)
        if not self.stopping and self.scheduler.needs_work(len(slot.outstanding), slot.last_batch):
            self._feed(slot)

    def _record(self, index: int, worker_id: str, payload: P.TestResult, late_teardown: bool = False) -> Result:
        """One result. ``late_teardown``: the error of fixtures torn down after a stop, reported as
        its own row against the same attempt, as pytest reports "1 failed, 1 error"."""
        item = self.items[index]
        self.warnings.extend(payload.warnings)
        attempt = self.attempts.get(index, 0) + (0 if late_teardown else 1)
        self.attempts[index] = attempt
        outcome = Outcome(payload.outcome)
        case, variant = self.cases[index], self.variants[index]
        start, stop = payload.start, payload.stop
        result = Result(
            run_id=self.run_info.run_id, variant_id=variant.variant_id, case_id=case.case_id,
            nodeid=item["nodeid"], attempt=attempt, worker=worker_id, outcome=outcome,
            duration=payload.duration,
            started_at=datetime.fromtimestamp(start, UTC) if start else None,
            finished_at=datetime.fromtimestamp(stop, UTC) if stop else datetime.now(UTC),
            when=payload.when, message=payload.message,
            longrepr=payload.longrepr, stdout=payload.stdout,
            stderr=payload.stderr, log=payload.log,
            categories=payload.categories or [outcome.value],
            fingerprint=payload.fingerprint, file=item["file"], line=item["line"],
            keywords=item.get("keywords", []), phases=payload.phases,
            telemetry=payload.telemetry or {},
        )
        if payload.series:
            self._add_series(worker_id, payload.series)
        if outcome in FAILURE_OUTCOMES and not late_teardown:
            self.failed_once.add(index)
            if not self.stopping and self.retry.should_retry(outcome, attempt, self.crashes.get(index, 0)):
                result.final = False
                self.scheduler.rerun(index, worker_id)
                self._feed_all()
        elif index in self.failed_once and not late_teardown and outcome in (
                Outcome.passed, Outcome.xfailed, Outcome.skipped):
            result.flaky = True
        self.results.append(result)
        self.buffer.append(result)
        if result.final and not late_teardown:
            self.final[index] = result
            self.final_by_variant[variant.variant_id] = (outcome.is_failure, result.fingerprint, result.message)
            anomalies: list[dict[str, Any]] = []
            if self.plan.monitor is not None and result.telemetry and outcome is Outcome.passed:
                anomalies = self.plan.monitor.observe(
                    case_id=case.case_id, variant_id=variant.variant_id, nodeid=result.nodeid,
                    worker=worker_id, telemetry=result.telemetry, duration=result.duration)
                self._add_events(anomalies)
            if self.tasks.pop(index, None) is not None and outcome.is_failure and payload.instance:
                self._snapshot_instance(index, payload.instance)
            if index in self.min_index:
                self.min_index.pop(index).answer(outcome.is_failure, result.fingerprint, result.message)
            elif self.explorer is not None:
                base = self.variant_map.get(index, (index, None))[0]
                self.explorer.observe(base, variant, result, anomalies, payload.proposals or ())
            if outcome in FAILURE_OUTCOMES:
                self.failures += 1
                if self.plan.maxfail and self.failures >= self.plan.maxfail and not self.stopping:
                    self._say(f"stopping after {self.failures} failure{'s' if self.failures != 1 else ''}")
                    self._stop_all()
        self.listener.on_result(result, len(self.final), self.total)
        return result

    # -- faults -------------------------------------------------------------------------------
    def _on_lost(self, slot: _Slot, code: int | None) -> None:
        slot.gone = True
        self.listener.on_running(slot.worker_id, None)
        if not (slot.said_bye or self.stopping):
            self.listener.on_worker(slot.worker_id, "lost", describe_exit(code))
        if not slot.outstanding:
            if not (slot.said_bye or self.stopping):
                self._say(f"worker {slot.worker_id} {describe_exit(code)} while idle")
                self._replace(slot, counts=True)
            return
        if self.stopping and slot.killed_for is None:
            # Stopped (-x, Ctrl-C): whatever it still held was never run.
            self.not_run.extend(slot.outstanding)
            slot.outstanding.clear()
            return
        index = slot.outstanding.popleft()
        timed_out = slot.killed_for == index
        if not timed_out:
            self.crashes[index] = self.crashes.get(index, 0) + 1
        ran_for = time.monotonic() - slot.running[1] if slot.running and slot.running[0] == index else None
        payload = P.TestResult(**lost_test_payload(
            timed_out=timed_out, nodeid=self.items[index]["nodeid"], worker_id=slot.worker_id, code=code,
            timeout=self.plan.timeout, dump=self.crash_text(slot.worker_id), ran_for=ran_for))
        self._say(payload.longrepr.splitlines()[0])
        self._record(index, slot.worker_id, payload)
        if self.stopping:
            self.not_run.extend(slot.outstanding)
        else:
            self.scheduler.requeue(list(slot.outstanding))
        slot.outstanding.clear()
        self._replace(slot, counts=not timed_out)

    def _replace(self, slot: _Slot, *, counts: bool) -> None:
        if self.stopping:
            return
        if counts:
            if self.restarts >= self.plan.restart_budget:
                self._say(f"not replacing {slot.worker_id}: --max-worker-restarts "
                          f"({self.plan.restart_budget}) reached")
                return
            self.restarts += 1
        self._spawn(slot.pool)

    def _check_timeouts(self) -> None:
        now = time.monotonic()
        for slot in self.slots.values():
            if slot.gone:
                continue
            if slot.kill_deadline is not None and now >= slot.kill_deadline:
                self.backend.kill(slot.worker_id, signal.SIGKILL)
                slot.kill_deadline = None
            elif self.plan.timeout and slot.running and slot.killed_for is None \
                    and now - slot.running[1] > self.plan.timeout:
                slot.killed_for = slot.running[0]
                slot.kill_deadline = now + KILL_GRACE
                self.backend.kill(slot.worker_id, getattr(signal, "SIGABRT", signal.SIGTERM))

    def _give_up(self) -> None:
        left = self.scheduler.cancel()
        self.not_run.extend(left)
        self._say(f"all workers are gone and --max-worker-restarts ({self.plan.restart_budget}) is spent: "
                  f"{len(left)} test{'s' if len(left) != 1 else ''} not run")
        self.gave_up = True

    def _stop_all(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        if self.min_job is not None:
            self.min_job.stop()
        if self.scheduler is not None:
            self.not_run.extend(self.scheduler.cancel())
        for slot in self.slots.values():
            if not slot.gone:
                self.backend.send(slot.worker_id, P.Stop())

    def _drain(self, grace: float) -> None:
        """Wait for every worker to leave; kill the ones that do not within ``grace`` seconds."""
        deadline = time.monotonic() + grace
        while any(not s.gone for s in self.slots.values()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                for slot in self.slots.values():
                    if not slot.gone:
                        self.backend.kill(slot.worker_id, signal.SIGKILL)
                        slot.gone = True
                        self.not_run.extend(slot.outstanding)
                break
            for event in self.backend.poll(min(remaining, 0.5)):
                self._handle(event)
            self._check_timeouts()

    # -- bookkeeping --------------------------------------------------------------------------
    def _flush(self, force: bool = False) -> None:
        now = time.monotonic()
        pending = len(self.buffer) + len(self.series["t"]) // 50 + len(self.events)
        if pending and (force or len(self.buffer) >= STORE_FLUSH_ROWS
                        or now - self.last_flush >= STORE_FLUSH_SECONDS):
            # results first: a reader that sees a run's telemetry also sees its results
            if self.buffer:
                self.recorder.append_results(self.buffer)
                self.buffer = []
            if self.series["t"]:
                self.recorder.append_series(self.run_info.run_id, self.series)
                self.series = {"worker": [], "t": [], "metric": [], "value": []}
            if self.events:
                self.recorder.append_events(self.run_info.run_id, self.events)
                self.events = []
            self.last_flush = now

    def _say(self, text: str) -> None:
        self.messages.append(text)
        self.listener.on_message(text)

    def _outcome(self, *, interrupted: bool = False, collector_exit: int | None = None,
                 output: str = "") -> RunOutcome:
        ran = set(self.final)
        not_run = [self.items[i]["nodeid"] for i in dict.fromkeys(self.not_run) if i not in ran]
        self.run_info.flaky = sum(1 for r in self.final.values() if r.flaky)
        return RunOutcome(run=self.run_info, results=self.results, collect_errors=self.collect_errors,
                          not_run=not_run, messages=self.messages,
                          interrupted=interrupted or self.gave_up or self.worker_interrupted,
                          warnings=self.warnings,
                          collector_exit=collector_exit, collector_output=output,
                          anomalies=self.anomalies, fatal=self.fatal,
                          exploration=None if self.explorer is None else
                          {**self.explorer.summary(), "minimized": self.minimized,
                           "failing": self._failing_by_kind(),
                           "variants": {v.variant_id: {"origin": v.origin, "params": v.params,
                                                       "instance": self.instance_snapshots.get(v.variant_id)}
                                        for i, v in enumerate(self.variants) if i in self.variant_map}})


__all__ = ["Listener", "Orchestrator", "Recorder", "RunOutcome", "RunPlan"]
