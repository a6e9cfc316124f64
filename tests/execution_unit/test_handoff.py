"""When a straggler gets a speculative copy, and what happens to the two copies' results.

The decisions are pure (execution/handoff.py); the coordinator's part (coordinator/handing.py) is
driven here through a real Orchestrator with a backend that only records what it is sent, and a
fake clock: no process, no sleep. The real run is tests/execution/test_handoff_e2e.py.
"""

from __future__ import annotations

import signal
from datetime import UTC, datetime
from pathlib import Path

import pytest

from testfleet.errors import SettingsError
from testfleet.execution import protocol as P
from testfleet.execution.backends.base import Backend, Event
from testfleet.execution.capabilities import Capabilities, Requirements
from testfleet.execution.coordinator import Orchestrator, Slot
from testfleet.execution.coordinator.handing import await_capacity
from testfleet.execution.handoff import HandoffSettings, Running, next_check, overdue_after, stragglers, summary
from testfleet.execution.plan import RunPlan
from testfleet.execution.scheduler import Scheduler
from testfleet.model import Case, Run, Variant
from testfleet.settings import load_settings

SETTINGS = HandoffSettings()  # factor 3, min_extra 2 s


# -- the decision ---------------------------------------------------------------------------------
def test_a_test_is_a_straggler_past_three_times_its_history_and_at_least_two_seconds_more() -> None:
    assert overdue_after(10.0, SETTINGS) == 30.0  # 3 x history
    assert overdue_after(0.1, SETTINGS) == pytest.approx(2.1)  # history + 2 s: short tests jitter
    running = [Running("gw0", 0, "a", started=0.0), Running("gw1", 1, "b", started=0.0)]
    history = {"a": 10.0, "b": 0.1}
    assert stragglers(running, history, now=2.0, settings=SETTINGS) == []
    assert [t.nodeid for t in stragglers(running, history, now=2.2, settings=SETTINGS)] == ["b"]
    # most overdue first
    assert [t.nodeid for t in stragglers(running, history, now=31.0, settings=SETTINGS)] == ["b", "a"]


def test_a_test_without_history_or_already_copied_is_never_a_straggler() -> None:
    running = [Running("gw0", 0, "new", started=0.0), Running("gw1", 1, "old", started=0.0)]
    assert stragglers(running, {"old": 0.1}, now=1000.0, settings=SETTINGS, copied={1}) == []


def test_the_loop_wakes_when_the_next_test_turns_straggler_but_not_for_one_that_already_has() -> None:
    running = [Running("gw0", 0, "a", started=0.0), Running("gw1", 1, "b", started=5.0)]
    history = {"a": 1.0, "b": 1.0}  # each straggles 3 s after it started
    assert next_check(running, history, now=1.0, settings=SETTINGS) == pytest.approx(2.0)
    # "a" already straggles (it is copied when a worker falls idle): the loop must not spin on it
    assert next_check(running, history, now=4.0, settings=SETTINGS) == pytest.approx(4.0)
    assert next_check(running, history, now=9.0, settings=SETTINGS) is None


def test_the_summary_counts_copies_and_the_ones_that_won() -> None:
    events = [{"kind": "handoff", "action": "start"}, {"kind": "handoff", "action": "start"},
              {"kind": "handoff", "action": "result", "winner_origin": "speculative", "original_ran_s": 14.2},
              {"kind": "handoff", "action": "result", "winner_origin": "original"},
              {"kind": "breaker"}]
    assert summary(events) == "2 stragglers handed off; the copy won 1 (its original had run 14.2 s without a result)"
    assert summary([{"kind": "breaker"}]) is None


def test_bad_handoff_settings_name_the_file_and_key(tmp_path: Path) -> None:
    (tmp_path / "testfleet.toml").write_text("[handoff]\nfactor = 0.5\n")
    with pytest.raises(SettingsError) as raised:
        load_settings([], cwd=tmp_path)
    assert "handoff.factor" in str(raised.value) and "testfleet.toml" in str(raised.value)
    (tmp_path / "testfleet.toml").write_text("[handoff]\nenabled = false\nmin_extra = 0.5\n")
    settings, _ = load_settings([], cwd=tmp_path)
    assert settings.handoff == HandoffSettings(enabled=False, min_extra=0.5)


# -- the coordinator's part -----------------------------------------------------------------------
class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Recorded(Backend):
    """Records what the coordinator sends and kills; starts nothing."""

    name = "recorded"

    def __init__(self) -> None:
        self.sent: list[tuple[str, P.CoordinatorMessage]] = []
        self.killed: list[tuple[str, int]] = []
        self.spawned: list[str] = []

    def start(self) -> None:
        raise AssertionError("not started in these tests")

    def spawn_worker(self, worker_id: str, pool: str = "") -> None:
        self.spawned.append(worker_id)

    def send(self, worker_id: str, message: P.CoordinatorMessage) -> bool:
        self.sent.append((worker_id, message))
        return True

    def kill(self, worker_id: str, sig: int) -> None:
        self.killed.append((worker_id, sig))

    def poll(self, timeout: float | None) -> list[Event]:
        return []

    def collector_output(self) -> str:
        return ""

    def close(self) -> None:
        return None


def passed(duration: float = 0.1) -> P.TestResult:
    return P.TestResult(outcome="passed", categories=["passed"], when="call", duration=duration, start=0.0, stop=0.0)


def coordinator(history: dict[str, float], *, held: int = 0,
                queued: int = 0) -> tuple[Orchestrator, Recorded, Clock]:
    """Two workers: gw0 runs test 0 since t=0 and holds ``held`` more tests behind it, ``queued``
    tests wait in the queue, gw1 is idle."""
    backend, clock = Recorded(), Clock()
    nodeids = [f"t.py::test_{i}" for i in range(1 + held + queued)]
    host = Orchestrator(backend, RunPlan(workers=2, history=history),
                        Run(run_id="r", started_at=datetime.now(UTC)), recorder=None)  # type: ignore[arg-type]
    host.items = [{"nodeid": n, "file": "t.py", "line": i} for i, n in enumerate(nodeids)]
    host.cases = [Case.from_nodeid(n, file="t.py") for n in nodeids]
    host.variants = [Variant.of(c) for c in host.cases]
    host.scheduler = Scheduler(nodeids, workers=2, order=range(1 + held))
    host.handoff.clock = clock
    gw0, gw1 = Slot("gw0", ready=True), Slot("gw1", ready=True)
    host.fleet.slots.update(gw0=gw0, gw1=gw1)
    host.fleet.next_worker = 2
    while batch := host.scheduler.next_batch("gw0", alive=2):
        gw0.outstanding.extend(batch)
    assert list(gw0.outstanding) == list(range(1 + held))
    host.scheduler.requeue(list(range(1 + held, len(nodeids))))
    gw0.running = (0, clock.now)
    return host, backend, clock


def copies_sent(backend: Recorded) -> list[tuple[str, list[int], bool]]:
    return [(w, m.indices, m.report_start) for w, m in backend.sent if isinstance(m, P.Run)]


def test_an_idle_worker_copies_the_straggler_once_past_its_threshold_and_only_once() -> None:
    host, backend, clock = coordinator({"t.py::test_0": 1.0})
    clock.now = 2.9  # history 1 s: straggler after 3 s
    host.handoff.tick()
    assert copies_sent(backend) == []
    clock.now = 3.1
    host.handoff.tick()
    assert copies_sent(backend) == [("gw1", [0], True)]  # it says when it starts: it may straggle too
    assert ("gw1", P.Flush()) in backend.sent  # it runs the copy at once
    clock.now = 100.0
    host.handoff.tick()
    assert len(copies_sent(backend)) == 1
    assert [e["action"] for e in host.handoff.events] == ["start"]


def test_no_copy_while_work_is_queued_or_without_history() -> None:
    host, backend, clock = coordinator({"t.py::test_0": 1.0}, queued=1)  # the idle worker is fed that first
    clock.now = 10.0
    host.handoff.tick()
    assert copies_sent(backend) == []
    host, backend, clock = coordinator({})
    clock.now = 1000.0
    host.handoff.tick()
    assert copies_sent(backend) == [] and not host.handoff.enabled


def test_the_copy_that_finishes_first_wins_and_the_original_is_cancelled_leaving_one_result() -> None:
    host, backend, clock = coordinator({"t.py::test_0": 1.0})
    clock.now = 3.5
    host.handoff.tick()
    gw0, gw1 = host.fleet.slots["gw0"], host.fleet.slots["gw1"]
    gw1.running = (0, clock.now)
    clock.now = 4.0
    host.worker_ran(gw1, 0, passed())
    assert backend.killed == [("gw0", signal.SIGKILL)]
    assert not gw0.outstanding and host.handoff.cancelling(gw0)
    host.worker_ran(gw0, 0, passed(4.0))  # the original's result, come before the kill: dropped
    assert [(r.worker, r.attempt, r.final) for r in host.recording.results] == [("gw1", 1, True)]
    decided = host.handoff.events[-1]
    assert decided["winner"] == "gw1" and decided["winner_origin"] == "speculative" and decided["loser"] == "gw0"
    assert decided["original_ran_s"] == pytest.approx(4.0) and decided["copy_ran_s"] == pytest.approx(0.5)
    gw0.gone = True
    host.worker_lost(gw0, -9)  # its death is no crash: nothing recorded, nothing replaced (no work left)
    assert len(host.recording.results) == 1 and backend.spawned == []
    assert host.recovery.events == []


def test_when_the_original_finishes_first_the_copy_is_cancelled() -> None:
    host, backend, clock = coordinator({"t.py::test_0": 1.0})
    clock.now = 3.5
    host.handoff.tick()
    gw0 = host.fleet.slots["gw0"]
    host.worker_ran(gw0, 0, passed(3.6))
    assert backend.killed == [("gw1", signal.SIGKILL)]
    assert host.handoff.events[-1]["winner_origin"] == "original"
    assert [r.worker for r in host.recording.results] == ["gw0"]


def test_a_cancelled_original_gives_back_what_it_still_held_to_a_fresh_worker() -> None:
    host, backend, clock = coordinator({"t.py::test_0": 1.0}, held=2)  # two tests behind the straggler
    gw0, gw1 = host.fleet.slots["gw0"], host.fleet.slots["gw1"]
    clock.now = 3.5
    host.handoff.tick()
    host.worker_ran(gw1, 0, passed())
    gw0.gone = True
    host.worker_lost(gw0, -9)
    assert backend.spawned == ["gw2"]  # work is queued again: a fresh worker takes the seat
    assert host.fleet.slots["gw2"].seat == "gw0"
    assert sorted(i for _, indices, _ in copies_sent(backend)[1:] for i in indices) == [1, 2]


# -- work no current worker can do ----------------------------------------------------------------
class Autoscaling(Recorded):
    """A cluster whose autoscaler brings a GPU node ``after`` seconds of the fake clock."""

    def __init__(self, clock: Clock, after: float) -> None:
        super().__init__()
        self.clock, self.after = clock, after
        self.asked: list[list[str]] = []
        self.pools: dict[str, Requirements] = {}

    def capabilities(self) -> list[Capabilities]:
        nodes = [Capabilities(cpus=2)]
        if self.clock.now >= self.after:
            nodes.append(Capabilities(cpus=8, gpus=[{"name": "H100", "memory": 80 * 2**30}]))
        return nodes

    def define_pool(self, key: str, requirements: Requirements) -> None:
        self.pools[key] = requirements

    def request_capacity(self, wanted: list[Requirements]) -> None:
        self.asked.append([r.describe() for r in wanted])


def waiting_host(backend: Backend, wait: float) -> Orchestrator:
    host = Orchestrator(backend, RunPlan(workers=1, handoff=HandoffSettings(autoscale_wait=wait)),
                        Run(run_id="r", started_at=datetime.now(UTC)), recorder=None)  # type: ignore[arg-type]
    host.items = [{"nodeid": "t.py::test_gpu", "file": "t.py", "line": 1}]
    return host


def test_a_test_no_node_meets_waits_for_the_autoscaler_and_runs_when_a_node_comes() -> None:
    clock = Clock()
    backend = Autoscaling(clock, after=5.0)
    host = waiting_host(backend, wait=30.0)
    gpu = Requirements(gpus=1)
    pools = [""]

    def sleep(seconds: float) -> None:
        clock.now += seconds

    left = await_capacity(host, {0: gpu}, {0: "requires gpus=1: no worker offers it"}, pools, clock, sleep)
    assert left == {} and pools == [gpu.key()] and backend.pools == {gpu.key(): gpu}
    assert backend.asked == [[gpu.describe()], []]  # asked, then withdrawn
    assert 5.0 <= clock.now <= 5.0 + 2.0  # it looked again every 2 s, no longer than needed
    event = host.storing.events[-1]
    assert event["action"] == "capacity" and event["met"] == ["t.py::test_gpu"] and event["unmet"] == []


def test_a_test_still_unmet_after_the_wait_is_skipped_and_a_local_run_skips_at_once() -> None:
    clock = Clock()
    backend = Autoscaling(clock, after=1000.0)
    host = waiting_host(backend, wait=30.0)

    def sleep(seconds: float) -> None:
        clock.now += seconds

    reason = {0: "requires gpus=1: no worker offers it"}
    assert await_capacity(host, {0: Requirements(gpus=1)}, reason, [""], clock, sleep) == reason
    assert clock.now == pytest.approx(30.0)  # bounded
    assert host.storing.events[-1]["unmet"] == ["t.py::test_gpu"]
    # a backend that cannot ask (local), or no wait set: at once, nothing asked
    local = waiting_host(Recorded(), wait=30.0)
    assert await_capacity(local, {0: Requirements(gpus=1)}, reason, [""], clock, sleep) == reason
    assert clock.now == pytest.approx(30.0) and local.storing.events == []
    off = Autoscaling(clock, after=0.0)
    assert await_capacity(waiting_host(off, wait=0.0), {0: Requirements(gpus=1)}, reason, [""]) == reason
    assert off.asked == []
