"""Orders that put every item right after every other at least once (adjacent-pair coverage).

Order dependences are usually about neighbours — an update right after a delete, a read right
after a write — which pairwise coverage of a permutation's classes ("which item comes first")
cannot reach. :func:`adjacent_pair_orders` builds a short list of orders in which every ordered
pair ``(a, b)``, ``a != b``, appears as neighbours ``a, b`` at least once: ``n (n - 1)`` pairs,
``n - 1`` per order, so at least ``n`` orders; the greedy walk below needs ``n`` or a few more.
Deterministic for a given seed (ties are broken by a seeded shuffle).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

__all__ = ["adjacent_pair_orders"]


def adjacent_pair_orders(items: Sequence[Any], seed: int = 0) -> list[list[Any]]:
    n = len(items)
    if n < 2:
        return []
    rng = np.random.default_rng(seed)
    uncovered = {(a, b) for a in range(n) for b in range(n) if a != b}
    orders: list[list[Any]] = []
    while uncovered:
        start_pairs = sorted(uncovered)
        a, b = start_pairs[int(rng.integers(len(start_pairs)))]
        order, used = [a, b], {a, b}
        uncovered.discard((a, b))
        while len(order) < n:
            last = order[-1]
            options = [c for c in range(n) if c not in used]
            rng.shuffle(options)
            # prefer a neighbour that covers a new pair, and among those one whose own next
            # steps still have new pairs to cover
            options.sort(key=lambda c: ((last, c) not in uncovered,
                                        -sum((c, d) in uncovered for d in range(n) if d not in used)))
            nxt = options[0]
            uncovered.discard((last, nxt))
            order.append(nxt)
            used.add(nxt)
        orders.append([items[i] for i in order])
    return orders
