"""Covering arrays: checked against an independent brute-force count of every required t-tuple.

The checker below shares nothing with the module: itertools over column subsets and level
tuples, and a test oracle that answers consistency by scanning every row of the (small) model.
"""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testfleet.space.covering import covering_array, required_tuples


class ForbiddenPairs:
    """Oracle for a small model: rows containing a forbidden ((c1, v1), (c2, v2)) pair are invalid."""

    def __init__(self, levels: list[int], forbidden: list[tuple[tuple[int, int], tuple[int, int]]]) -> None:
        rows = np.array(list(itertools.product(*(range(v) for v in levels))), dtype=np.int64)
        ok = np.ones(len(rows), dtype=bool)
        for (c1, v1), (c2, v2) in forbidden:
            ok &= ~((rows[:, c1] == v1) & (rows[:, c2] == v2))
        self.valid = rows[ok]
        self.calls = 0

    def consistent(self, assignment) -> bool:
        self.calls += 1
        match = np.ones(len(self.valid), dtype=bool)
        for c, v in assignment.items():
            match &= self.valid[:, c] == v
        return bool(match.any())


def brute_force(levels, t, rows, oracle=None) -> tuple[int, int]:
    """(required, missed) t-tuples, by enumeration."""
    t = min(t, len(levels))
    required = missed = 0
    seen = {tuple(int(x) for x in row) for row in rows}
    for cols in itertools.combinations(range(len(levels)), t):
        present = {tuple(row[c] for c in cols) for row in seen}
        for vals in itertools.product(*(range(levels[c]) for c in cols)):
            if oracle is not None and not oracle.consistent(dict(zip(cols, vals))):
                continue
            required += 1
            missed += vals not in present
    return required, missed


def assert_covering(levels, t, rows, oracle=None, given=0) -> None:
    """Covers every required tuple; rows after the ``given`` ones are valid."""
    assert rows.dtype in (np.int16, np.int32)
    assert rows.ndim == 2 and rows.shape[1] == len(levels)
    assert ((rows >= 0) & (rows < np.array(levels, dtype=np.int64))).all()
    required, missed = brute_force(levels, t, rows, oracle)
    assert missed == 0
    assert required_tuples(levels, t, oracle) == required
    if oracle is not None:
        assert all(oracle.consistent(dict(enumerate(map(int, row)))) for row in rows[given:])


@st.composite
def models(draw):
    levels = draw(st.lists(st.integers(1, 4), min_size=1, max_size=7))
    t = draw(st.integers(1, 4))
    cells = [(c, v) for c, n in enumerate(levels) for v in range(n)]
    pairs = [(a, b) for a, b in itertools.combinations(cells, 2) if a[0] != b[0]]
    forbidden = draw(st.lists(st.sampled_from(pairs), max_size=4)) if pairs and draw(st.booleans()) else None
    return levels, t, forbidden


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(models(), st.integers(-2**63, 2**63), st.integers(0, 1))
def test_every_required_tuple_is_covered_and_every_row_valid(model, seed, effort):
    levels, t, forbidden = model
    oracle = ForbiddenPairs(levels, forbidden) if forbidden is not None else None
    rows = covering_array(levels, t, seed=seed, oracle=oracle, effort=effort)
    assert_covering(levels, t, rows, oracle)


@settings(max_examples=25, deadline=None)
@given(models(), st.integers(0, 2**32 - 1), st.integers(0, 6))
def test_existing_rows_come_first_and_only_gaps_are_added(model, seed, n_old):
    levels, t, forbidden = model
    oracle = ForbiddenPairs(levels, forbidden) if forbidden is not None else None
    rng = np.random.default_rng(seed)
    old = np.stack([rng.integers(0, v, size=n_old) for v in levels], axis=1)
    rows = covering_array(levels, t, seed=seed, oracle=oracle, existing=old)
    assert (rows[:n_old] == old).all()
    # the added rows are valid; the given ones are the caller's business
    assert_covering(levels, t, rows, oracle, given=n_old)
    for i in range(n_old, min(len(rows), n_old + 4)):  # each added row fills a gap no other row fills
        assert brute_force(levels, t, np.delete(rows, i, 0), oracle)[1] > 0


def test_existing_rows_that_cover_everything_get_nothing_added():
    full = covering_array([3, 3, 2, 2], 2, seed=1)
    again = covering_array([3, 3, 2, 2], 2, seed=2, existing=full)
    assert (again == full).all()


def test_existing_rows_shrink_what_is_added():
    alone = covering_array([3] * 6, 2, seed=0)
    half = covering_array([3] * 6, 2, seed=0, existing=alone[:5])
    assert len(half) - 5 < len(alone)


@pytest.mark.parametrize("oracle_model", [False, True])
def test_same_seed_same_array(oracle_model):
    levels = [3, 4, 2, 3, 2, 3]
    oracle = ForbiddenPairs(levels, [((0, 1), (1, 2)), ((2, 0), (3, 1))]) if oracle_model else None
    one = covering_array(levels, 3, seed=7, oracle=oracle)
    two = covering_array(levels, 3, seed=7, oracle=oracle)
    assert one.dtype == two.dtype and (one == two).all()


@pytest.mark.parametrize(("levels", "t"), [([3] * 6, 4), ([2] * 10, 4), ([2, 3, 2, 3, 2], 4)])
def test_four_way(levels, t):
    assert_covering(levels, t, covering_array(levels, t, seed=3))


def test_four_way_with_constraints():
    levels = [3, 2, 3, 2, 2, 3]
    oracle = ForbiddenPairs(levels, [((0, 0), (1, 1)), ((2, 2), (5, 0)), ((3, 1), (4, 1))])
    assert_covering(levels, 4, covering_array(levels, 4, seed=0, oracle=oracle), oracle)


@pytest.mark.parametrize(("levels", "size"), [([2] * 10, 6), ([3] * 4, 9), ([2] * 100, 10), ([5] * 6, 25),
                                               ([7] * 8, 49)])
def test_constructions_reach_the_optimum(levels, size):
    rows = covering_array(levels, 2, seed=0)
    assert len(rows) == size
    assert_covering(levels, 2, rows)


@pytest.mark.parametrize(("levels", "t", "ceiling"), [
    ([3] * 13, 2, 18),   # best known 15, PICT 19
    ([4] * 10, 2, 30),   # best known 24, PICT 31
    ([5] * 10, 2, 45),   # best known 36, PICT 45
    ([4] * 4 + [3] * 6 + [2] * 10, 2, 20),  # allpairspy 23, bound 16
    ([4] * 5, 3, 64),    # Bush OA(64, 5, 4, 3): optimal
    ([3] * 6, 3, 40),    # best known 33
])
def test_sizes_stay_under_the_ceiling(levels, t, ceiling):
    rows = covering_array(levels, t, seed=0)
    assert len(rows) <= ceiling
    assert_covering(levels, t, rows)


def test_strength_above_column_count_is_the_full_product():
    rows = covering_array([2, 3, 2], 5)
    assert len(rows) == 12 and len({tuple(r) for r in rows.tolist()}) == 12


def test_tiny_models():
    assert covering_array([4], 1).tolist() == [[0], [1], [2], [3]]
    assert len(covering_array([1, 1, 1], 2)) == 1
    assert len(covering_array([3, 2, 4], 1)) == 4
    assert covering_array([], 2).shape == (0, 0)
    assert len(covering_array([2, 2], 2, existing=[])) == 4


def test_an_oracle_that_allows_nothing_gives_no_rows():
    class Never:
        def consistent(self, assignment):
            return False

    assert covering_array([2, 3], 2, oracle=Never()).shape == (0, 2)
    assert required_tuples([2, 3], 2, Never()) == 0


def test_oracle_calls_are_cached():
    levels = [3, 3, 3, 3, 3]
    oracle = ForbiddenPairs(levels, [((0, 0), (1, 0))])
    covering_array(levels, 2, oracle=oracle, effort=0)
    distinct_tuples = sum(math.prod(c) for c in itertools.combinations(levels, 2)) + sum(levels) + 1
    greedy_rows_at_most = 30 * len(levels) * 3  # partial rows asked while building, generous
    assert oracle.calls <= distinct_tuples + greedy_rows_at_most


def test_required_tuples_counts():
    assert required_tuples([2] * 4, 2) == 6 * 4
    assert required_tuples([3, 2, 2], 3) == 12
    assert required_tuples([3, 2], 2, ForbiddenPairs([3, 2], [((0, 2), (1, 1))])) == 5


@pytest.mark.parametrize("bad", [
    {"levels": [2, 0, 2]},
    {"levels": [2, 2], "strength": 0},
    {"levels": [2, 2], "existing": np.zeros((2, 3), dtype=int)},
    {"levels": [2, 2], "existing": np.full((1, 2), 2)},
    {"levels": [2, 2], "existing": np.full((1, 2), 0.5)},
    {"levels": [2, 2], "effort": -1},
])
def test_bad_input_is_a_value_error(bad):
    with pytest.raises(ValueError):
        covering_array(**bad)


def test_bad_input_to_required_tuples():
    with pytest.raises(ValueError):
        required_tuples([2, 2], 0)
    with pytest.raises(ValueError):
        required_tuples([0], 1)
