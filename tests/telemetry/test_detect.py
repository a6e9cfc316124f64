"""Tests for testfleet.telemetry.detect (seeded data with known truth)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from testfleet.telemetry.detect import (
    Anomaly,
    Detector,
    RobustBaseline,
    leak_trend,
)

# --------------------------------------------------------------- outliers


def test_stationary_gaussian_has_few_outliers():
    rng = np.random.default_rng(1)
    bl = RobustBaseline(window=50, two_sided=True)
    flags = [bl.update(v)[0] for v in rng.normal(240.0, 5.0, 5000)]
    # expected ~0.006% at |z| >= 4 for a Gaussian; finite-window noise adds some
    assert sum(flags) <= 10


def test_planted_spike_flagged_with_index_and_message():
    rng = np.random.default_rng(2)
    values = rng.normal(240.0, 3.0, 40)
    values[25] = 812.0
    det = Detector()
    found = []
    for v in values:
        found += det.observe("case-a", "v1", {"sut.rss_mb": {"max": float(v)}})
    assert len(found) == 1
    a = found[0]
    assert isinstance(a, Anomaly)
    assert a.kind == "outlier"
    assert a.index == 25
    assert a.case_id == "case-a" and a.variant_id == "v1"
    assert a.metric == "sut.rss_mb"
    assert a.value == 812.0
    assert a.baseline == pytest.approx(240.0, abs=3.0)
    assert a.score > 4.0 and a.spread > 0
    assert "sut.rss_mb" in a.message
    assert "812" in a.message
    assert f"{a.baseline:.4g}" in a.message
    d = a.to_dict()
    assert d["kind"] == "outlier" and d["index"] == 25 and d["message"] == a.message


def test_nothing_flagged_before_min_history():
    bl = RobustBaseline(min_history=8)
    for v in [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0]:
        bl.update(v)
    assert len(bl) == 7
    flagged, z = bl.update(1e6)  # 8th value: only 7 in history
    assert not flagged
    assert z > 4.0  # scored, but not flagged
    flagged, _ = bl.update(1e9)  # now 8 values of history
    assert flagged


def test_constant_series_mad_floor():
    bl = RobustBaseline()
    for _ in range(20):
        assert bl.update(100.0) == (False, 0.0)
    flagged, z = bl.update(101.0)  # +1% of a constant
    assert not flagged
    assert math.isfinite(z) and z < 4.0
    flagged, z = bl.update(300.0)  # x3 jump
    assert flagged and z > 4.0


def test_constant_zero_series_uses_absolute_floor():
    bl = RobustBaseline(abs_floor=0.5)
    for _ in range(10):
        bl.update(0.0)
    assert bl.update(0.1) == (False, pytest.approx(0.2))
    assert bl.update(10.0)[0]


def test_upper_only_by_default_two_sided_optional():
    up = RobustBaseline()
    both = RobustBaseline(two_sided=True)
    for v in [100.0, 101.0, 99.0, 100.5, 99.5, 100.0, 100.2, 99.8, 100.1, 99.9]:
        up.update(v)
        both.update(v)
    flagged, z = up.update(10.0)
    assert not flagged and z < -4.0
    assert both.update(10.0)[0]


def test_non_finite_values_are_ignored():
    bl = RobustBaseline()
    assert bl.update(float("nan")) == (False, 0.0)
    assert bl.update(float("inf")) == (False, 0.0)
    assert len(bl) == 0


def test_window_bounds_history():
    bl = RobustBaseline(window=10)
    for v in range(100):
        bl.update(float(v))
    assert len(bl) == 10


@pytest.mark.parametrize(
    "kwargs",
    [{"window": 0}, {"min_history": 0}, {"threshold": 0}, {"abs_floor": 0}],
)
def test_invalid_parameters(kwargs):
    with pytest.raises(ValueError):
        RobustBaseline(**kwargs)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.floats(allow_nan=False, allow_infinity=False),
        min_size=0,
        max_size=80,
    ),
    st.booleans(),
)
def test_robust_baseline_never_raises_and_z_finite(values, two_sided):
    bl = RobustBaseline(window=20, min_history=3, two_sided=two_sided)
    for v in values:
        flagged, z = bl.update(v)
        assert isinstance(flagged, bool)
        assert math.isfinite(z)


# --------------------------------------------------------------- detector


def test_detector_keeps_baselines_separate_per_case_and_metric():
    rng = np.random.default_rng(3)
    det = Detector()
    found = []
    for _ in range(30):
        found += det.observe(
            "small",
            None,
            {
                "sut.rss_mb": {"max": float(rng.normal(50, 1)), "mean": 1.0},
                "sut.cpu_pct": {"max": float(rng.normal(20, 2))},
            },
        )
        found += det.observe(
            "big", "v2", {"sut.rss_mb": {"max": float(rng.normal(800, 10))}}
        )
    # an 800 MB case would be an outlier against the 50 MB case if mixed
    assert found == []
    assert det.executions("small") == 30 and det.executions("big") == 30
    out = det.observe("small", "v9", {"sut.rss_mb": {"max": 800.0}})
    assert [(a.case_id, a.metric, a.variant_id, a.index) for a in out] == [
        ("small", "sut.rss_mb", "v9", 30)
    ]
    assert det.observe("big", None, {"sut.rss_mb": {"max": 810.0}}) == []


def test_detector_skips_missing_stat_and_bad_values():
    det = Detector()
    assert det.observe("c", None, {"m": {"mean": 1.0}}) == []
    assert det.observe("c", None, {"m": {"max": float("nan")}}) == []
    assert det.observe("c", None, {"m": {"max": "x"}}) == []  # type: ignore[dict-item]
    assert det.leaks("c", "m") is None
    assert det.leaks("unknown") is None


def test_detector_stat_selection():
    det = Detector()
    for _ in range(10):
        det.observe("c", None, {"m": {"max": 10.0, "p95": 5.0}}, stat="p95")
    out = det.observe("c", None, {"m": {"max": 10.0, "p95": 50.0}}, stat="p95")
    assert len(out) == 1 and out[0].value == 50.0


def test_detector_leak_anomaly():
    rng = np.random.default_rng(4)
    det = Detector()
    for i in range(30):
        rss = 240.0 + 3.0 * i + rng.normal(0, 4)
        det.observe("leaky", "v1", {"sut.rss_mb": {"max": rss}})
        det.observe("fine", "v1", {"sut.rss_mb": {"max": 240.0 + rng.normal(0, 4)}})
    leak = det.leaks("leaky")
    assert leak is not None
    assert leak.kind == "leak" and leak.case_id == "leaky"
    assert leak.metric == "sut.rss_mb" and leak.variant_id == "v1"
    assert leak.index == 29
    assert leak.spread == pytest.approx(3.0, abs=0.5)
    assert leak.baseline == pytest.approx(250.0, abs=15.0)
    assert leak.score > 2.3
    assert "sut.rss_mb" in leak.message and "grows" in leak.message
    assert det.leaks("fine") is None


# --------------------------------------------------------------- leaks

X = np.arange(30, dtype=float)


def test_linear_growth_is_leak_with_planted_slope():
    rng = np.random.default_rng(5)
    values = 240.0 + 2.0 * X + rng.normal(0, 3, X.size)
    is_leak, slope, p, growth = leak_trend(values)
    assert is_leak
    assert slope == pytest.approx(2.0, abs=0.3)
    assert p < 0.01
    assert growth == pytest.approx(2.0 * 29, rel=0.15)


def test_linear_growth_detected_across_seeds():
    hits = 0
    for seed in range(100):
        rng = np.random.default_rng(seed)
        hits += leak_trend(240.0 + 2.0 * X + rng.normal(0, 5, X.size))[0]
    assert hits >= 95


def test_flat_noise_false_positive_rate():
    fp = 0
    n_seeds = 500
    for seed in range(n_seeds):
        rng = np.random.default_rng(1000 + seed)
        fp += leak_trend(240.0 + rng.normal(0, 5, X.size), alpha=0.01)[0]
    assert fp / n_seeds <= 0.03


def test_plateau_after_first_three_points_is_not_leak():
    for seed in range(50):
        rng = np.random.default_rng(seed)
        values = np.r_[[100.0, 150.0, 200.0], np.full(27, 240.0)]
        values = values + rng.normal(0, 3, values.size)
        assert not leak_trend(values)[0]


def test_single_step_is_not_leak():
    # Decision: a one-time allocation (one step up, flat before and after) is
    # not a leak -- a single step fits the data better than a line.
    flagged = 0
    for seed in range(200):
        rng = np.random.default_rng(seed)
        k = int(rng.integers(5, 25))
        values = np.r_[np.full(k, 200.0), np.full(30 - k, 260.0)]
        flagged += leak_trend(values + rng.normal(0, 3, 30))[0]
    assert flagged == 0


def test_staircase_of_repeated_allocations_is_leak():
    rng = np.random.default_rng(6)
    values = 200.0 + 10.0 * (X // 5) + rng.normal(0, 2, X.size)
    assert leak_trend(values)[0]


def test_small_growth_not_practical():
    rng = np.random.default_rng(7)
    # significant but tiny: 0.05 MB/execution on 1 GB
    values = 1000.0 + 0.05 * X + rng.normal(0, 0.01, X.size)
    is_leak, slope, p, _growth = leak_trend(values)
    assert p < 0.01 and slope > 0
    assert not is_leak


def test_decreasing_and_short_series_not_leak():
    assert not leak_trend(500.0 - 3.0 * X)[0]
    assert leak_trend([1.0, 2.0, 3.0]) == (False, 0.0, 1.0, 0.0)
    assert not leak_trend(np.full(30, 7.0))[0]


def test_non_finite_values_dropped():
    values = list(240.0 + 2.0 * X)
    values[4] = float("nan")
    values[9] = float("inf")
    is_leak, slope, _, _ = leak_trend(values)
    assert is_leak and slope == pytest.approx(2.0)


def test_clean_linear_growth_is_leak():
    # exactly linear: no noise at all
    is_leak, slope, _p, growth = leak_trend(100.0 + 5.0 * X)
    assert is_leak and slope == pytest.approx(5.0) and growth == pytest.approx(145.0)
