"""Escalating recovery: which level each failure reaches, with breakers on and off (fake clock)."""

from __future__ import annotations

from testfleet.execution.breakers import BreakerSettings
from testfleet.execution.recovery import EscalationPolicy
from testfleet.model import Outcome


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
