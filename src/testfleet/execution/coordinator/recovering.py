"""Breakers and escalating recovery applied to a run (the policy is :mod:`testfleet.execution.recovery`).

:class:`Recovery` watches every result and every lost worker of the coordinator and does what
the :class:`~testfleet.execution.recovery.EscalationPolicy` decides:

* each result goes through the breakers of its worker's seat (crashes and timeouts), of its SUT
  instance (a SUT that crashed or refused the connection, for a test that uses the instance) and,
  for an HTTP scenario, of each endpoint (``METHOD /path/template``) its steps reached;
* a seat whose breaker opens gets no more work: its live worker is told to stop after its current
  test and what it held goes back to the queue for the others (counted: ``moved``); once the
  cool-down is over a worker takes the seat again (a fresh one if it was left empty) and gets
  exactly ``half_open_probes`` tests, whose results close or reopen the breaker;
* a scenario whose endpoint's breaker is open is held back until it probes, and reported as an
  ``error`` naming the breaker if the run would otherwise end with it unrun;
* under ``--chaos``, a test that failed while the chaos proxy failed its requests on purpose is
  judged an infrastructure error, like a refused connection (:mod:`testfleet.execution.chaos.blame`:
  :meth:`Recovery.blame`), with an ``injected_failure`` message saying why;
* every breaker change is a ``breaker`` message on the bus, every level taken a ``recovery`` one
  (:mod:`testfleet.execution.resilience_messages`; each kept as an event of that kind), each with
  a console line.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from testfleet.execution import protocol as P
from testfleet.execution.breakers import Transition, infra_kind, is_infrastructure
from testfleet.execution.coordinator.nodes import NodeQuarantine
from testfleet.execution.recovery import EscalationPolicy, Step
from testfleet.execution.resilience_messages import BreakerChanged, InjectedFailure, RecoveryTaken
from testfleet.execution.stream import WorkerChanged
from testfleet.model import Outcome, Result

if TYPE_CHECKING:
    from testfleet.execution.coordinator.fleet import Slot
    from testfleet.execution.coordinator.interfaces import Host

_STEP = re.compile(r"step '(?P<name>[^']*)' \((?P<method>[A-Z]+) ")
HELD_MESSAGE = "not run: the circuit breaker of endpoint {endpoint} was open when the run ended"


class Recovery:
    def __init__(self, host: Host, clock: Callable[[], float] = time.monotonic) -> None:
        plan = host.plan
        self.host = host
        self.policy = EscalationPolicy(plan.breakers, reruns=plan.reruns, restart_budget=plan.restart_budget,
                                       clock=clock)
        self.retiring: dict[str, str] = {}  # worker id -> why it was told to stop (its seat opened)
        self.probes: dict[str, int] = {}  # worker id -> the probe test it runs for its seat
        self.injected: set[str] = set()  # workers --chaos killed: their loss spends no restart
        self.held: dict[int, list[str]] = {}  # index -> its endpoints, held back by an open breaker
        self.avoid: dict[int, str] = {}  # index -> the seat it failed on: retried elsewhere
        self.given_up: set[int] = set()  # held items reported as errors at the end: never retried
        self.scenarios: dict[str, list[tuple[str, str]]] = {}  # file -> [(step name, endpoint)]
        self.events: list[dict[str, Any]] = []  # breaker and recovery events, for the summary
        self.stopped: Step | None = None  # level 6, when taken
        self.nodes = NodeQuarantine(self)  # on Ray: a node whose seats keep opening breakers

    @property
    def enabled(self) -> bool:
        return self.policy.enabled

    # -- results ------------------------------------------------------------------------------
    def blame(self, index: int, worker_id: str, result: Result, injected: dict[str, int]) -> str | None:
        """Why a failed result is the chaos injection's (``injected``: the requests the proxy failed
        on purpose while it ran), published as an ``injected_failure`` event; None: it is not."""
        from testfleet.execution.chaos.blame import blame

        windows = getattr(getattr(self.host, "injector", None), "windows", [])
        found = blame(result.outcome, is_infrastructure(result.outcome, result.message), injected,
                      worker=worker_id, seat=self._seat(worker_id),
                      start=result.started_at.timestamp() if result.started_at else None,
                      stop=result.finished_at.timestamp() if result.finished_at else None, windows=windows)
        if found is None:
            return None
        why = found.reason()
        window = found.window
        self.events.append(self.host.bus.publish(InjectedFailure(
            action="infrastructure", subject=result.nodeid, case_id=result.case_id, variant_id=result.variant_id,
            nodeid=result.nodeid, worker=worker_id, attempt=result.attempt, outcome=result.outcome.value,
            fault=found.fault, injected=dict(found.injected), target=window.worker if window else None,
            window_at=window.start if window else None,
            reason=f"{result.nodeid} {result.outcome.value} on {worker_id} (attempt {result.attempt}) while {why}: "
                   "judged an infrastructure error, not the test's")).to_event())
        return why

    def observe(self, index: int, worker_id: str, result: Result, blamed: str | None = None) -> None:
        """One result through the breakers of its seat, its instance and its endpoints (``blamed``:
        its failure is the chaos injection's, see :meth:`blame`)."""
        host = self.host
        if not self.enabled or worker_id not in host.fleet.slots:
            return
        seat = self._seat(worker_id)
        infra = blamed is not None or is_infrastructure(result.outcome, result.message)
        kind = ("injected error" if blamed else infra_kind(result.outcome, result.message)) if infra else ""
        uses_instance = bool(host.items[index].get("uses_instance"))
        if self.probes.get(worker_id) == index:
            del self.probes[worker_id]
        changes: list[Transition | None] = []
        if infra and result.outcome not in (Outcome.crashed, Outcome.timeout) and uses_instance:
            changes.append(self.policy.observe("instance", seat, True, kind))
            changes.append(self.policy.observe("worker", seat, False, kind))
        else:
            changes.append(self.policy.observe("worker", seat, infra, kind))
            if uses_instance:
                changes.append(self.policy.observe("instance", seat, False, kind))
        for endpoint, bad in self._endpoints_reached(index, result, infra):
            changes.append(self.policy.observe("endpoint", endpoint, bad, kind or "infrastructure error"))
        for change in changes:
            if change is not None:
                self._changed(change, worker_id)

    def retry(self, index: int, worker_id: str, result: Result, crashes: int, blamed: str | None = None) -> bool:
        """A failed result: run the test again (level 1 here, level 2 elsewhere)? True: it will."""
        if index in self.given_up:
            return False
        host = self.host
        slot = host.fleet.slots.get(worker_id)
        alive = slot is not None and not slot.gone and worker_id not in self.retiring \
            and self.policy.seat_admits(slot.seat) is None
        infra = blamed is not None or is_infrastructure(result.outcome, result.message)
        step = self.policy.retry_step(index, result.outcome, attempt=result.attempt, crashes=crashes,
                                      infrastructure=infra, worker=worker_id, worker_alive=alive)
        if step is None:
            return False
        if blamed is not None and self.enabled:
            step = replace(step, reason=f"{step.reason}: {blamed}")
        if infra or result.outcome is Outcome.crashed:
            self._log(step, target=result.nodeid)
        if step.level == 1 and slot is not None and self._hold(index):
            pass  # its endpoint's breaker is open: it waits for the probe with the others
        elif step.level == 1 and slot is not None:
            slot.outstanding.append(index)
            slot.flushed = False
            explored = host.exploration.explored([index]) if host.exploration is not None else {}
            host.backend.send(worker_id, P.Run([index], bool(host.plan.timeout) or host.handoff.reports_start([index]),
                                               explored))
            host.fleet.feed(slot)
        else:
            host.queue.rerun(index, worker_id)
            if slot is not None:
                self.avoid[index] = slot.seat  # not to the worker that replaced it either
        host.fleet.feed_all()
        return True

    # -- workers ------------------------------------------------------------------------------
    def took_back(self, slot: Slot) -> bool:
        """A worker that left because its seat's breaker opened: what it held goes back to the
        queue (True). False for any other loss."""
        host = self.host
        if slot.worker_id not in self.retiring or not slot.said_bye or host.stopping:
            return False  # (a stopping run counts what it held as not run)
        del self.retiring[slot.worker_id]
        self.probes.pop(slot.worker_id, None)
        if slot.outstanding:
            host.queue.requeue(list(slot.outstanding))
            slot.outstanding.clear()
            host.fleet.feed_all()
        self._refill(slot.seat, slot.pool)  # its breaker may have half-opened meanwhile
        return True

    def turned_away(self, slot: Slot) -> bool:
        """A worker that said hello in a seat quarantined while it started (or on a quarantined
        Ray node): it leaves at once."""
        if slot.seat not in self.policy.quarantined and not self.nodes.turned_away(slot):
            return False
        self.retire(slot.worker_id, "quarantined")
        return True

    def retire(self, worker_id: str, why: str) -> None:
        """Tell a worker to stop after its current test: when it leaves, what it held goes back
        to the queue and its seat is not refilled (:meth:`took_back`)."""
        self.retiring[worker_id] = why
        self.host.backend.send(worker_id, P.Stop())

    def replace(self, slot: Slot, *, counts: bool, cause: str) -> None:
        """A worker left unasked: replace it (level 4), leave its seat empty (open breaker,
        quarantine: level 5), or stop the run (level 6)."""
        host = self.host
        self.probes.pop(slot.worker_id, None)
        self.retiring.pop(slot.worker_id, None)
        if host.stopping or slot.seat in self.policy.quarantined:
            return  # a quarantined seat stays empty (level 5 was logged when it was taken)
        if slot.worker_id in self.injected:  # the loss is the injection's, not the suite's
            self.injected.discard(slot.worker_id)
            counts, cause = False, f"{cause} (injected)"
        step = self.policy.replace_step(slot.seat, slot.worker_id, counts=counts, cause=cause)
        if step is None:
            if not self.enabled or self.policy.seat_admits(slot.seat) != 0:
                host.say(f"not replacing {slot.worker_id}: --max-worker-restarts "
                         f"({host.plan.restart_budget}) reached")
            return
        self._log(step)
        if step.level == 4:
            host.fleet.spawn(slot.pool, seat=slot.seat)
        elif step.level == 6:
            self._stop(step)

    def fatal(self, worker_id: str, why: str) -> None:
        """A worker's session cannot go on (the SUT never started, a usage error): nothing any
        level below could mend. Logged as level 6; the coordinator stops with the worker's exit code."""
        self._log(Step(6, worker_id, f"{why} (the worker's session cannot go on)"), say=False)

    def give_up(self, left: int) -> None:
        """No worker left and work queued: level 6."""
        self._stop(self.policy.give_up_step(left))

    # -- feeding ------------------------------------------------------------------------------
    def may_feed(self, slot: Slot) -> bool:
        return slot.worker_id not in self.retiring and slot.worker_id not in self.probes \
            and self.policy.seat_admits(slot.seat) != 0

    def admit(self, slot: Slot, batch: list[int]) -> list[int]:
        """The part of ``batch`` the worker may take: items behind an open endpoint breaker are held
        back; a half-open seat takes its probes only (the rest goes back to the queue)."""
        if not self.enabled or not batch:
            return batch
        batch = [i for i in batch if not self._elsewhere(slot, i) and not self._hold(i)]
        allowed = self.policy.seat_admits(slot.seat)
        if allowed is not None and batch:
            rest, batch = batch[allowed:], batch[:allowed]
            if rest:
                self.host.queue.requeue(rest)
            for breaker in self.policy.seat_breakers(slot.seat):
                for _ in batch:
                    breaker.sent_probe()
            if batch:
                self.probes[slot.worker_id] = batch[0]
        return batch

    def probing(self, slot: Slot) -> bool:
        """The worker was just sent its seat's probe: it must run it without waiting for more."""
        return slot.worker_id in self.probes

    # -- time ---------------------------------------------------------------------------------
    def tick(self) -> None:
        if self.enabled:
            for change in self.policy.board.poll():
                self._changed(change, None)

    def next_due(self) -> float | None:
        return self.policy.board.next_due() if self.enabled else None

    def waiting(self) -> bool:
        """Work is queued and a seat will take it again once its breaker probes."""
        host = self.host
        if not self.enabled or host.stopping or host.scheduler is None or host.scheduler.empty:
            return False
        return any(b.state != "closed" and b.target not in self.policy.quarantined
                   for b in self.policy.board.breakers.values() if b.scope != "endpoint")

    def settle(self) -> None:
        """The run would end: scenarios still held back by an open endpoint breaker get an error."""
        host = self.host
        for index, endpoints in list(self.held.items()):
            del self.held[index]
            self.given_up.add(index)
            blocking = [e for e in endpoints if self.policy.board.get("endpoint", e).state != "closed"]
            message = HELD_MESSAGE.format(endpoint=", ".join(blocking or endpoints))
            payload = P.TestResult(outcome="error", categories=["error"], when="setup", message=message,
                                   longrepr=message, start=0.0, stop=0.0, duration=0.0,
                                   fingerprint="breaker-open")
            host.recording.record(index, "coordinator", payload)

    # -- inside -------------------------------------------------------------------------------
    def _seat(self, worker_id: str) -> str:
        slot = self.host.fleet.slots.get(worker_id)
        return slot.seat if slot is not None and slot.seat else worker_id

    def _changed(self, change: Transition, worker_id: str | None) -> None:
        host = self.host
        moved = 0
        if change.scope != "endpoint" and change.new == "open":
            moved = self._vacate(change.target, change.reason)
        what = {"worker": "worker", "instance": "SUT instance", "endpoint": "endpoint"}[change.scope]
        state = change.new.replace("_", "-")
        text = f"{what} {change.target}: breaker {state} {'after ' if change.new == 'open' else '('}" \
               f"{change.reason}{'' if change.new == 'open' else ')'}"
        if moved:
            text += f"; {moved} test{'s' if moved != 1 else ''} moved"
        self.events.append(host.bus.publish(BreakerChanged(
            action=change.new, subject=change.target, reason=text, worker=worker_id or "", scope=change.scope,
            target=change.target, old=change.old, new=change.new, cause=change.reason, moved=moved)).to_event())
        if change.scope == "endpoint":
            host.say(text)
            if change.new != "open":
                self._release(change.target)
            return
        host.bus.publish(WorkerChanged(worker_id or change.target, f"breaker {state}", text))
        host.say(text)
        if change.new == "open":
            step = self.policy.on_open(change)
            if step is not None:
                self._log(step)
            self.nodes.opened(change.target, worker_id, change.reason)
        elif change.new == "half_open":
            self._refill(change.target, None)
        else:
            for slot in host.fleet.slots.values():
                if slot.seat == change.target and not slot.gone:
                    host.fleet.feed(slot)

    def _vacate(self, seat: str, reason: str) -> int:
        """Stop sending work to the seat; its live worker stops after its current test and what it
        held is queued for the others. How many tests move."""
        host = self.host
        moved = 0
        for slot in host.fleet.slots.values():
            if slot.seat != seat or slot.gone:
                continue
            # what it holds moves, but the test it is running (known under --timeout) it finishes
            moved += max(0, len(slot.outstanding) - (1 if slot.running is not None else 0))
            if slot.ready and slot.worker_id not in self.retiring:
                self.retire(slot.worker_id, reason)
        # a crashed worker's queue is requeued by the coordinator right after this result
        lost = [s for s in host.fleet.slots.values() if s.seat == seat and s.gone and s.outstanding]
        moved += sum(len(s.outstanding) for s in lost)
        return moved

    def _refill(self, seat: str, pool: str | None) -> None:
        """A half-open seat with no live worker gets a fresh one (its probe goes to it)."""
        host = self.host
        if host.stopping or seat in self.policy.quarantined or self.policy.seat_admits(seat) in (None, 0):
            return
        slots = [s for s in host.fleet.slots.values() if s.seat == seat]
        live = [s for s in slots if not s.gone and s.worker_id not in self.retiring]
        if live:
            for slot in live:
                host.fleet.feed(slot)
            return
        if any(not s.gone for s in slots):
            return  # the retiring worker is still leaving: refilled when it is gone
        instance = any(b.scope == "instance" and b.state == "half_open" for b in self.policy.seat_breakers(seat))
        step = Step(3 if instance else 4, seat, "breaker half-open: a fresh worker takes the seat for "
                    f"{self.policy.settings.half_open_probes} probe test"
                    f"{'s' if self.policy.settings.half_open_probes != 1 else ''}")
        self._log(step)
        host.fleet.spawn(pool if pool is not None else slots[-1].pool if slots else "", seat=seat)

    def _elsewhere(self, slot: Slot, index: int) -> bool:
        """A retry offered to the seat it failed on goes back for another seat, while one can take it."""
        if self.avoid.get(index) != slot.seat:
            return False
        if not any(other.seat != slot.seat and other.ready and not other.gone and self.may_feed(other)
                   and other.pool == slot.pool for other in self.host.fleet.slots.values()):
            return False
        self.host.queue.rerun(index, slot.worker_id)  # skipped by this worker while others live
        return True

    def _hold(self, index: int) -> bool:
        """Hold an item back if an endpoint it reaches is open (or half-open with its probes out)."""
        endpoints = [e for _, e in self._scenario_steps(index)]
        breakers = [b for e in endpoints if (b := self.policy.board.breakers.get(("endpoint", e))) is not None]
        if all(b.admits() is None for b in breakers):
            return False
        if any(b.admits() == 0 for b in breakers):
            self.held[index] = endpoints
            return True
        for breaker in breakers:
            breaker.sent_probe()
        return False

    def _release(self, endpoint: str) -> None:
        """An endpoint's breaker half-opened or closed: its held scenarios go back to the queue."""
        host = self.host
        back = [i for i, endpoints in self.held.items() if endpoint in endpoints]
        for index in back:
            del self.held[index]
        if back and host.scheduler is not None and not host.stopping:
            host.scheduler.requeue(back)
            host.fleet.feed_all()

    def _scenario_steps(self, index: int) -> list[tuple[str, str]]:
        host = self.host
        file = str(host.items[index].get("file", ""))
        if not file.endswith((".scenario.yaml", ".scenario.yml")):
            return []
        steps = self.scenarios.get(file)
        if steps is None:
            from testfleet.adapters.http_scenarios import load_scenario

            try:
                scenario = load_scenario(Path(host.run_info.rootdir or ".") / file)
                steps = [(s.name, f"{s.request.method.upper()} {s.request.path}") for s in scenario.steps]
            except Exception:  # noqa: BLE001 - a file the workers could read but not we: no endpoints
                steps = []
            self.scenarios[file] = steps
        return steps

    def _endpoints_reached(self, index: int, result: Result, infra: bool) -> list[tuple[str, bool]]:
        """(endpoint, infrastructure error?) for each step a scenario's execution reached."""
        steps = self._scenario_steps(index)
        if not steps:
            return []
        match = _STEP.search(result.message or "") if result.outcome.is_failure else None
        if match is None:
            return [(endpoint, False) for _, endpoint in steps]
        reached: list[tuple[str, bool]] = []
        for name, endpoint in steps:
            if name == match["name"]:
                reached.append((endpoint, infra))
                break
            reached.append((endpoint, False))
        return reached

    def _log(self, step: Step, target: str | None = None, say: bool = True) -> None:
        self.events.append(self.host.bus.publish(RecoveryTaken(
            action=step.action, subject=step.target, reason=step.describe(), nodeid=target or "",
            level=step.level, target=step.target, cause=step.reason)).to_event())
        if step.level >= 3 and say:
            self.host.say(step.describe())

    def _stop(self, step: Step) -> None:
        host = self.host
        if self.stopped is not None:
            return
        self.stopped = step
        self._log(step)
        host.stop_all()
