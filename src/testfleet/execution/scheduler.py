"""Which test runs next, and on which worker.

Order. Items are grouped into *units* by the ``--dist`` policy (a :class:`DistPolicy`): ``load``
(one item each), ``loadscope`` (the items of one class, or of one module when not in a class) or
``loadfile`` (one file). Units that
failed in the last run go first (``failed_first``); then slowest first by the median duration the
store has seen for each item, unknown items counting as the mean of the known ones. Durations
are bucketed on a ×1.5 scale so that tests of about the same length keep their collection order,
which keeps module and class fixtures alive across neighbouring items.

Batches. Work is handed out by *guided self-scheduling*: each batch is worth about
``remaining / (4 × workers)`` of the estimated remaining time (at least one unit), so batches are
large while the queue is long (few messages) and shrink to single units at the end (no worker
left with a long tail). A worker is topped up before it runs dry (see ``needs_work``).

Reruns go to the front, and to another worker than the one the test failed on when one exists.
A *pinned* item (a replay of a failure on one chosen worker) is taken only by its worker, first.

Pools. A test with requirements may only run on workers that meet them (on Ray: actors created
with those resources). Each distinct set of requirements is a *pool* with its own queue; a worker
belongs to one pool and only takes work from it. Without requirements everything is pool "".
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

GUIDED_FACTOR = 4
MAX_BATCH = 1000


class DistPolicy(Protocol):
    """A ``--dist`` mode: which items travel together, as one unit, to one worker."""

    name: str

    def scope(self, nodeid: str) -> str:
        """The unit an item belongs to: items with the same scope are handed out together."""
        ...


class Load:
    """``load``: every item is its own unit."""

    name = "load"

    def scope(self, nodeid: str) -> str:
        return nodeid


class LoadScope:
    """``loadscope``: the items of one class, or of one module when not in a class."""

    name = "loadscope"

    def scope(self, nodeid: str) -> str:
        base = nodeid.split("[", 1)[0]
        return base.rsplit("::", 1)[0] if "::" in base else base


class LoadFile:
    """``loadfile``: the items of one file."""

    name = "loadfile"

    def scope(self, nodeid: str) -> str:
        return nodeid.split("::", 1)[0]


POLICIES: dict[str, DistPolicy] = {policy.name: policy for policy in (Load(), LoadScope(), LoadFile())}
DIST_MODES = tuple(POLICIES)


def policy_for(dist: str) -> DistPolicy:
    try:
        return POLICIES[dist]
    except KeyError:
        raise ValueError(f"unknown dist mode {dist!r}") from None


def scope_of(nodeid: str, dist: str) -> str:
    # an unknown mode groups nothing, as ``load`` does (the Scheduler refuses it before)
    return POLICIES.get(dist, POLICIES["load"]).scope(nodeid)


@dataclass(slots=True)
class Unit:
    indices: list[int]
    estimate: float
    failed_before: bool
    pool: str = ""


class Scheduler:
    def __init__(self, nodeids: Sequence[str], *, workers: int, dist: str = "load",
                 history: dict[str, float] | None = None, failed: set[str] | None = None,
                 failed_first: bool = True, order: Sequence[int] | None = None,
                 pools: Sequence[str] | None = None, pool_workers: dict[str, int] | None = None) -> None:
        policy = policy_for(dist)
        history = history or {}
        failed = failed or set()
        self.workers = max(1, workers)
        self.pool_workers = dict(pool_workers or {})
        self.pools = list(pools) if pools is not None else [""] * len(nodeids)
        known = [history[n] for n in nodeids if n in history]
        mean = sum(known) / len(known) if known else 1.0
        self.estimates = [history.get(n, mean) for n in nodeids]
        groups: dict[tuple[str, str], list[int]] = {}
        for index in (range(len(nodeids)) if order is None else order):
            groups.setdefault((self.pools[index], policy.scope(nodeids[index])), []).append(index)
        units = [Unit(ix, sum(self.estimates[i] for i in ix), any(nodeids[i] in failed for i in ix), pool)
                 for (pool, _scope), ix in groups.items()]

        def bucket(estimate: float) -> int:
            return int(math.log(estimate * 1000.0 + 1.0, 1.5))

        units.sort(key=lambda u: (not (failed_first and u.failed_before), -bucket(u.estimate)))
        self.queues: dict[str, deque[Unit]] = {}
        self.remaining: dict[str, float] = {}
        for unit in units:
            self.queues.setdefault(unit.pool, deque()).append(unit)
            self.remaining[unit.pool] = self.remaining.get(unit.pool, 0.0) + unit.estimate
        self.reruns: deque[tuple[int, str | None]] = deque()
        self.pinned: dict[str, list[int]] = {}  # worker id -> items only it may take

    @property
    def pool_names(self) -> list[str]:
        """The pools that have work, the default pool "" first."""
        return sorted(self.queues, key=lambda pool: (pool != "", pool))

    @property
    def empty(self) -> bool:
        return not any(self.queues.values()) and not self.reruns and not any(self.pinned.values())

    def pool_empty(self, pool: str) -> bool:
        """Nothing queued for ``pool``, reruns and pinned items included: its workers may run what they hold."""
        return not self.queues.get(pool) and not any(self.pools[i] == pool for i, _ in self.reruns) \
            and not any(self.pools[i] == pool for pinned in self.pinned.values() for i in pinned)

    def __len__(self) -> int:
        return sum(len(u.indices) for q in self.queues.values() for u in q) + len(self.reruns) \
            + sum(len(p) for p in self.pinned.values())

    def next_batch(self, worker_id: str, *, alive: int, pool: str = "") -> list[int]:
        """Indices for ``worker_id`` (of ``pool``) to run next; empty when nothing is left for it."""
        batch = self.pinned.pop(worker_id, [])
        if batch:
            return batch
        batch = self._take_reruns(worker_id, alive, pool)
        if batch:
            return batch
        queue = self.queues.get(pool)
        if not queue:
            return []
        # the planned fleet, or more: workers added mid-run (a specialist on a grant) get a share
        # too; fewer never counts (at the start the first worker alone must not take it all)
        workers = max(self.workers if pool == "" else self.pool_workers.get(pool, 1), alive)
        target = self.remaining[pool] / (GUIDED_FACTOR * workers)
        worth = 0.0
        while queue and len(batch) < MAX_BATCH:
            unit = queue[0]
            if batch and worth + unit.estimate > target:
                break
            queue.popleft()
            batch.extend(unit.indices)
            worth += unit.estimate
            self.remaining[pool] -= unit.estimate
        return batch

    def _take_reruns(self, worker_id: str, alive: int, pool: str) -> list[int]:
        taken: list[int] = []
        for _ in range(len(self.reruns)):
            index, avoid = self.reruns.popleft()
            if self.pools[index] != pool or (avoid == worker_id and alive > 1):
                self.reruns.append((index, avoid))
            else:
                taken.append(index)
        return taken

    def rerun(self, index: int, avoid: str | None) -> None:
        self.reruns.append((index, avoid))

    def requeue(self, indices: Sequence[int]) -> None:
        """Put back work a lost worker never ran; it goes first in its pool."""
        for pool in dict.fromkeys(self.pools[i] for i in indices):
            mine = [i for i in indices if self.pools[i] == pool]
            estimate = sum(self.estimates[i] for i in mine)
            self.queues.setdefault(pool, deque()).appendleft(Unit(mine, estimate, False, pool))
            self.remaining[pool] = self.remaining.get(pool, 0.0) + estimate

    def extend(self, count: int, *, like: int) -> list[int]:
        """Append ``count`` new items shaped like item ``like`` (explored variants of its case);
        they go at the end of its pool's queue. Returns their indices."""
        start = len(self.pools)
        pool, estimate = self.pools[like], self.estimates[like]
        indices = list(range(start, start + count))
        self.pools.extend([pool] * count)
        self.estimates.extend([estimate] * count)
        self.queues.setdefault(pool, deque()).append(Unit(indices, estimate * count, False, pool))
        self.remaining[pool] = self.remaining.get(pool, 0.0) + estimate * count
        return indices

    def pin(self, like: int, worker_id: str) -> int:
        """A new item shaped like item ``like`` that only ``worker_id`` takes, before anything else
        (a replay of a failure on that worker). Returns its index."""
        index = len(self.pools)
        self.pools.append(self.pools[like])
        self.estimates.append(self.estimates[like])
        self.pinned.setdefault(worker_id, []).append(index)
        return index

    def unpin(self, worker_id: str) -> list[int]:
        """Drop the items pinned to ``worker_id`` (it left); returns them."""
        return self.pinned.pop(worker_id, [])

    def cancel(self) -> list[int]:
        """Drop everything still queued (``-x``); returns what was dropped."""
        dropped = [i for q in self.queues.values() for u in q for i in u.indices] + [i for i, _ in self.reruns] \
            + [i for pinned in self.pinned.values() for i in pinned]
        for queue in self.queues.values():
            queue.clear()
        self.reruns.clear()
        self.pinned.clear()
        self.remaining = dict.fromkeys(self.remaining, 0.0)
        return dropped

    def needs_work(self, outstanding: int, last_batch: int) -> bool:
        """Top a worker up while it still has work, so it never waits on a round trip."""
        return outstanding <= max(2, last_batch // 4)
