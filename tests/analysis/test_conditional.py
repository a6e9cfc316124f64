"""A parameter that only co-occurs with the cause's values is not blamed: a significant column
must still go with failure within the values of the stronger ones (stratified test)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from testfleet.analysis.correlation import analyze
from analysis.frames import frame_from_rows


def _edge_rows(count: int) -> list[dict]:
    # one factor at a time from the baseline (a=0, b=0): the baseline values turn up together
    return [{"failed": False, "params": {"a": 0, "b": 0, "c": c}, "origin": "edge"}
            for c in range(8)] * count


def test_a_parameter_that_shares_the_baselines_rows_with_the_cause_is_explained_by_it() -> None:
    rng = np.random.default_rng(0)
    rows = [{"failed": a == 1, "params": {"a": int(a), "b": int(b), "c": int(c)},
             "origin": "random"}
            for a, b, c in zip(rng.integers(0, 2, 80), rng.integers(0, 4, 80),
                               rng.integers(0, 8, 80))]
    by = {i.column: i for i in analyze(frame_from_rows(rows + _edge_rows(5))).impacts}
    assert by["a"].significant
    assert by["b"].p_value < 1e-3           # marginally b=0 looks protective...
    assert not by["b"].significant          # ...but not among executions with the same a
    assert by["b"].note.startswith("explained by a")
    assert by["b"].details["conditional"]["given"] == ["a"]


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), interaction=st.booleans())
def test_a_second_cause_or_a_part_of_an_interaction_stays_significant(seed: int,
                                                                      interaction: bool) -> None:
    rng = np.random.default_rng(seed)
    a, b, c = rng.integers(0, 2, 300), rng.integers(0, 3, 300), rng.integers(0, 5, 300)
    failed = (a == 1) & (b == 2) if interaction else (a == 1) | (b == 2)
    rows = [{"failed": bool(f), "params": {"a": int(x), "b": int(y), "c": int(z)},
             "origin": "random"} for x, y, z, f in zip(a, b, c, failed)]
    by = {i.column: i for i in analyze(frame_from_rows(rows + _edge_rows(3))).impacts}
    assert by["a"].significant and by["b"].significant
    assert not by["c"].significant
