"""Numeric levels merge into thresholds and ranges: a rule reads ``x>c`` (or ``a<x<=b``) with
its bound at the observed values where failing starts, never one rule per level or bin."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from testfleet.analysis.correlation import analyze
from analysis.frames import frame_from_rows
from testfleet.analysis.frame import NUMERIC


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), n=st.integers(120, 400), share=st.floats(0.1, 0.5),
       above=st.booleans())
def test_a_threshold_on_a_many_valued_column_is_one_rule_at_the_observed_boundary(
        seed: int, n: int, share: float, above: bool) -> None:
    rng = np.random.default_rng(seed)
    x = rng.integers(-1000, 5000, n)
    cut = np.quantile(x, 1 - share if above else share)
    failed = x > cut if above else x <= cut
    rows = [{"failed": bool(f), "params": {"x": int(v), "noise": k % 4}}
            for k, (v, f) in enumerate(zip(x, failed))]
    frame = frame_from_rows(rows)
    assert frame.column("x").kind == NUMERIC      # binned, not one level a value
    # the bound sits on the last passing value (above) or the last failing one (below)
    expected = f"x>{x[~failed].max()}" if above else f"x<={x[failed].max()}"
    rules = analyze(frame).rules
    assert [r.text.split(":")[0] for r in rules] == [f"fails when {expected}"]
    assert rules[0].failures == rules[0].support == int(failed.sum())


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), low=st.integers(200, 1500), width=st.integers(800, 2000))
def test_a_failing_middle_band_of_a_many_valued_column_is_one_range(seed: int, low: int,
                                                                    width: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 5000, 400)
    failed = (x > low) & (x <= low + width)
    rows = [{"failed": bool(f), "params": {"x": int(v), "noise": k % 3}}
            for k, (v, f) in enumerate(zip(x, failed))]
    rules = analyze(frame_from_rows(rows)).rules
    expected = f"{x[(x <= low)].max()}<x<={x[failed].max()}"
    assert [r.text.split(":")[0] for r in rules] == [f"fails when {expected}"]


def test_a_threshold_inside_a_combination_is_merged_across_levels() -> None:
    # the suite: cache=off and threads>8, threads one of six values (a category of
    # numbers); one rule, not threads=12 and threads=16 apart
    rows = [{"failed": cache == "off" and threads > 8,
             "params": {"threads": threads, "cache": cache, "size": size}}
            for threads in (1, 2, 4, 8, 12, 16) for cache in ("on", "off") for size in range(12)]
    rules = analyze(frame_from_rows(rows)).rules
    assert [r.text for r in rules] == ["fails when cache=off and threads>8: 100% of 24 executions"] \
        or [sorted(c.text for c in rules[0].conditions)] == [["cache=off", "threads>8"]]
    assert len(rules) == 1
