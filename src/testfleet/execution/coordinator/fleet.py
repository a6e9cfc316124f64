"""The fleet: one slot per worker, and how workers are started, topped up, replaced and timed out.

Feeding: a worker holds its last queued item until it knows the next one, so it is always left
with two or more items, or told (FLUSH) that no more are coming. Once a pool's queue is empty,
every worker of that pool that still holds items is flushed (tests/execution_unit/test_feeding.py).

Which worker may take work, and whether a lost one is replaced, is the recovery's
(:mod:`.recovering`): breakers, probes, quarantine, ``--max-worker-restarts``.

``timeout`` is enforced here, not in the worker: the worker is killed (SIGABRT first, so
faulthandler dumps where it hung, then SIGKILL after ``KILL_GRACE``) and replaced.
"""

from __future__ import annotations

import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from testfleet.execution import protocol as P
from testfleet.execution.stream import TestStarted, WorkerChanged

if TYPE_CHECKING:
    from testfleet.execution.coordinator.interfaces import Host

KILL_GRACE = 2.0


@dataclass
class Slot:
    """One worker as the coordinator sees it."""

    worker_id: str
    outstanding: deque[int] = field(default_factory=deque)  # sent to it, not reported yet
    last_batch: int = 0
    flushed: bool = False
    ready: bool = False  # said hello
    gone: bool = False
    running: tuple[int, float] | None = None  # (index, monotonic start) of the test it runs
    killed_for: int | None = None  # the index it was killed for (timeout)
    said_bye: bool = False
    pool: str = ""
    kill_deadline: float | None = None  # SIGKILL then, unless it is gone
    seat: str = ""  # its place in the fleet: the first worker's id, inherited by replacements


class Fleet:
    def __init__(self, host: Host) -> None:
        self.host = host
        self.slots: dict[str, Slot] = {}
        self.next_worker = 0

    def live(self) -> list[Slot]:
        return [s for s in self.slots.values() if not s.gone]

    def spawn(self, pool: str = "", seat: str = "", start: Callable[[str], None] | None = None) -> str:
        """One more worker (for ``pool``, in ``seat``: its own by default); ``start`` starts its
        process when the backend's ``spawn_worker`` is not the way (a reserved Ray actor)."""
        worker_id = f"gw{self.next_worker}"
        self.next_worker += 1
        self.slots[worker_id] = Slot(worker_id, pool=pool, seat=seat or worker_id)
        if start is None:
            self.host.backend.spawn_worker(worker_id, pool)
        else:
            start(worker_id)
        self.host.bus.publish(WorkerChanged(worker_id, "started", pool))
        return worker_id

    def feed(self, slot: Slot) -> None:
        """Top a worker up. A worker holds its last queued item until it knows the next one, so it
        is always left with two or more items, or told (FLUSH) that no more are coming."""
        host = self.host
        scheduler = host.scheduler
        if host.stopping or not slot.ready or slot.gone or scheduler is None or not host.recovery.may_feed(slot) \
                or host.handoff.cancelling(slot):
            return
        alive = sum(1 for s in self.slots.values() if s.ready and not s.gone and s.pool == slot.pool)
        produced = 0
        if slot.pool == "" and scheduler.pool_empty("") and host.exploration is not None:
            produced = host.exploration.more(2 * max(alive, 1))
        batch: list[int] = []
        while len(slot.outstanding) + len(batch) < 2 and host.recovery.may_feed(slot):
            more = scheduler.next_batch(slot.worker_id, alive=alive, pool=slot.pool)
            if not more:
                break
            batch.extend(host.recovery.admit(slot, more))  # breakers: held endpoints, half-open probes
        if not batch and not slot.outstanding:
            return
        if batch:
            slot.outstanding.extend(batch)
            slot.last_batch = len(batch)
            slot.flushed = False
            explored = host.exploration.explored(batch) if host.exploration is not None else {}
            if host.replication is not None:  # replays run a collected item with their values
                explored.update(host.replication.explored(batch))
            report_start = bool(host.plan.timeout) or host.handoff.reports_start(batch)  # timeouts, stragglers
            host.backend.send(slot.worker_id, P.Run(batch, report_start, explored))
            if host.recovery.probing(slot):  # a probe runs alone, without waiting for a next item
                slot.flushed = True
                host.backend.send(slot.worker_id, P.Flush())
            if not host.plan.timeout:
                host.bus.publish(TestStarted(slot.worker_id, host.items[slot.outstanding[0]]["nodeid"]))
        if produced and not scheduler.pool_empty(slot.pool):
            # the new explored batch is for every idle worker, not only the one whose result
            # asked for it (an idle worker is otherwise fed only by its own next result)
            for other in self.slots.values():
                if other is not slot and other.pool == slot.pool and not other.outstanding:
                    self.feed(other)
        if scheduler.pool_empty(slot.pool):
            # every worker of the pool may now run what it holds: also one that was passed over
            # while a rerun it must not take was still queued for another worker
            for other in self.slots.values():
                if other.pool == slot.pool and other.outstanding and not other.flushed and not other.gone:
                    other.flushed = True
                    host.backend.send(other.worker_id, P.Flush())

    def feed_all(self) -> None:
        scheduler = self.host.queue
        for slot in self.slots.values():
            if not slot.outstanding or scheduler.needs_work(len(slot.outstanding), slot.last_batch):
                self.feed(slot)

    def check_timeouts(self) -> None:
        now = time.monotonic()
        timeout = self.host.plan.timeout
        for slot in self.slots.values():
            if slot.gone:
                continue
            if slot.kill_deadline is not None and now >= slot.kill_deadline:
                self.host.backend.kill(slot.worker_id, signal.SIGKILL)
                slot.kill_deadline = None
            elif timeout and slot.running and slot.killed_for is None and now - slot.running[1] > timeout:
                slot.killed_for = slot.running[0]
                slot.kill_deadline = now + KILL_GRACE
                self.host.backend.kill(slot.worker_id, getattr(signal, "SIGABRT", signal.SIGTERM))

    def poll_timeout(self, longest: float) -> float:
        """How long the loop may wait for events: ``longest``, or less when a kill is due."""
        timeout = longest
        now = time.monotonic()
        for slot in self.slots.values():
            if slot.kill_deadline is not None:
                timeout = min(timeout, max(0.0, slot.kill_deadline - now))
            elif self.host.plan.timeout and slot.running is not None:
                timeout = min(timeout, max(0.0, slot.running[1] + self.host.plan.timeout - now))
        return timeout
