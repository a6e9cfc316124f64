"""Adjacent-pair coverage of a permutation: every item right after every other, in few orders."""

from __future__ import annotations

from hypothesis import given, settings
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


@settings(deadline=None)
@given(st.integers(min_value=0, max_value=7), st.integers(min_value=0, max_value=2**32 - 1))
def test_sequence_orders_cover_every_ordered_triple_and_neighbour_pair(n: int, seed: int) -> None:
    from itertools import combinations, permutations

    from testfleet.space.orders import sequence_orders

    items = [f"op{i}" for i in range(n)]
    orders = sequence_orders(items, seed)
    assert all(sorted(order) == sorted(items) for order in orders)
    triples = {t for order in orders for t in combinations(order, 3)}
    assert triples == set(permutations(items, 3))  # a before b before c, for every a, b, c
    pairs = {(order[i], order[i + 1]) for order in orders for i in range(n - 1)}
    assert pairs == {(a, b) for a in items for b in items if a != b}
    assert sequence_orders(items, seed) == orders


def test_a_given_triple_comes_within_the_first_orders() -> None:
    from testfleet.space.orders import sequence_orders

    orders = sequence_orders(["submit", "pause", "resume", "close", "join"], 1)
    assert len(orders) <= 14
    first = next(i for i, order in enumerate(orders)
                 if order.index("pause") < order.index("close") < order.index("resume"))
    assert first < 8  # a uniform permutation meets it once in six; every triple is covered early


@settings(deadline=None)
@given(st.integers(min_value=1, max_value=6), st.integers(min_value=3, max_value=50),
       st.integers(min_value=0, max_value=2**32 - 1))
def test_every_run_of_three_comes_in_a_row_in_lists_that_fit(k: int, max_len: int, seed: int) -> None:
    from itertools import product

    from testfleet.space.orders import contiguous_sequences

    items = [f"op{i}" for i in range(k)]
    lists = contiguous_sequences(items, max_len, seed)
    assert lists and all(1 <= len(seq) <= max_len and set(seq) <= set(items) for seq in lists)
    runs = {tuple(seq[i:i + 3]) for seq in lists for i in range(len(seq) - 2)}
    if -(-(k ** 3) // (max_len - 2)) <= 64:  # few enough lists: strength 3 kept
        assert runs == set(product(items, repeat=3))
    assert contiguous_sequences(items, max_len, seed) == lists


def test_five_operations_in_lists_of_forty_need_four_lists() -> None:
    from testfleet.space.orders import contiguous_sequences

    lists = contiguous_sequences(["put", "get", "delete", "resize", "clear"], 40, 1)
    assert len(lists) == 4
    assert any(seq[i:i + 3] == ["resize", "clear", "get"] for seq in lists for i in range(len(seq) - 2))
