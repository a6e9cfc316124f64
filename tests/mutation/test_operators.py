"""Mutation operators: what each variation type proposes, always inside the dimension, distinct,
different from the current value and the same for the same seed."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from testfleet.mutation.operators import MISSING, propose
from testfleet.mutation.rules import Rule, ruleset_from_data
from testfleet.space.composite import ListOf, Optional, Permutation
from testfleet.space.dimensions import Bool, Choice, Duration, Float, Int, Size
from testfleet.space.text import String

PROPERTY = settings(max_examples=200, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def rule(kind: str, **fields: object) -> Rule:
    spec = {"mutation_name": "r", "target_parameter": "p", "variation_type": kind, **fields}
    return ruleset_from_data([spec]).rules[0]


def rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def test_range_proposes_the_far_end_halfway_the_near_end_then_nearest_first() -> None:
    r = rule("range", min_value=100, max_value=1000, step_size=100)
    # from 420 (nearest step 400): the far end 1000, halfway 700, the near end 100, then 400, 500...
    assert propose(r, None, 420, rng(), 6) == [1000, 700, 100, 400, 500, 300]
    assert propose(r, None, 900, rng(), 3) == [100, 500, 1000]
    assert propose(r, Int(100, 1000, 100), 100, rng(), 3) == [1000, 500, 200]  # never 100 itself
    assert propose(r, Int(0, 250), 0, rng(), 10) == [100, 200]  # only what the dimension holds


def test_set_proposes_the_given_values_with_units() -> None:
    r = rule("set", values=["off", "lru", "lfu"])
    assert sorted(propose(r, Choice(["off", "lru", "lfu"]), "lru", rng(), 5)) == ["lfu", "off"]
    sizes = rule("set", values=["1KB", "64MB", "1GB"])
    assert sorted(propose(sizes, Size("1KB", "100MB"), 1024, rng(), 5)) == [64 * 1024**2]


def test_scale_multiplies_and_divides_within_bounds() -> None:
    r = rule("scale", factor=4, max_value=5000)
    assert propose(r, None, 100, rng(), 4) == [400, 25, 1600, 6]
    assert 5000 in propose(r, None, 100, rng(), 10)  # clamped to max_value
    assert propose(rule("scale"), Float(0, 10), 2.5, rng(), 2) == [5.0, 1.25]


def test_jitter_stays_within_the_amount() -> None:
    absolute = propose(rule("jitter", amount=50), Float(0, 1000), 300.0, rng(), 20)
    assert len(absolute) == 20 and all(250 <= v <= 350 for v in absolute)
    relative = propose(rule("jitter", amount="10%"), Int(0, 10_000), 1000, rng(), 20)
    assert all(isinstance(v, int) and 900 <= v <= 1100 for v in relative)
    timed = propose(rule("jitter", amount="250ms"), Duration("0s", "10s"), 1.0, rng(), 5)
    assert all(0.75 <= v <= 1.25 for v in timed)


def test_shuffle_reorders_operations() -> None:
    ops = ["create", "order", "update", "delete"]
    found = propose(rule("shuffle"), Permutation(ops), ops, rng(), 30)
    assert len(found) == 23 and all(sorted(v) == sorted(ops) and v != ops for v in found)
    assert propose(rule("shuffle"), None, ["a", "b"], rng(), 5) == [["b", "a"]]
    assert propose(rule("shuffle"), None, ["a"], rng(), 5) == []


def test_boundary_proposes_edges_and_just_inside_outside() -> None:
    assert propose(rule("boundary"), Int(1, 100), 50, rng(), 10) == [1, 100, 2, 99]
    no_dim = propose(rule("boundary", min_value=1, max_value=100), None, 50, rng(), 6)
    assert no_dim == [1, 2, 0, 100, 99, 101]
    assert MISSING in propose(rule("boundary"), Optional(Int(1, 9), absent=True), 5, rng(), 10)


def test_grow_multiplies_sizes_and_extends_lists() -> None:
    assert propose(rule("grow", factor=2), Size("1KB", "1MB"), 4096, rng(), 3) == \
        [8192, 16384, 32768]
    grown = propose(rule("grow", factor=2), ListOf(Int(0, 9), 0, 8), [1, 2], rng(), 3)
    assert [len(v) for v in grown] == [4, 8] and all(v[:2] == [1, 2] for v in grown)
    assert propose(rule("grow", factor=3), None, "ab", rng(), 1) == ["ababab"]


def test_drop_removes_an_optional_parameter_or_a_list_element() -> None:
    assert propose(rule("drop"), Optional(Int(1, 9), absent=True), 5, rng(), 5) == [MISSING]
    assert propose(rule("drop"), Optional(Int(1, 9)), 5, rng(), 5) == [None]
    assert propose(rule("drop"), Int(1, 9), 5, rng(), 5) == []  # not optional: nothing to drop
    dropped = propose(rule("drop"), ListOf(Int(0, 9), 0, 5), [1, 2, 3], rng(), 5)
    assert sorted(dropped) == [[1, 2], [1, 3], [2, 3]]
    assert propose(rule("drop"), None, 7, rng(), 5) == [MISSING]


# ---------------------------------------------------------------- properties

DIMENSIONS = [Int(0, 1000, 10), Int(-5, 5), Float(0, 500), Float(0, 1, step=0.25),
              Size("1KB", "100MB"), Duration("1ms", "30s"), Choice(["off", "lru", "lfu"]), Bool(),
              Permutation(["a", "b", "c", "d"]), ListOf(Int(0, 9), 0, 6), String(0, 8),
              Optional(Int(1, 64), absent=True), Optional(Float(0, 1))]

RULES = [
    rule("range", min_value=0, max_value=1000, step_size=50),
    rule("range", min_value=-2.5, max_value=2.5, step_size=0.5),
    rule("set", values=[0, 1, 10, 0.5, "lru", True, "64MB", None, [1, 2]]),
    rule("scale", factor=3), rule("scale", factor=0.5, min_value=1, max_value=100),
    rule("jitter", amount=5), rule("jitter", amount="30%"), rule("shuffle"),
    rule("boundary"), rule("boundary", min_value=10, max_value=20, step_size=2),
    rule("grow"), rule("grow", factor=1.5), rule("drop"),
]


@PROPERTY
@given(st.sampled_from(RULES), st.integers(0, len(DIMENSIONS) - 1), st.integers(0, 2**32),
       st.integers(1, 12), st.booleans())
def test_proposals_are_inside_distinct_new_and_seeded(r: Rule, d: int, seed: int, count: int,
                                                       known: bool) -> None:
    dimension = DIMENSIONS[d]
    current = dimension.sample(np.random.default_rng(seed), 1).tolist()[0]
    first = propose(r, dimension if known else None, current, rng(seed), count)
    again = propose(r, dimension if known else None, current, rng(seed), count)
    assert first == again
    assert len(first) <= count
    for i, value in enumerate(first):
        assert value is not MISSING or r.variation_type in ("drop", "boundary")
        if known:
            assert dimension.contains(value), (value, dimension)
        assert not (type(value) is type(current) and value == current)
        if isinstance(value, (int, float)) and isinstance(current, (int, float)) \
                and not isinstance(value, bool) and not isinstance(current, bool):
            assert value != current
        for other in first[:i]:
            assert not (type(other) is type(value) and other == value)
        assert not isinstance(value, np.generic)


def test_zero_count_proposes_nothing() -> None:
    assert propose(RULES[0], None, 5, rng(), 0) == []


@pytest.mark.parametrize("r", RULES, ids=lambda r: r.variation_type)
def test_different_seeds_may_differ_but_each_is_reproducible(r: Rule) -> None:
    for seed in range(3):
        assert propose(r, None, [3, 1, 2], rng(seed), 5) == propose(r, None, [3, 1, 2],
                                                                  rng(seed), 5)


# ---------------------------------------------------------------- special values

def test_boundary_proposes_the_integer_overflow_values_a_wide_range_holds() -> None:
    found = propose(rule("boundary"), Int(-10, 2**40), 5, rng(), 40)
    for value in (-1, 0, 2**31 - 1, 2**31, 2**31 + 1, 2**32):
        assert value in found
    assert 2**63 - 1 in propose(rule("boundary"), Int(0, 2**63 - 1), 5, rng(), 40)
    # only values the dimension holds: nothing past a narrow range, nothing off its grid
    narrow = propose(rule("boundary"), Int(1, 100), 50, rng(), 40)
    assert all(1 <= v <= 100 for v in narrow) and -1 not in narrow
    assert all(v % 1000 == 0 for v in propose(rule("boundary"), Int(0, 2**40, 1000), 0, rng(), 40))


def test_boundary_proposes_powers_of_two_around_a_size_buffer() -> None:
    found = propose(rule("boundary"), Size("1KB", "100MB"), 4096, rng(), 40)
    assert {2**16 - 1, 2**16, 2**16 + 1, 2**24} <= set(found)
    assert all(1024 <= v <= 100 * 1024**2 for v in found)


def test_boundary_proposes_texts_that_break_naive_handling() -> None:
    found = propose(rule("boundary"), String(0, 64), "hello", rng(), 40)
    assert {"", "e\u0301", "\x00", "\u202eabc"} <= set(found)
    assert any(any(ord(c) < 32 and c != "\x00" for c in v) for v in found)  # control characters
    assert max(len(v) for v in found) == 64  # the longest the dimension takes
    # a free string never gets a lone surrogate: a test sends it as UTF-8 and fails itself
    assert not any(any(0xD800 <= ord(c) <= 0xDFFF for c in v) for v in found)
    with_one = propose(rule("boundary"), String(1, 4, charset="ab\ud800"), "ab", rng(), 40)
    assert "\ud800" in with_one
    assert all(String(1, 4, charset="ab\ud800").contains(v) for v in with_one)


def test_string_edges_pad_specials_to_the_minimum_length() -> None:
    edges = dict(String(4, 10).edges())
    assert edges["combining mark"] == "e\u0301aa" and edges["nul"] == "\x00aaa"
    assert "combining mark" not in dict(String(0, 1).edges())  # two code points do not fit
    assert "nul" not in dict(String(0, 8, charset="abc").edges())  # outside the charset


SPECIAL_DIMENSIONS = st.one_of(
    st.builds(lambda lo, span, step: Int(lo, lo + span, step),
              st.integers(-(2**64), 2**64), st.integers(0, 2**65), st.integers(1, 2**20)),
    st.builds(lambda lo, span: Float(lo, lo + span), st.floats(-1e19, 1e19), st.floats(0, 1e19)),
    st.builds(lambda lo, span: Size(lo, lo + span), st.integers(0, 2**40), st.integers(0, 2**40)),
    st.builds(lambda lo, span: Duration(lo, lo + span), st.floats(0, 1e7), st.floats(0, 1e7)),
    st.builds(lambda lo, span: String(lo, lo + span), st.integers(0, 6), st.integers(0, 40)),
    st.builds(lambda lo, span, chars: String(lo, lo + span, charset=chars), st.integers(0, 4),
              st.integers(0, 8), st.text(min_size=1, max_size=5)),
)


@PROPERTY
@given(SPECIAL_DIMENSIONS, st.integers(0, 2**32))
def test_every_edge_and_boundary_proposal_stays_inside_the_dimension(dimension, seed) -> None:
    assert all(dimension.contains(value) for _label, value in dimension.edges())
    current = dimension.baseline()
    for value in propose(rule("boundary"), dimension, current, rng(seed), 64):
        assert dimension.contains(value), (value, dimension)
