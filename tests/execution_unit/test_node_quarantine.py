"""Ray-node quarantine: the rule (openings across a node's seats reach ``quarantine_after``) and
the coordinator applying it through a backend that places workers on nodes (here a recording
stand-in for the Ray backend's two node hooks; the real one is tests/execution/test_ray_quarantine.py).
A blamed chaos failure goes the same way at the coordinator's level: retried, not flaky."""

from __future__ import annotations

from execution_unit.test_recovery import Clock, Sent, fed_run, policy, result
from testfleet.execution import protocol as P
from testfleet.execution.breakers import BreakerSettings
from testfleet.execution.coordinator import Orchestrator, Slot
from testfleet.execution.coordinator.recovering import Recovery
from testfleet.execution.plan import RunPlan
from testfleet.execution.recovery import NODE_ACTION
from testfleet.model import Outcome

REFUSED = "httpx.ConnectError: [Errno 111] Connection refused"


def test_a_node_is_quarantined_when_openings_across_its_seats_reach_the_threshold() -> None:
    p = policy(quarantine_after=3)
    assert p.node_opened("A", "gw0", "2 crashes in 1 s") is None
    assert p.node_opened("B", "gw2", "2 crashes in 1 s") is None  # another node counts apart
    assert p.node_opened("A", "gw1", "2 crashes in 1 s") is None
    step = p.node_opened("A", "gw0", "2 connection errors in 1 s")
    assert step is not None and step.level == 5 and step.action == NODE_ACTION and step.target == "node A"
    assert step.reason == ("breakers of its seats opened 3 times (gw0 x2, gw1 x1; quarantine_after = 3); "
                           "last: 2 connection errors in 1 s")
    assert step.event()["action"] == NODE_ACTION
    p.quarantine_node("A", ["gw0", "gw1"])
    assert p.quarantined_nodes == {"A"} and p.quarantined == {"gw0", "gw1"}
    assert p.seat_admits("gw0") == 0 and p.seat_admits("gw2") is None
    assert p.node_opened("A", "gw1", "again") is None  # once


def test_a_spared_node_is_not_proposed_again() -> None:
    p = policy(quarantine_after=1)
    assert p.node_opened("A", "gw0", "x") is not None
    p.spared_nodes.add("A")
    assert p.node_opened("A", "gw0", "x") is None and not p.quarantined_nodes


class Nodes(Sent):
    """A backend whose workers run on nodes, which records the exclusions it is asked for."""

    name = "nodes"

    def __init__(self, nodes: dict[str, str], last: str | None = None) -> None:
        super().__init__()
        self.nodes = nodes
        self.last = last  # a node it refuses to exclude
        self.excluded: list[str] = []
        self.spawned: list[str] = []

    def node_of(self, worker_id: str) -> str | None:
        return self.nodes.get(worker_id)

    def exclude_node(self, node: str) -> str | None:
        if node == self.last:
            return "it is the last node of the cluster a worker could be placed on"
        self.excluded.append(node)
        return None

    def spawn_worker(self, worker_id: str, pool: str = "") -> None:
        self.spawned.append(worker_id)


def _run(backend: Nodes) -> Orchestrator:
    """Three workers (gw0, gw1, gw2) fed their first work; a breaker opens on one error."""
    plan = RunPlan(workers=3, breakers=BreakerSettings(consecutive_errors=1, cooldown=60.0, quarantine_after=2))
    orchestrator = fed_run(backend, plan, 30, uses_instance=False)
    orchestrator.fleet.slots["gw2"] = Slot("gw2", ready=True, seat="gw2")
    orchestrator.fleet.next_worker = 3
    orchestrator.recovery = Recovery(orchestrator, clock=Clock())
    orchestrator.fleet.feed_all()
    return orchestrator


def test_two_seats_opening_on_one_node_quarantine_it_and_its_seats() -> None:
    backend = Nodes({"gw0": "A", "gw1": "A", "gw2": "B", "gw3": "A"})
    orchestrator = _run(backend)
    recovery, slots = orchestrator.recovery, orchestrator.fleet.slots
    orchestrator.worker_ran(slots["gw0"], slots["gw0"].outstanding[0], result("failed", REFUSED))
    assert backend.excluded == []  # one opening on A: below quarantine_after = 2
    orchestrator.worker_ran(slots["gw2"], slots["gw2"].outstanding[0], result("failed", REFUSED))
    assert backend.excluded == []  # B's opening is B's
    orchestrator.worker_ran(slots["gw1"], slots["gw1"].outstanding[0], result("failed", REFUSED))
    assert backend.excluded == ["A"]
    (node,) = [e for e in recovery.events if e.get("action") == NODE_ACTION]
    assert node["level"] == 5 and node["target"] == "node A"
    assert "opened 2 times (gw0 x1, gw1 x1; quarantine_after = 2)" in node["reason"]
    assert "its seats gw0, gw1 quarantined with it" in node["reason"]
    assert recovery.policy.quarantined == {"gw0", "gw1"} and ("gw1", P.Stop()) in backend.sent
    # gw2's seat (on B) half-opens later and is refilled; a worker that still came up on A is turned away
    slots["gw3"] = Slot("gw3", seat="gw4")
    orchestrator.worker_hello("gw3")
    assert ("gw3", P.Stop()) in backend.sent and "gw4" in recovery.policy.quarantined
    assert not [m for w, m in backend.sent if w == "gw3" and isinstance(m, P.Run)]


def test_the_last_node_is_spared_and_the_event_says_why() -> None:
    backend = Nodes({"gw0": "A", "gw1": "A", "gw2": "A"}, last="A")
    orchestrator = _run(backend)
    recovery, slots = orchestrator.recovery, orchestrator.fleet.slots
    for worker in ("gw0", "gw1"):
        orchestrator.worker_ran(slots[worker], slots[worker].outstanding[0], result("failed", REFUSED))
    (node,) = [e for e in recovery.events if e.get("action") == NODE_ACTION]
    assert node["reason"].endswith("not quarantined: it is the last node of the cluster a worker could be placed on")
    assert backend.excluded == [] and recovery.policy.quarantined == set() and "A" in recovery.policy.spared_nodes


def test_a_local_run_has_no_nodes_to_quarantine() -> None:
    backend = Sent()
    orchestrator = fed_run(backend, RunPlan(workers=2, breakers=BreakerSettings(consecutive_errors=1,
                                                                                  quarantine_after=1)), 8,
                           uses_instance=False)
    orchestrator.fleet.feed_all()
    slots = orchestrator.fleet.slots
    orchestrator.worker_ran(slots["gw0"], slots["gw0"].outstanding[0], result("failed", REFUSED))
    assert not [e for e in orchestrator.recovery.events if e.get("action") == NODE_ACTION]
    assert orchestrator.recovery.policy.quarantined == {"gw0"}  # the seat's own rule still holds


def test_a_failure_blamed_on_an_injected_error_is_retried_and_not_flaky() -> None:
    backend = Sent()
    orchestrator = fed_run(backend, RunPlan(workers=2), 4, uses_instance=False)
    fleet = orchestrator.fleet
    fleet.feed_all()
    gw1 = fleet.slots["gw1"]
    first = gw1.outstanding[0]
    failed = result("failed", "AssertionError: assert 503 == 200")
    plain = result("failed", "AssertionError: assert 503 == 200")
    failed = P.TestResult(**{**failed.__dict__, "injected": {"http_error": 1}})
    orchestrator.worker_ran(gw1, first, failed)
    (blamed,) = [e for e in orchestrator.recovery.events if e["kind"] == "injected_failure"]
    assert blamed["injected"] == {"http_error": 1} and blamed["fault"] == "http_error" and blamed["attempt"] == 1
    assert "no injection window of the coordinator matched" in blamed["message"]  # no injector in this run
    assert first not in orchestrator.recording.final  # retried (level 1)
    orchestrator.worker_ran(gw1, first, result("passed"))
    final = orchestrator.recording.final[first]
    assert final.outcome is Outcome.passed and not final.flaky
    second = fleet.slots["gw0"].outstanding[0]
    orchestrator.worker_ran(fleet.slots["gw0"], second, plain)  # no injected error: the test's own failure
    assert orchestrator.recording.final[second].outcome is Outcome.failed
    assert len([e for e in orchestrator.recovery.events if e["kind"] == "injected_failure"]) == 1
