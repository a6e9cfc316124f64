"""Escalating recovery: one policy decides what the fleet does when its infrastructure fails.

Levels, each taken only when the ones below it are spent or cannot help, each logged with its
reason (a ``recovery`` event and a console line):

1. retry the test on the same worker (an infrastructure error the worker survived: a refused
   connection, a SUT that crashed under the test);
2. retry it on another worker (a crash, or the same error again; ``--reruns`` for plain failures);
3. restart the SUT instance (its breaker opened; the instance lives in its worker's session, so
   it restarts with a fresh worker in the same seat, not counted against ``--max-worker-restarts``);
4. replace the worker (it crashed or was killed for a timeout; crashes count against
   ``--max-worker-restarts``);
5. quarantine the worker's seat for the rest of the run (its breaker opened ``quarantine_after``
   times); on Ray, quarantine the node (see below);
6. stop the run (``--max-worker-restarts`` spent, or every seat quarantined with work left): the
   run ends as interrupted (exit 2) with the level and its reason.

With ``[tool.testfleet.breakers] enabled = false`` the same policy gives testfleet's plain rules:
a crashed test is retried once on another worker (never after crashing two), a failure is rerun
while ``--reruns`` allows, a lost worker is replaced while ``--max-worker-restarts`` lasts, and
the run ends only when every worker is gone.

**Ray nodes.** On the Ray backend a seat's worker runs on a Ray node, and a node can be what
fails (its disk, its network, its memory), whichever seat is on it. Every opening of a worker's or
instance breaker is also counted against the node its seat's worker ran on when it opened. A node
is quarantined once those openings reach ``quarantine_after`` *across its seats* (one seat opening
that often quarantines the seat too; two seats opening once each with ``quarantine_after = 2``
quarantine only the node). A quarantined node gets no new worker for the rest of the run (the
backend excludes it from placement: a Ray label selector ``ray.io/node-id: !in(...)``), and the
seats whose workers are on it are quarantined with it (their workers finish the test they run and
leave; what they held goes to the others), so nothing waits for room elsewhere that may never come.
The cluster's last node that can still take workers is never quarantined: the event says so and the
run goes on. The ``recovery`` event (level 5, ``quarantine the Ray node``) names the node, its
openings per seat and the last breaker's reason.

:class:`EscalationPolicy` is the decision, free of processes and clocks (tests drive it with a
fake clock); :class:`~testfleet.execution.coordinator.recovering.Recovery` applies it to a run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from testfleet.execution.breakers import BreakerBoard, BreakerSettings, CircuitBreaker, Transition
from testfleet.execution.resilience import CRASHES_BEFORE_GIVING_UP, RetryPolicy
from testfleet.model import Outcome

LEVELS = {
    1: "retry on the same worker",
    2: "retry on another worker",
    3: "restart the SUT instance",
    4: "replace the worker",
    5: "quarantine the worker",
    6: "stop the run",
}
NODE_ACTION = "quarantine the Ray node"


@dataclass(frozen=True)
class Step:
    """One level of recovery taken: which, on what, and why."""

    level: int
    target: str
    reason: str
    what: str | None = None  # the action, where it is not the level's own (a Ray node's quarantine)

    @property
    def action(self) -> str:
        return self.what or LEVELS[self.level]

    def describe(self) -> str:
        return f"recovery level {self.level} ({self.action}) for {self.target}: {self.reason}"

    def event(self) -> dict[str, object]:
        return {"kind": "recovery", "case_id": "", "variant_id": None, "nodeid": "", "level": self.level,
                "action": self.action, "target": self.target, "reason": self.reason,
                "message": self.describe()}


class EscalationPolicy:
    """Which level of recovery a failure calls for. ``seat`` names a worker's place in the fleet
    (its first worker's id; replacements inherit it), so a place that keeps failing is seen as
    one whatever its processes are called."""

    def __init__(self, settings: BreakerSettings | None = None, *, reruns: int = 0, restart_budget: int = 4,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.settings = settings or BreakerSettings()
        self.enabled = self.settings.enabled
        self.board = BreakerBoard(self.settings, clock)
        self.retry = RetryPolicy(reruns)
        self.restart_budget = restart_budget
        self.restarts = 0
        self.quarantined: set[str] = set()
        self.infra_retries: dict[int, int] = {}
        self.node_openings: dict[str, dict[str, int]] = {}  # Ray node -> seat -> breaker openings there
        self.quarantined_nodes: set[str] = set()
        self.spared_nodes: set[str] = set()  # reached the rule but could not be quarantined (the last one)

    # -- a failed test ----------------------------------------------------------------------
    def retry_step(self, index: int, outcome: Outcome, *, attempt: int, crashes: int, infrastructure: bool,
                   worker: str, worker_alive: bool) -> Step | None:
        """Whether a failed test runs again, and where (level 1 or 2); None: its result is final.
        ``attempt`` and ``crashes`` count the attempt just finished."""
        plain = self.retry.should_retry(outcome, attempt, crashes)
        if not self.enabled or not infrastructure or outcome is Outcome.timeout:
            # assertion failures follow --reruns; a timeout is the test's own (it is not retried)
            if not plain:
                return None
            reason = f"{outcome.value} (attempt {attempt})"
            return Step(2, worker, reason + (", crashed its worker" if outcome is Outcome.crashed else ""))
        if outcome is Outcome.crashed:
            return Step(2, worker, f"the test crashed worker {worker}") if plain else None
        tries = self.infra_retries[index] = self.infra_retries.get(index, 0) + 1
        if tries > CRASHES_BEFORE_GIVING_UP:
            return Step(2, worker, f"{outcome.value} (attempt {attempt})") if plain else None
        if tries == 1 and worker_alive:
            return Step(1, worker, "infrastructure error the worker survived")
        return Step(2, worker, "infrastructure error again" if tries > 1 else "its worker is gone")

    # -- breakers -----------------------------------------------------------------------------
    def observe(self, scope: str, target: str, infrastructure: bool, kind: str) -> Transition | None:
        if not self.enabled:
            return None
        return self.board.get(scope, target).record(infrastructure, kind)  # type: ignore[arg-type]

    def seat_breakers(self, seat: str) -> list[CircuitBreaker]:
        return [b for scope in ("worker", "instance") if (b := self.board.breakers.get((scope, seat))) is not None]

    def seat_admits(self, seat: str) -> int | None:
        """Tests a seat may take now: None (any), 0 (none: open or quarantined), or probes left."""
        if seat in self.quarantined:
            return 0
        if not self.enabled:
            return None
        limits = [a for b in self.seat_breakers(seat) if (a := b.admits()) is not None]
        return min(limits) if limits else None

    def on_open(self, transition: Transition) -> Step | None:
        """A worker's or instance's breaker opened: the level it escalates to (3, or 5 once the
        seat's breakers opened ``quarantine_after`` times); None for an endpoint."""
        if transition.scope == "endpoint":
            return None
        seat = transition.target
        openings = sum(b.openings for b in self.seat_breakers(seat))
        if openings >= self.settings.quarantine_after:
            self._quarantine_seat(seat)
            return Step(5, seat, f"its breakers opened {openings} times (quarantine_after = "
                        f"{self.settings.quarantine_after}); last: {transition.reason}")
        if transition.scope == "instance":
            return Step(3, seat, f"instance breaker open ({transition.reason}); a fresh worker session "
                        f"restarts it after the cool-down of {self.settings.cooldown:g} s")
        return None

    def node_opened(self, node: str, seat: str, reason: str) -> Step | None:
        """A breaker of ``seat`` opened while its worker ran on Ray node ``node``: the node's
        quarantine (level 5, not yet applied: :meth:`quarantine_node`) once its seats' openings
        reach ``quarantine_after``; None before, or once it is quarantined or spared."""
        seats = self.node_openings.setdefault(node, {})
        seats[seat] = seats.get(seat, 0) + 1
        total = sum(seats.values())
        if node in self.quarantined_nodes or node in self.spared_nodes or total < self.settings.quarantine_after:
            return None
        each = ", ".join(f"{s} x{n}" for s, n in sorted(seats.items()))
        return Step(5, f"node {node}", f"breakers of its seats opened {total} times ({each}; quarantine_after = "
                    f"{self.settings.quarantine_after}); last: {reason}", what=NODE_ACTION)

    def quarantine_node(self, node: str, seats: list[str]) -> None:
        """The node takes no more workers; ``seats``, whose workers are on it, are quarantined with it."""
        self.quarantined_nodes.add(node)
        for seat in seats:
            self._quarantine_seat(seat)

    def _quarantine_seat(self, seat: str) -> None:
        """No more work for the seat: its breakers stay open for the rest of the run."""
        self.quarantined.add(seat)
        for breaker in self.seat_breakers(seat):
            breaker.hold_open()

    # -- a lost worker ------------------------------------------------------------------------
    def replace_step(self, seat: str, worker: str, *, counts: bool, cause: str) -> Step | None:
        """A worker left unasked (``cause``). Level 4 (replace it), 5 (its seat is quarantined), 6
        (the restart budget is spent, breakers on), or None: not replaced now (budget spent,
        breakers off; or its breaker is open and the seat is refilled when it probes)."""
        if seat in self.quarantined:
            return Step(5, seat, f"{worker} {cause}; the seat stays empty for the rest of the run")
        if self.enabled and self.seat_admits(seat) == 0:
            return None
        if counts:
            if self.restarts >= self.restart_budget:
                if self.enabled:
                    return Step(6, worker, f"{worker} {cause} and --max-worker-restarts "
                                f"({self.restart_budget}) is spent")
                return None
            self.restarts += 1
        return Step(4, worker, f"{worker} {cause}" + (f" (restart {self.restarts} of {self.restart_budget})"
                                                      if counts else ""))

    def give_up_step(self, left: int, target: str = "fleet") -> Step:
        """Level 6 when no worker is left to run ``left`` tests."""
        why = ("every seat is quarantined" if self.quarantined else
               f"all workers are gone and --max-worker-restarts ({self.restart_budget}) is spent")
        return Step(6, target, f"{why}: {left} test{'s' if left != 1 else ''} not run")
