"""Custom metrics (``testfleet.metric``): names, argument checks, the per-process sink, summaries
and the bucketed series that goes to the store."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import testfleet
from testfleet.telemetry.custom import CustomMetrics, install, metric, metric_name

FINITE = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)


@pytest.fixture
def no_sink():
    """No collector installed (whatever was there before comes back afterwards)."""
    previous = install(None)
    yield
    install(previous)


@pytest.fixture
def sink():
    collector = CustomMetrics()
    previous = install(collector)
    yield collector
    install(previous)


# -- names and arguments --------------------------------------------------------------------


@pytest.mark.parametrize(("given_name", "stored"), [
    ("depth", "custom.depth"),
    ("queue.depth", "custom.queue.depth"),
    ("custom.depth", "custom.depth"),
    ("http.latency_ms", "http.latency_ms"),
    # a test cannot shadow testfleet's own sampled metrics
    ("sut.rss_mb", "custom.sut.rss_mb"),
    ("system.cpu_percent", "custom.system.cpu_percent"),
])
def test_metric_name_prefixes(given_name: str, stored: str) -> None:
    assert metric_name(given_name) == stored


@pytest.mark.parametrize("bad", ["", "   ", None, 3])
def test_metric_name_refuses_empty_or_non_string_names(bad: object) -> None:
    with pytest.raises(ValueError, match="non-empty string"):
        metric_name(bad)  # type: ignore[arg-type]


@pytest.mark.usefixtures("no_sink")
def test_without_a_sink_metric_is_a_no_op_that_still_checks_its_arguments() -> None:
    metric("depth", 3)
    metric("depth", 2.5)
    metric("depth", np.int64(4))
    metric("depth", np.float32(1.5))
    for bad in (True, False, "3", None, [1.0], complex(1, 0)):
        with pytest.raises(TypeError, match="must be a number"):
            metric("depth", bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="non-empty string"):
        metric("", 1.0)
    # the public re-export checks the same way (a suite run under plain pytest gets the errors)
    testfleet.metric("depth", 1)
    with pytest.raises(TypeError):
        testfleet.metric("depth", "many")  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        testfleet.metric(" ", 1)


def test_installed_sink_collects_in_order_and_take_empties_it(sink: CustomMetrics) -> None:
    metric("depth", 3)
    metric("depth", np.int32(5))
    metric("http.latency_ms", 12.5)
    metric("custom.hits", 1.0)
    taken = sink.take()
    assert {name: [v for _, v in pairs] for name, pairs in taken.items()} == {
        "custom.depth": [3.0, 5.0], "http.latency_ms": [12.5], "custom.hits": [1.0]}
    times = [t for t, _ in taken["custom.depth"]]
    assert times == sorted(times)
    assert all(isinstance(v, float) for pairs in taken.values() for _, v in pairs)
    assert sink.take() == {}
    metric("depth", 7)
    assert [v for _, v in sink.take()["custom.depth"]] == [7.0]


def test_a_rejected_value_records_nothing(sink: CustomMetrics) -> None:
    with pytest.raises(TypeError):
        metric("depth", True)
    with pytest.raises(ValueError):
        metric("", 1)
    assert sink.take() == {}


def test_install_returns_the_previous_sink() -> None:
    first, second = CustomMetrics(), CustomMetrics()
    outer = install(first)
    try:
        assert install(second) is first
        metric("x", 1)
        assert install(first) is second
        metric("x", 2)
    finally:
        install(outer)
    assert [v for _, v in second.take()["custom.x"]] == [1.0]
    assert [v for _, v in first.take()["custom.x"]] == [2.0]


def test_non_finite_values_are_dropped(sink: CustomMetrics) -> None:
    metric("x", float("nan"))
    metric("x", float("inf"))
    metric("x", 2.0)
    metric("x", -math.inf)
    sink.add("custom.y", math.nan, t=1.0)
    assert {name: [v for _, v in pairs] for name, pairs in sink.take().items()} == {"custom.x": [2.0]}


def test_public_testfleet_metric_reaches_the_sink(sink: CustomMetrics) -> None:
    testfleet.metric("items", 4)
    testfleet.metric("items", 6)
    summary = CustomMetrics.summarize(sink.take())
    assert summary == {"custom.items": {"mean": 5.0, "max": 6.0, "p95": pytest.approx(5.9),
                                        "delta": 2.0, "count": 2.0}}


# -- summaries and buckets --------------------------------------------------------------------


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(st.sampled_from(["custom.a", "custom.b", "http.latency_ms"]),
                       st.lists(FINITE, min_size=1, max_size=40), min_size=1))
def test_summarize_matches_numpy(values: dict[str, list[float]]) -> None:
    collector = CustomMetrics()
    for name, series in values.items():
        for i, v in enumerate(series):
            collector.add(name, v, t=float(i))
    summary = CustomMetrics.summarize(collector.take())
    assert set(summary) == set(values)
    for name, series in values.items():
        arr = np.array(series)
        got = summary[name]
        assert got["count"] == len(series)
        assert got["max"] == arr.max()
        assert got["delta"] == pytest.approx(arr[-1] - arr[0], abs=1e-9)
        assert got["mean"] == pytest.approx(arr.mean(), rel=1e-9, abs=1e-9)
        assert got["p95"] == pytest.approx(np.percentile(arr, 95), rel=1e-9, abs=1e-9)


def test_summarize_skips_empty_series() -> None:
    assert CustomMetrics.summarize({"custom.a": [], "custom.b": [(0.0, 1.0)]}) == {
        "custom.b": {"mean": 1.0, "max": 1.0, "p95": 1.0, "delta": 0.0, "count": 1.0}}


@settings(max_examples=60, deadline=None)
@given(pairs=st.lists(st.tuples(st.floats(min_value=0.0, max_value=500.0), FINITE),
                      min_size=1, max_size=80),
       interval=st.sampled_from([0.01, 0.05, 0.1, 0.25, 1.0, 7.0]))
def test_buckets_keep_the_total_and_stay_in_their_bucket(pairs: list[tuple[float, float]],
                                                         interval: float) -> None:
    pairs = sorted(pairs)
    rows = CustomMetrics.buckets({"custom.q": pairs, "custom.empty": []}, interval)
    assert {name for _, name, _ in rows} <= {"custom.q"}
    members: dict[int, list[float]] = {}
    for t, v in pairs:
        members.setdefault(math.floor(t / interval), []).append(v)
    assert len(rows) == len(members)  # one row per non-empty bucket
    total = 0.0
    for t, _, mean in rows:
        key = math.floor(t / interval)
        assert key in members, (t, interval)  # the row's time lies inside its own bucket
        assert t == max(pt for pt, _ in pairs if math.floor(pt / interval) == key)
        assert mean == pytest.approx(float(np.mean(members.pop(key))), rel=1e-9, abs=1e-6)
        total += mean * sum(1 for pt, _ in pairs if math.floor(pt / interval) == key)
    assert not members  # every bucket had its row
    assert total == pytest.approx(sum(v for _, v in pairs), rel=1e-9, abs=1e-4)


def test_buckets_average_within_an_interval_and_separate_metrics() -> None:
    values = {"custom.a": [(10.01, 1.0), (10.02, 3.0), (10.15, 10.0)],
              "http.latency_ms": [(10.03, 4.0)]}
    rows = sorted(CustomMetrics.buckets(values, 0.1))
    assert rows == [(10.02, "custom.a", 2.0), (10.03, "http.latency_ms", 4.0),
                    (10.15, "custom.a", 10.0)]

