"""Adjacent-pair coverage of a permutation: every item right after every other, in few orders."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from testfleet.space.orders import adjacent_pair_orders


@given(st.integers(min_value=0, max_value=9), st.integers(min_value=0, max_value=2**32 - 1))
def test_every_ordered_neighbour_pair_is_covered_by_real_orders(n: int, seed: int) -> None:
    items = [f"op{i}" for i in range(n)]
    orders = adjacent_pair_orders(items, seed)
    assert all(sorted(order) == sorted(items) for order in orders)  # each is a permutation
    pairs = {(order[i], order[i + 1]) for order in orders for i in range(n - 1)}
    assert pairs == {(a, b) for a in items for b in items if a != b}
    assert len(orders) <= max(0, 2 * n)  # a short list: n(n-1) pairs, n-1 per order
    assert adjacent_pair_orders(items, seed) == orders  # the same seed, the same orders


def test_five_operations_need_few_orders() -> None:
    orders = adjacent_pair_orders(["read", "update", "order", "list", "delete"], 1)
    assert 5 <= len(orders) <= 7
