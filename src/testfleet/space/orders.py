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

__all__ = ["adjacent_pair_orders", "contiguous_sequences", "sequence_orders"]

#: Items up to which :func:`sequence_orders` covers ordered triples (above: pairs only).
MAX_TRIPLE_ITEMS = 10
#: Random candidate orders weighed per chosen order.
_CANDIDATES = 48


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


def sequence_orders(items: Sequence[Any], seed: int = 0) -> list[list[Any]]:
    """Orders in which every three items appear in every relative order (``a`` somewhere
    before ``b``, somewhere before ``c``; a sequence covering array of strength 3), then as many
    more as it takes for every ordered pair to be neighbours too (:func:`adjacent_pair_orders`'
    coverage). "Pause, then close, then resume" and "a patch after the delete" are met within the
    first few orders, where a uniform permutation meets a given triple once in six.

    Greedy: each order is the best of a few seeded random candidates (and their reversals) by
    the triples, then the neighbour pairs, it newly covers. With more than
    :data:`MAX_TRIPLE_ITEMS` items only pairs (``a`` before ``b``) and neighbours are covered.
    Deterministic for a given seed."""
    n = len(items)
    if n < 2:
        return []
    rng = np.random.default_rng(seed)
    width = 3 if 3 <= n <= MAX_TRIPLE_ITEMS else 2
    uncovered = _tuples(n, width)
    neighbours = {(a, b) for a in range(n) for b in range(n) if a != b}
    orders: list[list[int]] = []
    while uncovered or neighbours:
        best: tuple[int, int] | None = None
        choice: list[int] = []
        for _ in range(_CANDIDATES):
            drawn = [int(i) for i in rng.permutation(n)]
            for order in (drawn, drawn[::-1]):
                gain = (len(uncovered & _covered(order, width)),
                        len(neighbours & set(zip(order, order[1:], strict=False))))
                if best is None or gain > best:
                    best, choice = gain, order
        if best is None or best == (0, 0):
            break
        orders.append(choice)
        uncovered -= _covered(choice, width)
        neighbours -= set(zip(choice, choice[1:], strict=False))
    if neighbours:  # the walk of adjacent_pair_orders finishes what the draws missed
        orders += [order for order in adjacent_pair_orders(list(range(n)), seed)
                   if neighbours & set(zip(order, order[1:], strict=False))]
    return [[items[i] for i in order] for order in orders]


def _tuples(n: int, width: int) -> set[tuple[int, ...]]:
    from itertools import permutations

    return set(permutations(range(n), width))


def _covered(order: Sequence[int], width: int) -> set[tuple[int, ...]]:
    from itertools import combinations

    return set(combinations(order, width))


def contiguous_sequences(items: Sequence[Any], max_len: int, seed: int = 0, *, min_len: int = 0,
                         strength: int = 3) -> list[list[Any]]:
    """Lists of at most ``max_len`` of ``items`` in which every run of ``strength`` items (with
    repeats: ``resize, clear, get``; ``put, put, put``) appears *in a row* somewhere: a de
    Bruijn sequence of the items (each run exactly once in ``k**strength + strength - 1``
    items) cut into windows of ``max_len`` that overlap by ``strength - 1``. Five operations
    in lists of 40: every three-operation run within four lists, where a uniform list of 20
    holds a given run with a chance of about one in seven. The items are relabelled by a
    seeded shuffle, so another seed gives other lists. Fewer items per run (down to 1) where
    the sequence would need more than 64 lists; none when ``max_len`` is below the run or
    the windows below ``min_len``."""
    k = len(items)
    width = min(strength, max_len)
    while width > 1 and -(-(k ** width) // max(1, max_len - width + 1)) > 64:
        width -= 1
    if k == 0 or width < 1 or max_len < width:
        return []
    order = [int(i) for i in np.random.default_rng(seed).permutation(k)]
    cycle = _de_bruijn(k, width)
    line = cycle + (cycle * width)[:width - 1]  # the runs that wrap around the cycle, in a row too
    step = max(1, max_len - width + 1)
    out: list[list[Any]] = []
    for start in range(0, max(1, len(line) - width + 1), step):
        window = line[start:start + max_len]
        if len(window) >= max(min_len, width):
            out.append([items[order[i]] for i in window])
    return out


def _de_bruijn(k: int, n: int) -> list[int]:
    """A cyclic sequence over ``0..k-1`` holding every length-``n`` word once (the classic
    construction: the Lyndon words of length dividing ``n``, in lexicographic order)."""
    word = [0] * (n + 1)
    out: list[int] = []

    def extend(t: int, p: int) -> None:
        if t > n:
            if n % p == 0:
                out.extend(word[1:p + 1])
            return
        word[t] = word[t - p]
        extend(t + 1, p)
        for symbol in range(word[t - p] + 1, k):
            word[t] = symbol
            extend(t + 1, t)

    extend(1, 1)
    return out
