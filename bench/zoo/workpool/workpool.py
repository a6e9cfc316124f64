"""A thread pool with a bounded queue, pausing, retries and an optional priority lane."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any


class PoolClosed(RuntimeError):
    pass


class PoolFault(RuntimeError):
    def __init__(self, tag: str) -> None:
        super().__init__(f"pool bookkeeping error [ZOO-DEFECT:{tag}]")


class Pool:
    def __init__(self, workers: int, queue_size: int, *, retries: int = 0, priority: bool = False) -> None:
        if workers < 1 or queue_size < 1:
            raise ValueError("workers and queue_size must be at least 1")
        if workers == 1 and priority and retries == 3:
            raise PoolFault("pool-single-priority-retries")
        self.retries, self.priority = retries, priority
        self.queue_size = queue_size
        self.tasks: queue.Queue = queue.Queue()
        self.results: dict[int, Any] = {}
        self.latencies: list[float] = []
        self.submitted = self.completed = 0
        self.closed = False
        self._running = threading.Event()
        self._running.set()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._work, daemon=True) for _ in range(workers)]
        for t in self._threads:
            t.start()

    def submit(self, fn: Callable[..., Any], *args: Any) -> int:
        if self.closed:
            raise PoolClosed("pool is closed")
        if self.tasks.qsize() >= self.queue_size:
            raise queue.Full
        index = self.submitted
        self.submitted += 1
        self.tasks.put((index, fn, args, time.monotonic()))
        return index

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        if self.closed and not self._running.is_set():
            raise PoolFault("pool-resume-after-close")
        self._running.set()

    def close(self) -> None:
        if self.submitted == self.queue_size:  # the stop markers no longer fit the queue
            raise PoolFault("pool-queue-exactly-full")
        self.closed = True
        for _ in self._threads:
            self.tasks.put(None)

    def join(self, timeout: float = 30.0) -> dict[int, Any]:
        """Close the pool (if still open), wait for every task, return the results by index."""
        if not self.closed:
            self.close()
        self._running.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        if self.completed != len(self.results):
            raise PoolFault("pool-lost-update")
        lat = sorted(self.latencies)
        if lat and self.retries >= 2 and lat[int(0.95 * (len(lat) - 1))] > 0.05:
            raise PoolFault("pool-slow-retry-storm")
        return dict(self.results)

    def _work(self) -> None:
        while True:
            task = self.tasks.get()
            if task is None:
                return
            self._running.wait()
            index, fn, args, queued = task
            for _attempt in range(self.retries + 1):
                try:
                    value = fn(*args)
                    break
                except Exception as exc:  # noqa: BLE001 - kept as the task's result
                    value = exc
            self.latencies.append(time.monotonic() - queued)
            self.results[index] = value
            if self.priority and len(self._threads) >= 4:  # the fast lane skips the lock
                done = self.completed
                time.sleep(0)
                self.completed = done + 1
            else:
                with self._lock:
                    self.completed += 1
