"""Replication in the run: a failure (or an anomaly) is replayed at once, and classified.

:class:`Replication` is composed into the coordinator when ``[tool.testfleet.replicate]`` gives
the run a budget (by default during ``--explore``). When a final result fails, or is anomalous,
it queues *replays* of that execution, one factor changed at a time
(:mod:`testfleet.execution.replication` reads them):

1. the same worker and configuration again (``repeats`` in all, the first one first);
2. every other live worker of the pool, the same variant *and* SUT configuration (the failing
   instance's configuration pinned in the replay's ``sut.*`` values);
3. the failing worker under the nearest neighbouring SUT configurations and the baseline one,
   when the SUT has a ``config_space``.

A replay is a new item of the run pinned to its worker (:meth:`Scheduler.pin`), with a
:class:`~testfleet.model.Variant` of origin ``replay`` whose parent is the failing variant, and a
:class:`~testfleet.execution.replication.ReplayQueued` message on the bus, kept as a ``replay``
event (its provenance). Its result is stored (``final`` false: it does not change the
run's counts or exit code) and the classifier reads the worker and configuration it *really* ran
with. Each failure (case and failure key) is replicated once; replays stop when the budget is
spent. Once its replays are back, a failure's class is a
:class:`~testfleet.execution.replication.FailureClassified` message, kept as a ``replication`` event.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from testfleet.execution import protocol as P
from testfleet.execution.replication import (
    Execution,
    FailureClassified,
    ReplayQueued,
    ReplicateSettings,
    classify,
    flatten,
    neighbour_configs,
)
from testfleet.model import Result, Variant
from testfleet.mutation.engine import failure_key

if TYPE_CHECKING:
    from testfleet.execution.coordinator.interfaces import Host

SUT = "sut."


@dataclass
class Job:
    """One failure being replicated."""

    index: int
    base: int  # the collected item its replays run
    variant: Variant
    trigger: str  # "failure" or "anomaly"
    original: Execution
    pending: set[int] = field(default_factory=set)
    replays: list[Execution] = field(default_factory=list)
    rows: list[dict[str, Any]] = field(default_factory=list)
    dropped: int = 0
    done: bool = False


class Replication:
    def __init__(self, host: Host, settings: ReplicateSettings) -> None:
        self.host = host
        self.settings = settings
        self.budget = int(settings.budget or 0)
        self.spent = 0
        self.jobs: list[Job] = []
        self.by_index: dict[int, tuple[Job, dict[str, Any] | None]] = {}  # replay index -> job, params
        self.seen: set[tuple[str, str]] = set()  # (case id, failure key) replicated already
        self.replayed: set[tuple[str, str, int]] = set()  # (variant id, worker, repeat) queued already
        self.attempts: dict[str, int] = {}  # variant id -> attempts so far (replays continue the count)
        self.verdicts: list[dict[str, Any]] = []
        self._space: Any = None
        self._caps: dict[str, str] | None = None
        self._instance_configs: dict[str, dict[str, Any]] = {}  # worker id -> its instance's own config

    # -- the coordinator's calls --------------------------------------------------------------
    def is_replay(self, index: int) -> bool:
        return index in self.by_index

    def explored(self, batch: list[int]) -> dict[int, P.Explored]:
        """What a worker must know of the replays in ``batch``: the item they run, their values."""
        return {i: P.Explored(self.by_index[i][0].base, self.by_index[i][1]) for i in batch if i in self.by_index}

    def on_final(self, index: int, worker_id: str, result: Result, payload: P.TestResult,
                 anomalies: list[dict[str, Any]]) -> None:
        """A final result: replicate it when it failed or was anomalous (once per failure)."""
        host = self.host
        variant = host.variants[index]
        failed = result.outcome.is_failure
        if host.stopping or self.spent >= self.budget or worker_id not in host.fleet.slots \
                or variant.origin == "minimize" or not (failed or anomalies):
            return
        what = failure_key(result.fingerprint, result.message) if failed else \
            "anomaly:" + ",".join(sorted(str(a.get("metric", "")) for a in anomalies))
        if (variant.case_id, what) in self.seen:
            return
        self.seen.add((variant.case_id, what))
        self.attempts[variant.variant_id] = max(self.attempts.get(variant.variant_id, 0), result.attempt)
        config = self._config_of(index, worker_id, payload)
        explorer = getattr(host.exploration, "variant_map", {}) if host.exploration is not None else {}
        base = explorer.get(index, (index, None))[0]
        job = Job(index, base, variant, "failure" if failed else "anomaly",
                  Execution(True, self._env(worker_id), config))
        self.jobs.append(job)
        self._queue(job, worker_id, config)
        if not job.pending:
            self.jobs.remove(job)  # nothing could be replayed (no budget, no worker): no verdict
            return
        host.fleet.feed_all()

    def on_replay(self, index: int, worker_id: str, result: Result, payload: P.TestResult) -> None:
        """A replay's result: evidence for its job; the job is classified once all are back."""
        job, _params = self.by_index[index]
        if index not in job.pending:
            return
        job.pending.discard(index)
        bad = result.outcome.is_failure
        monitor = self.host.plan.monitor
        if job.trigger == "anomaly" and not bad and monitor is not None and result.telemetry:
            found = monitor.observe(case_id=result.case_id, variant_id=result.variant_id, nodeid=result.nodeid,
                                    worker=worker_id, telemetry=result.telemetry, duration=result.duration)
            self.host.recording.add_events(found)
            bad = bool(found)
        config = self._config_of(index, worker_id, payload)
        job.replays.append(Execution(bad, self._env(worker_id), config))
        job.rows.append({"variant_id": result.variant_id, "worker": worker_id, "outcome": result.outcome.value,
                         "bad": bad, "attempt": result.attempt, "config": config})
        if not job.pending:
            self._finish(job)

    def worker_gone(self, worker_id: str) -> None:
        """A worker left: the replays pinned to it and not sent yet are dropped."""
        scheduler = self.host.scheduler
        if scheduler is None:
            return
        for index in scheduler.unpin(worker_id):
            job = self.by_index[index][0]
            job.pending.discard(index)
            job.dropped += 1
            if not job.pending:
                self._finish(job)

    def conclusion(self) -> list[dict[str, Any]]:
        """At the end of the run: failures whose replays did not all come back are classified on
        what did (``complete`` false)."""
        for job in self.jobs:
            if not job.done:
                job.dropped += len(job.pending)
                job.pending.clear()
                self._finish(job)
        return []

    def outcome(self) -> dict[str, Any]:
        return {"budget": self.budget, "spent": self.spent, "verdicts": list(self.verdicts)}

    # -- inside -------------------------------------------------------------------------------
    def _queue(self, job: Job, worker_id: str, config: dict[str, Any]) -> None:
        """The replays of ``job``, most telling first, as far as the budget goes."""
        host = self.host
        space = self._sut_space()
        params = dict(job.variant.params)
        if space is not None:  # the failing instance's configuration, held on the other workers
            params.update({SUT + k: v for k, v in config.items() if SUT + k in space.dimensions})
        pool = host.scheduler.pools[job.index] if host.scheduler is not None else ""
        others = [s.worker_id for s in host.fleet.slots.values()
                  if s.worker_id != worker_id and s.ready and not s.gone and s.pool == pool
                  and host.recovery.may_feed(s)]
        targets: list[tuple[str, dict[str, Any], int]] = []
        if self.settings.repeats:
            targets.append((worker_id, params, 1))
        targets += [(other, params, 0) for other in others]
        if space is not None and self.settings.neighbours:
            point = {k: v for k, v in params.items() if k.startswith(SUT)}
            targets += [(worker_id, {**params, **near}, 0)
                        for near in neighbour_configs(space, point, self.settings.neighbours)]
        targets += [(worker_id, params, n) for n in range(2, self.settings.repeats + 1)]
        for target, values, repeat in targets:
            if self.spent >= self.budget:
                break
            self._replay(job, target, values, repeat)

    def _replay(self, job: Job, worker_id: str, params: dict[str, Any], repeat: int) -> None:
        host = self.host
        case = host.cases[job.index]
        variant = Variant.of(case, params, origin="replay", parent_id=job.variant.variant_id)
        slot = host.fleet.slots.get(worker_id)
        if (variant.variant_id, worker_id, repeat) in self.replayed or host.scheduler is None \
                or slot is None or slot.gone:  # a worker that crashed on it takes nothing more
            return
        self.replayed.add((variant.variant_id, worker_id, repeat))
        index = host.scheduler.pin(job.index, worker_id)
        host.items.append({**host.items[job.base], "params": params})
        host.cases.append(case)
        host.variants.append(variant)
        self.by_index[index] = (job, params if params != host.items[job.base].get("params") else None)
        attempt = self.attempts.get(variant.variant_id, 0)
        self.attempts[variant.variant_id] = attempt + 1
        host.recording.attempts[index] = attempt  # its result is attempt + 1 of that variant
        job.pending.add(index)
        self.spent += 1
        changed = {k.removeprefix(SUT): v for k, v in params.items() if job.variant.params.get(k) != v}
        if variant.variant_id != job.variant.variant_id:
            host.recorder.add_variants([variant])
        host.bus.publish(ReplayQueued(
            subject=case.nodeid, case_id=case.case_id, variant_id=variant.variant_id, nodeid=case.nodeid,
            parent_id=job.variant.variant_id, worker=worker_id, repeat=repeat, config=changed,
            reason=f"replay of {job.variant.variant_id[:12]} on {worker_id}" + (f" with {changed}" if changed else "")))

    def _finish(self, job: Job) -> None:
        job.done = True
        if not job.replays:
            return
        verdict = classify(job.original, job.replays)
        host = self.host
        nodeid = host.items[job.index]["nodeid"]
        text = f"replicated {nodeid}: {verdict.describe()}"
        message = FailureClassified(
            subject=nodeid, case_id=job.variant.case_id, variant_id=job.variant.variant_id, nodeid=nodeid,
            verdict=verdict.kind, keys=verdict.keys, differences=verdict.differences, rate=verdict.rate,
            interval=list(verdict.interval), executions=verdict.executions, failures=verdict.failures,
            trigger=job.trigger,
            original={"worker": job.original.env.get("worker"), "config": dict(job.original.config)},
            replays=job.rows, dropped=job.dropped, complete=job.dropped == 0, reason=text)
        # the summary lists the verdicts (verdict_lines), as their event rows
        self.verdicts.append(host.bus.publish(message).to_event())

    def _config_of(self, index: int, worker_id: str, payload: P.TestResult) -> dict[str, Any]:
        """The SUT configuration an execution ran with (flattened): as its worker reported it
        (explored executions), else its instance's own (the declared config, or the point drawn
        for that worker) with the variant's ``sut.*`` values laid over; {} without an instance."""
        if payload.instance and isinstance(payload.instance.get("config"), dict):
            return flatten(payload.instance["config"])
        host = self.host
        values = {k.removeprefix(SUT): v for k, v in host.variants[index].params.items() if k.startswith(SUT)}
        spec = host.plan.worker.sut
        if spec is None or not host.items[index].get("uses_instance"):
            return values
        base = self._instance_configs.get(worker_id)
        if base is None:
            from testfleet.execution.sut_spec import instance_config

            try:
                base = flatten(instance_config(spec, worker_id, host.plan.worker.seed))
            except Exception:  # noqa: BLE001 - the instance reports a bad config itself
                base = {}
            self._instance_configs[worker_id] = base
        return {**base, **values}

    def _env(self, worker_id: str) -> dict[str, str]:
        """What a worker's environment is made of, as far as the coordinator knows it."""
        if self._caps is None:
            caps = self.host.backend.capabilities()
            first = caps[0].to_dict() if caps else {}
            self._caps = {k: str(first[k]) for k in ("hostname", "python", "os") if first.get(k)}
        env = {"worker": worker_id, **self._caps}
        info = getattr(self.host.backend, "info", {}).get(worker_id)
        for key, value in (getattr(info, "extra", None) or {}).items():
            if isinstance(value, (str, int, float)):
                env[str(key)] = str(value)
        return env

    def _sut_space(self) -> Any:
        if self._space is None:
            declared = self.host.plan.worker.sut_space
            if not declared:
                self._space = False
            else:
                from testfleet.space.declare import space_from_dict

                self._space = space_from_dict(declared, source="[tool.testfleet.sut] config_space")
        return self._space or None
