"""The injector: carries out a chaos schedule beside the coordinator's loop.

It is driven from the loop's tick (:meth:`Injector.tick`, called once per loop turn; the loop
waits at most :meth:`Injector.until_next` for events), so it needs no thread and a run without
``--chaos`` has no injector at all. A fault is due at its time, or, for a schedule's entries keyed
on progress (``after_tests``), once that many tests have a final result. Each fault, when due, is
aimed at its target (``any``: a worker picked among those alive and ready, ordered by seat, with a
generator drawn from the run's seed and the fault's place in the schedule, so that two runs with
the same live seats pick the same one whatever happened before; a worker id or a seat: that
worker, or the one now in that seat, skipped when there is none) and carried out:

* ``kill_worker``: SIGKILL through the backend (on Ray, ``ray.kill`` of the actor);
  ``kill_actor``: the same, Ray only. The replacement of a worker killed by injection does not
  spend ``--max-worker-restarts``: injected kills alone must not end a run;
* ``stop_worker``: SIGSTOP of the worker's process, SIGCONT when ``duration`` is over;
* ``kill_sut`` / ``pause_sut``: SIGKILL, or SIGSTOP then SIGCONT, of the SUT's process group;
* network faults (latency, bandwidth, reset_peer, timeout, http_error) and ``fill_memory``: an
  order to the worker's agent (see :mod:`.agent`), which applies it to its proxy or its memory;
* ``kill_node``: only where the cluster has a node that can go without the driver; a local Ray
  cluster has only its head, so it is skipped with that reason.

A fault aimed at ``any`` when no worker can take it yet (the fleet or its SUT instances are still
starting) waits until one can, for at most ``DEFER_LIMIT`` seconds; its event says how late it
came (``late``). Every fault is a message on the coordinator's bus (:class:`FaultInjected`), kept
as an event of the run (``kind = "fault"``, data ``fault``, ``target``, ``at``, ``duration``,
``params``; a fault that could not be injected has ``skipped`` with the reason) and a console line.
Whatever is stopped when the run ends is continued (:meth:`Injector.close`). Each network fault
that fails requests (``http_error``, ``reset_peer``, ``timeout``) is also kept as a
:class:`~.blame.Window` (``windows``), so that a failure it caused can be told from the test's own
(:mod:`.blame`).
"""

from __future__ import annotations

import json
import os
import random
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from testfleet.atomic import atomic_write_text
from testfleet.execution.chaos.blame import ERROR_TOXICS, Window
from testfleet.execution.chaos.schedule import NETWORK, Injection
from testfleet.execution.resilience_messages import FaultInjected

if TYPE_CHECKING:
    from testfleet.execution.coordinator.interfaces import Host

DEFER_LIMIT = 30.0
DEFER_POLL = 0.2


class Stream(Protocol):
    name: str

    def upcoming(self) -> Iterator[Injection]: ...


class Injector:
    def __init__(self, host: Host, schedule: Stream, folder: Path, seed: int) -> None:
        self.host = host
        self.schedule = schedule
        self.folder = Path(folder)
        self.seed = seed
        self.started: float | None = None
        self.stream = schedule.upcoming()
        self.next: Injection | None = next(self.stream, None)
        #: faults keyed on progress (after_tests), in the order they fire
        self.progress: list[Injection] = list(getattr(schedule, "progress", list)())
        self.resume: list[tuple[float, int, int, str]] = []  # (due, pid, signal kind, what) to SIGCONT
        self.orders: dict[str, list[dict[str, Any]]] = {}
        self.injected: list[dict[str, Any]] = []
        self.waiting: list[tuple[float, Injection]] = []  # (when it was due, fault) no target could take yet
        self.windows: list[Window] = []  # the faults that fail requests, ordered to a worker's proxy

    # -- driven by the loop ------------------------------------------------------------------
    def until_next(self) -> float:
        """Seconds until something is due (the loop waits no longer than this for events)."""
        if self.started is None:
            return 0.0
        now = time.monotonic()
        due = [d for d, *_ in self.resume]
        if self.waiting:
            due.append(now + DEFER_POLL)
        if self.next is not None:
            due.append(self.started + self.next.at)
        return max(0.0, min(due) - now) if due else 3600.0

    def tick(self) -> None:
        now = time.monotonic()
        if self.started is None:
            self.started = now
        for item in [r for r in self.resume if r[0] <= now]:
            self.resume.remove(item)
            _signal(item[1], signal.SIGCONT, group=item[2] == 1)
        if self.host.stopping:
            return
        waiting, self.waiting = self.waiting, []
        for due, injection in waiting:
            self.inject(injection, due=due)
        while self.next is not None and self.started + self.next.at <= now:
            self.inject(self.next, due=now)
            self.next = next(self.stream, None)
        if self.progress:
            done = len(self.host.recording.final)
            while self.progress and (self.progress[0].after_tests or 0) <= done:
                self.inject(self.progress.pop(0), due=now)

    def close(self) -> None:
        """Continue whatever is still stopped: nothing may stay frozen after the run."""
        for _due, pid, group, _what in self.resume:
            _signal(pid, signal.SIGCONT, group=group == 1)
        self.resume.clear()
        for _due, injection in self.waiting:
            self._record(injection, injection.target, "the run ended before any worker could take it")
        self.waiting.clear()
        self.next = None
        self.progress.clear()

    # -- one fault ---------------------------------------------------------------------------
    def inject(self, injection: Injection, due: float | None = None) -> None:
        fault = injection.fault
        now = time.monotonic()
        due = now if due is None else due
        needs_sut = fault in NETWORK or fault in ("kill_sut", "pause_sut")
        target, skipped = self._aim(injection, needs_sut)
        if target is None and injection.target == "any" and now - due < DEFER_LIMIT:
            self.waiting.append((due, injection))  # the fleet is still starting: as soon as it can
            return
        if skipped is None and target is not None:
            try:
                skipped = self._carry_out(fault, target, injection)
            except OSError as exc:
                skipped = f"could not be injected: {exc}"
        self._record(injection, target or injection.target, skipped, late=now - due)

    def _aim(self, injection: Injection, needs_sut: bool) -> tuple[str | None, str | None]:
        wanted = injection.target
        # (seat, worker id) of each live worker, by seat: the same seats give the same order
        seated = sorted(((getattr(s, "seat", "") or s.worker_id, s.worker_id) for s in self.host.fleet.live()
                         if s.ready), key=lambda sw: (len(sw[0]), sw[0], len(sw[1]), sw[1]))
        if needs_sut:
            seated = [(seat, w) for seat, w in seated if self._sut(w) is not None]
        live = [w for _, w in seated]
        if wanted == "any":
            if not live:
                return None, "no live worker" + (" with a SUT instance" if needs_sut else "")
            # one generator per fault, not one for the run: a choice does not depend on the faults before it
            key = f"p{injection.seq}" if injection.after_tests is not None else f"t{injection.seq}"
            return random.Random(f"chaos-targets:{self.seed}:{key}").choice(live), None
        if wanted in live:
            return wanted, None
        in_seat = [w for seat, w in seated if seat == wanted]
        if in_seat:
            return in_seat[-1], None
        return wanted, f"{wanted} is not a live worker" + (" with a SUT instance" if needs_sut else "")

    def _carry_out(self, fault: str, target: str, injection: Injection) -> str | None:
        backend = self.host.backend
        due = time.monotonic() + injection.duration
        if fault == "kill_actor" and backend.name != "ray":
            return "kill_actor needs the Ray backend (use kill_worker)"
        if fault in ("kill_worker", "kill_actor"):
            # the loss is the injection's, not the suite's: it does not spend --max-worker-restarts
            self.host.recovery.injected.add(target)
            backend.kill(target, signal.SIGKILL)
        elif fault == "stop_worker":
            pid = self._worker_pid(target)
            if pid is None:
                return f"the pid of {target} is not known here"
            _signal(pid, signal.SIGSTOP, group=False)
            self.resume.append((due, pid, 0, target))
        elif fault in ("kill_sut", "pause_sut"):
            sut = self._sut(target)
            assert sut is not None
            if fault == "kill_sut":
                _signal(int(sut["pid"]), signal.SIGKILL, group=True)
            else:
                _signal(int(sut["pid"]), signal.SIGSTOP, group=True)
                self.resume.append((due, int(sut["pid"]), 1, target))
        elif fault == "kill_node":
            return self._kill_node()
        else:  # network faults and fill_memory: the worker's agent applies them
            if fault in ERROR_TOXICS:
                seat = next((getattr(s, "seat", "") for s in self.host.fleet.live() if s.worker_id == target), "")
                now = time.time()
                self.windows.append(Window(fault, target, seat or target, now, now + injection.duration,
                                           dict(injection.params)))
            orders = self.orders.setdefault(target, [])
            orders.append({"fault": fault, "duration": injection.duration, "params": injection.params})
            atomic_write_text(self.folder / f"orders-{target}.json", json.dumps(orders))
        return None

    def _kill_node(self) -> str:
        if self.host.backend.name != "ray":
            return "kill_node needs the Ray backend"
        import ray

        alive = [n for n in ray.nodes() if n.get("Alive")]  # type: ignore[no-untyped-call]  # ray: unannotated
        if len(alive) <= 1:
            return ("the Ray cluster has one node, the head that runs the driver: killing it "
                    "would end the run, not test its recovery")
        return "killing a Ray node other than this machine's needs access to its host; not supported"

    def _record(self, injection: Injection, target: str, skipped: str | None, late: float = 0.0) -> None:
        params = dict(injection.params)
        what = injection.fault + (f" {injection.duration:g}s" if injection.duration else "") + \
            "".join(f" {k}={v:g}" for k, v in params.items())
        message = f"chaos: {what} on {target}" + (f" skipped: {skipped}" if skipped else "")
        if late >= DEFER_POLL:
            message += f" ({late:.1f}s late: no worker could take it sooner)"
        fault = FaultInjected(action="skip" if skipped else "inject", subject=target, reason=message, worker=target,
                              fault=injection.fault, target=target, at=time.time(), duration=injection.duration,
                              params=params, schedule=self.schedule.name,
                              late=round(late, 2) if late >= DEFER_POLL else None, skipped=skipped or None)
        event = self.host.bus.publish(fault).to_event()
        if not skipped:
            self.injected.append(event)
        self.host.say(message)

    # -- where things are --------------------------------------------------------------------
    def _read(self, name: str) -> dict[str, Any] | None:
        try:
            value = json.loads((self.folder / name).read_text())
        except (OSError, ValueError):
            return None
        return value if isinstance(value, dict) else None

    def _sut(self, worker_id: str) -> dict[str, Any] | None:
        return self._read(f"sut-{worker_id}.json")

    def _worker_pid(self, worker_id: str) -> int | None:
        info = getattr(self.host.backend, "info", {}).get(worker_id)
        if info is not None and getattr(info, "pid", None):
            return int(info.pid)
        found = self._read(f"worker-{worker_id}.json")
        return int(found["pid"]) if found and "pid" in found else None


def _signal(pid: int, signum: int, *, group: bool) -> None:
    try:
        if group:
            os.killpg(pid, signum)
        else:
            os.kill(pid, signum)
    except (ProcessLookupError, PermissionError):
        pass
