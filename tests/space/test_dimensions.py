"""Dimensions: sampling, membership, levels (classes and binning), edges, declarations.

Every dimension type runs through the same contract (``check_*`` helpers below) on a fixed set
of declarations and, for Int, Float, Choice, String and Size, on declarations drawn by
Hypothesis. Known truths (bins of Int(0, 1000), log-width sizes, string edge classes, errors)
are written out by hand.
"""

from __future__ import annotations

import itertools
import json
import math
import re
import string
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from testfleet.errors import SpaceError
from testfleet.space import declare
from testfleet.space.composite import ListOf, Object, Optional, Permutation, Union
from testfleet.space.dimensions import (
    Bool,
    Choice,
    Dimension,
    Duration,
    Float,
    Int,
    Size,
    parse_duration,
)
from testfleet.space.expressions import MISSING
from testfleet.space.space import Space
from testfleet.space.text import String

PROPERTY = settings(max_examples=60, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow])
N = 120

EXAMPLES: dict[str, Dimension] = {
    "int": Int(0, 1000),
    "int-step": Int(-10, 50, step=7),
    "int-few": Int(1, 4),
    "float": Float(-1.5, 2.5),
    "float-step": Float(0, 2, step=0.25),
    "float-point": Float(3.0, 3.0),
    "choice-str": Choice(["off", "lru", "lfu"]),
    "choice-int": Choice([1, 2, 4, 8]),
    "choice-mixed": Choice(["a", 1, None, True]),
    "bool": Bool(),
    "size": Size("1KB", "100MB"),
    "size-bytes": Size("1KB", "64MB", human=False),
    "duration": Duration("10ms", "30s"),
    "string": String(0, 8),
    "string-charset": String(2, 6, charset="abc"),
    "string-pattern": String(pattern=r"[a-f]{3,5}"),
    "permutation": Permutation(["create", "update", "delete"]),
    "optional": Optional(Int(1, 64)),
    "optional-absent": Optional(Choice(["x", "y"]), absent=True),
    "list": ListOf(Int(0, 9), 1, 4),
    "list-of-strings": ListOf(String(1, 3, charset="xy"), 0, 3),
    "object": Object(pool=Int(1, 32), mode=Choice(["a", "b"]),
                     tls=Optional(Bool(), absent=True)),
    "union": Union([Int(0, 10), Choice(["auto", "off"])]),
}

OUTSIDE: dict[str, list[Any]] = {
    "int": [-1, 1001, 2.0, "5", True, None, 10**30],
    "int-step": [-9, 50, 51, -17, 4.0],
    "int-few": [0, 5, 1.5],
    "float": [-1.6, 2.6, float("nan"), float("inf"), "1.0", True, None],
    "float-step": [0.1, 2.25, -0.25],
    "float-point": [2.9, 3.1],
    "choice-str": ["OFF", "", None, 1],
    "choice-int": [3, 1.0, True, "1"],
    "choice-mixed": ["b", 2, False, 1.0],
    "bool": [1, 0, "true", None],
    "size": [1023, 100 * 1024**2 + 1, "64MB", 1.5e6],
    "size-bytes": [0, "1KB"],
    "duration": [0.009, 30.5, "1s", True],
    "string": ["abcdefghi", 5, None, b"abc"],
    "string-charset": ["a", "abcd", "abcabca", "ABC"],
    "string-pattern": ["ab", "abcdef", "abg", "ABC"],
    "permutation": [["create", "update"], ["create", "create", "delete"],
                    ["create", "update", "delete", "x"], "create"],
    "optional": [0, 65, MISSING],
    "optional-absent": [None, "z"],
    "list": [[], [10], [1, 2, 3, 4, 5], (1, 2), "1"],
    "list-of-strings": [["z"], ["x", "y", "x", "y"], [""]],
    "object": [{"pool": 0, "mode": "a"}, {"pool": 1, "mode": "a", "extra": 1},
               {"pool": 1}, {"mode": "a", "pool": 1, "tls": None}, []],
    "union": [11, "on", None, -1],
}

IDS = list(EXAMPLES)


def rng(seed: int = 2024) -> np.random.Generator:
    return np.random.default_rng(seed)


def same(a: Any, b: Any) -> bool:
    """Equal and of the same type (True is not 1, 1.0 is not 1), recursively for lists."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    return type(a) is type(b) and (a is b or a == b)


# -- the contract, as helpers shared by the fixed examples and the Hypothesis properties ------

def check_samples(dim: Dimension) -> None:
    values = dim.sample(rng(), N)
    assert len(values) == N
    outside = [v for v in values.tolist() if not dim.contains(v)]
    assert not outside, f"{dim!r} sampled values it does not contain: {outside[:5]}"
    assert len(dim.sample(rng(), 0)) == 0


def check_deterministic(dim: Dimension) -> None:
    first = dim.sample(rng(7), 40).tolist()
    again = dim.sample(rng(7), 40).tolist()
    assert all(same(a, b) for a, b in zip(first, again, strict=True))


def check_levels(dim: Dimension) -> None:
    levels = dim.levels()
    assert levels
    for index, level in enumerate(levels):
        assert dim.contains(level.value), f"{dim!r}: level {level} is not a value"
        assert dim.level_of(level.value) == index, f"{dim!r}: {level} bins elsewhere"
    count = dim.cardinality()
    if count is not None:
        assert len(levels) <= count


def check_level_of_many(dim: Dimension) -> None:
    values = dim.sample(rng(3), N)
    many = dim.level_of_many(values)
    assert many.shape == (N,)
    assert (many >= 0).all(), f"{dim!r}: samples binned outside: {values[many < 0][:5]}"
    assert (many < len(dim.levels())).all()
    assert many.tolist() == [dim.level_of(v) for v in values.tolist()]


def check_edges(dim: Dimension) -> list[tuple[str, Any]]:
    edges = dim.edges()
    assert edges
    for label, value in edges:
        assert isinstance(label, str) and label
        assert dim.contains(value), f"{dim!r}: edge {label}={value!r} is not a value"
        assert dim.level_of(value) >= 0
    return edges


def check_round_trip(dim: Dimension) -> None:
    spec = dim.to_dict()
    rebuilt = declare.dimension(spec)
    assert rebuilt == dim
    assert type(rebuilt) is type(dim)
    assert rebuilt.to_dict() == spec
    again = declare.dimension(json.loads(json.dumps(spec)))  # as read back from a JSON file
    assert again == dim
    assert [(lv.label, lv.value) for lv in again.levels()] == \
        [(lv.label, lv.value) for lv in dim.levels()]


# -- every dimension type: the contract on fixed declarations ---------------------------------

@pytest.mark.parametrize("name", IDS)
def test_every_sampled_value_is_contained(name: str) -> None:
    check_samples(EXAMPLES[name])


@pytest.mark.parametrize("name", IDS)
def test_sampling_is_deterministic_for_a_seed(name: str) -> None:
    check_deterministic(EXAMPLES[name])


@pytest.mark.parametrize("name", [n for n in IDS if n != "float-point" and (
    EXAMPLES[n].cardinality() is None or EXAMPLES[n].cardinality() > 50)])
def test_sampling_depends_on_the_seed(name: str) -> None:
    dim = EXAMPLES[name]
    a = dim.sample(rng(1), 40).tolist()
    b = dim.sample(rng(2), 40).tolist()
    assert not all(same(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("name", IDS)
def test_level_representatives_are_contained_and_bin_to_themselves(name: str) -> None:
    check_levels(EXAMPLES[name])


@pytest.mark.parametrize("name", IDS)
def test_level_of_many_over_samples_agrees_with_level_of(name: str) -> None:
    # BUG for choice-int and bool: Choice._index compares exact types, so the numpy scalars
    # Choice.sample / Bool.sample return (np.int64, np.bool_) are binned -1 (see report)
    check_level_of_many(EXAMPLES[name])


@pytest.mark.parametrize("name", IDS)
def test_values_outside_the_dimension_have_no_level(name: str) -> None:
    dim = EXAMPLES[name]
    for value in OUTSIDE[name]:
        assert not dim.contains(value), (dim, value)
        assert dim.level_of(value) == -1, (dim, value)


@pytest.mark.parametrize("name", IDS)
def test_edges_are_values_of_the_dimension(name: str) -> None:
    check_edges(EXAMPLES[name])


@pytest.mark.parametrize("name", IDS)
def test_declaration_round_trip(name: str) -> None:
    check_round_trip(EXAMPLES[name])


def test_cardinalities() -> None:
    assert Int(0, 1000).cardinality() == 1001
    assert Int(0, 10, step=3).cardinality() == 4
    assert Float(0, 1).cardinality() is None
    assert Choice(["a", "b", "c"]).cardinality() == 3
    assert Bool().cardinality() == 2
    assert Permutation([1, 2, 3, 4]).cardinality() == 24
    assert Optional(Int(1, 5)).cardinality() == 6
    assert Optional(Float(0, 1)).cardinality() is None
    assert String(0, 3).cardinality() is None


# -- numbers ------------------------------------------------------------------------------------

def test_int_0_1000_has_five_levels_with_bounds_as_own_classes() -> None:
    dim = Int(0, 1000)
    levels = dim.levels()
    assert len(levels) == 5
    assert (levels[0].label, levels[0].value) == ("min", 0)
    assert (levels[-1].label, levels[-1].value) == ("max", 1000)
    interior = [level.value for level in levels[1:-1]]
    assert interior == sorted(interior) and 0 < interior[0] and interior[-1] < 1000
    assert dim.level_of(0) == 0 and dim.level_of(1000) == 4
    assert dim.level_of(1) == 1  # just above min is an interior class, not "min"
    assert dim.level_of(999) == 3
    assert dim.level_of_many(np.array([0, 1, 500, 999, 1000, 1001])).tolist() == \
        [0, 1, 2, 3, 4, -1]


def test_small_int_gets_one_level_per_value() -> None:
    dim = Int(1, 4)
    assert [level.value for level in dim.levels()] == [1, 2, 3, 4]
    assert [dim.level_of(v) for v in (1, 2, 3, 4, 5)] == [0, 1, 2, 3, -1]


def test_int_step_snaps_max_to_the_grid() -> None:
    dim = Int(0, 10, step=3)
    assert dim.max == 9
    assert dim.contains(9) and not dim.contains(10) and not dim.contains(4)
    assert dim.to_dict() == {"type": "int", "min": 0, "max": 9, "step": 3}
    assert set(dim.sample(rng(), 400).tolist()) == {0, 3, 6, 9}


def test_numpy_values_get_plain_python_answers_that_json_can_encode() -> None:
    # sampled values are numpy scalars; contains and level_of answer with the bool and int
    # they declare, so a caller may keep or encode the answer (JSON refuses numpy.bool_)
    dim, grid = Int(0, 4), Float(0.0, 1.0, step=0.25)
    answers = [dim.contains(np.int64(2)), dim.level_of(np.int64(2)), grid.contains(np.float64(0.5))]
    assert json.dumps(answers) == "[true, 2, true]"


def test_int_sampling_reaches_both_bounds() -> None:
    assert set(Int(1, 4).sample(rng(), 400).tolist()) == {1, 2, 3, 4}


def test_int_edges() -> None:
    assert dict(Int(0, 1000).edges()) == \
        {"min": 0, "max": 1000, "just above min": 1, "just below max": 999}
    edges = dict(Int(-5, 5).edges())
    assert edges["zero"] == 0 and edges["min"] == -5 and edges["max"] == 5


def test_int_beyond_int64_stays_exact() -> None:
    big = Int(2**70, 2**70 + 10)
    values = big.sample(rng(), 50).tolist()
    assert all(isinstance(v, int) and big.contains(v) for v in values)
    assert len(set(values)) > 1
    # BUG: levels/level_of go through float64, so all interior classes collapse onto
    # 2**70 + 1 and bin as "min"; and a value just below a big max bins as "max".
    check_levels(big)
    assert Int(0, 2**60).level_of(2**60 - 1) != Int(0, 2**60).level_of(2**60)


def test_float_edges_include_bounds_just_inside_and_zero() -> None:
    edges = dict(Float(-1.5, 2.5).edges())
    assert edges["min"] == -1.5 and edges["max"] == 2.5
    assert edges["just above min"] == math.nextafter(-1.5, 2.5)
    assert edges["just below max"] == math.nextafter(2.5, -1.5)
    assert edges["zero"] == 0.0
    assert "zero" not in dict(Float(1, 2).edges())
    assert [v for _, v in Float(3, 3).edges()] == [3.0]


def test_float_levels_bound_classes() -> None:
    dim = Float(-1.5, 2.5)
    assert dim.level_of(-1.5) == 0 and dim.level_of(2.5) == 4
    assert dim.level_of(math.nextafter(-1.5, 0)) == 1
    assert dim.level_of(math.nextafter(2.5, 0)) == 3
    assert Float(3, 3).level_of(3.0) == 0 and len(Float(3, 3).levels()) == 1


@pytest.mark.parametrize(("lo", "hi"), [(99998.0, 100001.0), (1e6, 1e6 + 1)])
def test_float_level_representatives_stay_in_their_bin(lo: float, hi: float) -> None:
    # BUG: Float._snap rounds representatives to 6 significant digits, which moves them onto a
    # bin edge or onto min (Float(1e6, 1e6 + 1) has three interior levels all equal to 1e6)
    dim = Float(lo, hi)
    values = [level.value for level in dim.levels()]
    assert len(set(values)) == len(values)
    check_levels(dim)


def test_float_step_max_off_the_grid_is_not_an_edge() -> None:
    # BUG: Float does not snap max to the grid (Int does): Float(0, 1, step=0.3) offers 1.0 and
    # 0.7 as its "max" and "just below max" edges and levels, and contains neither
    dim = Float(0, 1, step=0.3)
    check_edges(dim)
    check_levels(dim)


def test_float_step_sampling_reaches_max() -> None:
    # BUG: Float.sample counts grid points with (max - min) // step, and 1.0 // 0.1 == 9.0,
    # so Float(0, 1, step=0.1) never draws 1.0 (10 of its 11 values)
    values = Float(0, 1, step=0.1).sample(rng(), 2000)
    assert np.isclose(values, 1.0).any()
    assert len(set(np.round(values, 9).tolist())) == 11


def test_size_parses_units_and_bins_on_a_log_scale() -> None:
    dim = Size("1KB", "100MB")
    assert (dim.min, dim.max) == (1024, 100 * 1024**2)
    levels = dim.levels()
    assert len(levels) == 5
    middle = levels[2].value
    assert middle < (dim.min + dim.max) / 2 / 20  # log-width: far below the arithmetic middle
    ratios = [b.value / a.value for a, b in itertools.pairwise(levels[1:-1])]
    assert all(10 < r < 100 for r in ratios)  # interior classes are orders of magnitude apart
    assert dim.level_of(1024) == 0 and dim.level_of(100 * 1024**2) == 4
    assert dim.level_of(1025) == 1


def test_size_units_and_rendering() -> None:
    assert Size("64 MB", "1GiB").min == 64 * 1024**2
    assert Size("1.5KB", "2KB").min == 1536
    assert Size(0, 1024).to_dict() == {"type": "size", "min": "0B", "max": "1KB"}
    assert Size.render_human(64 * 1024**2) == "64MB"
    assert Size.render_human(3 * 1024**3) == "3GB"
    assert Size.render_human(1536) == "1536B"
    assert Size.render_human(0) == "0B"
    assert Size("1KB", "1GB").render(64 * 1024**2) == "64MB"
    assert Size("1KB", "1GB", human=False).render(64 * 1024**2) == 64 * 1024**2


def test_size_small_range_levels_are_distinct_and_bin_to_themselves() -> None:
    # BUG: with log bins over a small byte range the interior middles round and clamp onto
    # min + 1: Size("0B", "1000B") has levels [0, 1, 1, 100, 1000] and Size(1, 7) bins its
    # second representative into the third class
    for dim in (Size("0B", "1KB"), Size("0B", "1000B"), Size(1, 7)):
        values = [level.value for level in dim.levels()]
        assert len(set(values)) == len(values), values
        check_levels(dim)


def test_duration_parses_units_and_bins_on_a_log_scale() -> None:
    dim = Duration("10ms", "30s")
    assert (dim.min, dim.max) == (pytest.approx(0.01), 30.0)
    assert Duration("1m", "2h").max == 7200.0
    assert Duration("250us", "1d").min == pytest.approx(250e-6)
    assert Duration(0.5, 2).max == 2.0  # plain numbers are seconds
    levels = dim.levels()
    assert len(levels) == 5
    assert levels[2].value < (dim.min + dim.max) / 2 / 10
    assert dim.to_dict() == {"type": "duration", "min": "10ms", "max": "30s"}
    assert dim.render(0.25) == "250ms" and dim.render(120.0) == "2m" and dim.render(90) == "90s"
    assert Duration("10ms", "30s", human=False).render(0.25) == 0.25


@pytest.mark.parametrize(("lo", "hi"), [("1us", "1d"), ("48us", "999h")])
def test_duration_levels_of_wide_ranges_are_values(lo: str, hi: str) -> None:
    # BUG: Float._snap turns any middle below 1e-9 * (max - min) into 0.0, which is outside a
    # log-binned range starting above zero: Duration("1us", "1d") has a level "~0us" = 0.0
    dim = Duration(lo, hi)
    check_levels(dim)


# -- choices ------------------------------------------------------------------------------------

def test_choice_true_and_one_are_distinct_values() -> None:
    dim = Choice([1, True])
    assert dim.level_of(True) == 1
    assert dim.level_of(1) == 0
    assert dim.level_of(1.0) == -1
    assert [level.value for level in dim.levels()] == [1, True]
    drawn = dim.sample(rng(), 200).tolist()
    assert any(v is True for v in drawn)
    assert any(type(v) is int and v == 1 for v in drawn)


def test_choice_levels_are_its_values() -> None:
    dim = Choice(["off", "lru", None])
    assert [level.value for level in dim.levels()] == ["off", "lru", None]
    assert [dim.level_of(v) for v in ("off", "lru", None, "lfu")] == [0, 1, 2, -1]
    assert set(dim.sample(rng(), 300).tolist()) == {"off", "lru", None}


def test_bool_levels() -> None:
    dim = Bool()
    assert [level.value for level in dim.levels()] == [False, True]
    assert dim.level_of(True) == 1 and dim.level_of(False) == 0 and dim.level_of(1) == -1
    assert set(dim.sample(rng(), 100).tolist()) == {False, True}


def test_choice_numeric_samples_keep_their_declared_types() -> None:
    # BUG: Choice.sample casts a list mixing ints and floats to float64, so Choice([1, 2.5])
    # draws 1.0, which the choice itself does not contain
    dim = Choice([1, 2.5])
    drawn = dim.sample(rng(), 100).tolist()
    assert all(dim.contains(v) for v in drawn)
    assert any(same(v, 1) for v in drawn)


# -- strings ------------------------------------------------------------------------------------

def test_string_edges_cover_empty_longest_special_and_non_ascii() -> None:
    dim = String(0, 8)
    edges = check_edges(dim)
    values = [v for _, v in edges]
    assert "" in values
    assert any(len(v) == 8 for v in values)
    assert any(any(c in "'\"\\;<>&%" for c in v) for v in values)
    assert any(any(ord(c) > 127 for c in v) for v in values)


def test_string_charset_limits_edges_to_its_characters() -> None:
    dim = String(0, 16, charset="abc")
    values = [v for _, v in check_edges(dim)]
    assert all(set(v) <= set("abc") for v in values)
    assert not any(ord(c) > 127 for v in values for c in v)
    assert "" in values and any(len(v) == 16 for v in values)
    assert all(set(v) <= set("abc") for v in dim.sample(rng(), N).tolist())


def test_string_shortest_edge_respects_min_len() -> None:
    dim = String(3, 5)
    values = [v for _, v in check_edges(dim)]
    assert "" not in values
    assert min(len(v) for v in values) == 3
    assert max(len(v) for v in values) == 5


def test_string_pattern_samples_all_fullmatch() -> None:
    dim = String(pattern=r"[a-f]{3,5}")
    drawn = dim.sample(rng(), 200).tolist()
    assert all(re.fullmatch(r"[a-f]{3,5}", v) for v in drawn)
    assert {len(v) for v in drawn} == {3, 4, 5}
    assert all(re.fullmatch(r"[a-f]{3,5}", v) for _, v in dim.edges())


@pytest.mark.parametrize(("kwargs", "sample"), [
    ({"pattern": r"[a-z]{1,8}@[a-z]{1,8}\.com", "max_len": 30}, "ab@cd.com"),
    ({"pattern": r"v[0-9]\.[0-9]"}, "v1.2"),
    ({"pattern": r"/[a-z]{1,8}"}, "/api"),
    ({"pattern": r"[éü]{2}"}, "éü"),
    ({"min_len": 2, "max_len": 4, "charset": "éü"}, "üé"),
    ({"min_len": 1, "max_len": 8, "charset": "/."}, "./"),
    ({"min_len": 0, "max_len": 7, "charset": "中0Ne"}, "N0中e"),
])
def test_string_declarations_with_special_or_non_ascii_values_are_accepted(
        kwargs: dict[str, Any], sample: str) -> None:
    # BUG (charsets): _build_levels files the charset candidates under fixed labels
    # ("ordinary", "longest") and drops those _classify puts elsewhere, so a charset whose
    # characters are all special or non-ASCII has no level and is refused, and one with a
    # non-ASCII character keeps only the "empty" class (no longest edge)
    dim = String(**kwargs)
    assert dim.contains(sample)
    check_samples(dim)
    check_levels(dim)
    check_edges(dim)
    if dim.pattern is None:
        assert any(len(v) == dim.max_len for _, v in dim.edges())
        assert dim.level_of(sample) != dim.level_of("")


def test_string_level_of_classifies() -> None:
    dim = String(0, 8)
    labels = [level.label for level in dim.levels()]
    assert labels[dim.level_of("")] == "empty"
    assert labels[dim.level_of("abcdefgh")] == "longest"
    assert labels[dim.level_of("a;b")] == "special"
    assert labels[dim.level_of("héllo")] == "non-ascii"


# -- permutations, optionals, lists, objects, unions -------------------------------------------

def test_permutation_edges_are_declared_and_reversed_orders() -> None:
    dim = Permutation(["create", "update", "delete"])
    assert dim.edges() == [("as declared", ["create", "update", "delete"]),
                           ("reversed", ["delete", "update", "create"])]
    assert [level.value[0] for level in dim.levels()] == ["create", "update", "delete"]
    assert dim.level_of(["delete", "create", "update"]) == 2
    drawn = dim.sample(rng(), 300).tolist()
    assert len({tuple(v) for v in drawn}) == 6  # every order is reachable
    assert Permutation(["only"]).edges() == [("as declared", ["only"])]


def test_optional_edges_and_levels_start_with_null() -> None:
    dim = Optional(Int(1, 64))
    assert dim.edges()[0] == ("null", None)
    assert dim.levels()[0].value is None
    assert dim.level_of(None) == 0
    assert dim.level_of(1) == 1 and dim.level_of(64) == 1 + dim.inner.level_of(64)
    assert dim.render(None) is None


def test_optional_absent_uses_missing_not_null() -> None:
    dim = Optional(Choice(["x", "y"]), absent=True)
    assert dim.edges()[0] == ("absent", MISSING)
    assert dim.contains(MISSING) and not dim.contains(None)
    assert dim.level_of(MISSING) == 0 and dim.level_of(None) == -1
    assert any(v is MISSING for v in dim.sample(rng(), 100).tolist())


def test_optional_weight_is_the_share_of_empty_values() -> None:
    drawn = Optional(Int(0, 9), weight=0.5).sample(rng(), 4000).tolist()
    share = sum(v is None for v in drawn) / len(drawn)
    assert 0.45 < share < 0.55
    assert not any(v is None for v in Optional(Int(0, 9), weight=0.0).sample(rng(), 200))
    assert all(v is None for v in Optional(Int(0, 9), weight=1.0).sample(rng(), 200))


def test_list_edges_have_shortest_and_longest_lengths() -> None:
    dim = ListOf(Int(0, 9), 1, 4)
    lengths = {len(v) for _, v in check_edges(dim)}
    assert {1, 4} <= lengths
    assert dict(dim.edges())["shortest"] == [0]
    assert len(dict(dim.edges())["longest"]) == 4
    assert [0] * 0 in [v for _, v in ListOf(Int(0, 9)).edges()]  # default min_items=0: empty
    drawn = dim.sample(rng(), 300).tolist()
    assert {len(v) for v in drawn} == {1, 2, 3, 4}
    assert [dim.level_of(v) for v in ([3], [3, 3], [3, 3, 3], [3] * 4)] == [0, 1, 1, 2]


def test_object_values_are_dicts_without_absent_keys() -> None:
    dim = EXAMPLES["object"]
    drawn = dim.sample(rng(), 200).tolist()
    assert all(isinstance(v, dict) and {"pool", "mode"} <= set(v) for v in drawn)
    assert any("tls" not in v for v in drawn) and any("tls" in v for v in drawn)
    assert dim.contains({"pool": 3, "mode": "b"})
    assert dim.level_of(dim.baseline()) == 0


def test_union_levels_follow_branch_order() -> None:
    dim = Union([Int(0, 10), Choice(["auto", "off"])])
    offset = len(Int(0, 10).levels())
    assert dim.level_of("auto") == offset and dim.level_of("off") == offset + 1
    assert dim.level_of(0) == 0
    drawn = dim.sample(rng(), 200).tolist()
    assert any(isinstance(v, int) for v in drawn) and any(isinstance(v, str) for v in drawn)


# -- bad declarations -------------------------------------------------------------------------

@pytest.mark.parametrize("build", [
    lambda: Int(5, 1),
    lambda: Int(1.5, 2),
    lambda: Int(1, 2, step=0),
    lambda: Int(True, 3),
    lambda: Int(0, 10, default=11),
    lambda: Float(2.0, 1.0),
    lambda: Float(0, float("inf")),
    lambda: Float(0, 1, step=-0.1),
    lambda: Choice([]),
    lambda: Choice("abc"),
    lambda: Choice(["a"], default="b"),
    lambda: String(5, 2),
    lambda: String(-1, 2),
    lambda: String(pattern="("),
    lambda: String(pattern=r"a{10}", max_len=3),
    lambda: String(pattern="a", charset="a"),
    lambda: String(charset=""),
    lambda: Optional(5),
    lambda: Optional(Int(0, 1), weight=1.5),
    lambda: Size("12 parsecs", "1GB"),
    lambda: Size("1GB", "1KB"),
    lambda: Duration("5 fortnights", "1s"),
    lambda: Permutation([]),
    lambda: ListOf(5),
    lambda: ListOf(Int(0, 1), 3, 2),
    lambda: Object(a=5),
    lambda: Union([]),
    lambda: Union([5]),
], ids=["int-empty", "int-float", "int-step0", "int-bool", "int-default", "float-empty",
        "float-inf", "float-step", "choice-empty", "choice-str", "choice-default",
        "string-lengths", "string-negative", "string-regex", "string-unfittable",
        "string-both", "string-charset", "optional-5", "optional-weight", "size-parsecs",
        "size-empty", "duration-unit", "permutation-empty", "list-5", "list-lengths",
        "object-5", "union-empty", "union-5"])
def test_bad_declarations_raise_space_error(build: Any) -> None:
    with pytest.raises(SpaceError) as info:
        build()
    assert info.value.expected


def test_size_overflowing_declaration_is_space_error() -> None:
    # BUG: parse_size multiplies float('1e999') by the unit and calls int(inf): OverflowError
    with pytest.raises(SpaceError):
        Size("1e999KB", "1GB")
    with pytest.raises(SpaceError):
        declare.dimension({"type": "size", "min": "1e999KB", "max": "1GB"})


# -- declarations ------------------------------------------------------------------------------

def test_declare_short_forms() -> None:
    assert declare.dimension(["off", "lru"]) == Choice(["off", "lru"])
    assert declare.dimension(8) == Choice([8])
    assert declare.dimension({"type": "bool"}) == Bool()
    assert declare.dimension({"type": "size", "min": "1KB", "max": "1MB"}) == Size(1024, 1024**2)


def test_declare_refuses_unknown_type_naming_the_place() -> None:
    with pytest.raises(SpaceError) as info:
        declare.dimension({"type": "integer", "min": 1, "max": 2}, source="space.yaml",
                          place="dimensions.threads")
    assert info.value.place == "dimensions.threads"
    assert info.value.source == "space.yaml"
    assert "'integer'" in info.value.message
    assert "int" in info.value.expected
    assert "space.yaml [dimensions.threads]" in str(info.value)


def test_declare_refuses_unknown_keys_naming_them() -> None:
    with pytest.raises(SpaceError) as info:
        declare.dimension({"type": "int", "min": 1, "max": 2, "maxx": 3},
                          place="dimensions.threads")
    assert info.value.place == "dimensions.threads"
    assert "maxx" in info.value.message
    assert "max" in info.value.expected and "min" in info.value.expected


@pytest.mark.parametrize("spec", [
    {"type": "int", "min": 1},
    {"type": "int", "min": "1", "max": 5},
    {"type": "choice", "values": []},
    {"type": "string", "pattern": "("},
    {"type": "object", "fields": [1, 2]},
    {"type": "union", "of": {"type": "int"}},
    {"type": "optional"},
    {"type": "fixed"},
    {"min": 1, "max": 2},
])
def test_declare_wraps_builder_errors_with_the_place(spec: dict[str, Any]) -> None:
    with pytest.raises(SpaceError) as info:
        declare.dimension(spec, source="space.yaml", place="dimensions.p")
    assert info.value.place is not None and info.value.place.startswith("dimensions.p")
    assert info.value.source == "space.yaml"


@pytest.mark.parametrize("source", ["space.yaml", None])
@pytest.mark.parametrize(("spec", "inner"), [
    ({"type": "optional", "of": {"type": "int", "min": 1}}, "dimensions.p.of"),
    ({"type": "object", "fields": {"a": {"type": "nope"}}}, "dimensions.p.a"),
    ({"type": "union", "of": [{"type": "bool"}, {"type": "int", "min": 3}]},
     "dimensions.p.of[1]"),
    ({"type": "list", "of": {"type": "int", "min": 1, "max": 2, "maxx": 3}}, "dimensions.p.of"),
])
def test_declare_nested_error_names_the_inner_place(spec: dict[str, Any], inner: str,
                                                    source: str | None) -> None:
    # BUG (source=None): dimension() re-wraps an inner error that has no source with its own,
    # outer place, so "dimensions.p.of" becomes "dimensions.p"
    with pytest.raises(SpaceError) as info:
        declare.dimension(spec, source=source, place="dimensions.p")
    assert info.value.place == inner


NESTED_DECLARATION = {
    "dimensions": {
        "db": {"type": "object", "fields": {
            "pool": {"type": "int", "min": 1, "max": 32},
            "tls": {"type": "object", "fields": {
                "on": {"type": "bool"},
                "version": {"type": "optional", "of": ["1.2", "1.3"], "absent": True},
            }},
        }},
        "threads": {"type": "int", "min": 1, "max": 64},
        "cache": ["off", "lru"],
        "cache_size": {"type": "size", "min": "0B", "max": "1GB"},
        "timeout": {"type": "duration", "min": "10ms", "max": "30s"},
        "ops": {"type": "permutation", "items": ["get", "put"]},
        "tags": {"type": "list", "of": {"type": "string", "max_len": 4, "charset": "ab"},
                 "max_items": 2},
    },
    "constraints": ["threads <= db.pool * 2", "cache == 'off' -> cache_size == 0",
                    "db.tls.on or not present(db.tls.version)"],
}


def test_space_round_trip_with_nested_objects_and_constraints() -> None:
    space = declare.space_from_dict(NESTED_DECLARATION, source="space.yaml")
    assert space.names == ["db.pool", "db.tls.on", "db.tls.version", "threads", "cache",
                           "cache_size", "timeout", "ops", "tags"]
    flat = declare.space_to_dict(space)
    assert flat["constraints"] == NESTED_DECLARATION["constraints"]
    assert flat["dimensions"]["db.pool"] == {"type": "int", "min": 1, "max": 32}
    assert flat["dimensions"]["cache_size"] == {"type": "size", "min": "0B", "max": "1GB"}
    again = declare.space_from_dict(json.loads(json.dumps(flat)))
    assert declare.space_to_dict(again) == flat
    assert again.names == space.names
    assert all(again.dimensions[n] == space.dimensions[n] for n in space.names)
    good = {"db.pool": 2, "db.tls.on": False, "db.tls.version": MISSING, "threads": 4,
            "cache": "off", "cache_size": 0, "timeout": 1.0, "ops": ["put", "get"], "tags": []}
    bad = good | {"threads": 5, "cache_size": 1024, "db.tls.version": "1.3"}
    for s in (space, again):
        assert s.violations(good) == []
        assert s.violations(bad) == NESTED_DECLARATION["constraints"]


def test_space_round_trip_of_a_space_built_in_python() -> None:
    space = Space({"db": Object(pool=Int(1, 32), host=Choice(["a", "b"])),
                   "threads": Int(1, 64)}, ["threads <= db.pool * 2"])
    data = declare.space_to_dict(space)
    assert set(data["dimensions"]) == {"db.pool", "db.host", "threads"}
    rebuilt = declare.space_from_dict(data)
    assert declare.space_to_dict(rebuilt) == data
    assert rebuilt.is_valid({"db.pool": 2, "db.host": "a", "threads": 4})
    assert not rebuilt.is_valid({"db.pool": 2, "db.host": "a", "threads": 5})


@pytest.mark.parametrize(("data", "place"), [
    ({"dimensions": {"x": {"type": "int", "min": 1, "max": 2}}, "extra": 1}, None),
    ({"dims": {}}, None),
    ({"dimensions": {"x": {"type": "int", "min": 1, "max": 2}}, "constraints": "x > 1"},
     "constraints"),
    ({"dimensions": {"x": {"type": "nope"}}}, "dimensions.x"),
    ({"dimensions": {"x": {"type": "int", "min": 1, "max": 2}}, "constraints": ["y > 1"]},
     "constraints[0]"),
])
def test_space_from_dict_refuses_bad_declarations(data: dict[str, Any],
                                                  place: str | None) -> None:
    with pytest.raises(SpaceError) as info:
        declare.space_from_dict(data, source="space.yaml")
    assert info.value.source == "space.yaml"
    assert info.value.place == place


# -- Hypothesis: declaration parameters -------------------------------------------------------

def _full_contract(dim: Dimension) -> None:
    check_samples(dim)
    check_deterministic(dim)
    check_levels(dim)
    check_level_of_many(dim)
    check_edges(dim)


@PROPERTY
@given(st.integers(-10**9, 10**9), st.one_of(st.integers(0, 10), st.integers(0, 10**12)),
       st.integers(1, 1000))
def test_int_declarations(lo: int, span: int, step: int) -> None:
    dim = Int(lo, lo + span, step)
    _full_contract(dim)
    edges = [v for _, v in dim.edges()]
    assert lo in edges and dim.max in edges and lo + span - step < dim.max <= lo + span
    assert dim.levels()[0].value == lo and dim.levels()[-1].value == dim.max
    assert not dim.contains(lo - step) and not dim.contains(dim.max + step)
    check_round_trip(dim)


@PROPERTY
@given(st.floats(-1e6, 1e6, allow_subnormal=False), st.floats(0, 1e6, allow_subnormal=False))
@example(99998.0, 3.0)  # BUG: Float._snap moves representatives across bins (see report)
@example(131072.0, 1e-10)  # a span of a few floats: its interior levels collapsed onto min (CI)
def test_float_declarations(lo: float, span: float) -> None:
    dim = Float(lo, lo + span)
    _full_contract(dim)
    edges = [v for _, v in dim.edges()]
    assert dim.min in edges and dim.max in edges
    check_round_trip(dim)


SCALARS = st.one_of(st.none(), st.booleans(), st.integers(-100, 100),
                    st.floats(-1e3, 1e3, allow_nan=False), st.text(max_size=5))


@PROPERTY
@given(st.lists(SCALARS, min_size=1, max_size=6, unique_by=lambda v: (type(v).__name__, v)))
@example([1, 2.5])  # BUG: mixed int/float choices are sampled as floats (see report)
def test_choice_declarations(values: list[Any]) -> None:
    dim = Choice(values)
    check_samples(dim)
    check_deterministic(dim)
    check_levels(dim)
    assert len(dim.levels()) == len(values)
    assert [dim.level_of(v) for v in values] == list(range(len(values)))
    check_round_trip(dim)


CHARS = string.ascii_letters + string.digits + "-_./;é中"


@PROPERTY
@given(st.integers(0, 6), st.integers(0, 10),
       st.one_of(st.none(), st.text(alphabet=CHARS, min_size=1, max_size=6)))
@example(2, 0, "é")  # BUG: charsets without an ordinary character are refused (see report)
def test_string_declarations(min_len: int, extra: int, charset: str | None) -> None:
    dim = String(min_len, min_len + extra, charset=charset)
    _full_contract(dim)
    values = [v for _, v in dim.edges()]
    if min_len == 0:
        assert "" in values
    assert any(len(v) == min_len + extra for v in values)
    if charset is not None:
        assert all(set(v) <= set(charset) for v in values)


DURATION_UNIT = st.sampled_from(["us", "ms", "s", "m", "h"])


@PROPERTY
@given(st.integers(0, 1000), DURATION_UNIT, st.integers(0, 1000), DURATION_UNIT, st.booleans())
@example(1, "us", 1, "d", True)  # BUG: a log level snapped to 0.0 (see report)
def test_duration_declarations(a: int, a_unit: str, b: int, b_unit: str, human: bool) -> None:
    lo, hi = sorted([f"{a}{a_unit}", f"{b}{b_unit}"], key=parse_duration)
    dim = Duration(lo, hi, human=human)
    assert dim.min == pytest.approx(parse_duration(lo)) and dim.max == parse_duration(hi)
    _full_contract(dim)
    check_round_trip(dim)


@settings(PROPERTY, max_examples=25)
@given(st.integers(0, 6), st.integers(0, 10),
       st.one_of(st.none(), st.text(alphabet=string.ascii_letters + string.digits,
                                    min_size=1, max_size=6)),
       st.sampled_from([None, r"[a-f]{3,5}", r"[0-9]+", r"(ab|cd)*x?"]))
def test_string_declaration_round_trip(min_len: int, extra: int, charset: str | None,
                                       pattern: str | None) -> None:
    if pattern is not None:
        charset = None
    try:
        dim = String(min_len, min_len + extra, charset=charset, pattern=pattern)
    except SpaceError:  # a pattern with no string of these lengths is refused, by design
        assert pattern is not None
        return
    check_round_trip(dim)


SIZE_UNIT = st.sampled_from(["B", "KB", "MB", "GB"])


@PROPERTY
@given(st.integers(0, 2048), SIZE_UNIT, st.integers(0, 2048), SIZE_UNIT, st.booleans())
@example(0, "B", 1, "KB", True)  # BUG: small log-binned ranges collapse (see report)
def test_size_declarations(a: int, a_unit: str, b: int, b_unit: str, human: bool) -> None:
    lo, hi = sorted([f"{a}{a_unit}", f"{b}{b_unit}"], key=_bytes)
    dim = Size(lo, hi, human=human)
    _full_contract(dim)
    check_round_trip(dim)


@PROPERTY
@given(st.integers(0, 2048), SIZE_UNIT, st.integers(0, 2048), SIZE_UNIT, st.booleans())
def test_size_declaration_round_trip(a: int, a_unit: str, b: int, b_unit: str,
                                     human: bool) -> None:
    low, high = sorted([f"{a}{a_unit}", f"{b}{b_unit}"], key=_bytes)
    dim = Size(low, high, human=human)
    assert dim.min == _bytes(low) and dim.max == _bytes(high)
    check_round_trip(dim)
    for value in (dim.min, dim.max):
        rendered = Size.render_human(value)
        assert _bytes(rendered) == value
        number = int(rendered.rstrip(string.ascii_letters))
        assert value == 0 or rendered.endswith("TB") or number % 1024 != 0  # largest unit


def _bytes(text: str) -> int:
    digits = text.rstrip(string.ascii_letters)
    unit = text[len(digits):]
    return int(digits) * {"B": 1, "KB": 1024, "MB": 1024**2, "GB": 1024**3, "TB": 1024**4}[unit]
