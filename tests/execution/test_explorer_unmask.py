"""Unmasking: a coverage point that fails with a known failure runs again without its suspects."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from testfleet.execution.explorer_unmask import Unmasker

BASELINE = {"workers": 2, "priority": False, "tasks": 10, "retries": 0}


def test_the_second_sighting_puts_the_shared_values_back_to_the_baseline() -> None:
    unmask = Unmasker()
    first = {"workers": 4, "priority": True, "tasks": 16, "retries": 2}
    assert unmask.observe("race", False, "pairwise", first, BASELINE) is None  # new: nothing hidden
    masked = {"workers": 8, "priority": True, "tasks": 100, "retries": 3}
    again = unmask.observe("race", True, "edge", masked, BASELINE)
    assert again == {"workers": 8, "priority": False, "tasks": 100, "retries": 3}
    assert unmask.common["race"] == {"priority": True}


def test_guided_points_and_passes_are_not_unmasked() -> None:
    unmask = Unmasker()
    point = {"workers": 4, "priority": True, "tasks": 16, "retries": 2}
    unmask.observe("race", False, "edge", point, BASELINE)
    assert unmask.observe("race", True, "mutation", {**point, "tasks": 5}, BASELINE) is None
    assert unmask.observe("race", True, "unmask", {**point, "tasks": 6}, BASELINE) is None
    assert unmask.observe(None, False, "edge", point, BASELINE) is None


@given(st.lists(st.fixed_dictionaries({"workers": st.integers(1, 8), "priority": st.booleans(),
                                       "tasks": st.integers(0, 100), "retries": st.integers(0, 3)}),
                min_size=2, max_size=8))
def test_suspects_are_exactly_the_values_every_sighting_shares(points: list[dict[str, object]]) -> None:
    unmask = Unmasker()
    for i, point in enumerate(points):
        again = unmask.observe("bug", i > 0, "random", point, BASELINE)
        shared = {k for k in point if all(p[k] == point[k] for p in points[:i + 1])}
        if again is not None:
            changed = {k for k in point if again[k] != point[k]}
            assert changed == {k for k in shared if BASELINE[k] != point[k]}
            assert all(again[k] == BASELINE[k] for k in changed)
