"""Helpers on anomaly: a profiler, a memory tracker and a thread dump attached to a SUT process.

When the anomaly monitor flags a result (a CPU or RSS outlier of the SUT, a latency spike:
metrics named by ``[tool.testfleet.helpers] metrics``), the coordinator attaches the run's
helpers (:mod:`testfleet.execution.probes`) to the SUT process of the worker that produced it,
for ``duration`` seconds, in a background thread: the loop never waits for them. At most
``max_count`` attachments per run and one at a time per process; each helper keeps to its share
of ``max_overhead``. The artefacts go to ``<store folder>/artefacts/<run id>/``.

Every attachment, artefact and skip is a :class:`HelperMessage` on the bus (``kind`` = "helper"
in the run's events), published from the loop's thread only: :meth:`Probing.tick` collects what
finished sessions left. A leak trend is found only when the run ends, after the SUTs stopped: it
gets a "skip" with that reason.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import threading
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import psutil

from testfleet.execution.bus import BusMessage
from testfleet.execution.probes.memory import prepare_sitecustomize, sut_env, track_memory
from testfleet.execution.probes.outcome import HelperOutcome
from testfleet.execution.probes.profiler import profile
from testfleet.execution.probes.settings import HelperPlan, Limits
from testfleet.execution.probes.target import Target, find_target
from testfleet.execution.probes.threads import dump_threads

if TYPE_CHECKING:
    from testfleet.execution import protocol as P
    from testfleet.execution.coordinator.interfaces import Host

_JOIN_GRACE = 15.0  # seconds close() waits for a stopped session to write its artefacts


@dataclass(frozen=True, kw_only=True)
class HelperMessage(BusMessage):
    """An attachment ("attach"), what one helper left ("artefact", with its ``path``), or why a
    helper did not attach or left nothing ("skip")."""

    topic: ClassVar[str] = "helper"
    helper: str = ""  # profile | memory | threads; "" for the attachment as a whole
    tool: str = ""  # py-spy | perf | tracemalloc | smaps | proc
    pid: int | None = None
    path: str | None = None
    worker: str = ""
    nodeid: str = ""
    metric: str = ""
    cpu_s: float | None = None  # an artefact's helper: the CPU seconds its own process used
    attached_s: float | None = None  # and how long it was attached


class Session(threading.Thread):
    """One attachment: the helpers of the run on one SUT process, for ``duration`` seconds."""

    def __init__(self, probing: Probing, target: Target, stem: str, worker: str) -> None:
        super().__init__(name=f"testfleet-helpers-{target.pid}", daemon=True)
        self.probing, self.target, self.stem, self.worker = probing, target, stem, worker
        self.outcomes: list[HelperOutcome] = []
        self.pid = target.pid

    def run(self) -> None:
        plan, stop = self.probing.plan, self.probing.stop
        helpers = plan.helpers
        if "threads" in helpers:  # the stacks at the moment of the anomaly, before anything else
            self.outcomes.append(self._guard("threads", lambda: dump_threads(self.target, plan.folder, self.stem)))
        timed = [h for h in helpers if h != "threads"]
        workers = []
        for helper in timed:
            def job(helper: str = helper) -> None:
                if helper == "profile":
                    self.outcomes.append(self._guard(helper, lambda: profile(
                        self.target, plan.folder, self.stem, plan.settings, attached=len(timed), stop=stop)))
                else:
                    self.outcomes.append(self._guard(helper, lambda: track_memory(
                        self.target, plan.folder, self.stem, plan.settings,
                        memory_dir=self.probing.memory_dir, stop=stop)))
            thread = threading.Thread(target=job, daemon=True)
            thread.start()
            workers.append(thread)
        for thread in workers:
            thread.join()

    @staticmethod
    def _guard(helper: str, call: Any) -> HelperOutcome:
        try:
            return call()  # type: ignore[no-any-return]
        except Exception as exc:  # noqa: BLE001 - a helper's failure is a skip, never the run's
            return HelperOutcome(helper, "", None, f"failed: {type(exc).__name__}: {exc}")


class Probing:
    """The coordinator's helpers part (see the module doc)."""

    def __init__(self, host: Host, plan: HelperPlan) -> None:
        self.host, self.plan = host, plan
        self.limits = Limits(plan.settings.max_count)
        self.stop = threading.Event()
        self.sessions: list[Session] = []
        self.attached = 0
        self._said: set[tuple[str, str]] = set()  # (subject, reason) of skips already published
        self.memory_dir: Path | None = None
        self._site_dir: Path | None = None
        spec = host.plan.worker.sut
        if "memory" in plan.helpers and spec is not None:
            # tracemalloc must run from the SUT's start: its sitecustomize goes on the SUT's
            # PYTHONPATH through the SUT table every worker gets (never this process's environment)
            self._site_dir = prepare_sitecustomize(Path(tempfile.mkdtemp(prefix="testfleet-sitecustomize-")))
            self.memory_dir = plan.folder / "tracemalloc"
            self.memory_dir.mkdir(parents=True, exist_ok=True)
            env = {**spec.env, **sut_env(self._site_dir, self.memory_dir, plan.settings.top,
                                         spec.env.get("PYTHONPATH") or os.environ.get("PYTHONPATH"))}
            host.plan.worker = replace(host.plan.worker, sut=spec.model_copy(update={"env": env}))

    def on_anomalies(self, worker_id: str, payload: P.TestResult, anomalies: list[dict[str, Any]]) -> None:
        """A result of ``worker_id`` was flagged: attach to its SUT process, unless a limit says no."""
        flagged = [a for a in anomalies if a.get("kind") == "outlier"
                   and self.plan.settings.triggers(str(a.get("metric", "")))]
        if not flagged:
            return
        anomaly = flagged[0]
        nodeid, metric = str(anomaly.get("nodeid", "")), str(anomaly.get("metric", ""))
        pid = payload.sut_pid
        if pid is None:
            self._skip(worker_id, f"no SUT process is known for worker {worker_id}", nodeid, metric)
            return
        if not _descends_from_here(pid):
            self._skip(worker_id, f"SUT pid {pid} is not a process of this machine's run (a remote "
                       "worker's): helpers attach only to local SUTs", nodeid, metric)
            return
        refusal = self.limits.refusal(pid)
        if refusal is not None:
            self._skip(worker_id, refusal, nodeid, metric, pid)
            return
        target = find_target(pid)
        if target is None:
            self._skip(worker_id, f"SUT pid {pid} has ended", nodeid, metric, pid)
            return
        self.limits.take(pid)
        self.attached += 1
        self.plan.folder.mkdir(parents=True, exist_ok=True)
        stem = f"{self.attached:02d}-{worker_id}-pid{target.pid}"
        self.host.bus.publish(HelperMessage(
            action="attach", subject=worker_id, pid=target.pid, worker=worker_id, nodeid=nodeid, metric=metric,
            reason=f"helpers {', '.join(self.plan.helpers)} attached to pid {target.pid} ({target.name}) "
                   f"for {self.plan.settings.duration:g}s: {anomaly.get('message', metric)}"))
        session = Session(self, target, stem, worker_id)
        self.sessions.append(session)
        session.start()

    def tick(self) -> None:
        """From the loop: publish what finished sessions left, and free their processes."""
        for session in [s for s in self.sessions if not s.is_alive()]:
            self.sessions.remove(session)
            self.limits.release(session.pid)
            for outcome in session.outcomes:
                self.host.bus.publish(HelperMessage(
                    action="artefact" if outcome.path else "skip", subject=session.worker,
                    helper=outcome.helper, tool=outcome.tool, pid=session.pid, path=outcome.path,
                    cpu_s=outcome.cpu_s, attached_s=outcome.attached_s,
                    worker=session.worker, reason=f"{outcome.helper}: {outcome.path} ({outcome.reason})"
                    if outcome.path else f"{outcome.helper}: {outcome.reason}"))

    def close(self) -> None:
        """The run ends: stop attached helpers (they write what they have), publish it all."""
        self.stop.set()
        for session in self.sessions:
            session.join(_JOIN_GRACE)
        self.tick()
        for anomaly in self.host.recording.anomalies:
            if anomaly.get("kind") == "leak" and self.plan.settings.triggers(str(anomaly.get("metric", ""))):
                self._skip("", "a leak trend is found when the run ends, once its SUT processes have stopped",
                           str(anomaly.get("nodeid", "")), str(anomaly.get("metric", "")))
        if self._site_dir is not None:
            shutil.rmtree(self._site_dir, ignore_errors=True)

    def _skip(self, subject: str, reason: str, nodeid: str, metric: str, pid: int | None = None) -> None:
        if (subject, reason) in self._said:  # said once per worker: anomalies come in runs
            return
        self._said.add((subject, reason))
        self.host.bus.publish(HelperMessage(action="skip", subject=subject, pid=pid, worker=subject,
                                            nodeid=nodeid, metric=metric, reason=reason))


def _descends_from_here(pid: int) -> bool:
    """Whether ``pid`` is a process this coordinator started, directly or not (a SUT a local
    worker started): a pid a remote worker reports names some other process here."""
    try:
        return any(child.pid == pid for child in psutil.Process().children(recursive=True))
    except psutil.Error:
        return False
