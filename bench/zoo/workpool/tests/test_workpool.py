"""workpool as documented: every submitted task's result comes back under its index; a closed
(or joined) pool refuses work with PoolClosed; a full queue raises queue.Full."""

from __future__ import annotations

import queue
import time

import pytest
from workpool import Pool, PoolClosed

import testfleet
from testfleet import Bool, Int, Permutation


def square(x: int, ms: int = 0) -> int:
    time.sleep(ms / 1000)
    return x * x


def test_results_in_order() -> None:
    pool = Pool(2, 10)
    for i in range(5):
        pool.submit(square, i)
    pool.close()
    assert pool.join() == {i: i * i for i in range(5)}


@testfleet.explore(workers=Int(1, 8, default=2), queue_size=Int(1, 64, default=32),
                   tasks=Int(0, 100, default=10), task_ms=Int(0, 5, default=0),
                   retries=Int(0, 3, default=0), priority=Bool(default=False))
def test_runs_every_task(workers: int, queue_size: int, tasks: int, task_ms: int, retries: int,
                         priority: bool) -> None:
    pool = Pool(workers, queue_size, retries=retries, priority=priority)
    expected = {}
    for i in range(tasks):
        for _ in range(2):  # a full queue: back off once, then try again
            try:
                expected[pool.submit(square, i, task_ms)] = i * i
                break
            except queue.Full:
                time.sleep(task_ms / 1000 + 0.001)
    pool.close()
    assert pool.join() == expected


@testfleet.explore(order=Permutation(["submit", "pause", "resume", "close", "join"]))
def test_lifecycle(order: list[str]) -> None:
    pool = Pool(2, 8)
    closed = False
    for op in order:
        if op == "submit":
            if closed:
                with pytest.raises(PoolClosed):
                    pool.submit(square, 3)
            else:
                pool.submit(square, 3)
        elif op in ("close", "join"):
            getattr(pool, op)()
            closed = True
        else:
            getattr(pool, op)()
    if not closed:
        pool.close()
    pool.join()
