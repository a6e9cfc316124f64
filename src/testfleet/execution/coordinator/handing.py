"""Hand-off applied to a run: speculative copies of stragglers (the decisions are
:mod:`testfleet.execution.handoff`'s).

Once a pool has nothing queued, a worker of that pool left idle takes a copy of the test another
worker has run longest past its history (``Handing.tick``, each pass of the loop). The first result
of the two wins, whatever it is (a pass, a failure, or the crash or timeout that ended one copy's
worker); the other copy is **cancelled by killing its worker**, the way a timeout ends one:

* a result the loser sends before the kill lands is dropped, and no crash is recorded for its
  death, so each case keeps exactly one result per attempt in the store and the reports (letting
  the loser finish and discarding its result would hold the run open until a hung straggler
  ends, which is what the copy is there to avoid);
* what else the loser held goes back to the queue, and a fresh worker takes its seat when work is
  queued (a cancellation is not a failure: no restart is spent, no breaker sees it);
* every copy is a message on the bus, kept as a ``handoff`` event, when it starts
  (:class:`~testfleet.execution.handoff.CopyStarted`) and when one side wins
  (:class:`~testfleet.execution.handoff.CopyDecided`: winner, loser, ``winner_origin`` —
  ``speculative`` when the copy won, the winning result's provenance — and how long each side
  had run).
"""

from __future__ import annotations

import signal
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from testfleet.execution import protocol as P
from testfleet.execution.handoff import (
    CapacityAwaited,
    Copy,
    CopyDecided,
    CopyStarted,
    Running,
    next_check,
    stragglers,
)
from testfleet.execution.stream import TestStarted

if TYPE_CHECKING:
    from testfleet.execution.coordinator.fleet import Slot
    from testfleet.execution.coordinator.interfaces import Host


class Handing:
    def __init__(self, host: Host, clock: Callable[[], float] = time.monotonic) -> None:
        self.host = host
        self.settings = host.plan.handoff
        self.history = host.plan.history
        self.clock = clock
        self.copies: dict[int, Copy] = {}  # index -> its copy, started or decided
        self.cancelled: dict[str, int] = {}  # worker id -> the index whose race it lost (being killed)
        self.events: list[dict[str, Any]] = []  # handoff events, for the summary

    @property
    def enabled(self) -> bool:
        # no history, no straggler: "far past its historical duration" needs one
        return self.settings.enabled and bool(self.history)

    def reports_start(self, batch: list[int]) -> bool:
        """Whether the worker must say when each test of ``batch`` starts (a test with history may
        become a straggler, and only a start tells how long it has run)."""
        if not self.enabled:
            return False
        items = self.host.items
        return any(items[i]["nodeid"] in self.history for i in batch)

    def cancelling(self, slot: Slot) -> bool:
        """The worker is being killed because its copy of a test lost: it takes no more work."""
        return slot.worker_id in self.cancelled

    # -- the loop -----------------------------------------------------------------------------
    def tick(self) -> None:
        """Start a copy of each straggler an idle worker of its pool can take."""
        host = self.host
        if not self.enabled or host.stopping or host.scheduler is None:
            return
        slots = [s for s in host.fleet.slots.values() if not s.gone and s.worker_id not in self.cancelled]
        idle = [s for s in slots if s.ready and not s.outstanding and host.recovery.may_feed(s)]
        if not idle:
            return
        now = self.clock()
        for test in stragglers(self._running(slots), self.history, now, self.settings, self.copies):
            if not host.scheduler.pool_empty(test.pool):
                continue  # queued work comes first: the idle worker will be fed
            helper = next((s for s in idle if s.pool == test.pool and s.worker_id != test.worker), None)
            if helper is not None:
                idle.remove(helper)
                self._start(test, helper, now)

    def next_due(self) -> float | None:
        """Seconds until a running test becomes a straggler (for the loop's wait)."""
        if not self.enabled:
            return None
        slots = [s for s in self.host.fleet.slots.values() if not s.gone]
        return next_check(self._running(slots), self.history, self.clock(), self.settings, self.copies)

    # -- results and losses ---------------------------------------------------------------------
    def first_result(self, slot: Slot, index: int, outcome: str) -> bool:
        """A result of ``index`` from ``slot``'s worker: False when it must be dropped (the
        cancelled loser's, come before its kill); the first one of a copied test wins."""
        if self.cancelled.get(slot.worker_id) == index:
            if index in slot.outstanding:
                slot.outstanding.remove(index)
            slot.running = None
            return False
        copy = self.copies.get(index)
        if copy is None or copy.winner is not None or slot.worker_id not in (copy.original, copy.copy):
            return True
        host = self.host
        now = self.clock()
        loser = copy.decide(slot.worker_id)
        origin = "speculative" if slot.worker_id == copy.copy else "original"
        original_ran, copy_ran = now - copy.original_started, now - copy.copy_started
        message = (f"{copy.nodeid}: the {'copy' if origin == 'speculative' else 'original'} on {slot.worker_id} "
                   f"finished first ({outcome}); {loser}'s run is cancelled")
        self._publish(CopyDecided(**self._about(copy), reason=message, winner=slot.worker_id, loser=loser,
                                  winner_origin=origin, outcome=outcome,
                                  attempt=host.recording.attempts.get(index, 0) + 1,
                                  original_ran_s=round(original_ran, 3), copy_ran_s=round(copy_ran, 3)))
        host.say(message)
        self._cancel(loser, index)
        return True

    def lost(self, slot: Slot) -> bool:
        """A worker gone: True when it was the cancelled loser of a race (nothing to record; what
        else it held goes back to the queue and, when work is queued, a fresh worker takes its seat)."""
        if self.cancelled.pop(slot.worker_id, None) is None:
            return False
        host = self.host
        if host.stopping or host.scheduler is None:
            return False  # the coordinator counts what it still held as not run
        host.bus.publish(TestStarted(slot.worker_id, None))
        if slot.outstanding:
            host.scheduler.requeue(list(slot.outstanding))
            slot.outstanding.clear()
        if not host.scheduler.empty:
            host.fleet.spawn(slot.pool, seat=slot.seat or slot.worker_id)
            host.fleet.feed_all()
        return True

    # -- inside -------------------------------------------------------------------------------
    def _running(self, slots: list[Slot]) -> list[Running]:
        items = self.host.items
        return [Running(s.worker_id, s.running[0], items[s.running[0]]["nodeid"], s.running[1], s.pool)
                for s in slots if s.running is not None and s.killed_for is None and s.running[0] in s.outstanding]

    def _start(self, test: Running, helper: Slot, now: float) -> None:
        host = self.host
        historical = self.history[test.nodeid]
        copy = Copy(test.index, test.nodeid, original=test.worker, copy=helper.worker_id,
                    original_started=test.started, copy_started=now, historical=historical)
        self.copies[test.index] = copy
        helper.outstanding.append(test.index)
        helper.last_batch = 1
        helper.flushed = True  # it runs the copy at once, without waiting for a next item
        explored = host.exploration.explored([test.index]) if host.exploration is not None else {}
        host.backend.send(helper.worker_id, P.Run([test.index], True, explored))
        host.backend.send(helper.worker_id, P.Flush())
        host.bus.publish(TestStarted(helper.worker_id, test.nodeid))
        elapsed = now - test.started
        message = (f"{test.nodeid}: running {elapsed:.1f} s on {test.worker} (history {historical:.2f} s); "
                   f"a speculative copy starts on {helper.worker_id}")
        self._publish(CopyStarted(**self._about(copy), reason=message, elapsed_s=round(elapsed, 3)))
        host.say(message)

    def _cancel(self, worker_id: str, index: int) -> None:
        host = self.host
        slot = host.fleet.slots.get(worker_id)
        if slot is None or slot.gone:
            return  # its worker is already gone (the loss that decided the race, or a crash)
        self.cancelled[worker_id] = index
        if index in slot.outstanding:
            slot.outstanding.remove(index)
        slot.running = None
        host.bus.publish(TestStarted(worker_id, None))
        host.backend.kill(worker_id, signal.SIGKILL)

    def _about(self, copy: Copy) -> dict[str, Any]:
        """The fields every message about ``copy`` carries."""
        host = self.host
        return {"subject": copy.nodeid, "case_id": host.cases[copy.index].case_id,
                "variant_id": host.variants[copy.index].variant_id, "nodeid": copy.nodeid,
                "worker": copy.copy, "original": copy.original, "copy": copy.copy, "historical_s": copy.historical}

    def _publish(self, message: CopyStarted | CopyDecided) -> None:
        self.events.append(self.host.bus.publish(message).to_event())


# -- work no worker can do yet ---------------------------------------------------------------------
CAPACITY_POLL = 2.0  # seconds between two looks at the cluster's nodes


def await_capacity(host: Host, wanted: dict[int, Any], unmet: dict[int, str], pools: list[str],
                   clock: Callable[[], float] = time.monotonic,
                   sleep: Callable[[float], None] = time.sleep) -> dict[int, str]:
    """Tests no current worker can run, on a backend that can ask for more (Ray's autoscaler):
    ask for nodes that meet ``wanted`` (index -> Requirements) and wait up to ``autoscale_wait``
    seconds for them. A test a node now meets gets its pool; what is still unmet is returned, to be
    skipped with its reason. A backend that cannot ask (local) skips at once, as before."""
    from testfleet.execution.capabilities import skip_reason

    backend = host.backend
    wait = host.plan.handoff.autoscale_wait
    ask = getattr(backend, "request_capacity", None)
    if not unmet or ask is None or wait <= 0:
        return unmet
    distinct = list({wanted[i].key(): wanted[i] for i in unmet}.values())
    ask(distinct)
    host.say(f"{len(unmet)} test{'s' if len(unmet) != 1 else ''} wait up to {wait:g} s for a node that meets "
             f"{'their' if len(unmet) != 1 else 'its'} requirements (asked of the autoscaler)")
    started = clock()
    deadline = started + wait
    unmet = dict(unmet)
    while True:
        offered = backend.capabilities()
        for index in list(unmet):
            if skip_reason(wanted[index], offered) is None:
                del unmet[index]
                key = wanted[index].key()
                pools[index] = key
                backend.define_pool(key, wanted[index])
        if not unmet or clock() >= deadline:
            break
        sleep(max(0.0, min(CAPACITY_POLL, deadline - clock())))
    ask([])  # withdrawn: Ray keeps a request until the next one (nodes our workers hold stay)
    met = [i for i in wanted if i not in unmet]
    message = (f"capacity: {len(met)} test{'s' if len(met) != 1 else ''} found a node in {clock() - started:.0f} s"
               + (f"; {len(unmet)} still unmet, skipped" if unmet else ""))
    host.say(message)
    host.bus.publish(CapacityAwaited(reason=message, requested=[r.describe() for r in distinct],
                                     waited_s=round(clock() - started, 3),
                                     met=[host.items[i]["nodeid"] for i in met],
                                     unmet=[host.items[i]["nodeid"] for i in unmet]))
    return unmet
