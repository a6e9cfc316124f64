"""What speculative hand-off *could* save on the long-tail suite, simulated on the same draws.

A copy starts only once nothing is queued (as MapReduce's backup tasks), so it can save only the
tail: the stragglers still running when the queue runs dry. How long that tail is, against the
whole run, depends on how many tests each worker runs: with few tests per worker a 10x straggler
is often the last thing running, with many it is absorbed mid-run by the other workers. This
event simulation replays the bench's own suite (durations, the seeded 5 % slowness per test, run
seed and execution: 0 for the original, 1 for a copy) under list scheduling, slowest first, and reports, per arm:

* ``off``: no copies;
* ``threshold``: a copy on a worker left idle once a test is past ``max(factor × history,
  history + min_extra)`` (testfleet's rule and defaults);
* ``oracle``: a copy at once, whenever it would finish first (the best any end-of-queue policy
  can do).

It models neither start-up nor the worker a cancelled copy costs (a constant is added to each
run), so it bounds what the measured figure can reach; it is no measurement.
"""

from __future__ import annotations

import hashlib
import heapq
from collections.abc import Sequence

from testfleet.execution.handoff import HandoffSettings

__all__ = ["simulate"]

SLOW_RATE, SLOW_FACTOR = 0.05, 10


def _slow(n: int, run_seed: int, execution: int) -> bool:
    key = f"test_work[{n}]|{run_seed}|{execution}".encode()  # the bench suite's own hash
    return int.from_bytes(hashlib.sha256(key).digest()[:8], "big") / 2**64 < SLOW_RATE


def _one(durations: Sequence[float], run_seed: int, workers: int, policy: str,
         factor: float, min_extra: float) -> float:
    def took(test: int, execution: int) -> float:
        return durations[test] * (SLOW_FACTOR if _slow(test, run_seed, execution) else 1)

    queue = sorted(range(len(durations)), key=lambda i: -durations[i])
    running: dict[int, tuple[int, float, float]] = {}  # worker -> (test, start, end)
    ends: list[tuple[float, int]] = []
    copied: set[int] = set()
    done: set[int] = set()

    def start(worker: int, test: int, at: float, length: float) -> None:
        running[worker] = (test, at, at + length)
        heapq.heappush(ends, (at + length, worker))

    for worker in range(min(workers, len(queue))):
        test = queue.pop(0)
        start(worker, test, 0.0, took(test, 0))
    last = 0.0
    while ends:
        now, worker = heapq.heappop(ends)
        if worker not in running or running[worker][2] != now:
            continue  # a cancelled copy's end
        test = running.pop(worker)[0]
        if test in done:
            continue
        done.add(test)
        last = max(last, now)
        for other, (same, _s, _e) in list(running.items()):
            if same == test:  # the other copy is cancelled; its worker is free
                del running[other]
        if queue:
            nxt = queue.pop(0)
            start(worker, nxt, now, took(nxt, 0))
            continue
        if policy == "off":
            continue
        best: tuple[float, int, float] | None = None
        for test_running, started, end in running.values():
            if test_running in copied:
                continue
            history = durations[test_running]
            due = started + (max(factor * history, history + min_extra) if policy == "threshold" else 0.0)
            at = max(now, due)
            length = took(test_running, 1)
            if at >= end or (policy == "oracle" and at + length >= end):
                continue
            if best is None or at < best[0]:
                best = (at, test_running, length)
        if best is not None:
            at, test_running, length = best
            copied.add(test_running)
            start(worker, test_running, at, length)
    return last


def simulate(durations: Sequence[float], run_seeds: Sequence[int], workers: int, *,
             settings: HandoffSettings | None = None, fixed_cost: float = 2.5) -> dict[str, float]:
    """Wall time summed over ``run_seeds`` per policy (``off``, ``threshold``, ``oracle``), each
    run counted with ``fixed_cost`` seconds of start and stop; ``threshold`` with the straggler
    rule of ``settings`` (testfleet's defaults when None)."""
    rule = settings or HandoffSettings()
    return {policy: sum(_one(durations, seed, workers, policy, rule.factor, rule.min_extra) + fixed_cost
                        for seed in run_seeds)
            for policy in ("off", "threshold", "oracle")}
