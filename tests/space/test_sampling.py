"""Strategies: every variant valid, same seed same variants, t-way arrays cover every valid
tuple (checked by a brute-force counter independent of the library), conflicts named."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from testfleet.errors import SpaceError, UnsatisfiableError
from testfleet.space import (
    Bool,
    Choice,
    Duration,
    Float,
    Int,
    ListOf,
    Object,
    Optional,
    Permutation,
    Size,
    Space,
    String,
)
from testfleet.space.sampling import generate, random_points

# -- a small random space with random constraints --------------------------------------------

_OPS = ["<=", "<", ">=", ">", "==", "!="]


@st.composite
def small_spaces(draw):  # type: ignore[no-untyped-def]
    k = draw(st.integers(2, 5))
    dims = {}
    for i in range(k):
        kind = draw(st.sampled_from(["int", "choice", "bool"]))
        if kind == "int":
            lo = draw(st.integers(-3, 3))
            dims[f"p{i}"] = Int(lo, lo + draw(st.integers(0, 4)))
        elif kind == "choice":
            dims[f"p{i}"] = Choice(list(range(draw(st.integers(1, 4)))))
        else:
            dims[f"p{i}"] = Bool()
    names = list(dims)
    constraints = []
    for _ in range(draw(st.integers(0, 3))):
        a, b = draw(st.sampled_from(names)), draw(st.sampled_from(names))
        op = draw(st.sampled_from(_OPS))
        form = draw(st.sampled_from(["cmp", "implies", "const"]))
        if form == "cmp":
            constraints.append(f"{a} {op} {b}")
        elif form == "implies":
            constraints.append(f"{a} {op} 1 -> {b} {draw(st.sampled_from(_OPS))} 0")
        else:
            constraints.append(f"{a} {op} {draw(st.integers(-2, 4))}")
    return Space(dims, constraints)


def _valid_points(space: Space) -> list[dict]:
    """Every valid point, by brute force (the spaces here are tiny)."""
    values = [[level.value for level in space.levels(n)] for n in space.names]
    points = [dict(zip(space.names, combo, strict=True)) for combo in itertools.product(*values)]
    return [p for p in points if space.is_valid(p)]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(space=small_spaces(), seed=st.integers(0, 2**32 - 1),
       strategy=st.sampled_from(["random", "edge", "pairwise", "mixed"]))
def test_every_variant_satisfies_its_constraints(space: Space, seed: int, strategy: str) -> None:
    if not _valid_points(space):
        with pytest.raises(UnsatisfiableError):
            generate(space, strategy, count=10, seed=seed)
        return
    points = generate(space, strategy, count=10, seed=seed).points
    assert points
    for point in points:
        assert space.violations(point.params) == []


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(space=small_spaces(), seed=st.integers(0, 1000), t=st.integers(2, 3))
def test_t_way_covers_every_valid_tuple(space: Space, seed: int, t: int) -> None:
    valid = _valid_points(space)
    if not valid:
        return
    t = min(t, len(space))
    rows = [p.params for p in generate(space, "t-way", seed=seed, strength=t).points]
    assert all(space.is_valid(r) for r in rows)
    # a t-tuple must be covered when some valid point contains it
    for cols in itertools.combinations(space.names, t):
        needed = {tuple(repr(p[c]) for c in cols) for p in valid}
        covered = {tuple(repr(r[c]) for c in cols) for r in rows}
        assert needed <= covered, (cols, needed - covered)


def test_same_seed_same_variants_and_other_seed_differs() -> None:
    space = Space(a=Int(0, 1000), b=Float(0, 1), c=String(0, 8), d=Permutation([1, 2, 3]))
    first = generate(space, "random", count=50, seed=11).points
    again = generate(space, "random", count=50, seed=11).points
    other = generate(space, "random", count=50, seed=12).points
    assert [p.params for p in first] == [p.params for p in again]
    assert [p.params for p in first] != [p.params for p in other]
    assert len({p.key for p in first}) == 50


def test_edges_pair_each_boundary_with_baseline_values() -> None:
    space = Space(threads=Int(1, 64, default=8), mode=Choice(["a", "b"], default="a"),
                  name=String(0, 10, default="web"))
    base = space.baseline()
    points = generate(space, "edge").points
    assert points[0].origin == "baseline" and points[0].params == base
    by_origin = {p.origin: p.params for p in points}
    assert by_origin["edge:threads=max"] == base | {"threads": 64}
    assert by_origin["edge:threads=just above min"] == base | {"threads": 2}
    assert by_origin["edge:name=empty"] == base | {"name": ""}
    assert by_origin["edge:name=longest"]["name"].__len__() == 10
    assert any(ord(ch) > 127 for ch in by_origin["edge:name=non-ascii"]["name"])
    for params in by_origin.values():
        changed = [k for k in params if params[k] != base[k]]
        assert len(changed) <= 1


def test_edge_that_breaks_a_constraint_is_repaired_or_listed() -> None:
    space = Space(threads=Int(1, 64), cpus=Choice([1, 2, 4, 8]), constraints=["threads <= cpus * 2"])
    result = generate(space, "edge")
    assert all(space.is_valid(p.params) for p in result.points)
    repaired = {p.origin: p.params for p in result.points}["edge:threads=just above min"]
    assert repaired["threads"] == 2
    assert any(text.startswith("threads=64") for text in result.impossible)


def test_conflicting_constraints_are_named() -> None:
    space = Space(a=Int(0, 10), b=Int(0, 10), c=Choice(["x", "y"]),
                  constraints=["a > 5", "c == 'x'", "a < 3", "b >= 0"])
    with pytest.raises(UnsatisfiableError) as info:
        generate(space, "random", count=5, seed=0)
    assert sorted(info.value.conflict) == ["a < 3", "a > 5"]
    assert "a > 5" in str(info.value) and "a < 3" in str(info.value)


def test_constants_in_constraints_are_reachable() -> None:
    # 8443 is no level of the port range, yet the only valid point needs it
    space = Space(port=Int(1024, 65535), tls=Bool(), constraints=["tls -> port == 8443"])
    rows = generate(space, "pairwise", seed=0).points
    assert {(p.params["tls"], p.params["port"]) for p in rows if p.params["tls"]} == {(True, 8443)}


def test_extend_covers_only_what_existing_tests_miss() -> None:
    space = Space(a=Choice([0, 1, 2]), b=Choice([0, 1, 2]), c=Choice([0, 1, 2]))
    existing = [{"a": 0, "b": 0, "c": 0}, {"a": 1, "b": 1, "c": 1}, {"a": 2, "b": 2, "c": 2}]
    added = [p.params for p in generate(space, "pairwise", seed=3, existing=existing).points]
    assert not any(p in existing for p in added)
    everything = existing + added
    for x, y in itertools.combinations("abc", 2):
        assert {(p[x], p[y]) for p in everything} == set(itertools.product(range(3), repeat=2))
    full = generate(space, "pairwise", seed=3).points
    assert len(added) < len(full) + 1


def test_mixed_puts_edges_before_pairs_before_random() -> None:
    space = Space(a=Int(0, 100), b=Choice(["x", "y", "z"]), c=Bool())
    points = generate(space, "mixed", count=60, seed=5).points
    kinds = [p.origin.split(":")[0] for p in points]
    order = {"baseline": 0, "edge": 0, "pairwise": 1, "random": 2}
    ranks = [order[k] for k in kinds]
    assert ranks == sorted(ranks) and set(ranks) == {0, 1, 2}
    assert len({p.key for p in points}) == 60


def test_nested_objects_optional_and_lists_round_trip_to_nested_documents() -> None:
    space = Space(db=Object(pool=Int(1, 10), host=Choice(["a", "b"]),
                            replica=Optional(Choice(["r1"]), absent=True)),
                  tags=ListOf(Choice(["x", "y"]), 1, 3), timeout=Duration("10ms", "5s"),
                  buf=Size("1KB", "1MB"))
    for point in generate(space, "random", count=30, seed=1).points:
        doc = space.nest(point.params)
        assert set(doc) == {"db", "tags", "timeout", "buf"}
        assert 1 <= len(doc["tags"]) <= 3
        if point.params["db.replica"] is not None and "replica" not in doc["db"]:
            assert repr(point.params["db.replica"]) == "MISSING"


def test_huge_spaces_are_never_enumerated() -> None:
    # 210 dimensions, 10^100 points: random and pairwise must still answer
    space = Space({f"d{i}": Choice(list(range(3))) for i in range(210)},
                  ["d0 != d1", "d2 == 1 -> d3 == 2"])
    assert space.log10_size() > 100
    points = generate(space, "random", count=200, seed=0).points  # enumerating would never end
    assert len(points) == 200 and all(space.is_valid(p.params) for p in points)
    pairs = generate(space, "pairwise", seed=0).points
    assert 9 <= len(pairs) < 60 and all(space.is_valid(p.params) for p in pairs)


def test_bad_strategy_and_missing_count_are_refused() -> None:
    space = Space(a=Int(0, 3))
    with pytest.raises(SpaceError, match="unknown strategy"):
        generate(space, "genetic", count=3)
    with pytest.raises(SpaceError, match="needs a count"):
        generate(space, "random")


def test_unknown_names_in_constraints_get_a_suggestion() -> None:
    with pytest.raises(SpaceError) as info:
        Space(threads=Int(1, 8), constraints=["thread < 4"])
    assert "did you mean 'threads'" in str(info.value)
    assert info.value.place == "constraints[0]"


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
@given(space=small_spaces(), seed=st.integers(0, 2**32 - 1), short=st.integers(1, 40),
       extra=st.integers(1, 400))
def test_random_points_same_seed_same_prefix_whatever_the_count(space: Space, seed: int, short: int,
                                                                  extra: int) -> None:
    # a bench or a budget that asks for more points must see the same first ones
    assume(_valid_points(space))
    few = random_points(space, short, seed)[:]
    many = random_points(space, short + extra, seed)[:]
    assert many[:len(few)] == few


def test_random_points_prefix_on_a_wide_constrained_space() -> None:
    space = Space({"n": Int(0, 10**6), "s": String(0, 30), "mode": Choice(["a", "b", "c"]),
                   "items": ListOf(Int(0, 9), 0, 5)}, ["n > 500000 -> mode != 'a'"])
    ten = random_points(space, 10, seed=3)[:]
    assert len(ten) == 10
    for count in (11, 64, 65, 300, 2000):
        assert random_points(space, count, seed=3)[:10] == ten
    assert random_points(space, 10, seed=4)[:] != ten
