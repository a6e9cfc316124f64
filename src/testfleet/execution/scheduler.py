"""Which test runs next, and on which worker.

Order. Items are grouped into *units* by ``--dist``: ``load`` (one item each), ``loadscope`` (the
items of one class, or of one module when not in a class) or ``loadfile`` (one file). Units that
failed in the last run go first (``failed_first``); then slowest first by the median duration the
store has seen for each item, unknown items counting as the mean of the known ones. Durations
are bucketed on a ×1.5 scale so that tests of about the same length keep their collection order,
which keeps module and class fixtures alive across neighbouring items.

Batches. Work is handed out by *guided self-scheduling*: each batch is worth about
``remaining / (4 × workers)`` of the estimated remaining time (at least one unit), so batches are
large while the queue is long (few messages) and shrink to single units at the end (no worker
left with a long tail). A worker is topped up before it runs dry (see ``needs_work``).

Reruns go to the front, and to another worker than the one the test failed on when one exists.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass

GUIDED_FACTOR = 4
MAX_BATCH = 1000
DIST_MODES = ("load", "loadscope", "loadfile")


def scope_of(nodeid: str, dist: str) -> str:
    if dist == "loadfile":
        return nodeid.split("::", 1)[0]
    if dist == "loadscope":
        base = nodeid.split("[", 1)[0]
        return base.rsplit("::", 1)[0] if "::" in base else base
    return nodeid


@dataclass(slots=True)
class Unit:
    indices: list[int]
    estimate: float
    failed_before: bool


class Scheduler:
    def __init__(self, nodeids: Sequence[str], *, workers: int, dist: str = "load",
                 history: dict[str, float] | None = None, failed: set[str] | None = None,
                 failed_first: bool = True, order: Sequence[int] | None = None) -> None:
        if dist not in DIST_MODES:
            raise ValueError(f"unknown dist mode {dist!r}")
        history = history or {}
        failed = failed or set()
        self.workers = max(1, workers)
        known = [history[n] for n in nodeids if n in history]
        mean = sum(known) / len(known) if known else 1.0
        self.estimates = [history.get(n, mean) for n in nodeids]
        groups: dict[str, list[int]] = {}
        for index in (range(len(nodeids)) if order is None else order):
            groups.setdefault(scope_of(nodeids[index], dist), []).append(index)
        units = [Unit(ix, sum(self.estimates[i] for i in ix), any(nodeids[i] in failed for i in ix))
                 for ix in groups.values()]

        def bucket(estimate: float) -> int:
            return int(math.log(estimate * 1000.0 + 1.0, 1.5))

        units.sort(key=lambda u: (not (failed_first and u.failed_before), -bucket(u.estimate)))
        self.queue: deque[Unit] = deque(units)
        self.remaining = sum(u.estimate for u in units)
        self.reruns: deque[tuple[int, str | None]] = deque()

    @property
    def empty(self) -> bool:
        return not self.queue and not self.reruns

    def __len__(self) -> int:
        return sum(len(u.indices) for u in self.queue) + len(self.reruns)

    def next_batch(self, worker_id: str, *, alive: int) -> list[int]:
        """Indices for ``worker_id`` to run next; empty when nothing is left for it."""
        batch = self._take_reruns(worker_id, alive)
        if batch:
            return batch
        if not self.queue:
            return []
        target = self.remaining / (GUIDED_FACTOR * self.workers)
        worth = 0.0
        while self.queue and len(batch) < MAX_BATCH:
            unit = self.queue[0]
            if batch and worth + unit.estimate > target:
                break
            self.queue.popleft()
            batch.extend(unit.indices)
            worth += unit.estimate
            self.remaining -= unit.estimate
        return batch

    def _take_reruns(self, worker_id: str, alive: int) -> list[int]:
        taken: list[int] = []
        for _ in range(len(self.reruns)):
            index, avoid = self.reruns.popleft()
            if avoid == worker_id and alive > 1:
                self.reruns.append((index, avoid))
            else:
                taken.append(index)
        return taken

    def rerun(self, index: int, avoid: str | None) -> None:
        self.reruns.append((index, avoid))

    def requeue(self, indices: Sequence[int]) -> None:
        """Put back work a lost worker never ran; it goes first."""
        if indices:
            estimate = sum(self.estimates[i] for i in indices)
            self.queue.appendleft(Unit(list(indices), estimate, False))
            self.remaining += estimate

    def cancel(self) -> list[int]:
        """Drop everything still queued (``-x``); returns what was dropped."""
        dropped = [i for u in self.queue for i in u.indices] + [i for i, _ in self.reruns]
        self.queue.clear()
        self.reruns.clear()
        self.remaining = 0.0
        return dropped

    def needs_work(self, outstanding: int, last_batch: int) -> bool:
        """Top a worker up while it still has work, so it never waits on a round trip."""
        return outstanding <= max(2, last_batch // 4)
