"""Specialisation in the run: a stressed instance where exploration finds failures gets more of the fleet.

:class:`Specialising` is composed into the coordinator while the run explores (unless
``[tool.testfleet.specialise] enabled = false``). An *instance* is a SUT process in one
configuration (exploration restarts a worker's SUT for each configuration it varies; without a
SUT, the worker). Each final result feeds its instance's window (its ``sut.*`` telemetry summary,
or ``worker.*`` without a SUT, its call's duration, whether it was explored and failed or was
anomalous, the worker that ran it); then the policy
(:func:`~testfleet.execution.specialisation.decide`) runs over every instance. A *grant* means:

* on the local backend, CPU affinity, niceness and (where writable) cgroup v2 weights for the
  process tree of the worker that last ran it (:class:`~testfleet.execution.specialise_local.LocalActuator`);
* on every backend, explored work aimed at its configuration: ``share`` of the explored variants
  whose space has the SUT's ``sut.*`` keys get the granted instance's configuration laid over
  them (a seeded coin per variant), so every worker that runs them restarts its SUT in that
  configuration: more of the fleet on it.

* on Ray, which cannot resize a live actor, one more worker actor reserving ``ray_cpus`` CPUs of
  the cluster beside the instance's worker (:class:`~testfleet.execution.specialise_ray.RayActuator`);
  with too few free CPUs the grant asks the autoscaler and a ``skip`` message says so.

A *release* undoes the grant (on Ray, the specialist stops after its test). Every change is an
:class:`AllocationMessage` on the coordinator's bus (stored as an ``allocation`` event) whose
reason gives the score, the rule that fired, and what was done or skipped, and why.
"""

from __future__ import annotations

import random
import statistics
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

from testfleet.execution.bus import BusMessage
from testfleet.execution.replication import flatten
from testfleet.execution.specialisation import (
    Decision,
    InstanceWindow,
    Observation,
    PolicyState,
    SpecialiseSettings,
    aim,
    decide,
    release_all,
    score,
)
from testfleet.execution.specialise_local import LocalActuator

if TYPE_CHECKING:
    from testfleet.execution import protocol as P
    from testfleet.execution.coordinator.interfaces import Host
    from testfleet.execution.specialise_ray import RayActuator
    from testfleet.model import Result

SUT = "sut."
HOLD = 2  # the items a worker holds at once (Fleet.feed): what one more worker takes of a batch


@dataclass(frozen=True, kw_only=True)
class AllocationMessage(BusMessage):
    """A change of what an instance gets (``grant``, ``release``) or a means that could not be used
    (``skip``), with its reason."""

    topic: ClassVar[str] = "allocation"
    score: float = 0.0
    config: tuple[tuple[str, Any], ...] = ()  # the SUT configuration explored work is aimed at
    done: tuple[str, ...] = ()  # what the actuator did or skipped, one line each
    steered: int = 0  # explored variants aimed at a granted configuration so far


class Specialising:
    def __init__(self, host: Host, settings: SpecialiseSettings) -> None:
        self.host = host
        self.settings = settings
        self.windows: dict[str, InstanceWindow] = {}
        self.state = PolicyState()
        self.focus: dict[str, dict[str, Any]] = {}  # granted instance -> its configuration (flat)
        self.rng = random.Random(host.plan.worker.seed * 7919 + 20)  # the steering coin, seeded
        self.steered = 0
        self.skipped: set[str] = set()
        self.fresh: set[str] = set()
        local = host.backend.name == "local"
        self.actuator = LocalActuator(settings.nice, settings.affinity, settings.cgroup) if local else None
        self.ray: RayActuator | None = None
        if host.backend.name == "ray":
            from testfleet.execution.specialise_ray import RayActuator

            backend: Any = host.backend  # a RayBackend: free_cpus, node_of, ask_cpus, spawn_reserved
            self.ray = RayActuator(backend, self._spawn_reserved, self._retire, settings.ray_cpus)
        explorer = getattr(host.exploration, "explorer", None)
        if explorer is not None and hasattr(explorer, "steer"):
            explorer.steer = self.steer

    # -- the coordinator's call ----------------------------------------------------------------
    def on_final(self, index: int, worker_id: str, result: Result, payload: P.TestResult,
                 anomalies: list[dict[str, Any]]) -> None:
        host = self.host
        telemetry = result.telemetry or {}
        # the SUT's process tree; a suite without a SUT loads its worker, which is then the instance
        prefix = "sut" if "sut.cpu_percent" in telemetry else "worker"
        cpu = telemetry.get(f"{prefix}.cpu_percent", {}).get("mean")
        rss = telemetry.get(f"{prefix}.rss_mb", {}).get("max")
        explored = host.exploration is not None and index in getattr(host.exploration, "variant_map", {})
        config = tuple(sorted(flatten(payload.instance["config"]).items())) if payload.instance and \
            isinstance(payload.instance.get("config"), dict) else ()
        call = (result.phases or {}).get("call") or {}
        latency = float(call.get("duration") or result.duration or 0.0)
        # an instance is a SUT process in one configuration: exploration restarts a worker's SUT
        # for each configuration it varies, so the configuration is what stress and failures
        # belong to (without a SUT configuration, the worker is)
        name = _show(config) if config else worker_id
        window = self.windows.setdefault(name, InstanceWindow(self.settings.window))
        window.add(Observation(latency, explored, result.outcome.is_failure or bool(anomalies),
                               cpu, rss, config, worker_id))
        self.fresh.add(name)
        self.evaluate()

    def evaluate(self) -> list[Decision]:
        durations = [r.duration for w in self.windows.values() for r in w.rows]
        fleet = statistics.median(durations) if durations else None
        scores = {name: score(w.rows, fleet, self.settings) for name, w in self.windows.items()}
        explorer = getattr(self.host.exploration, "explorer", None)
        if explorer is not None and not explorer.active:  # spent: nothing left to aim at anything
            decisions = release_all(self.state, scores, "exploration is over: resources given back")
            for decision in decisions:
                self._apply(decision)
            return decisions
        workers = {s.worker_id for s in self.host.fleet.live()}
        live = [name for name, w in self.windows.items() if w.rows and w.rows[-1].worker in workers]
        decisions = decide(self.state, scores, self.fresh, live, self.settings)
        self.fresh = set()
        for decision in decisions:
            self._apply(decision)
        return decisions

    def close(self) -> None:
        """The run is over: whatever is still granted is given back."""
        for decision in release_all(self.state, {}, "the run is over: resources given back"):
            self._apply(decision)

    # -- the explorer's hook -------------------------------------------------------------------
    def steer(self, state: Any, params: dict[str, Any]) -> dict[str, Any]:
        """An explored variant's params, aimed at a granted configuration (``share`` of them)."""
        if not self.focus:
            return params
        dims = state.space.dimensions
        target = self.focus[sorted(self.focus)[self.rng.randrange(len(self.focus))]]

        def allowed(aimed: dict[str, Any]) -> bool:
            return not state.space.violations({**state.baseline, **{k: v for k, v in aimed.items() if k in dims}})

        steered = aim(params, target, dims, self.rng.random(), self.settings.share, allowed, SUT)
        if steered != params:
            self.steered += 1
        return steered

    # -- inside --------------------------------------------------------------------------------
    def _pids(self) -> dict[str, int]:
        """Live worker -> its pid (local backend)."""
        info = getattr(self.host.backend, "info", {})
        live = {s.worker_id for s in self.host.fleet.live()}
        return {name: pid for name, w in info.items() if name in live and (pid := getattr(w, "pid", None))}

    def _granted_workers(self) -> set[str]:
        """The workers whose instances run a granted configuration now (the last to run each)."""
        return {self.windows[n].rows[-1].worker for n in self.state.granted if self.windows[n].rows}

    def _apply(self, decision: Decision) -> None:
        name = decision.instance
        done: list[str] = []
        if decision.action == "grant":
            rows = list(self.windows[name].rows)
            aimed = next((r.config for r in reversed(rows) if r.bad and r.explored and r.config),
                         rows[-1].config if rows else ())
            if aimed:
                self.focus[name] = dict(aimed)
            if self.actuator is not None:
                pids = self._pids()
                granted = {n: pids[n] for n in self._granted_workers() if n in pids}
                others = {n: p for n, p in pids.items() if n not in granted}
                done = self.actuator.grant(granted, others)
            elif self.ray is not None:
                done = self.ray.grant(name, rows[-1].worker if rows else None)
        else:
            aimed = tuple(sorted(self.focus.pop(name, {}).items()))
            if self.actuator is not None:
                pids = self._pids()
                granted = {n: pids[n] for n in self._granted_workers() if n in pids}
                window = self.windows.get(name)
                was = window.rows[-1].worker if window is not None and window.rows else ""
                released = {was: pids[was]} if was in pids and was not in granted else {}
                others = {n: p for n, p in pids.items() if n not in granted and n not in released}
                done = self.actuator.release(released, granted, others)
            elif self.ray is not None:
                done = self.ray.release(name)
        for line in done:
            mechanism, _, rest = line.partition(": ")
            if rest.startswith("skipped"):
                self._skip(mechanism, rest.removeprefix("skipped, "))
        aims = f"; explored work aimed at {_show(aimed)} ({self.settings.share:.0%} of variants)" \
            if decision.action == "grant" and aimed else ""
        self.host.bus.publish(AllocationMessage(
            action=decision.action, subject=name, reason=f"{decision.action} {name}: {decision.reason}{aims}"
            + "".join(f"; {line}" for line in done if "skipped" not in line),
            score=round(decision.score, 4), config=tuple(aimed), done=tuple(done), steered=self.steered))

    def _spawn_reserved(self, cpus: float, node: str | None) -> str:
        """A Ray worker actor reserving ``cpus`` (on ``node`` when it has them): its worker id."""
        backend: Any = self.host.backend
        worker_id = self.host.fleet.spawn(start=lambda worker_id: backend.spawn_reserved(worker_id, cpus, node))
        self._widen(HOLD)
        return worker_id

    def _retire(self, worker_id: str, why: str) -> None:
        """The worker stops after its current test; what it holds goes back to the queue. The
        batches narrow back even when it is gone already (lost, or the run stopping)."""
        self._widen(-HOLD)
        slot = self.host.fleet.slots.get(worker_id)
        if slot is None or slot.gone or self.host.stopping:
            return
        self.host.recovery.retire(worker_id, why)

    def _widen(self, by: int) -> None:
        """The explorer's batches are sized for the planned fleet (2 per worker, so that feedback
        comes back in the same order whatever the timing): a worker added by a grant widens them
        by what it holds, or it would find every batch taken (and a release narrows them back)."""
        explorer = getattr(self.host.exploration, "explorer", None)
        if explorer is not None and isinstance(getattr(explorer, "batch_size", None), int):
            explorer.batch_size = max(1, explorer.batch_size + by)

    def _skip(self, mechanism: str, why: str) -> None:
        if mechanism in self.skipped:
            return
        self.skipped.add(mechanism)
        self.host.bus.publish(AllocationMessage(action="skip", subject=mechanism,
                                                reason=f"{mechanism} not used: {why}"))


def _show(config: tuple[tuple[str, Any], ...] | dict[str, Any]) -> str:
    items = config.items() if isinstance(config, dict) else config
    return ", ".join(f"{k}={v}" for k, v in items) or "its configuration"
