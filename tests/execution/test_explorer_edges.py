"""Edge proposals: sweeps of every dimension's edges at once, equal values, round robin."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from testfleet.execution.explorer_edges import equal_rows, ranked_edges, round_robin, sweep_rows
from testfleet.space.composite import Permutation
from testfleet.space.dimensions import Bool, Choice, Int
from testfleet.space.sampling import random_points
from testfleet.space.space import Space
from testfleet.space.text import String


def _space() -> Space:
    return Space({"amount": Int(-1000, 1_000_000), "memo": String(0, 160), "parallel": Int(1, 16),
                  "mode": Choice(["a", "b", "c"]), "flag": Bool(),
                  "order": Permutation(["get", "patch", "delete"])})


def test_zero_and_empty_come_first() -> None:
    assert ranked_edges(Int(-1000, 1_000_000))[:3] == [("zero", 0), ("max", 1_000_000), ("-1", -1)]
    text = ranked_edges(String(0, 20))
    assert text[0] == ("empty", "") and len(text[1][1]) == 20  # then the far end: the longest
    assert [value for _label, value in ranked_edges(Choice(["a", "b", "c"]))] == ["a", "c", "b"]
    assert [value for _label, value in ranked_edges(Bool())] == [False, True]


def test_every_edge_of_every_dimension_is_swept_in_as_many_rows_as_the_richest_has() -> None:
    space = _space()
    backgrounds = [p.params for p in random_points(space, 40, 3).points]
    rows = [row for row, _label in sweep_rows(space, backgrounds)]
    depth = max(len(dim.edges()) for dim in space.dimensions.values())
    assert len(rows) <= depth
    for name, dim in space.dimensions.items():
        met = [row[name] for row in rows]
        assert all(value in met for _label, value in dim.edges()), name
    assert rows[0]["amount"] == 0 and rows[0]["memo"] == ""  # the most telling values first
    far = rows[1]  # then every dimension at its far end at once
    assert far["amount"] == 1_000_000 and len(far["memo"]) == 160 and far["parallel"] == 16
    assert all(space.is_valid(row) for row in rows)


def test_a_sweep_leaves_out_a_value_that_breaks_a_constraint() -> None:
    space = Space({"a": Int(0, 10), "b": Int(0, 10)}, constraints=["a > b"])
    backgrounds = [p.params for p in random_points(space, 20, 1).points]
    rows = sweep_rows(space, backgrounds)
    assert rows and all(space.is_valid(row) for row, _ in rows)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31))
def test_equal_rows_set_two_integer_parameters_to_one_value(seed: int) -> None:
    space = Space({"tasks": Int(0, 100), "queue": Int(1, 64), "name": String(0, 5),
                   "far": Int(500, 600)})
    backgrounds = [p.params for p in random_points(space, 10, seed).points]
    rows = equal_rows(space, backgrounds, seed)
    assert rows and all(row["tasks"] == row["queue"] for row, label in rows if label.startswith("tasks=queue"))
    assert any(row["tasks"] == row["queue"] == 64 for row, _ in rows)  # the top of the overlap
    assert not any("far" in label for _, label in rows)  # no overlap with the others' ranges
    assert all(space.is_valid(row) for row, _ in rows)
    assert equal_rows(space, backgrounds, seed) == rows  # seeded


def test_round_robin_takes_each_dimension_in_turn_most_telling_first() -> None:
    points = [("a", "min"), ("a", "max"), ("a", "zero"), ("b", "empty"), ("b", "longest")]
    ordered = round_robin(points, lambda p: p[0], lambda p: p[1])
    assert ordered == [("a", "zero"), ("b", "empty"), ("a", "min"), ("b", "longest"), ("a", "max")]


def test_equal_rows_take_the_widest_overlap_first() -> None:
    space = Space({"workers": Int(1, 8), "queue_size": Int(1, 64), "tasks": Int(0, 100)})
    rows = equal_rows(space, [space.baseline()], 5)
    assert rows[0][1].startswith("queue_size=tasks=") and rows[0][0]["queue_size"] == rows[0][0]["tasks"]
