"""Escalating recovery: which level each failure reaches, with breakers on and off (fake clock)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from testfleet.execution import protocol as P
from testfleet.execution.backends.base import Backend, Event
from testfleet.execution.breakers import BreakerSettings
from testfleet.execution.coordinator import Orchestrator, Slot
from testfleet.execution.coordinator.recovering import Recovery
from testfleet.execution.plan import RunPlan
from testfleet.execution.recovery import EscalationPolicy
from testfleet.execution.scheduler import Scheduler
from testfleet.model import Case, Outcome, Run, Variant


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def policy(enabled: bool = True, *, reruns: int = 0, budget: int = 4, clock: Clock | None = None,
           **breakers: object) -> EscalationPolicy:
    values: dict[str, object] = {"enabled": enabled, "consecutive_errors": 2, "cooldown": 5.0,
                                 "quarantine_after": 2} | breakers
    return EscalationPolicy(BreakerSettings(**values), reruns=reruns, restart_budget=budget, clock=clock or Clock())


def level(step: object) -> int | None:
    return None if step is None else step.level  # type: ignore[attr-defined]


def test_off_keeps_the_plain_rules_crash_retried_once_failures_by_reruns_budget_then_no_replacement() -> None:
    p = policy(False, reruns=1, budget=1)
    crash = {"infrastructure": True, "worker": "gw1", "worker_alive": False}
    assert level(p.retry_step(0, Outcome.crashed, attempt=1, crashes=1, **crash)) == 2
    assert p.retry_step(0, Outcome.crashed, attempt=2, crashes=2, **crash) is None
    refused = {"infrastructure": True, "worker": "gw1", "worker_alive": True}
    assert level(p.retry_step(1, Outcome.failed, attempt=1, crashes=0, **refused)) == 2  # --reruns 1
    assert p.retry_step(1, Outcome.failed, attempt=2, crashes=0, **refused) is None
    assert level(p.replace_step("gw1", "gw1", counts=True, cause="exited with code 7")) == 4
    assert p.replace_step("gw1", "gw2", counts=True, cause="exited with code 7") is None  # budget spent
    assert level(p.replace_step("gw1", "gw3", counts=False, cause="was killed for a timeout")) == 4
    assert p.observe("worker", "gw1", True, "crash") is None  # no breakers
    assert p.seat_admits("gw1") is None


def test_an_error_the_worker_survived_is_retried_there_first_then_elsewhere_then_by_reruns() -> None:
    p = policy(reruns=0)
    kw = {"infrastructure": True, "worker": "gw0", "crashes": 0}
    first = p.retry_step(5, Outcome.failed, attempt=1, worker_alive=True, **kw)
    assert level(first) == 1 and first is not None and first.target == "gw0"
    assert level(p.retry_step(5, Outcome.failed, attempt=2, worker_alive=True, **kw)) == 2
    assert p.retry_step(5, Outcome.failed, attempt=3, worker_alive=True, **kw) is None  # reruns = 0
    # a worker that is gone (or whose seat opened) cannot take it back: another one does
    assert level(p.retry_step(6, Outcome.error, attempt=1, worker_alive=False, **kw)) == 2


def test_assertion_failures_and_timeouts_are_not_recovered() -> None:
    p = policy(reruns=0)
    assert p.retry_step(0, Outcome.failed, attempt=1, crashes=0, infrastructure=False, worker="gw0",
                        worker_alive=True) is None
    assert p.retry_step(1, Outcome.timeout, attempt=1, crashes=0, infrastructure=True, worker="gw0",
                        worker_alive=False) is None


def test_a_crash_is_retried_on_another_worker_once() -> None:
    p = policy()
    kw = {"infrastructure": True, "worker": "gw1", "worker_alive": False}
    assert level(p.retry_step(0, Outcome.crashed, attempt=1, crashes=1, **kw)) == 2
    assert p.retry_step(0, Outcome.crashed, attempt=2, crashes=2, **kw) is None


def test_spent_restart_budget_stops_the_run_with_breakers_on() -> None:
    p = policy(budget=1)
    assert level(p.replace_step("gw1", "gw1", counts=True, cause="exited with code 7")) == 4
    step = p.replace_step("gw1", "gw2", counts=True, cause="exited with code 7")
    assert level(step) == 6 and step is not None
    assert "--max-worker-restarts (1) is spent" in step.reason


def test_an_open_seat_is_not_refilled_and_repeated_openings_quarantine_it() -> None:
    clock = Clock()
    p = policy(clock=clock)
    assert p.observe("worker", "gw1", True, "crash") is None
    opened = p.observe("worker", "gw1", True, "crash")
    assert opened is not None and opened.new == "open"
    assert p.on_open(opened) is None  # first opening of a worker breaker: wait, then probe
    assert p.seat_admits("gw1") == 0
    assert p.replace_step("gw1", "gw2", counts=True, cause="exited with code 7") is None
    assert p.restarts == 0  # not counted: the seat stays empty until it probes
    clock.now += 5
    [half] = p.board.poll()
    assert half.new == "half_open" and p.seat_admits("gw1") == 1
    reopened = p.observe("worker", "gw1", True, "crash")  # the probe crashed too
    assert reopened is not None and reopened.new == "open"
    step = p.on_open(reopened)
    assert level(step) == 5 and step is not None and "opened 2 times" in step.reason
    assert p.seat_admits("gw1") == 0
    clock.now += 100
    assert p.board.poll() == [] and p.board.next_due() is None  # it never probes again
    assert p.seat_admits("gw1") == 0  # for the rest of the run
    assert "quarantined" in p.give_up_step(3).reason


def test_an_instance_breaker_escalates_to_restarting_the_instance() -> None:
    p = policy()
    p.observe("instance", "gw0", True, "SUT failure")
    opened = p.observe("instance", "gw0", True, "SUT failure")
    assert opened is not None
    step = p.on_open(opened)
    assert level(step) == 3 and step is not None and "instance breaker open" in step.reason
    assert p.seat_admits("gw0") == 0  # the seat takes no work until the fresh instance probes


def test_endpoint_breakers_do_not_touch_seats() -> None:
    p = policy()
    p.observe("endpoint", "GET /items/{id}", True, "connection error")
    opened = p.observe("endpoint", "GET /items/{id}", True, "connection error")
    assert opened is not None and p.on_open(opened) is None
    assert p.seat_admits("gw0") is None


def test_give_up_says_why_and_how_many() -> None:
    step = policy(budget=3).give_up_step(7)
    assert step.level == 6 and step.action == "stop the run"
    assert step.reason == "all workers are gone and --max-worker-restarts (3) is spent: 7 tests not run"
    assert step.event()["kind"] == "recovery" and step.event()["level"] == 6


# -- endpoint breakers in the coordinator (a backend that only records what is sent) -----------
ORDERS = "name: {name}\nsteps:\n{steps}"
REFUSED = "step 'create' (POST http://127.0.0.1:9/orders): no response: ConnectError: [Errno 111] Connection refused"


class Sent(Backend):
    name = "sent"

    def __init__(self) -> None:
        self.sent: list[tuple[str, P.CoordinatorMessage]] = []

    def start(self) -> None: ...
    def spawn_worker(self, worker_id: str, pool: str = "") -> None: ...
    def kill(self, worker_id: str, sig: int) -> None: ...
    def poll(self, timeout: float | None) -> list[Event]:
        return []
    def collector_output(self) -> str:
        return ""
    def close(self) -> None: ...

    def send(self, worker_id: str, message: P.CoordinatorMessage) -> bool:
        self.sent.append((worker_id, message))
        return True

    def ran(self) -> list[int]:
        return [i for _, m in self.sent if isinstance(m, P.Run) for i in m.indices]


def scenario_run(tmp_path: Path, clock: Clock) -> tuple[Orchestrator, Sent]:
    files = {"a": [("list", "GET", "/items"), ("create", "POST", "/orders")],
             "b": [("create", "POST", "/orders")], "c": [("health", "GET", "/health")],
             "d": [("create", "POST", "/orders")], "e": [("create", "POST", "/orders")]}
    for name, steps in files.items():
        text = "".join(f"  - name: {s}\n    request: {{method: {m}, path: {p}}}\n" for s, m, p in steps)
        (tmp_path / f"{name}.scenario.yaml").write_text(ORDERS.format(name=name, steps=text))
    backend = Sent()
    plan = RunPlan(workers=2, breakers=BreakerSettings(consecutive_errors=2, cooldown=5.0))
    run = Run(run_id="r", started_at=datetime.now(UTC), rootdir=str(tmp_path))
    orchestrator = Orchestrator(backend, plan, run, recorder=None)  # type: ignore[arg-type]
    orchestrator.recovery = Recovery(orchestrator, clock=clock)
    nodeids = [f"{name}.scenario.yaml::{name}" for name in files]
    orchestrator.items = [{"nodeid": n, "file": n.split("::")[0], "line": 0, "uses_instance": False}
                          for n in nodeids]
    orchestrator.cases = [Case.from_nodeid(n) for n in nodeids]
    orchestrator.variants = [Variant.of(c) for c in orchestrator.cases]
    orchestrator.total = len(nodeids)
    orchestrator.scheduler = Scheduler(nodeids, workers=2, order=[2])  # a and b ran first; d, e come later
    for worker in ("gw0", "gw1"):
        orchestrator.fleet.slots[worker] = Slot(worker, ready=True, seat=worker)
    return orchestrator, backend


def result(outcome: str, message: str = "") -> P.TestResult:
    return P.TestResult(outcome=outcome, categories=[outcome], when="call", message=message, longrepr=message,
                        start=0.0, stop=0.0, duration=0.0)


def test_an_open_endpoint_holds_its_scenarios_back_probes_one_then_lets_them_go(tmp_path: Path) -> None:
    clock = Clock()
    orchestrator, backend = scenario_run(tmp_path, clock)
    recording, fleet = orchestrator.recording, orchestrator.fleet
    recording.record(0, "gw0", result("failed", REFUSED))  # a: GET /items answered, POST /orders refused
    recording.record(2, "gw0", result("passed"))  # c on gw0 passed: its seat is fine
    recording.record(1, "gw1", result("failed", REFUSED))  # b: POST /orders refused again
    changes = [(e["scope"], e["target"], e["to"]) for e in orchestrator.recovery.events if e["kind"] == "breaker"]
    assert changes == [("endpoint", "POST /orders", "open")]
    assert orchestrator.recovery.policy.board.get("endpoint", "GET /items").state == "closed"
    assert 0 in backend.ran()  # a's retry went to gw0 before the breaker opened; b's waits
    orchestrator.scheduler.requeue([3, 4])  # d and e reach POST /orders too
    fleet.feed_all()
    assert set(orchestrator.recovery.held) == {1, 3, 4}
    assert not {1, 3, 4} & set(backend.ran())
    clock.now += 5
    orchestrator.recovery.tick()  # half-open: exactly one of them goes, as the probe
    probes = [i for i in backend.ran() if i in (1, 3, 4)]
    assert len(probes) == 1 and set(orchestrator.recovery.held) == {1, 3, 4} - set(probes)
    [probe] = probes
    recording.record(probe, "gw0", result("passed"))  # the endpoint answers again: closed
    fleet.feed_all()
    assert orchestrator.recovery.held == {} and set(backend.ran()) >= {1, 3, 4}
    assert [e["to"] for e in orchestrator.recovery.events if e["kind"] == "breaker"] == ["open", "half_open", "closed"]


def test_scenarios_still_held_when_the_run_ends_are_errors_naming_the_breaker(tmp_path: Path) -> None:
    orchestrator, _backend = scenario_run(tmp_path, Clock())
    orchestrator.recording.record(0, "gw0", result("failed", REFUSED))
    orchestrator.recording.record(1, "gw1", result("failed", REFUSED))
    orchestrator.scheduler.requeue([3, 4])
    orchestrator.fleet.feed_all()
    orchestrator.recovery.settle()
    final = orchestrator.recording.final
    for index in (1, 3, 4):  # never ran (again): an error each, not silently lost
        assert final[index].outcome is Outcome.error
        assert final[index].message == ("not run: the circuit breaker of endpoint POST /orders was open "
                                        "when the run ended")


SUT_CRASHED = "the system under test crashed during this test (exit code -9); restarted it on port 5000"


def fed_run(backend: Sent, plan: RunPlan, tests: int, *, uses_instance: bool) -> Orchestrator:
    """An orchestrator of ``tests`` tests of t.py, two workers (gw0, gw1) fed their first work."""
    orchestrator = Orchestrator(backend, plan, Run(run_id="r", started_at=datetime.now(UTC)),
                                recorder=None)  # type: ignore[arg-type]
    nodeids = [f"t.py::test_{i}" for i in range(tests)]
    orchestrator.items = [{"nodeid": n, "file": "t.py", "line": i, "uses_instance": uses_instance}
                          for i, n in enumerate(nodeids)]
    orchestrator.cases = [Case.from_nodeid(n) for n in nodeids]
    orchestrator.variants = [Variant.of(c) for c in orchestrator.cases]
    orchestrator.total = len(nodeids)
    orchestrator.scheduler = Scheduler(nodeids, workers=2)
    orchestrator.fleet.next_worker = 2
    for worker in ("gw0", "gw1"):
        orchestrator.fleet.slots[worker] = Slot(worker, ready=True, seat=worker)
    return orchestrator


def test_an_instance_that_keeps_crashing_is_vacated_restarted_in_a_fresh_worker_and_probed() -> None:
    clock = Clock()
    backend = Sent()
    spawned: list[str] = []
    backend.spawn_worker = lambda worker_id, pool="": spawned.append(worker_id)  # type: ignore[method-assign]
    plan = RunPlan(workers=2, breakers=BreakerSettings(consecutive_errors=2, cooldown=5.0))
    orchestrator = fed_run(backend, plan, 12, uses_instance=True)
    orchestrator.recovery = recovery = Recovery(orchestrator, clock=clock)
    fleet = orchestrator.fleet
    fleet.feed_all()
    gw1 = fleet.slots["gw1"]
    first = gw1.outstanding[0]
    orchestrator.worker_ran(gw1, first, result("error", SUT_CRASHED))
    assert [(w, m.indices) for w, m in backend.sent if isinstance(m, P.Run) and m.indices == [first]] \
        == [("gw1", [first])]  # level 1: the same worker runs it again
    orchestrator.worker_ran(gw1, first, result("error", SUT_CRASHED))  # the instance crashed again
    assert ("gw1", P.Stop()) in backend.sent  # its seat takes no more work: the worker stops
    held = list(gw1.outstanding)
    assert held  # it still held queued tests when it was told to stop
    gw1.said_bye = True
    orchestrator.worker_lost(gw1, None)  # it left after its test: what it held goes to gw0
    assert orchestrator.scheduler is not None and set(held) <= set(orchestrator.scheduler.queues[""][0].indices)
    clock.now += 5
    recovery.tick()  # half-open: a fresh worker (a fresh instance) takes the seat
    assert spawned == ["gw2"] and fleet.slots["gw2"].seat == "gw1"
    orchestrator.worker_hello("gw2")
    to_gw2 = [m for w, m in backend.sent if w == "gw2" and isinstance(m, (P.Run, P.Flush))]
    assert len(to_gw2) == 2 and len(to_gw2[0].indices) == 1 and isinstance(to_gw2[1], P.Flush)  # type: ignore[union-attr]
    [probe] = to_gw2[0].indices  # type: ignore[union-attr]
    orchestrator.worker_ran(fleet.slots["gw2"], probe, result("passed"))
    assert len([m for w, m in backend.sent if w == "gw2" and isinstance(m, P.Run)]) > 1  # closed: fed again
    changes = [(e["scope"], e["target"], e["to"]) for e in recovery.events if e["kind"] == "breaker"]
    assert changes == [("instance", "gw1", "open"), ("instance", "gw1", "half_open"), ("instance", "gw1", "closed")]
    assert recovery.events[1]["moved"] == len(held)
    levels = [e["level"] for e in recovery.events if e["kind"] == "recovery"]
    assert levels == [1, 3, 2, 3]  # same worker; restart the instance; the test elsewhere; the fresh session


def test_a_worker_chaos_killed_is_replaced_without_spending_a_restart(tmp_path: Path) -> None:
    orchestrator, backend = scenario_run(tmp_path, Clock())
    backend.spawn_worker = lambda worker_id, pool="": None  # type: ignore[method-assign]
    recovery = orchestrator.recovery
    recovery.injected.add("gw1")
    recovery.replace(orchestrator.fleet.slots["gw1"], counts=True, cause="killed by signal 9 (SIGKILL)")
    recovery.replace(orchestrator.fleet.slots["gw0"], counts=True, cause="killed by signal 9 (SIGKILL)")
    steps = [e["message"] for e in recovery.events if e["kind"] == "recovery"]
    assert [step.split(": ", 1)[1] for step in steps] == [
        "gw1 killed by signal 9 (SIGKILL) (injected)",
        f"gw0 killed by signal 9 (SIGKILL) (restart 1 of {orchestrator.plan.restart_budget})"]
    assert recovery.policy.restarts == 1 and not recovery.injected


def test_a_test_whose_worker_chaos_killed_is_retried_and_not_called_flaky() -> None:
    backend = Sent()
    backend.spawn_worker = lambda worker_id, pool="": None  # type: ignore[method-assign]
    orchestrator = fed_run(backend, RunPlan(workers=2), 4, uses_instance=False)
    fleet = orchestrator.fleet
    fleet.feed_all()
    gw1 = fleet.slots["gw1"]
    first = gw1.outstanding[0]
    orchestrator.recovery.injected.add("gw1")  # the injector SIGKILLed gw1 while it ran `first`
    orchestrator.worker_lost(gw1, -9)
    assert orchestrator.recording.crashes.get(first, 0) == 0
    orchestrator.worker_ran(fleet.slots["gw0"], first, result("passed"))  # the retry passes
    final = orchestrator.recording.final[first]
    assert final.outcome is Outcome.passed and not final.flaky
    attempts = [r for r in orchestrator.recording.results if r.nodeid == f"t.py::test_{first}"]
    assert [r.final for r in attempts] == [False, True]  # the lost attempt is kept, not final
