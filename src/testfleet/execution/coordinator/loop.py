"""The coordinator's event loop: one run, the same for every backend.

collect (the backend's collector) -> plan (``planning.plan_run``) -> dispatch batches (the
:class:`~testfleet.execution.coordinator.fleet.Fleet`) -> record each result (the
:class:`~testfleet.execution.coordinator.recording.Recording`) -> rerun failures on another worker,
replace crashed workers, kill tests over ``timeout`` -> shut the fleet down. The coordinator knows
nothing of DuckDB or of the console: the CLI hands it a recorder and a listener, and both take the
run's progress as subscribers of its one typed stream (the bus, :mod:`testfleet.execution.stream`):
the recorder through the store feed (:mod:`.storing`, results written in batches), the listener
through :func:`~testfleet.execution.stream.listen`.

Each event of the backend goes to one handler (as pytest-xdist's ``DSession.worker_*``):
``worker_hello``, ``worker_lost``, ``worker_collected_differently``, and for each message of
:mod:`~testfleet.execution.protocol` ``worker_ran``, ``worker_started``, ``worker_late_teardown``,
``worker_telemetry``, ``worker_fatal`` and ``worker_bye``.

Fault rules: a worker that dies mid-test gets that test reported ``crashed`` with the exit code or
signal and faulthandler's traceback; the tests queued behind it go back to the queue; what happens
next (retry here or elsewhere, replace the worker, quarantine its seat, stop the run) is the
escalating recovery's (:mod:`.recovering`, with its circuit breakers). A crashed test is retried
once; a test that crashes a worker twice is not retried again.
"""

from __future__ import annotations

import gc
import signal
import time
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

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
from testfleet.execution.bus import Bus
from testfleet.execution.coordinator.fleet import Fleet, Slot
from testfleet.execution.coordinator.handing import Handing
from testfleet.execution.coordinator.interfaces import Exploring
from testfleet.execution.coordinator.optional import attach_optional_parts
from testfleet.execution.coordinator.planning import plan_run
from testfleet.execution.coordinator.recording import Recording
from testfleet.execution.coordinator.recovering import Recovery
from testfleet.execution.coordinator.storing import STORE_FLUSH_SECONDS, StoreFeed
from testfleet.execution.plan import Listener, NullListener, Recorder, RunOutcome, RunPlan
from testfleet.execution.resilience import describe_exit, lost_test_payload
from testfleet.execution.scheduler import Scheduler
from testfleet.execution.stream import Said, TestStarted, WorkerChanged, listen
from testfleet.model import Case, Run, Variant

if TYPE_CHECKING:  # each part below is loaded only by a run that turns it on
    from testfleet.execution.coordinator.probing import Probing
    from testfleet.execution.coordinator.replicating import Replication
    from testfleet.execution.coordinator.specialising import Specialising

SHUTDOWN_GRACE = 30.0


class Orchestrator:
    """The coordinator of one run (it meets :class:`~.interfaces.Host` for its parts)."""

    def __init__(self, backend: Backend, plan: RunPlan, run: Run, recorder: Recorder,
                 listener: Listener | None = None, crash_text: Callable[[str], str] | None = None,
                 chaos: Any = None) -> None:
        self.backend = backend
        self.plan = plan
        self.run_info = run
        self.recorder = recorder
        self.listener: Listener = listener or NullListener()
        self.crash_text = crash_text or (lambda _worker: "")
        # the run's items as collected (explored variants are appended), their cases and variants
        self.items: list[dict[str, Any]] = []
        self.cases: list[Case] = []
        self.variants: list[Variant] = []
        self.collected_items: list[P.CollectedItem] = []
        self.collect_errors: list[dict[str, Any]] = []
        self.selected: list[int] = []
        self.total = 0
        self.scheduler: Scheduler | None = None
        self.stopping = False
        self.messages: list[str] = []
        self.warnings: list[dict[str, Any]] = []
        self.not_run: list[int] = []
        self.backlog: list[Event] = []  # events that came with the collection, handled after the plan
        self.worker_interrupted = False
        self.gave_up = False
        self.fatal: tuple[int, str] | None = None
        self.fleet = Fleet(self)
        self.recording = Recording(self)
        # the run's one stream: the fleet's parts tell each other news, and the store, the console,
        # the dashboard's writer and plugins' listeners take the run's progress (execution.stream)
        self.bus = Bus(self.recording.add_events)
        self.storing = StoreFeed(self.bus, recorder, run.run_id)
        listen(self.bus, self.listener)
        self.recovery = Recovery(self)
        self.handoff = Handing(self)  # speculative copies of stragglers
        self.exploration: Exploring | None = None
        self.replication: Replication | None = None
        self.probing: Probing | None = None
        self.specialising: Specialising | None = None
        self.injector: Any = None  # --chaos: faults injected beside the loop (a ChaosPlan given)
        attach_optional_parts(self, plan, chaos)

    @property
    def queue(self) -> Scheduler:
        """The scheduler: made when the collection is planned, before any worker is fed."""
        if self.scheduler is None:
            raise RuntimeError("the run's scheduler is used before its plan exists")
        return self.scheduler

    # -- public -------------------------------------------------------------------------------
    def execute(self) -> RunOutcome:
        interrupted = False
        collector_exit: int | None = None
        try:
            self.backend.start()
            relay = getattr(self.backend, "bus_relay", None)  # Ray: the bus's messages reach an actor too
            if relay is not None:
                try:
                    self.bus.tap(relay())
                except Exception as exc:  # noqa: BLE001 - a live view only: the store keeps the record
                    self.say(f"the bus's Ray actor did not start ({exc}); its messages are in the store only")
            if self.backend.workers_collect:  # every worker collects: start them all now
                for _ in range(self.plan.workers):
                    self.fleet.spawn()
            payload = self._await_collection()
            if payload is None:
                collector_exit = self._collector_exit
            elif plan_run(self, payload):
                # the plan (items, cases, variants: ~100k objects for 4,000 tests) lives as long as
                # the run: out of the collector's reach, each full collection while results come
                # in no longer walks it (it was a third of the coordinator's CPU per result)
                gc.freeze()
                self._loop()
        except P.UnreadableMessage as exc:  # an internal error, pytest's exit 3, naming the test
            self.fatal = (3, P.describe_unreadable(exc, [item["nodeid"] for item in self.items]))
            if not self.cases:  # failed while reading the collection: the run still gets its row
                self.recorder.begin_run(self.run_info, [], [])
        except KeyboardInterrupt:
            interrupted = True
            self.say("interrupted: stopping workers")
            self.stop_all()
            for slot in self.fleet.slots.values():
                if not slot.gone:  # interrupt the running test; the worker then tears fixtures down
                    self.backend.kill(slot.worker_id, signal.SIGINT)
            try:
                self._drain(SHUTDOWN_GRACE / 3)
            except KeyboardInterrupt:
                pass
        finally:
            if self.injector is not None:
                self.injector.close()
            if self.plan.monitor is not None and self.recording.final:
                self.recording.add_events(self.plan.monitor.finish())
            if self.exploration is not None:
                self.recording.add_events(self.exploration.conclusion())
            if self.replication is not None:
                self.replication.conclusion()
            if self.probing is not None:
                self.probing.close()
            if self.specialising is not None:  # every grant is given back, with its reason
                self.specialising.close()
            self.storing.flush(force=True)
            gc.unfreeze()  # a process that runs again (tests, an API caller) collects this plan then
            output = self.backend.collector_output()
            self.backend.close()
        return self._outcome(interrupted=interrupted, collector_exit=collector_exit, output=output)

    def say(self, text: str) -> None:
        self.messages.append(text)
        self.bus.publish(Said(text))

    def stop_all(self) -> None:
        if self.stopping:
            return
        self.stopping = True
        if self.exploration is not None:
            self.exploration.stop()
        if self.scheduler is not None:
            self.not_run.extend(self.scheduler.cancel())
        for slot in self.fleet.slots.values():
            if not slot.gone:
                self.backend.send(slot.worker_id, P.Stop())

    # -- the loop -----------------------------------------------------------------------------
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
                        self.worker_hello(worker_id)

    def _loop(self) -> None:
        fleet, exploration, injector = self.fleet, self.exploration, self.injector
        for event in self.backlog:
            self._handle(event)
        while True:
            due = self.recovery.next_due()
            wait = STORE_FLUSH_SECONDS if due is None else min(STORE_FLUSH_SECONDS, due)
            if injector is not None:
                wait = min(wait, injector.until_next())
            if (straggler := self.handoff.next_due()) is not None:
                wait = min(wait, straggler)
            for event in self.backend.poll(fleet.poll_timeout(wait)):
                self._handle(event)
            if injector is not None:
                injector.tick()
            fleet.check_timeouts()
            self.recovery.tick()  # breakers whose cool-down is over probe
            self.handoff.tick()  # an idle worker copies a straggler
            if self.probing is not None:  # what attached helpers left, published on the bus
                self.probing.tick()
            self.storing.flush()
            live = fleet.live()
            if not live and self.recovery.waiting():
                continue  # a seat takes work again once its breaker probes
            if not live:
                if self.scheduler and not self.scheduler.empty and not self.stopping:
                    self._give_up()
                return
            if not self.stopping and self.scheduler is not None and self.scheduler.empty \
                    and exploration is not None and exploration.more(2 * len(live)):
                fleet.feed_all()
                continue
            if exploration is not None and exploration.minimizing():
                continue
            if not self.stopping and self.scheduler is not None and self.scheduler.empty \
                    and not any(s.outstanding for s in live):
                self.recovery.settle()  # scenarios held back by an open endpoint breaker
                self.stopping = True
                for slot in live:
                    if slot.ready:
                        self.backend.send(slot.worker_id, P.Shutdown())
                    else:  # still starting and nothing left for it: not waited for (close() ends it)
                        slot.gone = True
                self._drain(SHUTDOWN_GRACE)
                return

    def _handle(self, event: Event) -> None:
        """One event of the fleet, to its handler (as pytest-xdist's ``DSession.worker_*``)."""
        slots = self.fleet.slots
        match event:
            case HelloEvent(worker_id) if worker_id in slots:
                self.worker_hello(worker_id)
            case MessageEvent(worker_id, message) if worker_id in slots:
                self._dispatch(slots[worker_id], message)
            case LostEvent(worker_id, code) if worker_id in slots:
                self.worker_lost(slots[worker_id], code)
            case CollectedEvent(collection) if self.items and collection["items"] != self.collected_items:
                self.worker_collected_differently()

    def _dispatch(self, slot: Slot, message: P.WorkerMessage) -> None:
        match message:
            case P.Ran(index, result):
                self.worker_ran(slot, index, result)
            case P.Started(index):
                self.worker_started(slot, index)
            case P.LateTeardown(index, result):
                self.worker_late_teardown(slot, index, result)
            case P.Telemetry(series):
                self.worker_telemetry(slot, series)
            case P.Fatal():
                self.worker_fatal(slot, message)
            case P.Bye(reason=reason):
                self.worker_bye(slot, reason)

    def _drain(self, grace: float) -> None:
        """Wait for every worker to leave; kill the ones that do not within ``grace`` seconds."""
        slots = self.fleet.slots
        if self.injector is not None:  # a stopped worker or SUT cannot leave: continue them first
            self.injector.close()
        deadline = time.monotonic() + grace
        while any(not s.gone for s in slots.values()):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                for slot in slots.values():
                    if not slot.gone:
                        self.backend.kill(slot.worker_id, signal.SIGKILL)
                        slot.gone = True
                        self.not_run.extend(slot.outstanding)
                break
            for event in self.backend.poll(min(remaining, 0.5)):
                self._handle(event)
            self.fleet.check_timeouts()

    # -- handlers, one per event and message --------------------------------------------------
    def worker_hello(self, worker_id: str) -> None:
        slot = self.fleet.slots.setdefault(worker_id, Slot(worker_id))
        slot.ready = True
        if self.stopping:
            self.backend.send(worker_id, P.Stop())
            return
        # the worker's one configuration: the run's, with the rulesets its mutation engine applies
        rulesets = self.exploration.rulesets() if self.exploration is not None else ()
        self.backend.send(worker_id, P.Configure(replace(self.plan.worker, worker_count=self.plan.workers,
                                                         rulesets=rulesets)))
        if self.scheduler is not None and not self.recovery.turned_away(slot):
            self.fleet.feed(slot)

    def worker_ran(self, slot: Slot, index: int, payload: P.TestResult) -> None:
        if not self.handoff.first_result(slot, index, payload.outcome):
            return  # the cancelled copy of a test whose other copy finished first
        if slot.outstanding and slot.outstanding[0] == index:
            slot.outstanding.popleft()
        else:
            try:
                slot.outstanding.remove(index)
            except ValueError:
                pass
        slot.running = None
        self.recording.record(index, slot.worker_id, payload)
        if slot.outstanding:
            self.bus.publish(TestStarted(slot.worker_id, self.items[slot.outstanding[0]]["nodeid"]))
        else:
            self.bus.publish(TestStarted(slot.worker_id, None))
        if not self.stopping and self.queue.needs_work(len(slot.outstanding), slot.last_batch):
            self.fleet.feed(slot)

    def worker_started(self, slot: Slot, index: int) -> None:
        slot.running = (index, time.monotonic())

    def worker_late_teardown(self, slot: Slot, index: int, payload: P.TestResult) -> None:
        self.recording.record(index, slot.worker_id, payload, late_teardown=True)

    def worker_telemetry(self, slot: Slot, series: P.Series) -> None:
        self.recording.add_series(slot.worker_id, series)

    def worker_fatal(self, slot: Slot, message: P.Fatal) -> None:
        if self.fatal is not None:
            return
        self.fatal = (int(message.code), str(message.message))  # type: ignore[arg-type]
        # said at once (the whole message follows when the workers are gone), and the tests
        # still running are interrupted: nothing they find can be trusted
        first = str(message.message).splitlines()[0].split("; log ")[0] if message.message else "cannot go on"
        self.say(f"{slot.worker_id}: {first} (stopping the run)")
        self.recovery.fatal(slot.worker_id, first)
        self.stop_all()
        for other in self.fleet.slots.values():
            if other is not slot and not other.gone and other.outstanding:
                self.backend.kill(other.worker_id, signal.SIGINT)

    def worker_bye(self, slot: Slot, reason: str | None) -> None:
        slot.said_bye = True
        if reason == "KeyboardInterrupt":
            self.worker_interrupted = True  # a test raised it: pytest stops, exit 2
        if reason and not self.stopping:
            # The worker's own pytest session asked to stop (e.g. `-- -x`): stop the run.
            self.say(f"{slot.worker_id}: {reason}")
            self.stop_all()

    def worker_lost(self, slot: Slot, code: int | None) -> None:
        slot.gone = True
        self.bus.publish(TestStarted(slot.worker_id, None))
        if self.replication is not None:  # the replays pinned to it are dropped
            self.replication.worker_gone(slot.worker_id)
        if self.handoff.lost(slot):  # killed: its copy of a test lost the race
            return
        if self.recovery.took_back(slot):  # it left because its seat's breaker opened
            return
        if not (slot.said_bye or self.stopping):
            self.bus.publish(WorkerChanged(slot.worker_id, "lost", describe_exit(code)))
        if not slot.outstanding:
            if not (slot.said_bye or self.stopping):
                self.say(f"worker {slot.worker_id} {describe_exit(code)} while idle")
                self.recovery.replace(slot, counts=True, cause=f"{describe_exit(code)} while idle")
            return
        if self.stopping and slot.killed_for is None:
            # Stopped (-x, Ctrl-C): whatever it still held was never run.
            self.not_run.extend(slot.outstanding)
            slot.outstanding.clear()
            return
        index = slot.outstanding.popleft()
        timed_out = slot.killed_for == index
        crashes = self.recording.crashes
        # --chaos killed its worker: the test did nothing wrong, so the loss is no crash of its own
        # (two of those end its retries) and its pass on the retry is no sign of a flaky test
        injected = slot.worker_id in self.recovery.injected
        failed_before = index in self.recording.failed_once
        if not timed_out and not injected:
            crashes[index] = crashes.get(index, 0) + 1
        ran_for = time.monotonic() - slot.running[1] if slot.running and slot.running[0] == index else None
        payload = P.TestResult(**lost_test_payload(
            timed_out=timed_out, nodeid=self.items[index]["nodeid"], worker_id=slot.worker_id, code=code,
            timeout=self.plan.timeout, dump=self.crash_text(slot.worker_id), ran_for=ran_for))
        self.say(payload.longrepr.splitlines()[0])
        self.handoff.first_result(slot, index, payload.outcome)  # a copied test's other copy is cancelled
        self.recording.record(index, slot.worker_id, payload)
        if injected and not failed_before:
            self.recording.failed_once.discard(index)
        if self.stopping:
            self.not_run.extend(slot.outstanding)
        else:
            self.queue.requeue(list(slot.outstanding))
        slot.outstanding.clear()
        self.recovery.replace(slot, counts=not timed_out,
                              cause="was killed for a timeout" if timed_out else describe_exit(code))

    def worker_collected_differently(self) -> None:
        self.say("workers collected different tests; the run stops (is collection deterministic?)")
        self.collect_errors.append({"nodeid": "", "longrepr": "Different tests were collected by the "
                                    "workers: collection must not depend on the process."})
        self.stop_all()

    # -- the end ------------------------------------------------------------------------------
    def _give_up(self) -> None:
        self.recovery.give_up(len(self.queue))  # level 6: stops the run, the rest not run
        self.gave_up = True

    def _outcome(self, *, interrupted: bool = False, collector_exit: int | None = None,
                 output: str = "") -> RunOutcome:
        recording = self.recording
        ran = set(recording.final)
        replayed = self.replication.by_index if self.replication is not None else {}
        not_run = [self.items[i]["nodeid"] for i in dict.fromkeys(self.not_run) if i not in ran and i not in replayed]
        self.run_info.flaky = sum(1 for r in recording.final.values() if r.flaky)
        return RunOutcome(run=self.run_info, results=recording.results, collect_errors=self.collect_errors,
                          not_run=not_run, messages=self.messages,
                          interrupted=interrupted or self.gave_up or self.worker_interrupted
                          or self.recovery.stopped is not None,
                          warnings=self.warnings,
                          collector_exit=collector_exit, collector_output=output,
                          anomalies=recording.anomalies, fatal=self.fatal,
                          exploration=None if self.exploration is None else self.exploration.outcome(),
                          resilience=self.recovery.events + self.handoff.events,
                          replication=None if self.replication is None else self.replication.outcome())
