"""How the coordinator tops workers up: a worker holds its last queued item until it knows the
next one or is flushed, so every worker holding items must be flushed once nothing is left for it.
A worker passed over while a rerun it must not take was queued once hung a whole run (seen under
load in CI: one passing test never reported, the run waited forever).

The backend here only records what the coordinator sends: these tests are about the coordinator's
side of the protocol; the worker side is exercised by the real runs in tests/execution.
"""

from __future__ import annotations

from datetime import UTC, datetime

from testfleet.execution import protocol as P
from testfleet.execution.backends.base import Backend, Event
from testfleet.execution.coordinator import Orchestrator, Slot
from testfleet.execution.plan import RunPlan
from testfleet.execution.scheduler import Scheduler
from testfleet.model import Run


class Recording(Backend):
    name = "recording"

    def __init__(self) -> None:
        self.sent: list[tuple[str, P.CoordinatorMessage]] = []

    def start(self) -> None:
        raise AssertionError("not started in these tests")

    def spawn_worker(self, worker_id: str, pool: str = "") -> None:
        raise AssertionError("no worker is spawned in these tests")

    def send(self, worker_id: str, message: P.CoordinatorMessage) -> bool:
        self.sent.append((worker_id, message))
        return True

    def kill(self, worker_id: str, sig: int) -> None:
        raise AssertionError("no worker is killed in these tests")

    def poll(self, timeout: float | None) -> list[Event]:
        return []

    def collector_output(self) -> str:
        return ""

    def close(self) -> None:
        return None


def coordinator(tests: int, workers: int = 2) -> tuple[Orchestrator, Recording]:
    backend = Recording()
    orchestrator = Orchestrator(backend, RunPlan(workers=workers, reruns=1),
                                Run(run_id="r", started_at=datetime.now(UTC)), recorder=None)  # type: ignore[arg-type]
    nodeids = [f"t.py::test_{i}" for i in range(tests)]
    orchestrator.items = [{"nodeid": n, "file": "t.py", "line": i} for i, n in enumerate(nodeids)]
    orchestrator.scheduler = Scheduler(nodeids, workers=workers)
    for i in range(workers):
        orchestrator.fleet.slots[f"gw{i}"] = Slot(f"gw{i}", ready=True)
    return orchestrator, backend


def flushed(backend: Recording) -> dict[str, int]:
    counts: dict[str, int] = {}
    for worker, message in backend.sent:
        if isinstance(message, P.Flush):
            counts[worker] = counts.get(worker, 0) + 1
    return counts


def run_items(backend: Recording, worker: str) -> list[int]:
    return [i for w, m in backend.sent if w == worker and isinstance(m, P.Run) for i in m.indices]


def test_a_worker_passed_over_for_a_rerun_is_flushed_when_another_worker_takes_it() -> None:
    orchestrator, backend = coordinator(tests=4)
    gw0, gw1 = orchestrator.fleet.slots["gw0"], orchestrator.fleet.slots["gw1"]
    orchestrator.fleet.feed(gw0)
    orchestrator.fleet.feed(gw1)
    assert sorted(run_items(backend, "gw0") + run_items(backend, "gw1")) == [0, 1, 2, 3]
    assert len(gw0.outstanding) == 2 and len(gw1.outstanding) == 2
    # gw0's first item fails: it is to be rerun on another worker; gw0 still holds its second
    failed = gw0.outstanding.popleft()
    orchestrator.scheduler.rerun(failed, "gw0")  # type: ignore[union-attr]
    orchestrator.fleet.feed_all()
    # gw1 reports one item and takes the rerun: now nothing is queued for anyone
    gw1.outstanding.popleft()
    orchestrator.fleet.feed(gw1)
    assert failed in run_items(backend, "gw1")
    assert orchestrator.scheduler.pool_empty("")  # type: ignore[union-attr]
    holding = [s.worker_id for s in orchestrator.fleet.slots.values() if s.outstanding]
    assert holding == ["gw0", "gw1"]
    assert all(orchestrator.fleet.slots[w].flushed for w in holding)
    assert set(flushed(backend)) == {"gw0", "gw1"}  # each was told, so each runs what it holds


def test_a_worker_is_flushed_once_however_often_it_is_topped_up() -> None:
    orchestrator, backend = coordinator(tests=3)
    for _ in range(3):
        orchestrator.fleet.feed_all()
    assert all(count == 1 for count in flushed(backend).values())
    assert sorted(i for w in ("gw0", "gw1") for i in run_items(backend, w)) == [0, 1, 2]
